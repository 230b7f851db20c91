"""``latent``: a learned per-user latent vector inferred from the user's context pairs (VPL-style, amortised).

Why amortised: an encoder maps *any* user's labelled context pairs to a vector z, so a new user is handled by
running the encoder on their context (no per-user parameters, no retraining), which is what VPL does. Simplifications
against VPL, stated plainly: the encoder is deterministic (no variational posterior / KL term), and it reads frozen,
cached MiniLM sentence embeddings rather than a fine-tuned LLM.

Model, for a pair (x, a, b) with embeddings e_x, e_a, e_b:
    phi(x, a, b) = [e_a - e_b, e_x * (e_a - e_b)]            (antisymmetric: swapping a and b negates it)
    z_u          = W2 · mean_i relu(W1 · phi(context pair i))  (context pairs oriented preferred-first)
    margin       = (w + U z_u) · (P phi(x, a, b))              (> 0 ⇒ prefers a)
trained with the Bradley–Terry loss on the training targets, dropping context pairs at random so the encoder learns
to work from small contexts. When the bench passes validation users, the number of steps is chosen on them (the
checkpoint with the lowest validation BT loss, checked every ``eval_every`` steps, is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pluralign.data.splits import Example
from pluralign.evaluation.methods.base import TokenCounter, seed_everything
from pluralign.models.backbone import DEFAULT_BACKBONE
from pluralign.models.sentence_encoder import SentenceEncoder


@dataclass
class LatentConfig:
    backbone: str = field(default=DEFAULT_BACKBONE, metadata={"help": "frozen sentence encoder for the embeddings"})
    max_length: int = field(default=128, metadata={"help": "token cap per embedded text (prompt or response)"})
    latent_dim: int = field(default=16, metadata={"help": "size of the user vector z"})
    hidden_dim: int = field(default=128, metadata={"help": "width of the context-pair encoder"})
    proj_dim: int = field(default=64, metadata={"help": "width of the projected pair features the reward reads"})
    steps: int = field(default=400, metadata={"help": "Adam steps"})
    batch_size: int = field(default=64, metadata={"help": "target pairs per step"})
    lr: float = field(default=3e-3, metadata={"help": "Adam learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    context_dropout: float = field(default=0.3, metadata={"help": "probability of hiding each context pair in training"})
    eval_every: int = field(default=25, metadata={
        "help": "steps between checks of the validation loss; the weights with the lowest one are kept (early "
                "stopping on the validation split, never on a test split); 0 disables it"})


def _build_net(in_dim: int, cfg: LatentConfig):
    class LatentRewardNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(in_dim, cfg.hidden_dim), nn.ReLU(),
                                         nn.Linear(cfg.hidden_dim, cfg.hidden_dim), nn.ReLU())
            self.to_z = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
            self.proj = nn.Linear(in_dim, cfg.proj_dim, bias=False)  # no bias keeps the margin antisymmetric
            self.w = nn.Parameter(torch.zeros(cfg.proj_dim))
            self.U = nn.Linear(cfg.latent_dim, cfg.proj_dim, bias=False)

        def user_vector(self, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            """ctx (B, K, D) context-pair features, mask (B, K) 1 where a pair is present → z (B, latent_dim)."""
            h = self.encoder(ctx) * mask.unsqueeze(-1)
            pooled = h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
            return self.to_z(pooled)

        def forward(self, phi: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            z = self.user_vector(ctx, mask)
            return ((self.w + self.U(z)) * self.proj(phi)).sum(-1)

    return LatentRewardNet()


class LatentUserMethod:
    """Per-user latent vector from an amortised encoder over embedded context pairs; works for new users."""

    name = "latent"

    def __init__(self, latent_config: LatentConfig | None = None, quick: bool = False, **_):
        self.cfg = latent_config or LatentConfig(steps=150 if quick else 400)
        self._net = None
        self._encoder = None
        self._counter: TokenCounter | None = None

    # --- features ------------------------------------------------------------------------------------------------
    def _text_encoder(self):
        if self._encoder is None:
            self._encoder = SentenceEncoder(self.cfg.backbone, max_length=self.cfg.max_length, progress=True)
        return self._encoder

    def _phi(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        enc = self._text_encoder()
        if not prompts:
            return np.zeros((0, 2 * enc.dim), dtype=np.float32)
        e_x, e_a, e_b = enc.encode(list(prompts)), enc.encode(list(a)), enc.encode(list(b))
        d = e_a - e_b
        return np.concatenate([d, e_x * d], axis=1).astype(np.float32)

    def _batch(self, examples: Sequence[Example]):
        """Target features, padded context features and mask for ``examples`` (context embedded once per user)."""
        phi = self._phi([e.target.prompt for e in examples], [e.target.chosen for e in examples],
                        [e.target.rejected for e in examples])
        contexts: dict[int, np.ndarray] = {}
        for e in examples:
            key = id(e.context)
            if key not in contexts:
                ps = e.context.pairs
                contexts[key] = self._phi([p.prompt for p in ps], [p.chosen for p in ps], [p.rejected for p in ps])
        k = max([1] + [len(c) for c in contexts.values()])
        ctx = np.zeros((len(examples), k, phi.shape[1] if len(phi) else 1), dtype=np.float32)
        mask = np.zeros((len(examples), k), dtype=np.float32)
        for i, e in enumerate(examples):
            c = contexts[id(e.context)]
            ctx[i, : len(c)] = c
            mask[i, : len(c)] = 1.0
        return torch.from_numpy(phi), torch.from_numpy(ctx), torch.from_numpy(mask)

    # --- method API ----------------------------------------------------------------------------------------------
    def fit(self, train: list[Example], seed: int = 0, validation: list[Example] | None = None) -> None:
        if not train:
            raise ValueError("latent: no training examples")
        seed_everything(seed)
        phi, ctx, mask = self._batch(train)
        val = self._batch(validation) if validation and self.cfg.eval_every else None
        self._net = _build_net(phi.shape[1], self.cfg)
        opt = torch.optim.AdamW(self._net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        best: tuple[float, int, dict] | None = None
        self.val_history: list[tuple[int, float]] = []

        def check(step: int) -> None:
            nonlocal best
            self._net.eval()
            with torch.no_grad():
                loss = float(-torch.nn.functional.logsigmoid(self._net(*val)).mean())
            self._net.train()
            self.val_history.append((step, loss))
            if best is None or loss < best[0]:
                best = (loss, step, {k: v.clone() for k, v in self._net.state_dict().items()})

        self._net.train()
        for step in tqdm(range(1, self.cfg.steps + 1), desc="latent: fitting", leave=False):
            idx = torch.randint(0, len(phi), (min(self.cfg.batch_size, len(phi)),), generator=gen)
            m = mask[idx] * (torch.rand(mask[idx].shape, generator=gen) >= self.cfg.context_dropout).float()
            margins = self._net(phi[idx], ctx[idx], m)
            loss = -torch.nn.functional.logsigmoid(margins).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if val is not None and (step % self.cfg.eval_every == 0 or step == self.cfg.steps):
                check(step)
        if best is not None:
            self._net.load_state_dict(best[2])
        self.chosen_steps = best[1] if best is not None else self.cfg.steps
        self._net.eval()

    def extra_metrics(self, examples: Sequence[Example]) -> dict[str, float]:
        """The step count early stopping chose on the validation split (the full budget when there was none)."""
        return {"chosen_steps": float(getattr(self, "chosen_steps", self.cfg.steps))} if examples else {}

    def score_pairs(self, examples: Sequence[Example]) -> np.ndarray:
        if self._net is None:
            raise RuntimeError("latent: call fit() before score_pairs()")
        if not examples:
            return np.zeros(0)
        phi, ctx, mask = self._batch(examples)
        with torch.no_grad():
            return self._net(phi, ctx, mask).numpy().astype(np.float64)

    def tokens_per_pair(self, examples: Sequence[Example]) -> float:
        """Prompt + both responses, plus the user's context pairs (read by the encoder), each capped at max_length."""
        if not examples:
            return 0.0
        if self._counter is None:
            self._counter = TokenCounter(self._text_encoder().tokenizer, self.cfg.max_length)
        n = self._counter.count
        total = 0
        for e in examples:
            t = e.target
            total += n(t.prompt) + n(t.chosen) + n(t.rejected)
            total += sum(n(p.prompt) + n(p.chosen) + n(p.rejected) for p in e.context.pairs)
        return total / len(examples)
