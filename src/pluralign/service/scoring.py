"""Scoring with the personalised reward model and P[Love]: models load once, concurrent requests are batched.

:class:`MicroBatcher` gathers the candidates of requests that arrive within ``max_wait_ms`` of each other (up to
``max_batch`` candidates) into one model call on a single worker thread, then hands each request its slice. The
queue is fair across users: each model call gives every waiting user an equal share of candidates (at most
``user_share``), round robin, so no user's flood can make another wait behind all of it. With batching off every
model call is one request (still one at a time: the models are not thread-safe).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def model_version(path: str | Path) -> str:
    """``NAME@sha256:PREFIX`` over the directory's files (names and bytes), so a retrained model reads differently."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"{p.name}@sha256:{h.hexdigest()[:12]}"


@dataclass
class Scorer:
    """The loaded models. ``rm``: ``score(prompts, responses, summaries)``; ``love``: ``predict_proba(...)``."""

    rm: object | None = None
    love: object | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.rm is not None or self.love is not None

    def score(self, prompts: Sequence[str], responses: Sequence[str], summaries: Sequence[str | None]
              ) -> tuple[np.ndarray | None, np.ndarray | None]:
        rewards = self.rm.score(list(prompts), list(responses), list(summaries)) if self.rm is not None else None
        p_love = (self.love.predict_proba(list(prompts), list(responses), list(summaries))
                  if self.love is not None else None)
        return rewards, p_love


def load_scorer(rm_path: str | None, love_path: str | None, *, torch_threads: int = 1) -> Scorer:
    """Load the configured models once (offline); a bad path is a clear error at startup, not at the first request.

    ``torch_threads`` (>0) caps torch's intra-op threads for the whole process.
    """
    scorer = Scorer()
    # Function-level imports: torch and the models load only when a model is configured (the service runs without).
    if (rm_path or love_path) and torch_threads > 0:
        import torch

        torch.set_num_threads(torch_threads)
    if rm_path:
        from pluralign.models.reward_model import SummaryConditionedRM

        scorer.rm = SummaryConditionedRM.from_pretrained(rm_path)
        scorer.rm.eval()
        scorer.versions["reward_model"] = model_version(rm_path)
    if love_path:
        from pluralign.models.love import LoveModel

        scorer.love = LoveModel.from_pretrained(love_path)
        scorer.versions["love_model"] = model_version(love_path)
    return scorer


@dataclass
class _Request:
    future: asyncio.Future
    n: int
    parts_left: int = 0
    rewards: list = field(default_factory=list)
    p_love: list = field(default_factory=list)
    has_rewards: bool = False
    has_p_love: bool = False


@dataclass
class _Part:
    """Candidates ``lo:lo + len(prompts)`` of one request: the unit the fair queue hands out."""

    request: _Request
    lo: int
    prompts: list[str]
    responses: list[str]
    summaries: list[str | None]

    def split(self, k: int) -> _Part:
        """Cut off the first ``k`` candidates as a new part; this part keeps the rest."""
        head = _Part(self.request, self.lo, self.prompts[:k], self.responses[:k], self.summaries[:k])
        self.lo += k
        self.prompts, self.responses, self.summaries = self.prompts[k:], self.responses[k:], self.summaries[k:]
        self.request.parts_left += 1
        return head


