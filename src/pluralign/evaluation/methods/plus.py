"""``plus`` and ``plus-untrained``: the RM conditioned on per-user summaries written by a summarizer, trained by the
PLUS co-adaptation loop (:mod:`pluralign.training.plus_trainer`).

``plus`` trains the summarizer with RL against the RM while the RM trains on its summaries; ``plus-untrained`` keeps
the initial summarizer frozen (greedy summaries) and trains only the RM on them, as in the paper. Users in the eval
splits are summarised by inference alone (their context only, never their target). The default summarizer is the
CPU statement-selection backend; ``plus_config`` selects another (e.g. ``backend="hf"``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from pluralign.data.splits import Example
from pluralign.evaluation.methods.base import ConditionedRMMethod, TokenCounter, seed_everything


def default_plus_config(quick: bool, rm_config: Any = None, **overrides: Any):
    """The bench's PLUS setting: CPU summarizer, the bench's RM settings, fewer epochs in quick mode."""
    from pluralign.training.plus_config import PlusConfig

    rm = {}
    if rm_config is not None:
        rm = {"rm_backbone": rm_config.backbone, "rm_max_length": rm_config.max_length, "rm_lr": rm_config.lr,
              "rm_head_lr": rm_config.head_lr, "rm_batch_size": rm_config.batch_size,
              "rm_lora_r": rm_config.lora_r}
    base = {"epochs": 2 if quick else 4, "rollout_batch_size": 16 if quick else 32,
            "warm_start_rm_epochs": 2, "rm_passes": 2.0}
    return PlusConfig(**{**base, **rm, **overrides})


class PlusMethod(ConditionedRMMethod):
    name = "plus"
    train_summarizer = True

    def __init__(self, rm_config: Any = None, quick: bool = False, plus_config: Any = None,
                 plus_overrides: list[str] | None = None, **_: Any):
        from pluralign.config import apply_overrides

        super().__init__(rm_config=rm_config, quick=quick)
        self.plus_config = apply_overrides(plus_config or default_plus_config(quick, self.rm_config), plus_overrides)
        self.summarizer = None
        self.history: list[dict] = []
        self._summaries: dict[str, str] = {}

    def fit(self, train: list[Example], seed: int = 0) -> None:
        from pluralign.training.plus_trainer import PlusTrainer, rows_from_examples

        if not train:
            raise ValueError(f"{self.name}: no training examples")
        seed_everything(seed)
        cfg = dataclasses.replace(self.plus_config, seed=seed, train_summarizer=self.train_summarizer)
        trainer = PlusTrainer(cfg, rows_from_examples(train))
        self.history = trainer.train()
        self.summarizer, self.model = trainer.summarizer, trainer.rm
        self._summaries = {}

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

    def extra_metrics(self, examples: Sequence[Example]) -> dict[str, float]:
        """Context compression: summary tokens vs the raw context ICL would read (RM tokenizer, uncut)."""
        from pluralign.evaluation.methods.icl import render_icl_context

        if not examples or self.model is None:
            return {}
        counter = TokenCounter(self.model.tokenizer)
        summ = np.array([counter.count(z or "") for z in self._conditionings(examples)], dtype=float)
        ctx = np.array([counter.count(render_icl_context(e)) for e in examples], dtype=float)
        out = {"summary_tokens": float(summ.mean()), "context_tokens": float(ctx.mean())}
        if ctx.sum() > 0:
            out["context_compression"] = float(1 - summ.sum() / ctx.sum())
        return out


class PlusUntrainedMethod(PlusMethod):
    name = "plus-untrained"
    train_summarizer = False
