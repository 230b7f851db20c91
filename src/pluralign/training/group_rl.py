"""Critic-free policy-gradient pieces (GRPO / RLOO): several summaries per context, rewards compared within the group.

Cheaper than PPO (no value model) and, because the baseline is the other samples of the *same* context, robust to the
reward's scale drifting as the reward model trains, which is the non-stationarity PPO was chosen for in the paper.
"""

from __future__ import annotations

import torch

from pluralign.summarizers.hf import sequence_logprobs


def group_advantages(rewards: torch.Tensor, group_size: int, *, mode: str = "grpo", eps: float = 1e-6) -> torch.Tensor:
    """Advantages for context-major rewards (``group_size`` consecutive samples per context).

    ``grpo``: (r - group mean) / (group std + eps); ``rloo``: r minus the mean of the *other* samples.
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards is not a multiple of group_size={group_size}")
    if group_size < 2:
        raise ValueError("group-normalised advantages need group_size >= 2 (use PPO for one sample per context)")
    r = rewards.float().view(-1, group_size)
    if mode == "grpo":
        adv = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + eps)
    elif mode == "rloo":
        adv = r - (r.sum(1, keepdim=True) - r) / (group_size - 1)
    else:
        raise ValueError(f"unknown advantage mode {mode!r} (grpo, rloo)")
    return adv.reshape(-1)


def length_bonus(lengths: torch.Tensor, reference: float, *, coef: float, cap: float = 1.0) -> torch.Tensor:
    """RLPF-style length term: coef * min(cap, (reference - length) / reference), shorter than the reference pays."""
    if coef == 0:
        return torch.zeros_like(lengths, dtype=torch.float)
    rel = (reference - lengths.float()) / max(reference, 1.0)
    return coef * torch.clamp(rel, max=cap)


def token_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || pi_ref) (non-negative, low variance; as in GRPO)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
              advantages: torch.Tensor, *, clip: float = 0.2, kl_coef: float = 0.01) -> tuple[torch.Tensor, dict]:
    """Clipped token-level surrogate with a per-token KL penalty, averaged over each sequence's tokens."""
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(1)
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
    kl = token_kl(logp, ref_logp)
    per_token = -(surrogate - kl_coef * kl)
    denom = mask.sum(1).clamp(min=1)
    loss = ((per_token * mask).sum(1) / denom).mean()
    stats = {"kl": float(((kl * mask).sum(1) / denom).mean().detach()),
             "clip_frac": float((((ratio - 1).abs() > clip).float() * mask).sum() / mask.sum().clamp(min=1))}
    return loss, stats


class TokenGroupUpdater:
    """GRPO / RLOO for the ``hf`` summarizer: group-normalised sequence advantages, clipped token surrogate, KL."""

    def __init__(self, summarizer, *, lr: float, mode: str = "grpo", clip: float = 0.2, kl_coef: float = 0.01,
                 epochs: int = 1, minibatch_size: int = 8, max_grad_norm: float = 1.0):
        self.s, self.mode, self.clip, self.kl_coef = summarizer, mode, clip, kl_coef
        self.epochs, self.minibatch_size, self.max_grad_norm = epochs, minibatch_size, max_grad_norm
        self.params = [p for p in summarizer.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=0.0)

    def step(self, rollout, scores: torch.Tensor) -> dict[str, float]:
        """One update on a rollout. Minibatches hold whole groups, so every forward runs each history once for its
        group's summaries (``minibatch_size`` is rounded down to whole groups, at least one)."""
        dev = self.s.device
        g = rollout.group_size
        args = [t.to(dev) for t in (rollout.query_ids, rollout.query_mask, rollout.response_ids, rollout.response_mask)]
        adv = group_advantages(scores, g, mode=self.mode).to(dev)
        with torch.no_grad(), self.s.autocast():
            old_logp = sequence_logprobs(self.s.model, *args, temperature=self.s.temperature, group_size=g)
        ref_logp = self.s.reference_logprobs(rollout).to(dev)
        stats = {"kl": 0.0, "policy_loss": 0.0, "clip_frac": 0.0}
        groups, per_batch, k = len(adv) // g, max(1, self.minibatch_size // g), 0
        self.s.model.train()
        for _ in range(self.epochs):
            perm = torch.randperm(groups)
            for i in range(0, groups, per_batch):
                idx = (perm[i:i + per_batch, None] * g + torch.arange(g)).flatten().to(dev)
                mb = [a[idx] for a in args]
                with self.s.autocast():
                    logp = sequence_logprobs(self.s.model, *mb, temperature=self.s.temperature, group_size=g)
                loss, st = grpo_loss(logp, old_logp[idx], ref_logp[idx], mb[3].float(), adv[idx],
                                     clip=self.clip, kl_coef=self.kl_coef)
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
                self.optimizer.step()
                stats["policy_loss"] += loss.item()
                stats["kl"] += st["kl"]
                stats["clip_frac"] += st["clip_frac"]
                k += 1
        self.s.step += 1
        return {key: v / max(k, 1) for key, v in stats.items()}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class SelectionGroupUpdater:
    """Group-normalised REINFORCE for the CPU statement-selection summarizer (exact sequence log-probs)."""

    def __init__(self, summarizer, *, lr: float, mode: str = "grpo", kl_coef: float = 0.0, max_grad_norm: float = 1.0):
        self.s, self.mode, self.kl_coef, self.max_grad_norm = summarizer, mode, kl_coef, max_grad_norm
        self.optimizer = torch.optim.Adam(summarizer.parameters(), lr=lr)

    def step(self, rollout, scores: torch.Tensor) -> dict[str, float]:
        adv = group_advantages(scores, rollout.group_size, mode=self.mode)
        logp = self.s.sequence_logps(rollout)
        kl = logp - rollout.init_logps
        loss = -(adv * logp).mean() + self.kl_coef * kl.mean()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.s.parameters()), self.max_grad_norm)
        self.optimizer.step()
        self.s.step += 1
        return {"policy_loss": loss.item(), "kl": kl.mean().item()}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
