"""``pluralign train rm``: the summary-conditioned reward model trained by TRL's ``RewardTrainer``.

Ours are only what the summary-conditioned model needs: the dataset map that renders each row with its summary
(:func:`pluralign.training.rm_data.rows_to_dataset`), a collator that also pads token type ids (encoders read a
text pair), the optimizer groups (the fresh head at its own learning rate, shared with the PLUS inner loop) and the
one place :class:`RMConfig` becomes a ``RewardConfig`` (:func:`reward_config`). The Bradley-Terry loss with margin
and centring, gradient accumulation, warm-up + cosine, bf16, DDP (``accelerate launch`` / ``torchrun``),
length-grouped batches, logging, evaluation, ``checkpoint-<step>`` rotation and ``resume_from_checkpoint`` are
the Trainer's. The PLUS co-adaptation loop updates the RM with its own small loop instead:
:mod:`pluralign.training.rm_updater` says why.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import RewardConfig, RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference
from trl.trainer.utils import pad

from pluralign.training.precision import use_bf16
from pluralign.training.rm_config import RMConfig
from pluralign.training.rm_data import rows_to_dataset, validate_rows
from pluralign.training.rm_updater import param_groups

# TRL's logged names -> the names train_results.json and the history have always used
_LOG_NAMES = {"loss": "train_loss", "accuracy": "train_accuracy", "margin": "train_margin",
              "grad_norm": "train_grad_norm", "learning_rate": "lr"}


def _save_settings(config: RMConfig, evaluating: bool) -> dict[str, Any]:
    """Checkpointing: periodic ``checkpoint-<step>`` dirs for resume, and with ``keep_best`` the best evaluation's
    weights (saved only when ``best_metric`` improves, unless periodic checkpoints are asked for as well)."""
    if config.keep_best and evaluating:
        out = {"load_best_model_at_end": True, "metric_for_best_model": f"eval_{config.best_metric}",
               "greater_is_better": config.best_metric == "accuracy"}
        if config.save_steps:
            return {**out, "save_strategy": "steps", "save_steps": config.save_steps}
        return {**out, "save_strategy": "best", "save_only_model": True}
    if config.save_steps:
        return {"save_strategy": "steps", "save_steps": config.save_steps}
    return {"save_strategy": "no"}


def reward_config(config: RMConfig, output_dir: str, *, has_eval: bool = False) -> RewardConfig:
    """The ``RewardConfig`` (``TrainingArguments``) for an :class:`RMConfig`: the one mapping between the two."""
    evaluating = has_eval and config.eval_steps > 0
    return RewardConfig(
        output_dir=output_dir,
        learning_rate=config.lr,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps > 0 else -1,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a share of the total steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        center_rewards_coefficient=config.center_rewards_coef or None,
        bf16=use_bf16(config.bf16),
        use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=config.gradient_checkpointing,
        disable_dropout=config.disable_dropout,
        train_sampling_strategy="group_by_length" if config.bucket_size > 0 else "random",
        max_length=config.max_length,  # inputs are already cut to it (summary first), so nothing is filtered
        seed=config.seed,
        logging_strategy="steps" if config.logging_steps else "no",
        logging_steps=config.logging_steps or 500,
        eval_strategy="steps" if evaluating else "no",
        eval_steps=config.eval_steps or None,
        save_total_limit=config.save_total_limit or None,
        **_save_settings(config, evaluating),
        report_to=config.report_to,
        remove_unused_columns=False,  # the collator picks its columns (token type ids too)
        dataloader_pin_memory=torch.cuda.is_available(),
    )


@dataclass
class PairCollator(DataCollatorForPreference):
    """TRL's preference collator (chosen rows, then rejected rows, right-padded, ``margin``) plus the token type
    ids a BERT-style encoder reads for a text pair."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = super().torch_call(examples)
        if "chosen_token_type_ids" in examples[0]:
            tt = [torch.tensor(e[k]) for k in ("chosen_token_type_ids", "rejected_token_type_ids") for e in examples]
            out["token_type_ids"] = pad(tt, padding_value=0, padding_side="right",
                                        pad_to_multiple_of=self.pad_to_multiple_of)
        return out


class SummaryRMTrainer(RewardTrainer):
    """``RewardTrainer`` whose optimizer gives the fresh reward head its own learning rate (``RMConfig.head_lr``)."""

    def __init__(self, *args, rm_config: RMConfig, **kwargs) -> None:
        self.rm_config = rm_config
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        if self.optimizer is None:  # the Trainer's optimizer class and settings (fused AdamW), our groups
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
            self.optimizer = cls(param_groups(self.model, self.rm_config), **kwargs)
        return self.optimizer


