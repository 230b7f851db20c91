"""A helpfulness or safety objective RM fine-tuned end to end on HH-RLHF pairs, for the RLUF policies.

The hashed n-gram heads of :mod:`pluralign.objectives.preference_rm` train in seconds but sum over n-grams, so a
policy that repeats a sentence the head likes is paid for it; a mean-pooled transformer fine-tuned on the same pairs
(``pluralign train rm``'s trainer, no summaries) costs minutes on two cores and is kept as an HF checkpoint that
later runs reuse.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.objectives.preference_rm import hh_objective_split
from pluralign.training.rm_config import RMConfig
from pluralign.training.rm_trainer import train_reward_model

HELD_OUT_FILE = "heldout_accuracy.json"


class FinetunedObjective:
    """A fine-tuned :class:`~pluralign.models.reward_model.SummaryConditionedRM` read as a user-blind objective:
    ``score(prompts, responses)`` in bf16 autocast (what a GRPO reward call needs), the checkpoint's path and its
    held-out accuracy beside it."""

    def __init__(self, model, path: Path, heldout_accuracy: float):
        self.model, self.path, self.heldout_accuracy = model, path, heldout_accuracy

    def score(self, prompts: Sequence[str], responses: Sequence[str], summaries=None) -> np.ndarray:
        return self.model.score(list(prompts), list(responses), dtype="bf16").astype(np.float64)

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.score(prompts, responses)


def finetune_hh_objective(kind: str, backbone: str, cache_dir: str | os.PathLike, *, n_train: int | None = None,
                          n_eval: int = 500, seed: int = 0,
                          config: RMConfig | None = None) -> tuple[FinetunedObjective, float]:
    """Fine-tune ``backbone`` end to end as a helpfulness or safety reward model on the pairs of
    :func:`hh_objective_split` (``pluralign train rm``'s trainer, no summaries), or load the one an earlier call
    left in ``cache_dir``; return it with its held-out pairwise accuracy.

    The checkpoint's directory name carries every setting that changes it (kind, backbone, pair counts, seed,
    epochs, learning rate, max length), so a cached model is only reused for the same training; a run killed
    before the held-out pairs were scored leaves no ``heldout_accuracy.json`` and is trained again. ``config`` is an
    :class:`~pluralign.training.rm_config.RMConfig` (default: one epoch at its defaults)."""
    config = config or RMConfig(backbone=backbone, seed=seed)
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", backbone).strip("-")
    tag = (f"{kind}-{slug}-n{n_train or 'all'}-e{n_eval}-s{seed}-ep{config.epochs:g}-st{config.max_steps}"
           f"-lr{config.lr:g}-L{config.max_length}")
    path = Path(cache_dir) / tag
    done = path / HELD_OUT_FILE
    if not done.exists():
        tr, ev = hh_objective_split(kind, n_train, n_eval, seed)
        rows = lambda ps: [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in ps]  # noqa: E731
        model = SummaryConditionedRM.from_backbone(backbone, max_length=config.max_length, seed=seed)
        cfg = RMConfig(**{**config.__dict__, "backbone": backbone, "seed": seed, "output_dir": str(path)})
        train_reward_model(model, rows(tr), cfg)
        # scored as GRPO will read it (bf16), pair by pair: the Trainer's eval accuracy is a mean over batches
        rm = FinetunedObjective(model, path, float("nan"))
        acc = float(np.mean(rm.score([p.prompt for p in ev], [p.chosen for p in ev])
                            > rm.score([p.prompt for p in ev], [p.rejected for p in ev])))
        done.write_text(json.dumps({"heldout_accuracy": acc, "n_eval": len(ev)}) + "\n", encoding="utf-8")
    acc = float(json.loads(done.read_text(encoding="utf-8"))["heldout_accuracy"])
    model = SummaryConditionedRM.from_pretrained(path)
    return FinetunedObjective(model, path, acc), acc
