"""The CPU summarizer: an RL-trained policy that picks and orders the most telling statements from a user's history.

Why this design: a generative LLM cannot be RL-trained in minutes on two CPU cores, but the PLUS loop only needs a
stochastic policy over summaries with a log-probability. Here the summary space is "ordered selections of statements
taken from the user's own history" ("Prefers: ...", "Dislikes: ...", "Asked about: ...", "Says: ...", plus the form
of the answers the user picked, "Prefers: shorter, more concise answers."), so every summary is readable and
editable by construction and can never drift into a private code. A small MLP scores each
statement from its cached MiniLM embedding plus a few count features; a summary is a Plackett-Luce sample (Gumbel
top-k) of statements added in order until the word budget is full, and its log-probability is exact, which is what
the group-normalised policy gradient in :mod:`pluralign.training.group_rl` needs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pluralign.data.schema import UserRecord
from pluralign.data.text import emoji_count, word_count
from pluralign.models.backbone import DEFAULT_BACKBONE
from pluralign.models.saved_state import read_state
from pluralign.models.sentence_encoder import SentenceEncoder

KINDS = ("prefers", "dislikes", "asked", "says")
_LABEL = {"prefers": "Prefers", "dislikes": "Dislikes", "asked": "Asked about", "says": "Says"}
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
STATEMENT_TOKENS = 64  # encoder window for one statement (16 words and a label fit well inside)


@dataclass(frozen=True)
class Statement:
    """One candidate line of a summary, taken from the user's own history."""

    kind: str
    body: str
    count: int = 1
    position: float = 0.0  # where it first appears in the history, 0..1

    @property
    def text(self) -> str:
        body = self.body.rstrip()
        return f"{_LABEL[self.kind]}: {body}" + ("" if body.endswith((".", "!", "?")) else ".")

    @property
    def words(self) -> int:
        return word_count(self.text)


def _sentences(text: str, max_words: int) -> list[str]:
    out = []
    for s in _SENT.split(text or ""):
        s = " ".join(s.split())
        if len(s) < 3:
            continue
        w = s.split()
        out.append(" ".join(w[:max_words]) + (" ..." if len(w) > max_words else ""))
    return out


LONGER, SHORTER = "longer, more detailed answers", "shorter, more concise answers"
WITH_EMOJIS, WITHOUT_EMOJIS = "answers with emojis", "answers without emojis"


def style_contrasts(chosen: str, rejected: str, *, length_ratio: float = 1.3, min_words: int = 6,
                    min_emojis: int = 2) -> list[str]:
    """What the choice says about form rather than content: the user took the clearly longer (or shorter) answer, or
    the one with (or without) emojis. A sentence-level diff cannot say this, and an LLM summarizer would."""
    out = []
    wc, wr = word_count(chosen), word_count(rejected)
    if abs(wc - wr) >= min_words and max(wc, wr) >= length_ratio * max(1, min(wc, wr)):
        out.append(LONGER if wc > wr else SHORTER)
    ec, er = emoji_count(chosen), emoji_count(rejected)
    if abs(ec - er) >= min_emojis:
        out.append(WITH_EMOJIS if ec > er else WITHOUT_EMOJIS)
    return out


def extract_statements(user: UserRecord, *, max_words: int = 16, style: bool = True) -> list[Statement]:
    """Candidate statements from labelled pairs (sentences only in the chosen / only in the rejected response, and
    with ``style`` the form the user chose: longer or shorter, with or without emojis), unlabelled conversations (the
    user's own turns) and the self-description; repeats are merged and counted (the count is a policy feature), and
    a sentence found on both sides of the user's choices is dropped."""
    raw: list[tuple[str, str]] = []
    for p in user.pairs:
        chosen, rejected = _sentences(p.chosen, max_words), _sentences(p.rejected, max_words)
        raw += [("prefers", s) for s in chosen if s not in rejected]
        raw += [("dislikes", s) for s in rejected if s not in chosen]
        if style:
            raw += [("prefers", s) for s in style_contrasts(p.chosen, p.rejected)]
    for c in user.conversations:
        for m in c.messages:
            if m.role == "user":
                raw += [("asked", s) for s in _sentences(m.content, max_words)[:2]]
    if user.profile:
        raw += [("says", s) for s in _sentences(user.profile, max_words)]
    # A sentence the user both picked and passed over says nothing about them (shared filler): drop it.
    liked = {b.lower() for k, b in raw if k == "prefers"}
    disliked = {b.lower() for k, b in raw if k == "dislikes"}
    raw = [(k, b) for k, b in raw if not (k in ("prefers", "dislikes") and b.lower() in liked & disliked)]
    counts: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], int] = {}
    for i, key in enumerate(raw):
        k = (key[0], key[1].lower())
        counts[k] = counts.get(k, 0) + 1
        first.setdefault(k, i)
    n = max(1, len(raw) - 1)
    out = []
    for k, i in sorted(first.items(), key=lambda kv: kv[1]):
        out.append(Statement(raw[i][0], raw[i][1], counts[k], i / n))
    return out


