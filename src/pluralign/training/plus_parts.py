"""The three moving parts of a PLUS run, built from its :class:`~pluralign.training.plus_config.PlusConfig`: the
trainable summarizer, the summary-conditioned RM and the summarizer's RL updater."""

from __future__ import annotations

import torch

from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.models.tiny import tiny_causal_lm
from pluralign.summarizers.cpu import CpuSummarizer, CpuSummarizerConfig
from pluralign.summarizers.hf import HFSummarizer, add_lora
from pluralign.training.group_rl import SelectionGroupUpdater, TokenGroupUpdater
from pluralign.training.plus_config import PlusConfig
from pluralign.training.ppo import PPOSettings, PPOUpdater
from pluralign.training.precision import use_bf16


def build_summarizer(cfg: PlusConfig, device: torch.device | None = None):
    """The trainable summarizer named by the config (cpu statement selector, or an hf causal LM)."""
    if cfg.backend == "cpu":
        return CpuSummarizer(CpuSummarizerConfig(word_budget=cfg.word_budget, temperature=cfg.temperature,
                                                 style_statements=cfg.style_statements), seed=cfg.seed)

    kw = dict(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, words=cfg.word_budget, seed=cfg.seed)
    if cfg.summarizer == "tiny":
        model, tok = tiny_causal_lm(seed=cfg.seed)
        if cfg.lora_r:
            model = add_lora(model, r=cfg.lora_r, layers=cfg.lora_layers)
        s = HFSummarizer(model, tok, name="tiny", **kw)
    else:
        s = HFSummarizer.from_pretrained(cfg.summarizer, lora_r=cfg.lora_r, lora_layers=cfg.lora_layers,
                                         dtype=cfg.summarizer_dtype, **kw)
    if device is not None:
        s.model.to(device)
    s.bf16 = use_bf16(cfg.summarizer_bf16, s.device)
    return s


def build_rm(cfg: PlusConfig, device: torch.device | None = None):
    r = cfg.rm
    kw = {"max_length": r.max_length, "pooling": r.pooling, "lora_r": r.lora_r, "lora_alpha": r.lora_alpha,
          "lora_dropout": r.lora_dropout, "seed": cfg.seed}
    if r.backbone == "tiny":
        model, tok = tiny_causal_lm(seed=cfg.seed + 1)
        rm = SummaryConditionedRM.from_model(model, tok, backbone_name=None, **kw)
    else:
        rm = SummaryConditionedRM.from_backbone(r.backbone, **kw)
    return rm.to(device) if device is not None else rm


def build_updater(cfg: PlusConfig, summarizer):
    """The summarizer's RL update: PPO (hf), or critic-free group-normalised (GRPO / RLOO)."""
    if cfg.backend == "cpu":
        return SelectionGroupUpdater(summarizer, lr=cfg.summarizer_lr, mode=cfg.algo, kl_coef=cfg.kl_coef)
    if cfg.algo == "ppo":
        st = PPOSettings(clip=cfg.clip_range, lam=cfg.gae_lambda, kl_coef=cfg.kl_coef, epochs=cfg.ppo_epochs,
                         minibatch_size=cfg.minibatch_size)
        return PPOUpdater(summarizer, st, lr=cfg.summarizer_lr, critic_lr=cfg.critic_lr)
    return TokenGroupUpdater(summarizer, lr=cfg.summarizer_lr, mode=cfg.algo, clip=cfg.clip_range,
                             kl_coef=cfg.kl_coef, epochs=cfg.ppo_epochs, minibatch_size=cfg.minibatch_size)
