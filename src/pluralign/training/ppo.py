"""A short PPO step for the ``hf`` summarizer (TRL 1.16 removed its PPO trainer).

Why our own: the PLUS reward is non-stationary (the reward model trains between rollouts) and must be computed on
the user's *reward pair* by our summary-conditioned RM, so one rollout -> score -> update step has to sit inside the
co-adaptation loop rather than own it. The recipe is the paper's: reward at the last token, per-token KL to the
frozen initial summarizer (beta = 0.01), GAE (gamma = 1, lambda = 0.95), whitened advantages, clip 0.2. The critic
is a value head on the policy's last hidden states (detached, so the critic never moves the policy) with its own
learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pluralign.summarizers.hf import HFSummarizer, TokenRollout, sequence_logprobs


@dataclass
class PPOSettings:
    clip: float = 0.2
    value_clip: float = 0.2
    gamma: float = 1.0
    lam: float = 0.95
    kl_coef: float = 0.01
    epochs: int = 1
    minibatch_size: int = 8
    value_coef: float = 0.5
    whiten: bool = True
    max_grad_norm: float = 1.0


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation over right-padded token sequences; returns (advantages, returns)."""
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in reversed(range(T)):
        next_v = values[:, t + 1] * mask[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    return adv, adv + values


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    n = mask.sum().clamp(min=1)
    mean = (x * mask).sum() / n
    var = (((x - mean) ** 2) * mask).sum() / n
    return (x - mean) * torch.rsqrt(var + eps) * mask


class PPOUpdater:
    """Owns the critic and the optimisers; :meth:`step` runs PPO epochs on one scored rollout."""

    def __init__(self, summarizer: HFSummarizer, settings: PPOSettings, *, lr: float, critic_lr: float):
        self.s = summarizer
        self.settings = settings
        hidden = summarizer.model.config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1).to(summarizer.device)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        params = [p for p in summarizer.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        self.critic_optimizer = torch.optim.AdamW(self.value_head.parameters(), lr=critic_lr)

    def _values(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.value_head(hidden.detach().float()).squeeze(-1)

    def step(self, rollout: TokenRollout, scores: torch.Tensor) -> dict[str, float]:
        st, model = self.settings, self.s.model
        dev = self.s.device
        args = [t.to(dev) for t in (rollout.query_ids, rollout.query_mask, rollout.response_ids, rollout.response_mask)]
        mask = args[3].float()
        with torch.no_grad():
            with self.s.autocast():
                old_logp, hidden = sequence_logprobs(model, *args, temperature=self.s.temperature,
                                                     return_hidden=True)
            old_values = self._values(hidden) * mask
            ref_logp = self.s.reference_logprobs(rollout).to(dev)
            kl = (old_logp - ref_logp) * mask
            rewards = -st.kl_coef * kl
            last = (mask.sum(1).long() - 1).clamp(min=0)
            rewards[torch.arange(len(last)), last] += scores.to(dev).float()
            adv, returns = gae(rewards, old_values, mask, st.gamma, st.lam)
            if st.whiten:
                adv = masked_whiten(adv, mask)
        stats = {"kl": float((kl.sum(1)).mean()), "policy_loss": 0.0, "value_loss": 0.0, "clip_frac": 0.0}
        n, n_updates = len(last), 0
        model.train()
        for _ in range(st.epochs):
            perm = torch.randperm(n)
            for i in range(0, n, st.minibatch_size):
                idx = perm[i:i + st.minibatch_size].to(dev)
                mb = [a[idx] for a in args]
                m = mask[idx]
                with self.s.autocast():
                    logp, hid = sequence_logprobs(model, *mb, temperature=self.s.temperature, return_hidden=True)
                ratio = torch.exp(logp - old_logp[idx])
                pg = torch.max(-adv[idx] * ratio, -adv[idx] * ratio.clamp(1 - st.clip, 1 + st.clip))
                pg_loss = (pg * m).sum() / m.sum().clamp(min=1)
                v = self._values(hid)
                v_clipped = old_values[idx] + (v - old_values[idx]).clamp(-st.value_clip, st.value_clip)
                vf = torch.max((v - returns[idx]) ** 2, (v_clipped - returns[idx]) ** 2)
                vf_loss = 0.5 * (vf * m).sum() / m.sum().clamp(min=1)
                self.optimizer.zero_grad()
                self.critic_optimizer.zero_grad()
                (pg_loss + st.value_coef * vf_loss).backward()
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], st.max_grad_norm)
                self.optimizer.step()
                self.critic_optimizer.step()
                stats["policy_loss"] += pg_loss.item()
                stats["value_loss"] += vf_loss.item()
                stats["clip_frac"] += float((((ratio - 1).abs() > st.clip).float() * m).sum() / m.sum().clamp(min=1))
                n_updates += 1
        for k in ("policy_loss", "value_loss", "clip_frac"):
            stats[k] /= max(n_updates, 1)
        self.s.step += 1
        return stats

    def state_dict(self) -> dict:
        return {"value_head": self.value_head.state_dict(), "optimizer": self.optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.value_head.load_state_dict(state["value_head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
