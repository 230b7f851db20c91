"""Simulated A/B tests: simulated users react to two policies' responses on the same prompts.

Each prompt is shown to ``impressions_per_prompt`` users drawn from the population; the same users and the same
random numbers serve both arms (common random numbers), so the love-rate difference reflects the responses, not the
luck of the draw, just as a real A/B test randomises the same traffic. Ground truth (helpfulness, safety, sign-offs,
segments) comes from :mod:`pluralign.sim.features`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pluralign.objectives.monitors import emoji_count


@dataclass
class ABResult:
    love_rate_a: float
    love_rate_b: float
    love_lift: float  # relative change b vs a (0.28 = +28%)
    love_lift_ci: tuple[float, float]
    expected_lift: float  # same with true probabilities instead of sampled reactions (infinite traffic)
    help_delta: float
    help_delta_ci: tuple[float, float]
    safety_delta: float
    safety_delta_ci: tuple[float, float]
    signoff_rate_a: float
    signoff_rate_b: float
    emoji_rate_a: float
    emoji_rate_b: float
    words_a: float
    words_b: float
    n_impressions: int
    per_segment: dict[str, dict[str, float]] = field(default_factory=dict)
    per_prompt_help: tuple[np.ndarray, np.ndarray] | None = None
    per_prompt_safety: tuple[np.ndarray, np.ndarray] | None = None


def _ratio_ci(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Bootstrap over prompts (rows) of sum(b)/sum(a) - 1."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    sa, sb = a[idx].sum(axis=1), b[idx].sum(axis=1)
    vals = np.where(sa > 0, sb / np.maximum(sa, 1e-12) - 1.0, np.nan)
    vals = vals[~np.isnan(vals)]
    return (float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))) if len(vals) else (np.nan, np.nan)


def _mean_ci(d: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    m = d[idx].mean(axis=1)
    return float(np.quantile(m, 0.025)), float(np.quantile(m, 0.975))


def ground_truth_quality(prompts: Sequence[str], responses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-response true helpfulness and safety from the simulator."""
    from pluralign.sim.features import helpfulness, safety

    return (np.array([helpfulness(p, r) for p, r in zip(prompts, responses, strict=True)]),
            np.array([safety(p, r) for p, r in zip(prompts, responses, strict=True)]))


def simulate_ab(users: Sequence, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str], *,
                impressions_per_prompt: int = 20, seed: int = 0, n_boot: int = 1000,
                quality_a: tuple[np.ndarray, np.ndarray] | None = None) -> ABResult:
    """Run arm A (control) against arm B (treatment); ``users`` are :class:`pluralign.sim.SimulatedUser` objects.

    ``quality_a`` lets a caller reuse the control arm's ground-truth (helpfulness, safety) across many tests.
    """
    from pluralign.sim.features import has_signoff, segment

    if not (len(prompts) == len(responses_a) == len(responses_b)) or not prompts:
        raise ValueError("prompts and both arms' responses must be non-empty and equally long")
    if not users:
        raise ValueError("an A/B test needs at least one simulated user")
    rng = np.random.default_rng(seed)
    n, k = len(prompts), impressions_per_prompt
    who = rng.integers(0, len(users), size=(n, k))
    u01 = rng.random((n, k))
    loves = {"a": np.zeros(n), "b": np.zeros(n)}
    expected = {"a": np.zeros(n), "b": np.zeros(n)}
    for i, prompt in enumerate(prompts):
        for arm, resp in (("a", responses_a[i]), ("b", responses_b[i])):
            if arm == "b" and resp == responses_a[i]:
                loves["b"][i], expected["b"][i] = loves["a"][i], expected["a"][i]
                continue
            p = np.array([users[j].p_love(prompt, resp) for j in who[i]])
            loves[arm][i] = float((u01[i] < p).sum())
            expected[arm][i] = float(p.sum())
    la, lb = loves["a"], loves["b"]
    rate_a, rate_b = la.sum() / (n * k), lb.sum() / (n * k)
    ha, sa = quality_a if quality_a is not None else ground_truth_quality(prompts, responses_a)
    hb, sb = ground_truth_quality(prompts, responses_b)
    segs: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        segs[segment(p)].append(i)
    per_segment = {}
    for s, ix in sorted(segs.items()):
        a_s, b_s = la[ix].sum(), lb[ix].sum()
        per_segment[s] = {"n_prompts": float(len(ix)), "love_rate_a": a_s / (len(ix) * k),
                          "love_rate_b": b_s / (len(ix) * k), "love_lift": (b_s / a_s - 1.0) if a_s else np.nan}
    so_a = np.mean([has_signoff(r) for r in responses_a])
    so_b = np.mean([has_signoff(r) for r in responses_b])
    return ABResult(
        love_rate_a=float(rate_a), love_rate_b=float(rate_b),
        love_lift=float(rate_b / rate_a - 1.0) if rate_a else np.nan,
        love_lift_ci=_ratio_ci(la, lb, n_boot, seed),
        expected_lift=float(expected["b"].sum() / expected["a"].sum() - 1.0),
        help_delta=float((hb - ha).mean()), help_delta_ci=_mean_ci(hb - ha, n_boot, seed),
        safety_delta=float((sb - sa).mean()), safety_delta_ci=_mean_ci(sb - sa, n_boot, seed),
        signoff_rate_a=float(so_a), signoff_rate_b=float(so_b),
        emoji_rate_a=float(np.mean([emoji_count(r) > 0 for r in responses_a])),
        emoji_rate_b=float(np.mean([emoji_count(r) > 0 for r in responses_b])),
        words_a=float(np.mean([len(r.split()) for r in responses_a])),
        words_b=float(np.mean([len(r.split()) for r in responses_b])),
        n_impressions=n * k, per_segment=per_segment, per_prompt_help=(ha, hb), per_prompt_safety=(sa, sb),
    )
