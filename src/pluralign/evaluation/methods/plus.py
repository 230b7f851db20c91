"""``plus``, ``plus-untrained`` and ``plus-extractive``: the RM conditioned on per-user summaries written by a
summarizer, trained by the PLUS co-adaptation loop (:mod:`pluralign.training.plus_trainer`).

- ``plus``: an LLM (SmolLM2-135M-Instruct on CPU, LoRA on its top layers) writes each summary and is trained by
  group-normalised RL against the RM while the RM trains on its summaries.
- ``plus-untrained``: the same LLM zero-shot (frozen, greedy summaries); only the RM trains on them, with the same
  RM budget and the same reward/RM pair split, as in the paper's ablation.
- ``plus-extractive``: the cheap CPU option, a learned selection of statements copied from the history
  (:mod:`pluralign.summarizers.cpu`), trained by the same loop.

Users in the eval splits are summarised by inference alone (their context only, never their target). Every method
reports ``copy_rate`` (share of a summary's word 8-grams found verbatim in the user's context), ``summary_words``
and the context compression.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from pluralign.config import apply_overrides
from pluralign.data.splits import Example
from pluralign.evaluation.methods.base import ConditionedRMMethod, TokenCounter, seed_everything
from pluralign.evaluation.methods.icl import render_icl_context
from pluralign.summarizers.copying import copy_rate
from pluralign.training.plus_config import PlusConfig
from pluralign.training.plus_trainer import PlusTrainer, rows_from_examples
from pluralign.training.rm_config import RMConfig


def _rm_section(rm_config: RMConfig | None) -> dict:
    return {} if rm_config is None else {"rm": rm_config}


def default_plus_config(quick: bool, rm_config: RMConfig | None = None, **overrides: Any):
    """The bench's PLUS setting: the SmolLM2 summarizer with the PlusConfig CPU defaults (LoRA r=16 on the top 12
    layers, GRPO with 4 summaries per context, per-token KL 0.01), the bench's RM settings, fewer steps when quick."""
    base = {"epochs": 2 if quick else 3, "rollout_batch_size": 4 if quick else 8, "warm_start_rm_epochs": 2,
            "rm_passes": 2.0}
    return PlusConfig(**{**base, **_rm_section(rm_config), **overrides})


def extractive_plus_config(quick: bool, rm_config: RMConfig | None = None, **overrides: Any):
    """``plus-extractive``: the statement-selection summarizer and its tuned loop settings."""
    base = {"backend": "cpu", "summarizer_lr": 3e-3, "kl_coef": 0.0, "epochs": 2 if quick else 4,
            "rollout_batch_size": 16 if quick else 32, "warm_start_rm_epochs": 2, "rm_passes": 2.0,
            "reward_pairs": 4}
    return PlusConfig(**{**base, **_rm_section(rm_config), **overrides})


class PlusMethod(ConditionedRMMethod):
    name = "plus"
    train_summarizer = True
    make_config = staticmethod(default_plus_config)

    def __init__(self, rm_config: RMConfig | None = None, quick: bool = False, plus_config: PlusConfig | None = None,
                 plus_overrides: list[str] | None = None, **_: Any):
        super().__init__(rm_config=rm_config, quick=quick)
        self.plus_config = apply_overrides(plus_config or self.make_config(quick, self.rm_config), plus_overrides,
                                           prefix="plus.")
        self.summarizer = None
        self.history: list[dict] = []
        self._summaries: dict[str, str] = {}

    def fit(self, train: list[Example], seed: int = 0, validation: list[Example] | None = None) -> None:
        """The co-adaptation loop for the configured epochs (``--plus`` settings are chosen on the bench's
        ``validation`` records; the loop itself reads no held-out pairs)."""
        if not train:
            raise ValueError(f"{self.name}: no training examples")
        seed_everything(seed)
        cfg = dataclasses.replace(self.plus_config, seed=seed, train_summarizer=self.train_summarizer)
        trainer = PlusTrainer(cfg, rows_from_examples(train))
        self.history = trainer.train()
        self.summarizer, self.model = trainer.summarizer, trainer.rm
        self._summaries = {}

    @property
    def training_log(self) -> list[dict]:
        """The co-adaptation loop's per-step records (reward, RM accuracy, summary words, KL, copy rate, seconds)."""
        return self.history

    def _conditionings(self, examples: Sequence[Example]) -> list[str | None]:
        # Summaries by inference (greedy), one per distinct context, batched.
        keys = [e.context.model_dump_json() for e in examples]
        todo = {k: e.context for k, e in zip(keys, examples, strict=True) if k not in self._summaries}
        if todo:
            if self.summarizer is None:
                raise RuntimeError(f"{self.name}: call fit() before scoring")
            for k, z in zip(todo, self.summarizer.summarize(list(todo.values()), sample=False), strict=True):
                self._summaries[k] = z
        return [self._summaries[k] or None for k in keys]

    def initial_summaries(self, examples: Sequence[Example]) -> list[str]:
        """The zero-shot summaries of the same LLM before RL (its LoRA adapter switched off), one per example."""
        if self.summarizer is None:
            raise RuntimeError(f"{self.name}: call fit() before asking for summaries")
        unique = {e.context.model_dump_json(): e.context for e in examples}
        texts = dict(zip(unique, self.summarizer.summarize(list(unique.values()), sample=False, initial=True),
                         strict=True))
        return [texts[e.context.model_dump_json()] for e in examples]

    def extra_metrics(self, examples: Sequence[Example]) -> dict[str, float]:
        if not examples or self.model is None:
            return {}
        return summary_metrics(examples, self._conditionings(examples), self.model.tokenizer)


def summary_metrics(examples: Sequence[Example], summaries: Sequence[str | None], tokenizer: Any) -> dict[str, float]:
    """Per distinct user context: ``copy_rate`` (share of the summary's word 8-grams found verbatim in the context),
    ``summary_words``, ``summary_tokens`` vs the raw context ICL would read (RM tokenizer, uncut), and
    ``context_compression``."""
    seen: dict[int, tuple[Example, str]] = {}
    for e, z in zip(examples, summaries, strict=True):
        seen.setdefault(id(e.context), (e, z or ""))
    counter = TokenCounter(tokenizer)
    ctx_text = [render_icl_context(e) for e, _ in seen.values()]
    summ = np.array([counter.count(z) for _, z in seen.values()], dtype=float)
    ctx = np.array([counter.count(t) for t in ctx_text], dtype=float)
    out = {"summary_tokens": float(summ.mean()), "context_tokens": float(ctx.mean()),
           "summary_words": float(np.mean([len(z.split()) for _, z in seen.values()])),
           "copy_rate": float(np.mean([copy_rate(z, t) for (_, z), t in zip(seen.values(), ctx_text, strict=True)]))}
    if ctx.sum() > 0:
        out["context_compression"] = float(1 - summ.sum() / ctx.sum())
    return out


class PlusUntrainedMethod(PlusMethod):
    name = "plus-untrained"
    train_summarizer = False


class PlusExtractiveMethod(PlusMethod):
    name = "plus-extractive"
    make_config = staticmethod(extractive_plus_config)
