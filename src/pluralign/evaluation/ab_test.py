"""Simulated A/B tests: simulated users react to two policies' responses on the same prompts.

Each prompt is shown to ``impressions_per_prompt`` users drawn from the population; the same users and the same
random numbers serve both arms (common random numbers), so the love-rate difference reflects the responses, not the
luck of the draw, just as a real A/B test randomises the same traffic. Ground truth (helpfulness, safety, sign-offs,
segments) comes from :mod:`pluralign.sim.features`.

The unit of every CI is the user: a cluster bootstrap resamples users (with all their impressions), and each
figure is a ratio of sums over the resampled users (love lift = loves_B / loves_A - 1; helpfulness and safety
changes are relative too: mean true helpfulness of what B showed / of what A showed - 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pluralign.data.text import word_count
from pluralign.metrics import bootstrap_ci
from pluralign.objectives.monitors import emoji_count
from pluralign.sim.features import SEGMENTS, has_signoff, helpfulness, safety, segment


@dataclass
class ABResult:
    love_rate_a: float
    love_rate_b: float
    love_lift: float  # relative change b vs a (0.28 = +28%)
    love_lift_ci: tuple[float, float]
    expected_lift: float  # same with true probabilities instead of sampled reactions (infinite traffic)
    help_delta: float  # relative change of the mean true helpfulness shown (-0.02 = 2% less helpful)
    help_delta_ci: tuple[float, float]
    safety_delta: float  # relative change of the mean true safety shown
    safety_delta_ci: tuple[float, float]
    signoff_rate_a: float
    signoff_rate_b: float
    emoji_rate_a: float
    emoji_rate_b: float
    words_a: float
    words_b: float
    n_impressions: int
    n_users: int = 0
    per_segment: dict[str, dict[str, float]] = field(default_factory=dict)
    per_prompt_help: tuple[np.ndarray, np.ndarray] | None = None
    per_prompt_safety: tuple[np.ndarray, np.ndarray] | None = None


def ground_truth_quality(prompts: Sequence[str], responses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-response true helpfulness and safety from the simulator."""
    return (np.array([helpfulness(p, r) for p, r in zip(prompts, responses, strict=True)]),
            np.array([safety(p, r) for p, r in zip(prompts, responses, strict=True)]))


def _ratio_minus_one(sums: np.ndarray) -> float:
    """``sum(num) / sum(den) - 1`` of per-user (num, den) rows; NaN (a skipped resample) when ``sum(den)`` is 0."""
    num, den = sums.sum(axis=0)
    return float(num / den - 1.0) if den > 0 else math.nan


def ratio_ci(num: np.ndarray, den: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% CI of ``sum(num) / sum(den) - 1`` from the one bootstrap over users (one row of sums per user); the
    same ``seed`` resamples the same users for every figure of a test."""
    return bootstrap_ci(np.column_stack([num, den]), _ratio_minus_one, n_boot=n_boot, seed=seed)


def _rel(b: float, a: float) -> float:
    return float(b / a - 1.0) if a else float("nan")


def simulate_ab(users: Sequence, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str], *,
                impressions_per_prompt: int = 20, seed: int = 0, n_boot: int = 1000,
                quality_a: tuple[np.ndarray, np.ndarray] | None = None) -> ABResult:
    """Run arm A (control) against arm B (treatment); ``users`` are :class:`pluralign.sim.SimulatedUser` objects.

    ``quality_a`` lets a caller reuse the control arm's ground-truth (helpfulness, safety) across many tests.
    """
    if not (len(prompts) == len(responses_a) == len(responses_b)) or not prompts:
        raise ValueError("prompts and both arms' responses must be non-empty and equally long")
    if not users:
        raise ValueError("an A/B test needs at least one simulated user")
    rng = np.random.default_rng(seed)
    n, k, n_users = len(prompts), impressions_per_prompt, len(users)
    who = rng.integers(0, n_users, size=(n, k))
    u01 = rng.random((n, k))
    # True P(love) of every user for every answer (each user is asked once per answer, then looked up).
    p_arm = {}
    for arm, resps in (("a", responses_a), ("b", responses_b)):
        p = np.empty((n, n_users))
        for i, prompt in enumerate(prompts):
            if arm == "b" and resps[i] == responses_a[i]:
                p[i] = p_arm["a"][i]
                continue
            p[i] = [u.p_love(prompt, resps[i]) for u in users]
        p_arm[arm] = p
    rows = np.repeat(np.arange(n), k)
    cols = who.ravel()
    pa, pb = p_arm["a"][rows, cols], p_arm["b"][rows, cols]
    la, lb = (u01.ravel() < pa).astype(float), (u01.ravel() < pb).astype(float)
    ha, sa = quality_a if quality_a is not None else ground_truth_quality(prompts, responses_a)
    hb, sb = ground_truth_quality(prompts, responses_b)

    def per_user(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(cols, weights=values if mask is None else values * mask, minlength=n_users)

    boot = {"n_boot": n_boot, "seed": seed}
    ua, ub = per_user(la), per_user(lb)
    uha, uhb, usa, usb = per_user(ha[rows]), per_user(hb[rows]), per_user(sa[rows]), per_user(sb[rows])
    segs = np.array([segment(p) for p in prompts])
    per_segment = {}
    for s in SEGMENTS:
        m = (segs == s)[rows].astype(float)
        if not m.any():
            continue
        a_s, b_s = per_user(la, m), per_user(lb, m)
        lo, hi = ratio_ci(b_s, a_s, **boot)
        per_segment[s] = {"n_prompts": float((segs == s).sum()), "love_rate_a": float(a_s.sum() / m.sum()),
                          "love_rate_b": float(b_s.sum() / m.sum()), "love_lift": _rel(b_s.sum(), a_s.sum()),
                          "love_lift_ci_low": lo, "love_lift_ci_high": hi,
                          "expected_lift": _rel(float((pb * m).sum()), float((pa * m).sum()))}
    return ABResult(
        love_rate_a=float(la.mean()), love_rate_b=float(lb.mean()),
        love_lift=_rel(lb.sum(), la.sum()), love_lift_ci=ratio_ci(ub, ua, **boot),
        expected_lift=_rel(float(pb.sum()), float(pa.sum())),
        help_delta=_rel(uhb.sum(), uha.sum()), help_delta_ci=ratio_ci(uhb, uha, **boot),
        safety_delta=_rel(usb.sum(), usa.sum()), safety_delta_ci=ratio_ci(usb, usa, **boot),
        signoff_rate_a=float(np.mean([has_signoff(r) for r in responses_a])),
        signoff_rate_b=float(np.mean([has_signoff(r) for r in responses_b])),
        emoji_rate_a=float(np.mean([emoji_count(r) > 0 for r in responses_a])),
        emoji_rate_b=float(np.mean([emoji_count(r) > 0 for r in responses_b])),
        words_a=float(np.mean([word_count(r) for r in responses_a])),
        words_b=float(np.mean([word_count(r) for r in responses_b])),
        n_impressions=n * k, n_users=int((np.bincount(cols, minlength=n_users) > 0).sum()),
        per_segment=per_segment, per_prompt_help=(ha, hb), per_prompt_safety=(sa, sb),
    )
