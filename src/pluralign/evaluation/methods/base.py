"""What every personalisation method provides, and the shared base for methods that condition the reward model.

Most methods differ only in *what text* the :class:`~pluralign.models.reward_model.SummaryConditionedRM` is
conditioned on (nothing, the raw context, the true persona, a group label, a summary), so they subclass
:class:`ConditionedRMMethod` and override :meth:`ConditionedRMMethod.conditioning`. Training goes through
``pluralign.training.rm_trainer.train_reward_model`` with an :class:`~pluralign.training.rm_config.RMConfig`, so a
method has no training knobs of its own.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pluralign.data.splits import Example
from pluralign.training.rm_config import RMConfig

# torch, the reward model and its trainer load inside the functions that use them: the CLI imports this module
# (through the method registry) while it parses arguments.


@runtime_checkable
class PersonalisationMethod(Protocol):
    name: str

    def fit(self, train: list[Example], seed: int = 0, validation: list[Example] | None = None) -> None:
        """Train on ``train``; any tuning choice (early stopping, a threshold) reads ``validation`` only."""
        ...

    def score_pairs(self, examples: Sequence[Example]) -> np.ndarray:
        """Margins r(chosen) - r(rejected), one per example; > 0 means the method predicts ``chosen``."""
        ...

    def tokens_per_pair(self, examples: Sequence[Example]) -> float:
        """Input tokens the model consumes per scored pair (both responses counted)."""
        ...


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TokenCounter:
    """Token counts per unique text (tokenizing the same prompt for every user would dominate the bench on CPU)."""

    def __init__(self, tokenizer: Any, cap: int | None = None):
        self.tokenizer = tokenizer
        self.cap = cap
        self._cache: dict[str, int] = {}

    def count(self, text: str) -> int:
        n = self._cache.get(text)
        if n is None:
            n = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            self._cache[text] = n
        return min(n, self.cap) if self.cap is not None else n


def bench_rm_config(quick: bool, rm_config: RMConfig | None = None) -> RMConfig:
    """RMConfig used by every RM-based method: the trainer's defaults, with a step budget fit for 2 CPU cores.

    The budget is a ceiling: the RM is checked on the validation users every ``eval_steps`` and ends with the
    weights of the check with the highest validation accuracy (``keep_best``), so the step count is chosen on
    held-out training users, never on a test split."""
    if rm_config is not None:
        return rm_config
    if quick:
        return RMConfig(max_length=160, max_steps=30, batch_size=8, lr=1e-4, eval_steps=10, keep_best=True)
    return RMConfig(max_length=256, max_steps=300, batch_size=16, lr=5e-5, eval_steps=50, keep_best=True)


class ConditionedRMMethod:
    """A SummaryConditionedRM trained with the BT loss on ``conditioning(example)`` as the summary text."""

    name = "conditioned"
    #: Train also on the labelled pairs in the training users' contexts. Only for a method whose conditioning does
    #: not read the context (the ``oracle`` reads the persona): for one that does, a context pair would be scored
    #: with itself in view.
    trains_on_context_pairs = False

    def __init__(self, rm_config: RMConfig | None = None, quick: bool = False, **_: Any):
        if rm_config is None:
            rm_config = bench_rm_config(quick)
        self.rm_config = rm_config
        self.model = None

    # --- what subclasses change --------------------------------------------------------------------------------
    def conditioning(self, example: Example) -> str | None:
        """The text the RM is conditioned on for this example (None: no user information)."""
        return None

    def _conditionings(self, examples: Sequence[Example]) -> list[str | None]:
        # One conditioning per user context, not per example: contexts are shared across a user's examples.
        cache: dict[int, str | None] = {}
        out = []
        for e in examples:
            key = id(e.context)
            if key not in cache:
                cache[key] = self.conditioning(e)
            out.append(cache[key])
        return out

    # --- method API ----------------------------------------------------------------------------------------------
    def conditionings(self, examples: Sequence[Example]) -> list[str | None]:
        """The text the RM reads for each example's user (None: no user information), one per example."""
        return self._conditionings(examples)

    @property
    def training_log(self) -> list[dict]:
        """Per-step records of the last ``fit`` (empty for a plain RM run; the plus methods log co-adaptation)."""
        return []

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Save the fitted RM (``SummaryConditionedRM.from_pretrained`` opens it)."""
        if self.model is None:
            raise RuntimeError(f"{self.name}: call fit() before save_pretrained()")
        self.model.save_pretrained(directory)

    @staticmethod
    def _row(pair: Any, conditioning: str | None) -> dict:
        row = {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
        if conditioning:
            row["summary"] = conditioning
        return row

    def _rows(self, examples: Sequence[Example], with_context_pairs: bool = False) -> list[dict]:
        """One row per target; with ``with_context_pairs`` also one per labelled pair in each user's context (each
        user's context once), all with the example's conditioning (computed once per example)."""
        rows, context_rows, seen = [], [], set()
        for e, c in zip(examples, self._conditionings(examples), strict=True):
            rows.append(self._row(e.target, c))
            if with_context_pairs and e.user_id not in seen:
                seen.add(e.user_id)
                context_rows += [self._row(p, c) for p in e.context.pairs]
        return rows + context_rows

    def fit(self, train: list[Example], seed: int = 0, validation: list[Example] | None = None) -> None:
        """BT training for the configured step budget. With ``validation`` pairs and ``rm.eval_steps`` > 0 the RM
        is scored on them along the way, and with ``rm.keep_best`` it ends with the best check's weights (the
        step count is tuned on validation users, never on a test split; ``chosen_steps`` records it)."""
        from pluralign.models.reward_model import SummaryConditionedRM
        from pluralign.training.rm_trainer import train_reward_model

        if not train:
            raise ValueError(f"{self.name}: no training examples")
        seed_everything(seed)
        cfg = self.rm_config
        cfg.seed = seed
        rows = self._rows(train, with_context_pairs=self.trains_on_context_pairs)
        eval_rows = self._rows(validation) if validation and cfg.eval_steps else None
        model = SummaryConditionedRM.from_backbone(cfg.backbone, max_length=cfg.max_length, pooling=cfg.pooling,
                                                   lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                   lora_dropout=cfg.lora_dropout, seed=seed)
        result = train_reward_model(model, rows, cfg, eval_rows=eval_rows)
        self.model = model  # trained in place
        self.chosen_steps = int(result.get("best_step", result["steps"]))

    def extra_metrics(self, examples: Sequence[Example]) -> dict[str, float]:
        """The RM step count kept (chosen on the validation split when there was one; else the whole budget)."""
        steps = getattr(self, "chosen_steps", None)
        return {"chosen_steps": float(steps)} if examples and steps is not None else {}

    def _bf16(self) -> bool:
        from pluralign.training.precision import use_bf16

        return use_bf16(self.rm_config.bf16, self.model.device)

    def score_pairs(self, examples: Sequence[Example]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name}: call fit() before score_pairs()")
        if not examples:
            return np.zeros(0)
        conds = self._conditionings(examples)
        prompts = [e.target.prompt for e in examples]
        summaries = conds if any(c for c in conds) else None
        dtype = "bf16" if self._bf16() else "fp32"
        bs = self.rm_config.eval_batch_size
        r_c = self.model.score(prompts, [e.target.chosen for e in examples], summaries, batch_size=bs, dtype=dtype)
        r_r = self.model.score(prompts, [e.target.rejected for e in examples], summaries, batch_size=bs, dtype=dtype)
        return np.asarray(r_c, dtype=float) - np.asarray(r_r, dtype=float)

    def input_stats(self, examples: Sequence[Example], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: tokens the RM reads (both responses, after its truncation) and conditioning tokens it cut."""
        conds = self._conditionings(examples)
        kept = np.zeros(len(examples))
        cut = np.zeros(len(examples))
        for start in range(0, len(examples), batch_size):
            chunk = examples[start: start + batch_size]
            c = conds[start: start + batch_size]
            prompts = [e.target.prompt for e in chunk]
            for side in ("chosen", "rejected"):
                enc = self.model.encode(prompts, [getattr(e.target, side) for e in chunk], c)
                kept[start: start + len(chunk)] += enc.batch["attention_mask"].sum(dim=1).numpy()
                cut[start: start + len(chunk)] += np.asarray(enc.summary_tokens_cut)
        return kept, cut

    def tokens_per_pair(self, examples: Sequence[Example]) -> float:
        if not examples:
            return 0.0
        if self.model is None:
            raise RuntimeError(f"{self.name}: call fit() before tokens_per_pair()")
        return float(self.input_stats(examples)[0].mean())