def build_trainer(model, train_rows: Sequence[dict], config: RMConfig, eval_rows: Sequence[dict] | None = None,
                  output_dir: str | None = None) -> SummaryRMTrainer:
    """A ready ``RewardTrainer`` for ``model`` on validated rows (summary conditioning mapped into the dataset)."""
    inputs = model.inputs
    train = rows_to_dataset(inputs, train_rows, config.margin)
    evals = rows_to_dataset(inputs, eval_rows, config.margin) if eval_rows else None
    args = reward_config(config, output_dir or config.output_dir, has_eval=evals is not None)
    collator = PairCollator(pad_token_id=inputs.tokenizer.pad_token_id, pad_to_multiple_of=args.pad_to_multiple_of)
    callbacks = []
    if args.load_best_model_at_end and config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    return SummaryRMTrainer(model=model, args=args, train_dataset=train, eval_dataset=evals,
                            processing_class=inputs.tokenizer, data_collator=collator, rm_config=config,
                            callbacks=callbacks)


def _resume_point(config: RMConfig) -> str | None:
    if config.resume_from_checkpoint == "latest":
        return get_last_checkpoint(config.output_dir) if Path(config.output_dir).is_dir() else None
    if config.resume_from_checkpoint and not (Path(config.resume_from_checkpoint) / "trainer_state.json").exists():
        raise FileNotFoundError(f"{config.resume_from_checkpoint}/trainer_state.json: missing, cannot resume from "
                                "this checkpoint")
    return config.resume_from_checkpoint


def _history(log_history: list[dict]) -> list[dict[str, float]]:
    return [{"step": e["step"], **{_LOG_NAMES.get(k, f"train_{k}"): v for k, v in e.items()
                                   if k not in ("step", "epoch")}}
            for e in log_history if "loss" in e and "train_runtime" not in e]


def train_reward_model(model, train_rows: Sequence[dict], config: RMConfig,
                       eval_rows: Sequence[dict] | None = None) -> dict[str, Any]:
    """Train ``model`` in place; returns final metrics (train_*, eval_*, throughput, ``history``).

    Rows: dicts with ``prompt``, ``chosen``, ``rejected`` and optional ``summary`` (any user text) and ``margin``.
    With ``config.output_dir`` set, checkpoints go to ``output_dir/checkpoint-<step>`` every ``save_steps`` and the
    final model (``SummaryConditionedRM.from_pretrained`` reads it) and ``train_results.json`` to ``output_dir``.
    """
    train_rows = validate_rows(train_rows, "train_rows")
    eval_rows = validate_rows(eval_rows, "eval_rows") if eval_rows else None
    resume = _resume_point(config)
    scratch = None if config.output_dir else tempfile.mkdtemp(prefix="pluralign-rm-")
    try:
        t0 = time.perf_counter()
        trainer = build_trainer(model, train_rows, config, eval_rows, output_dir=scratch)
        start = json.loads((Path(resume) / "trainer_state.json").read_text())["global_step"] if resume else 0
        result = trainer.train(resume_from_checkpoint=resume)
        wall = time.perf_counter() - t0
        state, args = trainer.state, trainer.args
        history = _history(state.log_history)
        pairs = (state.global_step - start) * args.per_device_train_batch_size * args.gradient_accumulation_steps \
            * args.world_size
        metrics: dict[str, Any] = {
            "steps": state.global_step, "total_steps": state.max_steps, "pairs_seen": pairs, "wall_s": wall,
            "pairs_per_s": pairs / wall if wall > 0 else 0.0, "bf16": bool(args.bf16),
            "train_loss": result.training_loss,
            "summary_tokens_cut": int(sum(trainer.train_dataset["summary_tokens_cut"])),
            **(history[-1] if history else {})}
        metrics.pop("step", None)
        if args.load_best_model_at_end:
            metrics["best_step"] = state.best_global_step or state.global_step
            metrics["eval_history"] = [{"step": e["step"], "eval_loss": e["eval_loss"],
                                        "eval_accuracy": e.get("eval_accuracy")}
                                       for e in state.log_history if "eval_loss" in e]
        if eval_rows:
            metrics.update({k: v for k, v in trainer.evaluate().items() if not k.endswith(("_runtime", "per_second"))})
            metrics["eval_n"] = len(eval_rows)
        metrics["history"] = history
        model.eval()
        if config.output_dir:
            trainer.save_model(config.output_dir)
            if trainer.is_world_process_zero():
                (Path(config.output_dir) / "train_results.json").write_text(
                    json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2) + "\n",
                    encoding="utf-8")
        return metrics
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
