"""RL of a language-model policy on the multi-objective reward: TRL ``GRPOTrainer`` with LoRA (peft).

The policy is a causal LM (SmolLM2-135M-Instruct by default, :mod:`pluralign.models.llm`) with LoRA adapters on its
top layers; the reference policy of the KL term is the same model with the adapters switched off, so no second
copy is held. The reward is a :class:`~pluralign.objectives.rewards.MultiObjectiveReward` handed to TRL as one
plain callable per objective (P[Love], helpfulness, safety) plus the judges, with CGPO's rule that a completion
failing a judge earns no reward (see ``MultiObjectiveReward.trl_reward_funcs``). LoRA checkpoints are kept every
``save_steps`` steps (``OUT/checkpoint-<step>``), so the evaluation can follow a policy along its training.

:class:`PolicyCheckpoints` loads the base model once and switches between checkpoints' adapters to write answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel
from transformers import PrinterCallback
from trl import GRPOConfig, GRPOTrainer

from pluralign.models.generation import generate_texts
from pluralign.models.llm import fast_bf16_cpu, load_causal_lm
from pluralign.objectives.rewards import MultiObjectiveReward
from pluralign.training.policy_config import PolicyConfig

log = logging.getLogger(__name__)
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def chat_prompt(prompt: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    """The chat messages the policy sees for a user prompt."""
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return msgs + [{"role": "user", "content": prompt}]


def lora_config(cfg: PolicyConfig, n_layers: int):
    """LoRA on ``cfg.lora_target_modules`` of the top ``cfg.lora_top_layers`` of ``n_layers`` decoder layers."""
    top = cfg.lora_top_layers
    if top < 0 or top > n_layers:
        raise ValueError(f"lora_top_layers must be in [0, {n_layers}], got {top}")
    layers = list(range(n_layers - top, n_layers)) if top else None
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                      target_modules=list(cfg.lora_target_modules), layers_to_transform=layers)


@dataclass
class PolicyRun:
    """A finished GRPO run: its output dir, kept checkpoints (step -> dir), TRL's log and the wall time."""

    out_dir: Path
    checkpoints: dict[int, Path]
    log_history: list[dict]
    seconds: float
    train_steps: int


def list_checkpoints(out_dir: str | Path) -> dict[int, Path]:
    """``step -> checkpoint dir`` for every ``checkpoint-<step>`` holding a LoRA adapter under ``out_dir``."""
    out = {}
    for d in Path(out_dir).glob("checkpoint-*"):
        m = CHECKPOINT.match(d.name)
        if m and (d / "adapter_config.json").exists():
            out[int(m.group(1))] = d
    return dict(sorted(out.items()))


def _bf16(cfg: PolicyConfig) -> bool:
    if cfg.bf16 is not None:
        return bool(cfg.bf16)
    return torch.cuda.is_bf16_supported() if torch.cuda.is_available() else fast_bf16_cpu()


def train_grpo_policy(prompts: Sequence[str], reward: MultiObjectiveReward, cfg: PolicyConfig,
                      out_dir: str | Path, *, model=None, tokenizer=None, report_to: str = "none") -> PolicyRun:
    """Train LoRA adapters on ``cfg.model`` (or the given ``model``/``tokenizer``) with TRL GRPO on ``prompts``.

    The model's weights stay in fp32 (LoRA's optimizer needs them) and run under bf16 autocast where the hardware
    has it. Checkpoints go to ``out_dir/checkpoint-<step>``, the last step always among them.
    """
    if not prompts:
        raise ValueError("GRPO needs at least one training prompt")
    if cfg.per_device_train_batch_size % cfg.num_generations:
        raise ValueError(f"per_device_train_batch_size ({cfg.per_device_train_batch_size}) must be a multiple of "
                         f"num_generations ({cfg.num_generations})")
    if model is None:
        model, tokenizer = load_causal_lm(cfg.model, dtype="float32")
    elif tokenizer is None:
        raise ValueError("pass the tokenizer with the model")
    model.train()
    out = Path(out_dir)
    funcs, weights = reward.trl_reward_funcs()
    cuda = torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=str(out), learning_rate=cfg.learning_rate, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=1, max_steps=cfg.max_steps, beta=cfg.beta, temperature=cfg.temperature,
        seed=cfg.seed, reward_weights=weights, report_to=report_to, logging_steps=1, save_strategy="steps",
        save_steps=cfg.save_steps, save_only_model=True, use_cpu=not cuda, bf16=_bf16(cfg), fp16=False,
        disable_tqdm=True, dataloader_num_workers=0, lr_scheduler_type="constant", warmup_steps=0,
        gradient_checkpointing=False,  # a 135M model fits: recomputing activations would only cost time
    )
    rows = [chat_prompt(p, cfg.system_prompt) for p in prompts]
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=Dataset.from_dict({"prompt": rows}),
                          processing_class=tokenizer,
                          peft_config=lora_config(cfg, model.config.num_hidden_layers))

    trainer.remove_callback(PrinterCallback)  # per-step dicts on stdout; the log history is kept and returned
    t0 = time.time()
    trainer.train()
    seconds = time.time() - t0
    steps = int(trainer.state.global_step)
    ckpts = list_checkpoints(out)
    if steps not in ckpts:
        trainer.save_model(str(out / f"checkpoint-{steps}"))
        ckpts = list_checkpoints(out)
    log.info("GRPO: %d steps in %.0fs (%.1fs/step), checkpoints %s", steps, seconds, seconds / max(steps, 1),
             list(ckpts))
    return PolicyRun(out, ckpts, list(trainer.state.log_history), seconds, steps)


class PolicyCheckpoints:
    """The base policy model loaded once; answers from it (checkpoint ``None``) or from any LoRA checkpoint."""

    def __init__(self, model_name: str | None = None, *, model=None, tokenizer=None, dtype: str = "auto"):
        if model is None:
            model, tokenizer = load_causal_lm(model_name, dtype=dtype)
        elif tokenizer is None:
            raise ValueError("pass the tokenizer with the model")
        self.base, self.tokenizer = model, tokenizer
        self.model = model  # becomes a PeftModel once an adapter is loaded
        self._loaded: dict[str, str] = {}

    def _activate(self, checkpoint: str | Path | None):
        if checkpoint is None:
            return None

        key = str(Path(checkpoint).resolve())
        if key not in self._loaded:
            name = f"a{len(self._loaded)}"
            if not self._loaded:
                self.model = PeftModel.from_pretrained(self.base, key, adapter_name=name)
            else:
                self.model.load_adapter(key, adapter_name=name)
            self._loaded[key] = name
        self.model.set_adapter(self._loaded[key])
        return self.model

    def answers(self, prompts: Sequence[str], checkpoint: str | Path | None, cfg: PolicyConfig, *,
                seed: int = 0, batch_size: int = 16) -> list[str]:
        """One answer per prompt from ``checkpoint`` (``None`` = the base model without adapters): greedy when
        ``cfg.eval_temperature`` is 0, else sampled with ``seed``; at most ``cfg.max_completion_length`` tokens."""
        active = self._activate(checkpoint)
        if active is None and self._loaded:
            ctx, model = self.model.disable_adapter(), self.model
        else:
            ctx, model = nullcontext(), active or self.base
        with ctx:
            texts = generate_texts(model, self.tokenizer, [chat_prompt(p, cfg.system_prompt) for p in prompts], n=1,
                                   max_new_tokens=cfg.max_completion_length, temperature=cfg.eval_temperature,
                                   seed=seed, batch_size=batch_size)
        return [t[0].strip() for t in texts]
