"""Evaluation metrics with 95% bootstrap CIs: pairwise accuracy, AUROC, ECE and Pearson r.

The metrics themselves are :mod:`pluralign.metrics` (plain maths, also used by trainers); every ``*_result``
function here returns a :class:`~pluralign.evaluation.results.Result` whose CI comes from the one bootstrap,
:func:`~pluralign.evaluation.results.bootstrap_ci`: over users (a cluster bootstrap) when the caller passes
``user_ids``, else over the scored items (pairs, reactions, policies), so the interval reflects how many
independent units the estimate rests on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pluralign.evaluation.results import Result, bootstrap_ci, mean_result
from pluralign.metrics import ArrayLike, auroc, ece, pair_correct, pairwise_accuracy, pearson_r

__all__ = ["accuracy_result", "auroc", "auroc_result", "ece", "ece_result", "pair_correct", "pairwise_accuracy",
           "pearson_r", "pearson_result"]


def accuracy_result(benchmark: str, method: str, split: str, margins: ArrayLike, *, seconds: float | None = None,
                    seed: int = 0, user_ids: Sequence[str] | None = None) -> Result:
    """Pairwise accuracy of ``margins`` with a 95% CI: a cluster bootstrap over ``user_ids`` (one per pair) when
    given (``ci_unit="user"``), else a bootstrap over pairs (``ci_unit="pair"``)."""
    return mean_result(benchmark, method, split, "accuracy", pair_correct(margins), seconds, seed, user_ids=user_ids)


def auroc_result(benchmark: str, method: str, split: str, labels: ArrayLike, scores: ArrayLike, *,
                 seconds: float | None = None, seed: int = 0) -> Result:
    """AUROC with a 95% bootstrap CI over items (resamples with a single class are skipped)."""
    cols = np.column_stack([np.asarray(labels, float), np.asarray(scores, float)])
    lo, hi = bootstrap_ci(cols, lambda a: auroc(a[:, 0], a[:, 1]), seed=seed) if len(cols) else (math.nan, math.nan)
    return Result(benchmark, method, split, "auroc", auroc(cols[:, 0], cols[:, 1]), len(cols), lo, hi, seconds,
                  ci_unit="pair")


def ece_result(benchmark: str, method: str, split: str, labels: ArrayLike, probs: ArrayLike, *, n_bins: int = 10,
               strategy: str = "uniform", seconds: float | None = None, seed: int = 0) -> Result:
    """ECE (see :func:`ece` for the binning) with a 95% bootstrap CI over items."""
    cols = np.column_stack([np.asarray(labels, float), np.asarray(probs, float)])
    value = ece(cols[:, 0], cols[:, 1], n_bins, strategy)
    lo, hi = (bootstrap_ci(cols, lambda a: ece(a[:, 0], a[:, 1], n_bins, strategy), seed=seed) if len(cols)
              else (math.nan, math.nan))
    return Result(benchmark, method, split, "ece", value, len(cols), lo, hi, seconds, ci_unit="pair")


def pearson_result(benchmark: str, method: str, split: str, x: ArrayLike, y: ArrayLike, *,
                   metric: str = "pearson_r", seconds: float | None = None, seed: int = 0) -> Result:
    """Pearson r with a 95% bootstrap CI over (x, y) items."""
    cols = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    lo, hi = bootstrap_ci(cols, lambda a: pearson_r(a[:, 0], a[:, 1]), seed=seed) if len(cols) else (math.nan, math.nan)
    return Result(benchmark, method, split, metric, pearson_r(cols[:, 0], cols[:, 1]), len(cols), lo, hi, seconds,
                  ci_unit="pair")
