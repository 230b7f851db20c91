"""Scoring with the personalised reward model and P[Love]: models load once, concurrent requests are batched.

:class:`MicroBatcher` gathers the candidates of requests that arrive within ``max_wait_ms`` of each other (up to
``max_batch`` candidates) into one model call on a single worker thread, then hands each request its slice. With
batching off every request is its own model call (still one at a time: the models are not thread-safe).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
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
class _Pending:
    prompts: list[str]
    responses: list[str]
    summaries: list[str | None]
    future: asyncio.Future


class MicroBatcher:
    """Batches concurrent score calls into one model call (see the module docstring)."""

    def __init__(self, scorer: Scorer, *, enabled: bool = True, max_batch: int = 64, max_wait_ms: float = 5.0,
                 torch_threads: int = 0):
        self.scorer, self.enabled = scorer, enabled
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pluralign-score",
                                            initializer=_limit_torch_threads, initargs=(torch_threads,))
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self.model_calls = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        if self.enabled:
            self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=True)

    async def score(self, prompts: list[str], responses: list[str], summaries: list[str | None]
                    ) -> tuple[list[float] | None, list[float] | None]:
        loop = asyncio.get_running_loop()
        if not self.enabled:
            self.model_calls += 1
            r, p = await loop.run_in_executor(self._executor, self.scorer.score, prompts, responses, summaries)
            return _tolist(r), _tolist(p)
        fut = loop.create_future()
        await self._queue.put(_Pending(prompts, responses, summaries, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        carry: _Pending | None = None
        while True:
            first = carry or await self._queue.get()
            carry = None
            batch, n = [first], len(first.prompts)
            deadline = loop.time() + self.max_wait
            while n < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                if n + len(nxt.prompts) > self.max_batch:
                    carry = nxt
                    break
                batch.append(nxt)
                n += len(nxt.prompts)
            prompts = [x for b in batch for x in b.prompts]
            responses = [x for b in batch for x in b.responses]
            summaries = [x for b in batch for x in b.summaries]
            self.model_calls += 1
            try:
                r, p = await loop.run_in_executor(self._executor, self.scorer.score, prompts, responses, summaries)
            except Exception as e:  # noqa: BLE001 - each waiting request gets the error
                log.exception("scoring a batch of %d failed", len(prompts))
                for b in batch:
                    if not b.future.done():
                        b.future.set_exception(e)
                continue
            i = 0
            for b in batch:
                k = len(b.prompts)
                if not b.future.done():
                    b.future.set_result((_tolist(r, i, i + k), _tolist(p, i, i + k)))
                i += k


def _limit_torch_threads(n: int) -> None:
    # OpenMP thread counts can be per calling thread: set it on the thread that runs the models too.
    if n > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def _tolist(a: np.ndarray | None, lo: int = 0, hi: int | None = None) -> list[float] | None:
    return None if a is None else [float(x) for x in np.asarray(a)[lo:hi]]
