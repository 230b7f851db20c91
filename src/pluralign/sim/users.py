"""Simulated users: Bradley-Terry choices and love reactions from a persona, plus adversarial kinds.

- ``p_prefer(prompt, a, b) = sigmoid((u(a) - u(b)) / temperature)``: the temperature sets the Bayes rate.
- ``p_love(prompt, response) = sigmoid(intercept + segment_offset + love_scale * (u - utility_center)
  + signoff_love * signoff_gain[segment] * has_signoff)``; the intercept is calibrated so that a population's mean
  P(love) equals a chosen base rate (:func:`calibrate_intercept`).
- Kinds: ``normal``; ``random`` (reacts at a fixed rate whatever the content, chooses at random);
  ``inverter`` (the utility's sign flipped: loves and prefers what others dislike); ``spammer`` (loves nearly
  everything inside short time bursts, almost nothing outside them).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pluralign.sim.features import has_signoff, segment
from pluralign.sim.personas import Persona

KINDS = ("normal", "random", "inverter", "spammer")

# Companionship segments love more, and the sign-off cue works mostly there (RLUF's largest gains).
SEGMENT_LOVE_OFFSET: dict[str, float] = {
    "role-play": 1.2, "relationship-support": 1.2, "casual-chat": 1.0, "coding": -0.6, "knowledge": -0.6,
}
SEGMENT_SIGNOFF_GAIN: dict[str, float] = {
    "role-play": 1.0, "relationship-support": 1.0, "casual-chat": 0.8, "coding": 0.15, "knowledge": 0.25,
}


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass
class SimulatedUser:
    """One simulated user: a persona, a noise level and a kind. See the module docstring for the formulas."""

    user_id: str
    persona: Persona
    kind: str = "normal"
    temperature: float = 1.0
    love_intercept: float = -4.0
    love_scale: float = 0.4
    utility_center: float = 0.0
    random_rate: float = 0.02
    bursts: list[tuple[float, float]] = field(default_factory=list)
    burst_rate: float = 0.9

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown user kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    # --- pairwise choices -----------------------------------------------------------------------------------------
    def utility(self, prompt: str, response: str) -> float:
        u = self.persona.utility(prompt, response)
        return -u if self.kind == "inverter" else u

    def p_prefer(self, prompt: str, a: str, b: str) -> float:
        """True probability that this user prefers ``a`` over ``b``."""
        if self.kind in ("random", "spammer"):
            return 0.5
        return sigmoid((self.utility(prompt, a) - self.utility(prompt, b)) / self.temperature)

    def choose(self, prompt: str, a: str, b: str, rng: random.Random) -> tuple[str, str, float]:
        """Sample a choice; return ``(chosen, rejected, p_chosen)`` where ``p_chosen`` is the true probability."""
        p = self.p_prefer(prompt, a, b)
        return (a, b, p) if rng.random() < p else (b, a, 1.0 - p)

    # --- love reactions -------------------------------------------------------------------------------------------
    def love_offset(self, prompt: str, response: str) -> float:
        """The love logit without the intercept (what :func:`calibrate_intercept` shifts)."""
        seg = segment(prompt)
        x = SEGMENT_LOVE_OFFSET[seg] + self.love_scale * (self.utility(prompt, response) - self.utility_center)
        if has_signoff(response):
            cue = self.persona.signoff_love * SEGMENT_SIGNOFF_GAIN[seg]
            x += -cue if self.kind == "inverter" else cue
        return x

    def in_burst(self, timestamp: float) -> bool:
        return any(s <= timestamp < e for s, e in self.bursts)

    def p_love(self, prompt: str, response: str, timestamp: float | None = None) -> float:
        """True probability of a love reaction. Spammers need ``timestamp`` (else their time-averaged rate)."""
        if self.kind == "random":
            return self.random_rate
        if self.kind == "spammer":
            if timestamp is None:
                return self.random_rate
            return self.burst_rate if self.in_burst(timestamp) else 0.001
        return sigmoid(self.love_intercept + self.love_offset(prompt, response))

    def react(self, prompt: str, response: str, rng: random.Random, timestamp: float | None = None) -> float:
        """Sample a reaction: 1.0 (love) or 0.0 (no reaction)."""
        return 1.0 if rng.random() < self.p_love(prompt, response, timestamp) else 0.0


def calibrate_intercept(offsets: Sequence[float] | np.ndarray, base_rate: float, tol: float = 1e-7) -> float:
    """The intercept ``b`` with ``mean(sigmoid(b + offsets)) == base_rate`` (bisection; the mean is monotone in b)."""
    if not 0.0 < base_rate < 1.0:
        raise ValueError(f"base_rate must be in (0, 1), got {base_rate}")
    x = np.asarray(offsets, dtype=float)
    if x.size == 0:
        raise ValueError("calibrate_intercept needs at least one offset")
    lo, hi = -30.0 - x.max(), 30.0 - x.min()
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if float(np.mean(1.0 / (1.0 + np.exp(-(mid + x))))) < base_rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def calibrate_temperature(diffs: Sequence[float] | np.ndarray, target_bayes: float, tol: float = 1e-6) -> float:
    """The BT temperature at which ``mean(max(p, 1 - p))`` over utility differences ``diffs`` equals the target.

    Raises when the target is out of reach (e.g. too many ties for a high target).
    """
    d = np.abs(np.asarray(diffs, dtype=float))

    def bayes(t: float) -> float:
        return float(np.mean(1.0 / (1.0 + np.exp(-d / t))))

    lo, hi = 1e-4, 1e4
    if not bayes(hi) <= target_bayes <= bayes(lo):
        raise ValueError(f"target Bayes accuracy {target_bayes} not reachable: range is "
                         f"[{bayes(hi):.3f}, {bayes(lo):.3f}] for these pairs")
    while hi / lo > 1 + tol:
        mid = math.sqrt(lo * hi)
        if bayes(mid) > target_bayes:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)
