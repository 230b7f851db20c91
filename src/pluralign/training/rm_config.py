"""``RMConfig``: every knob of the summary-conditioned reward model and its training, with its help text.

The training fields map onto TRL's ``RewardConfig`` (a ``transformers.TrainingArguments``) in one place,
:func:`pluralign.training.rm_trainer.reward_config`; the PLUS inner-loop update
(:class:`pluralign.training.rm_updater.RMUpdater`) reads the same fields. This module imports nothing heavy, so
configs nest it freely. Load with ``pluralign.config.load_config(RMConfig, "configs/rm.yaml", ["lr=1e-4"])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RMConfig:
    backbone: str = field(default="sentence-transformers/all-MiniLM-L6-v2", metadata={
        "help": "HF id or local directory of the backbone (encoder or decoder LM); resolved offline"})
    max_length: int = field(default=256, metadata={
        "help": "max tokens per (summary, prompt, response); longer inputs lose summary front, then prompt front"})
    pooling: str | None = field(default=None, metadata={
        "help": "mean | cls | last; default mean for encoders, last non-pad token for decoders"})
    lr: float = field(default=5e-5, metadata={
        "help": "peak AdamW learning rate (5e-5 suits a MiniLM full fine-tune; use ~1e-4..2e-4 with LoRA)"})
    head_lr: float | None = field(default=None, metadata={
        "help": "learning rate of the scalar head; default: 10x lr (a fresh head needs to move faster)"})
    batch_size: int = field(default=16, metadata={
        "help": "preference pairs per micro-batch (per process): RewardConfig.per_device_train_batch_size"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches accumulated per optimizer step: gradient_accumulation_steps"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training rows (ignored if max_steps > 0)"})
    max_steps: int = field(default=0, metadata={"help": "optimizer steps to run; 0 = derive from epochs"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "fraction of steps of linear warm-up, then cosine decay (RewardTrainer runs only)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not applied to biases/norms)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm; 0 disables"})
    margin: float = field(default=0.0, metadata={
        "help": "default margin m in -log sigmoid(r_c - r_r - m); a row's own 'margin' field overrides it"})
    center_rewards_coef: float = field(default=0.0, metadata={
        "help": "weight of (r_c + r_r)^2 regulariser keeping rewards centred at 0 (0 disables)"})
    bf16: bool | None = field(default=None, metadata={
        "help": "bf16 autocast; default: on when the hardware supports it (CUDA bf16 or CPU AVX-512 BF16/AMX)"})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 = full fine-tune"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    bucket_size: int = field(default=8, metadata={
        "help": "length bucketing (less padding, still random): > 0 groups batches by length with the Trainer's "
                "length-grouped sampler (shuffled mega-batches of up to 50 batches, sorted within); 0 = plain "
                "random batches"})
    disable_dropout: bool = field(default=True, metadata={
        "help": "train with the backbone's dropout off (TRL's RewardTrainer default; ~1.4x faster on CPU, where "
                "attention dropout forces the slower attention path). RewardTrainer runs only: the PLUS inner loop "
                "keeps the backbone's dropout"})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "recompute activations in the backward pass (less memory, ~20-30% slower; TRL's default is on)"})
    seed: int = field(default=0, metadata={"help": "seed for head init, shuffling and dropout"})
    output_dir: str | None = field(default=None, metadata={
        "help": "where checkpoints and the final model go; None = nothing written"})
    save_steps: int = field(default=0, metadata={
        "help": "write output_dir/checkpoint-<step> every N optimizer steps (0 = only the final model)"})
    save_total_limit: int = field(default=2, metadata={
        "help": "keep at most this many checkpoint-* dirs (0 = keep all)"})
    resume_from_checkpoint: str | None = field(default=None, metadata={
        "help": "a checkpoint-<step> dir to resume from (weights, optimizer, scheduler, RNG, data order: the "
                "Trainer's own resume), or 'latest' for the newest one in output_dir (none there: start fresh)"})
    report_to: str = field(default="none", metadata={"help": "none | tensorboard | wandb (the Trainer's report_to)"})
    logging_steps: int = field(default=10, metadata={"help": "log loss/accuracy/lr every N optimizer steps"})
    eval_steps: int = field(default=0, metadata={"help": "evaluate on eval rows every N steps (0 = only at the end)"})
    eval_batch_size: int = field(default=64, metadata={"help": "pairs per batch when scoring eval rows"})
    keep_best: bool = field(default=False, metadata={
        "help": "with eval rows and eval_steps > 0: end with the weights of the evaluation with the best "
                "best_metric (the Trainer's load_best_model_at_end), so the step budget is chosen on held-out pairs"})
    best_metric: str = field(default="accuracy", metadata={
        "help": "what keep_best and early stopping read on the eval rows: accuracy (higher is better; what the "
                "bench scores) | loss (lower is better). On noisy preferences the BT loss rises as margins grow "
                "confident while the ranking still improves: on the attributes suite the eval loss was lowest at "
                "the first check (accuracy 53.8%) while accuracy climbed to 71.9% by step 750"})
    early_stopping_patience: int = field(default=0, metadata={
        "help": "with keep_best: stop after this many evaluations without a better best_metric (0 = run the "
                "budget)"})

    def __post_init__(self) -> None:
        checks = [
            (self.max_length > 8, "max_length must be > 8"),
            (self.lr > 0, "lr must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.max_steps > 0 or self.epochs > 0, "set max_steps > 0 or epochs > 0"),
            (0.0 <= self.warmup_ratio < 1.0, "warmup_ratio must be in [0, 1)"),
            (self.lora_r >= 0, "lora_r must be >= 0"),
            (self.pooling in (None, "mean", "cls", "last"), "pooling must be mean, cls or last"),
            (self.report_to in ("none", "tensorboard", "wandb"), "report_to must be none, tensorboard or wandb"),
            (self.save_steps >= 0 and self.logging_steps >= 0, "save_steps and logging_steps must be >= 0"),
            (self.eval_steps >= 0 and self.early_stopping_patience >= 0,
             "eval_steps and early_stopping_patience must be >= 0"),
            (not (self.early_stopping_patience and not self.keep_best), "early_stopping_patience needs keep_best"),
            (self.best_metric in ("accuracy", "loss"), "best_metric must be accuracy or loss"),
            (not (self.keep_best and self.save_steps and self.eval_steps and self.save_steps % self.eval_steps),
             "with keep_best, save_steps must be a multiple of eval_steps"),
            (not (self.resume_from_checkpoint == "latest" and not self.output_dir),
             "resume_from_checkpoint=latest needs output_dir"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"RMConfig: {msg}")
