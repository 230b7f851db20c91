"""User-level defence against reactions that carry no signal (random reactors), the inverse signal (inverters) or
too much of it (spammers, bursts).

Three per-row factors multiply into a training weight:

- **reliability** P(honest | the user's reactions): a likelihood ratio between "this user reacts like the population
  model predicts" and "this user reacts at random at their own rate", computed against a *cross-fitted* model (trained
  on other users only, so a user never vouches for themself). Inverters get a negative ratio and weight ~0; users with
  little evidence stay near the prior.
- **cap**: a user's loves count at most ``cap`` in total, so one heavy reactor cannot dominate the positives.
- **burst**: loves by one user within ``window_s`` seconds of each other share one unit of weight.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# fit_predict(train_idx, train_weights, score_idx) -> P[Love] for score_idx (calibrated to the live base rate)
FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass
class UserReliability:
    user_id: str
    n: int
    n_pos: int
    rate_ratio: float  # the user's love rate / the population's
    llr: float  # log-likelihood ratio, model-consistent vs random-at-own-rate
    reliability: float  # P(honest) after the prior


def _group(user_ids: Sequence[str]) -> dict[str, np.ndarray]:
    idx: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(user_ids):
        idx[u].append(i)
    return {u: np.asarray(v) for u, v in idx.items()}


def reliability_from_scores(user_ids: Sequence[str], labels: np.ndarray, probs: np.ndarray, *,
                            honest_prior: float = 0.8) -> dict[str, UserReliability]:
    """P(honest) per user from out-of-fold model probabilities ``probs`` of their rows."""
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probs, dtype=float), 1e-6, 1 - 1e-6)
    pop_rate = max(y.mean(), 1e-9)
    prior = math.log(honest_prior / (1 - honest_prior))
    out = {}
    for u, ix in _group(user_ids).items():
        yu, pu = y[ix], p[ix]
        rate = (yu.sum() + 0.5) / (len(yu) + 1.0)
        # Honest hypothesis: the model's probabilities, rescaled to the user's own rate (users differ in how often
        # they react; that alone is not evidence of dishonesty).
        q = np.clip(pu * rate / pu.mean(), 1e-6, 1 - 1e-6)
        llr = float(np.sum(yu * np.log(q / rate) + (1 - yu) * np.log((1 - q) / (1 - rate))))
        rel = 1.0 / (1.0 + math.exp(-max(min(llr + prior, 50.0), -50.0)))
        out[u] = UserReliability(u, len(ix), int(yu.sum()), float(yu.mean() / pop_rate), llr, rel)
    return out


def cap_factors(user_ids: Sequence[str], labels: np.ndarray, cap: int) -> np.ndarray:
    """Per-row factor so that a user's loves weigh at most ``cap`` in total (negatives untouched)."""
    y = np.asarray(labels, dtype=float)
    f = np.ones(len(y))
    if cap <= 0:
        return f
    for ix in _group(user_ids).values():
        k = y[ix].sum()
        if k > cap:
            f[ix[y[ix] == 1]] = cap / k
    return f


def burst_factors(user_ids: Sequence[str], labels: np.ndarray, timestamps: Sequence[float | None],
                  window_s: float) -> np.ndarray:
    """Per-row factor 1/m for a love in a burst of m loves (consecutive gaps <= ``window_s``) by one user."""
    y = np.asarray(labels, dtype=float)
    f = np.ones(len(y))
    if window_s <= 0:
        return f
    for ix in _group(user_ids).values():
        pos = [i for i in ix if y[i] == 1 and timestamps[i] is not None]
        pos.sort(key=lambda i: timestamps[i])
        run: list[int] = []
        for i in pos + [None]:
            if i is not None and run and timestamps[i] - timestamps[run[-1]] <= window_s:
                run.append(i)
                continue
            if len(run) > 1:
                f[run] = 1.0 / len(run)
            run = [i] if i is not None else []
    return f


def cross_fitted_probs(user_ids: Sequence[str], weights: np.ndarray, fit_predict: FitPredict, *, folds: int = 3,
                       seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities: users are split into folds; each fold is scored by a model fitted on the others."""
    users = sorted(set(user_ids))
    rng = np.random.default_rng(seed)
    fold_of = {u: int(f) for u, f in zip(users, rng.permutation(len(users)) % max(2, folds), strict=True)}
    row_fold = np.array([fold_of[u] for u in user_ids])
    out = np.full(len(row_fold), np.nan)
    for f in range(max(2, folds)):
        test = np.flatnonzero(row_fold == f)
        train = np.flatnonzero(row_fold != f)
        if len(test) and len(train):
            out[test] = fit_predict(train, weights[train], test)
    return out


@dataclass
class DefenceReport:
    weights: np.ndarray
    users: dict[str, UserReliability]

    def flagged(self, threshold: float = 0.5) -> list[str]:
        """Users whose reliability fell below ``threshold`` (treated as adversarial)."""
        return sorted(u for u, r in self.users.items() if r.reliability < threshold)


def defence_weights(user_ids: Sequence[str], labels: np.ndarray, timestamps: Sequence[float | None],
                    fit_predict: FitPredict, *, folds: int = 3, rounds: int = 2, honest_prior: float = 0.8,
                    cap: int = 20, window_s: float = 60.0, seed: int = 0) -> DefenceReport:
    """Per-row training weights (reliability x cap x burst), refined over ``rounds`` cross-fitted passes."""
    y = np.asarray(labels, dtype=float)
    base = cap_factors(user_ids, y, cap) * burst_factors(user_ids, y, timestamps, window_s)
    w = base.copy()
    users: dict[str, UserReliability] = {}
    for r in range(max(1, rounds)):
        probs = cross_fitted_probs(user_ids, w, fit_predict, folds=folds, seed=seed + r)
        users = reliability_from_scores(user_ids, y, probs, honest_prior=honest_prior)
        w = base * np.array([users[u].reliability for u in user_ids])
    return DefenceReport(w, users)