@dataclass
class CpuSummarizerConfig:
    word_budget: int = field(default=50, metadata={"help": "summary length cap in words (the paper asks for < 50)"})
    statement_words: int = field(default=16, metadata={"help": "each statement is cut to this many words"})
    hidden: int = field(default=64, metadata={"help": "hidden width of the statement scorer MLP"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the selection policy"})
    backbone: str = field(default=DEFAULT_BACKBONE, metadata={"help": "sentence encoder for statement embeddings"})
    style_statements: bool = field(default=True, metadata={
        "help": "also offer statements about the form the user chose (longer/shorter, with/without emojis)"})


@dataclass
class _Candidates:
    statements: list[Statement]
    features: torch.Tensor  # (n, d)


@dataclass
class SelectionRollout:
    """Sampled summaries and what the policy gradient needs: the chosen order for each sample."""

    contexts: list[UserRecord]
    group_size: int
    summaries: list[str]
    orders: list[list[int]]
    init_logps: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    greedy_summaries: list[str] | None = None  # one per context, when the rollout was asked for them


class CpuSummarizer:
    """Readable statement-selection summaries; trainable with the PLUS reward (see module docstring)."""

    backend = "cpu"

    def __init__(self, config: CpuSummarizerConfig | None = None, *, encoder: SentenceEncoder | None = None,
                 seed: int = 0):
        self.config = config or CpuSummarizerConfig()
        self.encoder = encoder or SentenceEncoder(self.config.backbone, max_length=STATEMENT_TOKENS)
        torch.manual_seed(seed)
        d_in = self.encoder.dim + len(KINDS) + 2
        self.scorer = nn.Sequential(nn.Linear(d_in, self.config.hidden), nn.Tanh(), nn.Linear(self.config.hidden, 1))
        nn.init.zeros_(self.scorer[2].weight)  # untrained = all ties = history order: a plain zero-shot baseline
        nn.init.zeros_(self.scorer[2].bias)
        self.initial = {k: v.detach().clone() for k, v in self.scorer.state_dict().items()}
        self.step = 0
        self._generator = torch.Generator().manual_seed(seed)
        self._cands: dict[str, _Candidates] = {}

    # ----- candidates -----
    @staticmethod
    def _key(user: UserRecord) -> str:
        return hashlib.sha1(user.model_dump_json().encode("utf-8")).hexdigest()

    def _statements(self, user: UserRecord) -> list[Statement]:
        return extract_statements(user, max_words=self.config.statement_words, style=self.config.style_statements)

    def candidates(self, user: UserRecord) -> _Candidates:
        key = self._key(user)
        if key not in self._cands:
            sts = self._statements(user)
            emb = torch.from_numpy(self.encoder.encode([s.body for s in sts]))
            kinds = torch.zeros(len(sts), len(KINDS))
            for i, s in enumerate(sts):
                kinds[i, KINDS.index(s.kind)] = 1.0
            extra = torch.tensor([[np.log1p(s.count), s.position] for s in sts], dtype=torch.float32).reshape(-1, 2)
            self._cands[key] = _Candidates(sts, torch.cat([emb, kinds, extra], dim=1))
        return self._cands[key]

    def precompute(self, contexts: Sequence[UserRecord]) -> None:
        """Embed every statement of these users in one pass (faster than user by user)."""
        texts = [s.body for u in contexts for s in self._statements(u)]
        self.encoder.encode(texts)
        for u in contexts:
            self.candidates(u)

    # ----- policy -----
    def _render(self, cands: _Candidates, order: list[int]) -> str:
        return " ".join(cands.statements[i].text for i in order)

    def _fill(self, cands: _Candidates, ranking: list[int]) -> list[int]:
        """Take statements in ranked order while they fit the word budget (at least one)."""
        chosen, used = [], 0
        for i in ranking:
            w = cands.statements[i].words
            if chosen and used + w > self.config.word_budget:
                break
            chosen.append(i)
            used += w
        return chosen

    def _logits(self, cands: _Candidates, params: dict | None = None) -> torch.Tensor:
        return self._batch_logits([cands], params)[0]

    def _batch_logits(self, cands: Sequence[_Candidates], params: dict | None = None) -> list[torch.Tensor]:
        """Scores of every user's statements in one forward pass (many tiny matmuls are slow on a busy CPU)."""
        sizes = [len(c.statements) for c in cands]
        if not sum(sizes):
            return [torch.zeros(0) for _ in cands]
        feats = torch.cat([c.features for c in cands])
        if params is None:
            out = self.scorer(feats).squeeze(-1)
        else:
            out = torch.func.functional_call(self.scorer, params, (feats,)).squeeze(-1)
        return list(torch.split(out / self.config.temperature, sizes))

    @staticmethod
    def _sequence_logp(logits: torch.Tensor, order: list[int]) -> torch.Tensor:
        """Plackett-Luce log-probability of picking ``order`` first, in that order (vectorised: the denominator at
        step j is the total mass minus what was already picked)."""
        if not order:
            return logits.sum() * 0
        m = logits.max().detach()
        w = torch.exp(logits - m)
        picked = w[torch.tensor(order)]
        before = torch.cumsum(picked, 0) - picked
        denom = (w.sum() - before).clamp(min=1e-30)
        return (logits[torch.tensor(order)] - m - torch.log(denom)).sum()

    @torch.no_grad()
    def summarize(self, contexts: Sequence[UserRecord], *, sample: bool = False) -> list[str]:
        out = []
        all_cands = [self.candidates(u) for u in contexts]
        for cands, logits in zip(all_cands, self._batch_logits(all_cands), strict=True):
            if not cands.statements:
                out.append("")
                continue
            if sample:
                g = -torch.log(-torch.log(torch.rand(len(logits), generator=self._generator).clamp(1e-9, 1 - 1e-9)))
                logits = logits + g
            ranking = torch.sort(logits, descending=True, stable=True).indices.tolist()
            out.append(self._render(cands, self._fill(cands, ranking)))
        return out

    def rollout(self, contexts: Sequence[UserRecord], group_size: int = 4, greedy: bool = False) -> SelectionRollout:
        """``group_size`` sampled summaries per context (context-major order); ``greedy`` also gives each context's
        greedy summary (``greedy_summaries``), as :meth:`summarize` writes it."""
        summaries, orders, init_lp = [], [], []
        all_cands = [self.candidates(u) for u in contexts]
        with torch.no_grad():
            all_logits = self._batch_logits(all_cands)
            all_init = self._batch_logits(all_cands, self.initial)
        for cands, logits, init_logits in zip(all_cands, all_logits, all_init, strict=True):
            for _ in range(group_size):
                if not cands.statements:
                    orders.append([])
                    summaries.append("")
                    init_lp.append(0.0)
                    continue
                g = -torch.log(-torch.log(torch.rand(len(logits), generator=self._generator).clamp(1e-9, 1 - 1e-9)))
                ranking = torch.sort(logits + g, descending=True).indices.tolist()
                order = self._fill(cands, ranking)
                orders.append(order)
                summaries.append(self._render(cands, order))
                init_lp.append(float(self._sequence_logp(init_logits, order)))
        return SelectionRollout(list(contexts), group_size, summaries, orders, torch.tensor(init_lp),
                                greedy_summaries=self.summarize(contexts) if greedy else None)

    def sequence_logps(self, rollout: SelectionRollout) -> torch.Tensor:
        """log pi(z) of every sampled summary under the current scorer (with gradients)."""
        all_logits = self._batch_logits([self.candidates(u) for u in rollout.contexts])
        logps = [self._sequence_logp(all_logits[j // rollout.group_size], order) if order else torch.zeros(())
                 for j, order in enumerate(rollout.orders)]
        return torch.stack(logps)

    def parameters(self):
        return self.scorer.parameters()

    # ----- persistence -----
    @property
    def version(self) -> str:
        h = hashlib.sha1()
        for v in self.scorer.state_dict().values():
            h.update(v.numpy().tobytes())
        return f"cpu-statements@{h.hexdigest()[:10]}"

    def save_pretrained(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"scorer": self.scorer.state_dict(), "initial": self.initial, "step": self.step},
                   out / "scorer.pt")
        (out / "summarizer.json").write_text(json.dumps({"backend": "cpu", **self.config.__dict__}, indent=1))

    @classmethod
    def from_pretrained(cls, path: str | Path, *, encoder: SentenceEncoder | None = None) -> CpuSummarizer:
        p = Path(path)
        meta = read_state(p / "summarizer.json", "CPU summarizer")
        meta.pop("backend", None)
        self = cls(CpuSummarizerConfig(**meta), encoder=encoder)
        state = torch.load(p / "scorer.pt", weights_only=True)
        self.scorer.load_state_dict(state["scorer"])
        self.initial = state["initial"]
        self.step = int(state["step"])
        return self