class MicroBatcher:
    """Batches concurrent score calls into one model call, fairly across users (see the module docstring).

    Requests queue per key (the user id). A model call serves every waiting key in round-robin order with an
    equal share of candidates: the size of the smallest waiting request, at most ``user_share``, up to
    ``max_batch`` in all; keys served go to the back. So a user alone gets calls of ``user_share`` candidates;
    when another user's single candidate arrives, the next call holds it and one candidate of each other waiting
    user, and it waits for at most the call in progress.
    """

    def __init__(self, scorer: Scorer, *, enabled: bool = True, max_batch: int = 64, max_wait_ms: float = 5.0,
                 torch_threads: int = 0, user_share: int = 1):
        self.scorer, self.enabled = scorer, enabled
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000.0
        self.user_share = max(1, min(user_share, max_batch)) if enabled else 10**9
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pluralign-score",
                                            initializer=_limit_torch_threads, initargs=(torch_threads,))
        self._queues: dict[str, deque[_Part]] = {}
        self._order: deque[str] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.model_calls = 0

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=True)

    @property
    def waiting(self) -> int:
        return sum(len(p.prompts) for q in self._queues.values() for p in q)

    async def score(self, prompts: list[str], responses: list[str], summaries: list[str | None], *,
                    key: str = "") -> tuple[list[float] | None, list[float] | None]:
        """Scores of the candidates, once the fair queue reaches them; ``key`` names whose turn it is (a user)."""
        loop = asyncio.get_running_loop()
        n = len(prompts)
        req = _Request(loop.create_future(), n, parts_left=1, rewards=[0.0] * n, p_love=[0.0] * n)
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = deque()
            self._order.append(key)
        q.append(_Part(req, 0, list(prompts), list(responses), list(summaries)))
        self._wake.set()
        return await req.future

    def _take_batch(self) -> list[_Part]:
        """One share of candidates per waiting key, in round-robin order, up to ``max_batch`` (at least one)."""
        active = []
        for key in list(self._order):
            q = self._queues[key]
            while q and q[0].request.future.done():  # the client went away, or an earlier part failed
                q.popleft()
            if q:
                active.append(key)
            else:
                self._order.remove(key)
                del self._queues[key]
        if not active:
            return []
        share = self.user_share if not self.enabled else min(
            self.user_share, *(len(self._queues[k][0].prompts) for k in active))
        batch: list[_Part] = []
        n = 0
        for key in active:
            q = self._queues[key]
            if batch and n + min(share, len(q[0].prompts)) > self.max_batch:
                break
            part = q[0].split(share) if len(q[0].prompts) > share else q.popleft()
            batch.append(part)
            n += len(part.prompts)
            self._order.remove(key)
            if q:
                self._order.append(key)
            else:
                del self._queues[key]
            if not self.enabled:  # one request per model call
                break
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._order:
                self._wake.clear()
                await self._wake.wait()
            if self.enabled and self.max_wait > 0 and self.waiting < self.max_batch:
                await asyncio.sleep(self.max_wait)  # let concurrent requests join this call
            batch = self._take_batch()
            if not batch:
                continue
            prompts = [x for b in batch for x in b.prompts]
            responses = [x for b in batch for x in b.responses]
            summaries = [x for b in batch for x in b.summaries]
            self.model_calls += 1
            try:
                r, p = await loop.run_in_executor(self._executor, self.scorer.score, prompts, responses, summaries)
            except Exception as e:  # noqa: BLE001 - each waiting request gets the error
                log.exception("scoring a batch of %d failed", len(prompts))
                for b in batch:
                    if not b.request.future.done():
                        b.request.future.set_exception(e)
                continue
            i = 0
            for b in batch:
                k = len(b.prompts)
                req = b.request
                if r is not None:
                    req.rewards[b.lo:b.lo + k], req.has_rewards = _tolist(r, i, i + k), True
                if p is not None:
                    req.p_love[b.lo:b.lo + k], req.has_p_love = _tolist(p, i, i + k), True
                req.parts_left -= 1
                if req.parts_left == 0 and not req.future.done():
                    req.future.set_result((req.rewards if req.has_rewards else None,
                                           req.p_love if req.has_p_love else None))
                i += k


def _limit_torch_threads(n: int) -> None:
    # OpenMP thread counts can be per calling thread: set it on the thread that runs the models too.
    if n > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def _tolist(a: np.ndarray | None, lo: int = 0, hi: int | None = None) -> list[float] | None:
    return None if a is None else [float(x) for x in np.asarray(a)[lo:hi]]
