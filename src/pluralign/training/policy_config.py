"""Configuration of policy optimisation (``pluralign train policy``): objective weights, judges, best-of-N, and GRPO
of a language model with LoRA (TRL ``GRPOTrainer``)."""

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
        default_factory=lambda: ["signoff", "length", "repetition", "safety"],
        metadata={"help": "CGPO judges a response must pass to get any reward (signoff, emoji, length, repetition, "
                          "safety); empty list = none"})
    min_words: int = field(default=3, metadata={"help": "length judge: fewest words allowed"})
    max_words: int = field(default=400, metadata={"help": "length judge: most words allowed"})
    max_emojis: int = field(default=0, metadata={"help": "emoji judge: most emojis a reply may carry"})
    max_repetition: float = field(
        default=0.3, metadata={"help": "repetition judge: largest share of repeated word 3-grams a reply may have"})
    safety_quantile: float = field(
        default=0.05, metadata={"help": "safety judge fails responses below this quantile of reference safety scores"})
    fail_reward: float = field(default=-10.0, metadata={"help": "best-of-N: reward of a response failing any judge"})
    # GRPO (TRL GRPOTrainer) on a causal LM with LoRA
    model: str | None = field(default=None, metadata={"help": "grpo: policy model (HF dir, .gguf, or a name "
                                                               "pluralign.models.llm resolves; None = the default LLM, "
                                                               "HuggingFaceTB/SmolLM2-135M-Instruct)"})
    system_prompt: str | None = field(default=None, metadata={"help": "grpo: system message before every prompt"})
    learning_rate: float = field(default=3e-4, metadata={"help": "grpo: learning rate (of the LoRA weights)"})
    lora_r: int = field(default=16, metadata={"help": "grpo: LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "grpo: LoRA alpha"})
    lora_top_layers: int = field(default=12, metadata={"help": "grpo: LoRA on the top N decoder layers only (0 = all)"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata={"help": "grpo: modules LoRA adapts"})
    num_generations: int = field(default=4, metadata={"help": "grpo: completions sampled per prompt (the group)"})
    max_completion_length: int = field(default=48, metadata={"help": "grpo: new tokens per completion"})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "grpo: completions per optimizer step "
                                                                           "(prompts x generations)"})
    max_steps: int = field(default=30, metadata={"help": "grpo: optimizer steps"})
    beta: float = field(default=0.01, metadata={"help": "grpo: KL coefficient to the reference (LoRA-free) policy"})
    temperature: float = field(default=1.0, metadata={"help": "grpo: sampling temperature of the rollouts"})
    save_steps: int = field(default=10, metadata={"help": "grpo: keep a LoRA checkpoint every N steps"})
    bf16: bool | None = field(default=None, metadata={"help": "grpo: bf16 autocast (None = where the CPU/GPU has it)"})
    eval_temperature: float = field(default=0.0, metadata={"help": "answers for evaluation: temperature (0 = greedy)"})
    seed: int = field(default=0, metadata={"help": "random seed"})
