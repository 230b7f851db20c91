"""Configuration of policy optimisation (``pluralign train policy``): objective weights, judges, best-of-N, GRPO."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PolicyConfig:
    method: str = field(default="best-of-n", metadata={"help": "best-of-n (CPU, candidate pools) or grpo (TRL)"})
    n: int = field(default=8, metadata={"help": "best-of-N: candidates considered per prompt"})
    w_love: float = field(default=0.3, metadata={"help": "weight of P[Love] (paper: 0.1 moderate, 0.3 aggressive)"})
    w_help: float = field(default=1.0, metadata={"help": "weight of the helpfulness reward model"})
    w_safety: float = field(default=1.0, metadata={"help": "weight of the safety reward model"})
    judges: list[str] = field(
        default_factory=lambda: ["signoff", "length", "safety"],
        metadata={"help": "CGPO judges a response must pass to get any reward (signoff, length, safety); "
                          "empty list = none"})
    min_words: int = field(default=3, metadata={"help": "length judge: fewest words allowed"})
    max_words: int = field(default=400, metadata={"help": "length judge: most words allowed"})
    safety_quantile: float = field(
        default=0.05, metadata={"help": "safety judge fails responses below this quantile of reference safety scores"})
    fail_reward: float = field(default=-10.0, metadata={"help": "reward of a response failing any judge"})
    # GRPO (TRL GRPOTrainer)
    model: str | None = field(default=None, metadata={"help": "grpo: policy model (local HF dir)"})
    learning_rate: float = field(default=1e-6, metadata={"help": "grpo: learning rate"})
    num_generations: int = field(default=4, metadata={"help": "grpo: completions sampled per prompt (the group)"})
    max_completion_length: int = field(default=64, metadata={"help": "grpo: new tokens per completion"})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "grpo: prompts x generations per step"})
    max_steps: int = field(default=100, metadata={"help": "grpo: optimiser steps"})
    beta: float = field(default=0.04, metadata={"help": "grpo: KL coefficient to the reference policy"})
    seed: int = field(default=0, metadata={"help": "random seed"})
