"""Metrics as plain maths over arrays: pairwise accuracy, AUROC, ECE and Pearson r, and the one bootstrap every
95% CI comes from (:func:`bootstrap_ci`: over items, over clusters such as users, within strata such as seeds).

They sit at the bottom of the package so trainers (model selection) and benchmarks compute a metric the same
way; :mod:`pluralign.evaluation.metrics` wraps them in ``Result`` records with bootstrap CIs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    *,
    clusters: Sequence | np.ndarray | None = None,
    strata: Sequence | np.ndarray | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` over the rows of ``values`` (95% by default).

    ``clusters`` (one key per row, e.g. the user id) makes it a cluster bootstrap: whole clusters are drawn with
    replacement and all their rows come along, which is what keeps a user's correlated pairs from passing for
    independent evidence. ``strata`` (one key per row, e.g. the run seed) draws clusters within each stratum
    separately, each stratum keeping its own number of clusters. Resamples whose ``stat`` is NaN are skipped.
    """
    arr = np.asarray(values)
    if len(arr) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    if clusters is None and strata is None:
        idx = rng.integers(0, len(arr), size=(n_boot, len(arr)))
        stats = np.array([stat(arr[i]) for i in idx], dtype=float)
    else:
        keys = np.asarray(clusters if clusters is not None else np.arange(len(arr)), dtype=object)
        layers = np.asarray(strata if strata is not None else np.zeros(len(arr)), dtype=object)
        if len(keys) != len(arr) or len(layers) != len(arr):
            raise ValueError(f"clusters/strata need one key per row ({len(arr)} rows)")
        members: list[list[np.ndarray] | np.ndarray] = []
        for layer in dict.fromkeys(layers.tolist()):
            rows = np.flatnonzero(layers == layer)
            by_key: dict = {}
            for r in rows:
                by_key.setdefault(keys[r], []).append(r)
            groups = [np.asarray(v) for v in by_key.values()]
            # One row per cluster (strata alone): an index array draws the same rows as the list, much faster.
            members.append(np.concatenate(groups) if all(len(g) == 1 for g in groups) else groups)
        stats = np.empty(n_boot)
        for b in range(n_boot):
            parts = [groups[rng.integers(0, len(groups), len(groups))] if isinstance(groups, np.ndarray)
                     else np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
                     for groups in members]
            stats[b] = stat(arr[np.concatenate(parts)])
    stats = stats[~np.isnan(stats)]
    if len(stats) == 0:
        return (math.nan, math.nan)
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))
