"""The PLUS inner-loop reward-model update: a few optimizer steps on in-memory rows between summarizer steps.

Why not TRL's ``RewardTrainer`` here (``pluralign train rm`` does use it, :mod:`pluralign.training.rm_trainer`):
during co-adaptation the summary that conditions every row is rewritten by the summarizer at every step, and the
RM takes a handful of steps on those fresh rows, then hands control back to the summarizer's RL step. A Trainer
owns its whole run (dataset prepared once, schedule from the first to the last step), so each call would rebuild
it and restart its schedule; this loop keeps one optimizer across calls and tokenises each batch as it comes.

It shares everything else with the Trainer path: the model and its tokenisation (``SummaryConditionedRM.encode``,
the same :class:`~pluralign.models.rm_inputs.RMInputs` the dataset map uses), the optimizer groups
(:func:`param_groups`, also the Trainer's optimizer's) and the objective, ``RewardTrainer.compute_loss``'s
Bradley-Terry loss -log sigmoid(r_c - r_r - m) (+ centring), which ``tests/training/test_rm_trainer.py`` checks
equal on the same batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_constant_schedule_with_warmup

from pluralign.training.precision import use_bf16
from pluralign.training.rm_config import RMConfig
from pluralign.training.rm_data import row_margins, validate_rows


def param_groups(model, config: RMConfig) -> list[dict]:
    """Three groups: backbone weights (decayed), backbone biases/norms (not), head (own lr: a fresh head needs to
    move faster). The inner loop's AdamW and the RewardTrainer's optimizer both take these."""
    decay, no_decay, head = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("head."):
            head.append(p)
        elif p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    head_lr = config.head_lr if config.head_lr is not None else 10 * config.lr
    groups = [{"params": decay, "weight_decay": config.weight_decay, "lr": config.lr},
              {"params": no_decay, "weight_decay": 0.0, "lr": config.lr},
              {"params": head, "weight_decay": 0.0, "lr": head_lr}]
    return [g for g in groups if g["params"]]


def make_optimizer(model, config: RMConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`."""
    return torch.optim.AdamW(param_groups(model, config), lr=config.lr)


def pair_loss(model, rows: Sequence[dict], *, margin: float = 0.0, bf16: bool = False,
              center_rewards_coef: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Bradley-Terry loss on a batch of rows, chosen and rejected in one forward (as the Trainer's collator does)."""
    n = len(rows)
    enc = model.encode([r["prompt"] for r in rows] * 2, [r["chosen"] for r in rows] + [r["rejected"] for r in rows],
                       [r.get("summary") for r in rows] * 2)
    with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
        rewards = model(**enc.batch.to(model.device)).logits.squeeze(-1).float()
    rc, rr = rewards[:n], rewards[n:]
    m = torch.tensor(row_margins(rows, margin), dtype=rewards.dtype, device=rewards.device)
    loss = -F.logsigmoid(rc - rr - m).mean()
    if center_rewards_coef:
        loss = loss + center_rewards_coef * ((rc + rr) ** 2).mean()
    with torch.no_grad():
        stats = {"loss": float(loss), "accuracy": float((rc > rr).float().mean()),
                 "margin": float((rc - rr).mean()), "summary_tokens_cut": float(sum(enc.summary_tokens_cut[:n]))}
    return loss, stats


class RMUpdater:
    """Keeps an optimizer across calls so the PLUS loop can do ``train_on(rows, steps)`` between summarizer steps.

    The learning rate is constant after ``warmup_steps`` (the reward landscape keeps moving, a decaying schedule
    would freeze the RM halfway through co-adaptation).
    """

    def __init__(self, model, config: RMConfig, warmup_steps: int = 0) -> None:
        self.model, self.config = model, config
        self.bf16 = use_bf16(config.bf16, model.device)
        self.optimizer = make_optimizer(model, config)
        self.scheduler = get_constant_schedule_with_warmup(self.optimizer, warmup_steps)
        self.steps = 0
        self._rng = random.Random(config.seed)

    def step(self, rows: Sequence[dict]) -> dict[str, float]:
        """One optimizer step on one batch of rows."""
        self.model.train()
        loss, stats = pair_loss(self.model, rows, margin=self.config.margin, bf16=self.bf16,
                                center_rewards_coef=self.config.center_rewards_coef)
        loss.backward()
        if self.config.max_grad_norm:
            stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], self.config.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return stats

    def train_on(self, rows: Sequence[dict], steps: int = 1, progress: str | None = None) -> dict[str, float]:
        """``steps`` optimizer steps on batches drawn (shuffled, cycling) from ``rows``; mean stats returned.
        ``progress``: a description to show a progress bar under (long calls such as PLUS's RM warm start)."""
        rows = validate_rows(rows, "train_on rows")
        order: list[int] = []
        acc: dict[str, list[float]] = {}
        for _ in tqdm(range(steps), desc=progress, unit="step", disable=progress is None, leave=False):
            if len(order) < self.config.batch_size:
                fresh = list(range(len(rows)))
                self._rng.shuffle(fresh)
                order += fresh
            batch, order = order[: self.config.batch_size], order[self.config.batch_size:]
            for k, v in self.step([rows[i] for i in batch]).items():
                acc.setdefault(k, []).append(v)
        return {k: float(np.mean(v)) for k, v in acc.items()}


def evaluate_pairs(model, rows: Sequence[dict], batch_size: int = 64, margin: float = 0.0,
                   bf16: bool = False) -> dict[str, float]:
    """Pairwise accuracy (ties count as wrong), mean BT loss and mean reward margin on ``rows``, scored in eval mode."""
    rows = validate_rows(rows, "eval rows")
    prompts = [r["prompt"] for r in rows]
    summaries = [r.get("summary") for r in rows]
    dtype = "bf16" if bf16 else "fp32"
    rc = model.score(prompts, [r["chosen"] for r in rows], summaries, batch_size=batch_size, dtype=dtype)
    rr = model.score(prompts, [r["rejected"] for r in rows], summaries, batch_size=batch_size, dtype=dtype)
    diff = rc.astype(np.float64) - rr
    loss = np.logaddexp(0.0, -(diff - np.array(row_margins(rows, margin))))  # -log sigmoid(x), stable
    return {"accuracy": float((diff > 0).mean()), "loss": float(loss.mean()), "margin": float(diff.mean()),
            "n": len(rows)}
