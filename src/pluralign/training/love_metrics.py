"""P[Love] metrics on a reaction table: AUROC (model and oracle) on honest users' reactions, ECE before and after
the prior correction, length correlation, per-user-kind AUROC, and user-level bootstrap CIs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pluralign.data.text import word_count
from pluralign.metrics import auroc, bootstrap_ci, ece, pearson_r
from pluralign.training.reaction_table import HONEST, ReactionTable


def auroc_se(a: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC estimate (Hanley & McNeil 1982)."""
    if n_pos < 1 or n_neg < 1 or not 0.0 < a < 1.0:
        return 0.0
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def user_bootstrap_ci(labels: np.ndarray, scores: np.ndarray, groups: Sequence[str], stat=None, *,
                      n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% CI of ``stat(labels, scores)`` (AUROC by default) from the one bootstrap, resampling whole users (or
    trees): reactions of one user are not independent, so the user is the unit. NaN with fewer than two users."""
    stat = stat or auroc
    if len(set(groups)) < 2:
        return (math.nan, math.nan)
    return bootstrap_ci(np.column_stack([labels, scores]), lambda rows: stat(rows[:, 0], rows[:, 1]),
                        clusters=list(groups), n_boot=n_boot, seed=seed)


def love_metrics(model, table: ReactionTable, idx: np.ndarray, *, ci: bool = False,
                 seed: int = 0) -> dict[str, float]:
    """AUROC (model and oracle), ECE before/after the prior correction and length correlation (model and oracle)
    on the honest users' rows among ``idx``; ``auroc_<kind>`` per user kind on that kind's rows (an adversary's
    AUROC says how the model ranks what that user did: below 0.5 for an inverter). ``ci`` adds user-level
    bootstrap CIs (``auroc_ci_low`` / ``auroc_ci_high`` and the same for the oracle)."""
    sub = table.take(idx)
    kinds = np.array(sub.user_kinds)
    raw_all = model.predict_proba(sub.prompts, sub.responses, sub.summaries, corrected=False)
    cor_all = model.predict_proba(sub.prompts, sub.responses, sub.summaries, corrected=True)  # cached scores
    honest = kinds == HONEST
    h_ix = np.flatnonzero(honest) if honest.any() else np.arange(len(sub))
    h = sub.take(h_ix)
    raw, cor = raw_all[h_ix], cor_all[h_ix]
    lengths = np.array([word_count(r) for r in h.responses], dtype=float)
    has_truth = ~np.isnan(h.p_true)
    out = {
        "auroc": auroc(h.labels, cor),
        "oracle_auroc": auroc(h.labels[has_truth], h.p_true[has_truth]) if has_truth.any() else math.nan,
        "ece_raw": ece(h.labels, raw),
        "ece": ece(h.labels, cor),
        "length_r": pearson_r(cor, lengths),
        # The truth's own length correlation on the same rows: how much length effect an accurate model must carry.
        "oracle_length_r": pearson_r(h.p_true[has_truth], lengths[has_truth]) if has_truth.sum() > 2 else math.nan,
        "base_rate": float(h.labels.mean()),
        "mean_pred": float(cor.mean()),
        "n_test": float(len(h)),
        "n_test_users": float(len(set(h.user_ids))),
    }
    for k in sorted(set(kinds.tolist())):
        m = kinds == k
        out[f"auroc_{k}"] = auroc(sub.labels[m], cor_all[m])
        out[f"n_test_{k}"] = float(m.sum())
    if ci:
        out["auroc_ci_low"], out["auroc_ci_high"] = user_bootstrap_ci(h.labels, cor, h.user_ids, seed=seed)
        if has_truth.all():
            out["oracle_auroc_ci_low"], out["oracle_auroc_ci_high"] = user_bootstrap_ci(h.labels, h.p_true,
                                                                                        h.user_ids, seed=seed)
        out["ece_ci_low"], out["ece_ci_high"] = user_bootstrap_ci(h.labels, cor, h.user_ids, ece, seed=seed)
    return out
