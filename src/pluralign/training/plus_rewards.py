"""The PLUS reward of a sampled summary: R(z) = clip(log sigma(r(x, y_c | z) - r(x, y_r | z))) from the current
summary-conditioned RM, averaged over the context's reward pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pluralign.data.schema import PreferencePair
from pluralign.training.plus_rows import PlusRow


def pair_margins(rm, pairs: Sequence[PreferencePair], summaries: Sequence[str | None], *,
                 dtype: str = "fp32") -> np.ndarray:
    """r(x, y_c | z) - r(x, y_r | z) per pair, one summary per pair. Repeated (pair, summary) items are scored once
    (a sharpened policy can sample the same summary more than once in a group)."""
    keys = [(p.prompt, p.chosen, p.rejected, z or "") for p, z in zip(pairs, summaries, strict=True)]
    index: dict[tuple, int] = {}
    first = [index.setdefault(k, len(index)) for k in keys]
    uniq = list(index)
    prompts = [k[0] for k in uniq]
    summ = [k[3] or None for k in uniq] if any(k[3] for k in uniq) else None
    m = (rm.score(prompts, [k[1] for k in uniq], summ, dtype=dtype)
         - rm.score(prompts, [k[2] for k in uniq], summ, dtype=dtype))
    return m[np.asarray(first, dtype=np.int64)] if first else m


def reward_items(rows: Sequence[PlusRow], summaries: Sequence[str], group_size: int, max_pairs: int = 4
                 ) -> tuple[list[PreferencePair], list[str], list[int]]:
    """The (pair, summary) items a rollout's reward is scored on, and the sample each belongs to: up to
    ``max_pairs`` of the row's pairs per sample. ``summaries`` is context-major (``group_size`` per row)."""
    pairs, summ, owner = [], [], []
    for j, z in enumerate(summaries):
        for p in rows[j // group_size].pairs[:max_pairs]:
            pairs.append(p)
            summ.append(z)
            owner.append(j)
    return pairs, summ, owner


def pair_rewards(rm, pairs: Sequence[PreferencePair], summaries: Sequence[str | None], *, clip: float = 10.0,
                 dtype: str = "fp32") -> torch.Tensor:
    """clip(log sigma(r(x, y_c | z) - r(x, y_r | z)), -clip, clip) per pair, one summary per pair: the PLUS reward
    of one (pair, summary) item."""
    return F.logsigmoid(torch.from_numpy(pair_margins(rm, pairs, summaries, dtype=dtype)).float()).clamp(-clip, clip)


def plus_rewards(rm, rows: Sequence[PlusRow], summaries: Sequence[str], group_size: int, *, clip: float = 10.0,
                 max_pairs: int = 4, dtype: str = "fp32") -> torch.Tensor:
    """R(z) = clip(log sigma(margin), -clip, clip), averaged over up to ``max_pairs`` of the row's pairs.

    ``summaries`` is context-major: ``group_size`` consecutive samples per row.
    """
    pairs, summ, owner = reward_items(rows, summaries, group_size, max_pairs)
    r = pair_rewards(rm, pairs, summ, clip=clip, dtype=dtype)
    out = torch.zeros(len(summaries)).index_add_(0, torch.tensor(owner), r)
    counts = torch.zeros(len(summaries)).index_add_(0, torch.tensor(owner), torch.ones(len(owner)))
    return out / counts.clamp(min=1)
