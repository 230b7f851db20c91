"""Metrics as plain maths over arrays: pairwise accuracy, AUROC, ECE and Pearson r.

They sit at the bottom of the package so trainers (model selection) and benchmarks compute a metric the same
way; :mod:`pluralign.evaluation.metrics` wraps them in ``Result`` records with bootstrap CIs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

ArrayLike = Sequence[float] | np.ndarray


def pair_correct(margins: ArrayLike) -> np.ndarray:
    """Per-pair credit from margins r(chosen) - r(rejected): 1 if > 0, 0.5 for an exact tie, 0 otherwise.

    A tie counts half because a model that cannot tell the two responses apart is a coin flip, not a miss.
    """
    m = np.asarray(margins, dtype=float)
    if np.isnan(m).any():
        raise ValueError("margins contain NaN: the reward model produced an invalid score")
    return np.where(m > 0, 1.0, np.where(m == 0, 0.5, 0.0))


def pairwise_accuracy(margins: ArrayLike) -> float:
    """Share of pairs where the model prefers ``chosen`` (ties count half)."""
    c = pair_correct(margins)
    return float(c.mean()) if len(c) else math.nan


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (sklearn); NaN when only one class is present (AUROC is undefined there)."""
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    if len(y) != len(s):
        raise ValueError(f"labels ({len(y)}) and scores ({len(s)}) differ in length")
    if len(np.unique(y)) < 2:
        return math.nan
    return float(roc_auc_score(y, s))


def ece(labels: ArrayLike, probs: ArrayLike, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Expected calibration error: sum over bins of (bin share) * |mean label - mean predicted probability|.

    ``strategy="uniform"``: equal-width bins on [0, 1] (bin i holds p in [i/n, (i+1)/n), the last bin closed).
    ``strategy="quantile"``: equal-mass bins, edges at the quantiles of ``probs``, so each bin holds about the same
    number of items (more stable when predictions crowd in one region, e.g. a 5% base rate).
    Empty bins contribute nothing.
    """
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probs, dtype=float)
    if len(y) != len(p):
        raise ValueError(f"labels ({len(y)}) and probs ({len(p)}) differ in length")
    if len(p) == 0:
        return math.nan
    if (p < 0).any() or (p > 1).any():
        raise ValueError("probs must lie in [0, 1]")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
    else:
        raise ValueError(f"unknown ECE strategy {strategy!r}: use 'uniform' (equal width) or 'quantile' (equal mass)")
    # Interior edges only: digitize puts p == 1.0 into the last bin instead of a bin of its own.
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = idx == b
        if mask.any():
            total += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return float(total)


def pearson_r(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson correlation; NaN when either side is constant (the correlation is undefined)."""
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"x ({len(a)}) and y ({len(b)}) differ in length")
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])
