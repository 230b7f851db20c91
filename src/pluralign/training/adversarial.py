"""User-level defence against reactions that carry no signal (random reactors), the inverse signal (inverters) or
too much of it (spammers, bursts).

Three per-row factors multiply into a training weight:

- **reliability** P(honest | the user's reactions): a posterior over three hypotheses, computed against a
  *cross-fitted* model (trained on other users only, so a user never vouches for themself): "reacts like the
  population model predicts", "reacts at random at their own rate" and, when the model's logit is split into a
  prompt part and a content part (what the response adds), "reacts with the content part reversed" (an inverter:
  loves the kind of answer others do not). The split matters at low base rates: much of P(love) comes from the
  prompt (some conversations are loved more), which an inverter does not reverse, so the whole logit hardly
  separates inverters from honest users while the content part does. Users with little evidence stay near the
  prior.
- **cap**: a user's loves count at most ``cap`` in total, so one heavy reactor cannot dominate the positives.
- **burst**: loves by one user within ``window_s`` seconds of each other share one unit of weight.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# fit_predict(train_idx, train_weights, score_idx) -> P[Love] for score_idx (calibrated to the live base rate), or
# (P[Love], content logit) where the content logit is the part of the logit that the response contributes.
FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], "np.ndarray | tuple[np.ndarray, np.ndarray]"]
HYPOTHESES = ("honest", "random", "inverter")


@dataclass
class UserReliability:
    user_id: str
    n: int
    n_pos: int
    rate_ratio: float  # the user's love rate / the population's
    llr: float  # log-likelihood ratio, model-consistent vs random-at-own-rate
    reliability: float  # P(honest) after the prior
    p_inverter: float = 0.0  # P(content-reversed reactions); 0 when no content part was given
    p_random: float = 0.0  # P(content-blind reactions at the user's own rate)
    agreement: float = 0.0  # mean centred content logit of the user's loves (> 0: agrees with the others)

    @property
    def verdict(self) -> str:
        """The most probable hypothesis: "honest", "random" or "inverter"."""
        post = {"honest": self.reliability, "random": self.p_random, "inverter": self.p_inverter}
        return max(post, key=post.get)


def _group(user_ids: Sequence[str]) -> dict[str, np.ndarray]:
    idx: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(user_ids):
        idx[u].append(i)
    return {u: np.asarray(v) for u, v in idx.items()}


def _rate_matched(p: np.ndarray, rate: float) -> np.ndarray:
    """``p`` rescaled to the user's own love rate (users differ in how often they react; that alone is not
    evidence of dishonesty)."""
    return np.clip(p * rate / max(p.mean(), 1e-9), 1e-6, 1 - 1e-6)


def _loglik(y: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(y * np.log(q) + (1 - y) * np.log(1 - q)))


def reliability_from_scores(user_ids: Sequence[str], labels: np.ndarray, probs: np.ndarray, *,
                            honest_prior: float = 0.8, content: np.ndarray | None = None,
                            inverter_share: float = 0.5) -> dict[str, UserReliability]:
    """P(honest) per user from out-of-fold model probabilities ``probs`` of their rows.

    With ``content`` (the out-of-fold content logit per row) the non-honest prior mass ``1 - honest_prior`` is split
    ``inverter_share`` : ``1 - inverter_share`` between the inverter and the random hypothesis; without it, all of
    it goes to random (the two-hypothesis test).
    """
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probs, dtype=float), 1e-6, 1 - 1e-6)
    pop_rate = max(y.mean(), 1e-9)
    share = inverter_share if content is not None else 0.0
    prior = np.array([honest_prior, (1 - honest_prior) * (1 - share), (1 - honest_prior) * share])
    if content is not None:
        c = np.asarray(content, dtype=float)
        c = c - c.mean()
        # Reversing the content part: logit - 2c keeps the prompt part and flips what the response adds.
        logit = np.log(p / (1 - p))
        p_inv = 1.0 / (1.0 + np.exp(-(logit - 2.0 * c)))
    groups = _group(user_ids)
    ll = np.empty((len(groups), 3))
    for j, ix in enumerate(groups.values()):
        yu = y[ix]
        rate = (yu.sum() + 0.5) / (len(yu) + 1.0)
        ll[j] = [_loglik(yu, _rate_matched(p[ix], rate)), _loglik(yu, np.full(len(yu), rate)),
                 _loglik(yu, _rate_matched(p_inv[ix], rate)) if content is not None else -np.inf]
    post = _posterior(ll, prior)
    out = {}
    for j, (u, ix) in enumerate(groups.items()):
        yu = y[ix]
        agree = float(c[ix][yu == 1].mean()) if content is not None and yu.sum() else 0.0
        out[u] = UserReliability(u, len(ix), int(yu.sum()), float(yu.mean() / pop_rate), float(ll[j, 0] - ll[j, 1]),
                                 float(post[j, 0]), p_inverter=float(post[j, 2]), p_random=float(post[j, 1]),
                                 agreement=agree)
    return out


def _posterior(ll: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Row-wise posterior over the hypotheses from log-likelihoods ``ll`` (users x hypotheses) and ``prior``."""
    z = ll + np.log(np.clip(prior, 1e-300, 1.0))
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


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
                       seed: int = 0) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities: users are split into folds; each fold is scored by a model fitted on the others.
    When ``fit_predict`` returns (probabilities, content logits), so does this."""
    users = sorted(set(user_ids))
    rng = np.random.default_rng(seed)
    fold_of = {u: int(f) for u, f in zip(users, rng.permutation(len(users)) % max(2, folds), strict=True)}
    row_fold = np.array([fold_of[u] for u in user_ids])
    out = np.full(len(row_fold), np.nan)
    content: np.ndarray | None = None
    for f in range(max(2, folds)):
        test = np.flatnonzero(row_fold == f)
        train = np.flatnonzero(row_fold != f)
        if len(test) and len(train):
            got = fit_predict(train, weights[train], test)
            if isinstance(got, tuple):
                content = np.full(len(row_fold), np.nan) if content is None else content
                out[test], content[test] = got
            else:
                out[test] = got
    return out if content is None else (out, content)


@dataclass
class DefenceReport:
    weights: np.ndarray
    users: dict[str, UserReliability]

    def flagged(self, threshold: float = 0.5) -> list[str]:
        """Users whose reliability fell below ``threshold`` (treated as adversarial)."""
        return sorted(u for u, r in self.users.items() if r.reliability < threshold)

    def detection(self, kind_of: dict[str, str], honest: str = "normal", threshold: float = 0.5) -> dict[str, dict]:
        """Precision and recall of the flags against known user kinds (simulated logs), per adversary kind.

        ``flagged``: any flag (reliability < ``threshold``) counts for every kind; ``typed``: only a flag whose
        verdict names the kind counts (inverter verdicts for inverters, random verdicts for random users and
        spammers, whose loves are content-blind).
        """
        flagged = set(self.flagged(threshold))
        out: dict[str, dict] = {}
        kinds = sorted({k for u, k in kind_of.items() if u in self.users and k != honest})
        for k in kinds:
            members = {u for u in self.users if kind_of.get(u) == k}
            typed_as = "inverter" if k == "inverter" else "random"
            typed = {u for u in flagged if self.users[u].verdict == typed_as}
            out[k] = {"n": len(members), "recall": len(members & flagged) / len(members),
                      "typed_recall": len(members & typed) / len(members),
                      "typed_precision": (len(members & typed) / len(typed)) if typed else float("nan")}
        adversaries = {u for u in self.users if kind_of.get(u, honest) != honest}
        out["all"] = {"n": len(adversaries), "flagged": len(flagged),
                      "precision": len(flagged & adversaries) / len(flagged) if flagged else float("nan"),
                      "recall": len(flagged & adversaries) / len(adversaries) if adversaries else float("nan")}
        return out


def defence_weights(user_ids: Sequence[str], labels: np.ndarray, timestamps: Sequence[float | None],
                    fit_predict: FitPredict, *, folds: int = 3, rounds: int = 2, honest_prior: float = 0.8,
                    cap: int = 20, window_s: float = 60.0, seed: int = 0, inverter_share: float = 0.5) -> DefenceReport:
    """Per-row training weights (reliability x cap x burst), refined over ``rounds`` cross-fitted passes."""
    y = np.asarray(labels, dtype=float)
    base = cap_factors(user_ids, y, cap) * burst_factors(user_ids, y, timestamps, window_s)
    w = base.copy()
    users: dict[str, UserReliability] = {}
    for r in range(max(1, rounds)):
        got = cross_fitted_probs(user_ids, w, fit_predict, folds=folds, seed=seed + r)
        probs, content = got if isinstance(got, tuple) else (got, None)
        users = reliability_from_scores(user_ids, y, probs, honest_prior=honest_prior, content=content,
                                        inverter_share=inverter_share)
        w = base * np.array([users[u].reliability for u in user_ids])
    return DefenceReport(w, users)
