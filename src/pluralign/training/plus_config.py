"""``PlusConfig``: every knob of the PLUS co-adaptation loop (summarizer RL + reward-model updates), with help text.

Load with ``pluralign.config.load_config(PlusConfig, "configs/plus-cpu.yaml", ["epochs=3", "rm.lr=1e-4"])``; the
reward model's settings are the nested ``rm`` section (an :class:`RMConfig`). Defaults are the
CPU setting (SmolLM2-135M-Instruct summarizer, LoRA on its top layers, group-normalised RL);
``configs/plus-extractive-cpu.yaml`` selects the extractive statement selector and
``configs/plus-qwen2.5-3b-gpu.yaml`` holds the paper's setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pluralign.training.rm_config import RMConfig


@dataclass
class PlusConfig:
    # --- data
    train_file: str | None = field(default=None, metadata={
        "help": "feedback JSONL (UserRecord per line) to train on; its users are split with make_splits"})
    context_size: int | None = field(default=None, metadata={
        "help": "labelled pairs per user context (default: make_splits' default, half of each user's pairs)"})
    # --- summarizer
    backend: str = field(default="hf", metadata={
        "help": "summarizer backend: hf (a chat LLM that writes the summary; SmolLM2-135M-Instruct on CPU) | cpu "
                "(the extractive statement selector behind plus-extractive)"})
    summarizer: str = field(default="smollm2-135m", metadata={
        "help": "hf backend: 'smollm2-135m' (the embedded SmolLM2-135M-Instruct), a local HF dir / .gguf file / "
                "cached HF id of a chat causal LM, or 'tiny' for a random tiny_causal_lm (tests)"})
    max_new_tokens: int = field(default=72, metadata={
        "help": "hf backend: summary token budget (72 tokens keep summaries under ~60 words)"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature during rollouts"})
    word_budget: int = field(default=50, metadata={"help": "summary length cap in words (cpu; prompt hint for hf)"})
    style_statements: bool = field(default=True, metadata={
        "help": "cpu backend: also offer statements about the form the user chose (longer/shorter answers, "
                "with/without emojis), not only sentences copied from the history"})
    lora_r: int = field(default=16, metadata={"help": "hf backend: LoRA rank on the summarizer (0 = full)"})
    lora_layers: int = field(default=12, metadata={
        "help": "hf backend: LoRA only on the top N transformer layers (0 = all): on CPU the backward pass then "
                "stops N layers down (6.3 s vs 13.6 s for 16 x 330 tokens, top 6 vs all 30 layers of SmolLM2)"})
    summarizer_dtype: str | None = field(default=None, metadata={
        "help": "hf backend: torch dtype of the weights, e.g. bfloat16 (default: the loader's choice)"})
    summarizer_bf16: bool | None = field(default=None, metadata={
        "help": "hf backend: bf16 autocast for rollouts, log-probs and updates; default: on where the CPU/GPU has "
                "bf16"})
    # --- RL
    algo: str = field(default="grpo", metadata={
        "help": "summarizer update: ppo (critic, GAE; hf only) | grpo | rloo (critic-free, group_size samples)"})
    group_size: int = field(default=4, metadata={"help": "summaries sampled per context (grpo/rloo; ppo uses 1)"})
    summarizer_lr: float = field(default=3e-4, metadata={
        "help": "actor learning rate (CPU LoRA default 3e-4; cpu backend: 3e-3; paper: 5e-7 for Qwen-3B, full)"})
    critic_lr: float = field(default=9e-6, metadata={"help": "ppo value-head learning rate (paper: 9e-6)"})
    kl_coef: float = field(default=0.01, metadata={
        "help": "per-token KL penalty to the frozen initial summarizer (paper: 0.01; cpu backend: 0)"})
    clip_range: float = field(default=0.2, metadata={"help": "PPO / GRPO ratio clip"})
    gae_lambda: float = field(default=0.95, metadata={"help": "ppo GAE lambda (gamma is 1)"})
    ppo_epochs: int = field(default=1, metadata={"help": "passes over each rollout in the summarizer update"})
    minibatch_size: int = field(default=8, metadata={
        "help": "sequences per summarizer gradient step (hf); grpo/rloo round it down to whole groups (at least "
                "one), so each history runs once for its group's summaries"})
    reward_clip: float = field(default=10.0, metadata={"help": "R(z) = log sigmoid(margin) is clipped to [-c, c]"})
    reward_pairs: int = field(default=2, metadata={
        "help": "pairs of each context drawn afresh every step for the summarizer's reward; the RM trains on the "
                "context's other pairs in that step, never on a reward pair (a context with one pair gives it to "
                "the reward and sits out that step's RM update)"})
    length_coef: float = field(default=0.0, metadata={
        "help": "RLPF-style length term weight: + coef * min(1, (L0 - words) / L0); 0 disables"})
    # --- reward model
    rm: RMConfig = field(default_factory=RMConfig, metadata={
        "help": "the summary-conditioned reward model (an RMConfig section: rm.backbone, rm.lr, ...; 'tiny' as "
                "backbone = a random tiny_causal_lm). The loop reads backbone, max_length, pooling, LoRA, lr, "
                "head_lr, weight_decay, batch_size, margin, max_grad_norm and bf16; its step budget is rm_passes "
                "and its seed is this config's seed (rm.epochs, rm.max_steps, rm.seed and rm's output settings are "
                "not read here)"})
    rm_passes: float = field(default=1.0, metadata={
        "help": "RM passes over each rollout batch's pairs per loop step (BT steps = passes * pairs / rm.batch_size)"})
    train_rm: bool = field(default=True, metadata={
        "help": "train the RM in the loop; false = frozen RM / fixed reward (the paper's ablation)"})
    rm_summaries: str = field(default="greedy", metadata={
        "help": "which summary of each context the RM trains on: greedy (the summary inference will write, "
                "written in the rollout beside the sampled ones; +4.7 points on Pets-OOD new users at seed 0, "
                "BENCHMARKS.md) | sampled (the group's first rollout sample, as in the paper)"})
    # --- loop
    epochs: int = field(default=3, metadata={"help": "passes over the training contexts"})
    rollout_batch_size: int = field(default=32, metadata={"help": "contexts per rollout (paper: 256)"})
    warm_start_rm_epochs: int = field(default=1, metadata={
        "help": "stabiliser: epochs of RM training on the untrained (greedy) summaries before RL; 0 = off"})
    train_summarizer: bool = field(default=True, metadata={
        "help": "false = PLUS-untrained: greedy summaries of the initial summarizer, only the RM trains"})
    freeze_summarizer_after: int = field(default=0, metadata={
        "help": "stabiliser: stop updating the summarizer after this many epochs (RM keeps training); 0 = never"})
    seed: int = field(default=0, metadata={"help": "seed of sampling, shuffling and initialisation"})
    output_dir: str | None = field(default=None, metadata={"help": "checkpoints, log.jsonl, summaries.jsonl"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint both models every N loop steps (0 = end only)"})
    resume: bool = field(default=False, metadata={"help": "resume from the newest checkpoint in output_dir"})
    tensorboard: bool = field(default=False, metadata={"help": "also log to output_dir/tb (needs tensorboard)"})

    def __post_init__(self) -> None:
        checks = [
            (self.backend in ("cpu", "hf"), "backend must be cpu or hf"),
            (self.algo in ("ppo", "grpo", "rloo"), "algo must be ppo, grpo or rloo"),
            (not (self.algo == "ppo" and self.backend == "cpu"), "algo=ppo needs backend=hf (cpu uses grpo/rloo)"),
            (self.algo == "ppo" or self.group_size >= 2, "grpo/rloo need group_size >= 2"),
            (self.epochs >= 1 and self.rollout_batch_size >= 1, "epochs and rollout_batch_size must be >= 1"),
            (self.reward_clip > 0, "reward_clip must be > 0"),
            (self.rm_summaries in ("sampled", "greedy"), "rm_summaries must be sampled or greedy"),
            (self.word_budget >= 5, "word_budget must be >= 5"),
            (self.reward_pairs >= 1, "reward_pairs must be >= 1"),
            (self.lora_layers >= 0, "lora_layers must be >= 0"),
            (not (self.resume and not self.output_dir), "resume needs output_dir"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"PlusConfig: {msg}")
