"""Multi-objective reward: per-objective normalisation, weights, and a CGPO mixture of judges.

``combined = sum_i w_i * (r_i - mean_i) / std_i`` over the objectives (helpfulness RM, safety RM, P[Love], ...),
with mean/std taken on a reference set of responses (so a weight means "this many reference standard deviations"),
and ``combined = fail_reward`` for a response that fails any judge (CGPO: infeasible generations get no reward).
Every objective is kept separately in :class:`RewardBreakdown`, and ``weighted`` holds exactly what was summed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Scorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass
class Objective:
    """One reward signal: ``scorer(prompts, responses) -> scores`` (higher is better) with its weight."""

    name: str
    scorer: Scorer
    weight: float = 1.0
    mean: float = 0.0
    std: float = 1.0


@dataclass
class RewardBreakdown:
    raw: dict[str, np.ndarray]
    normalised: dict[str, np.ndarray]
    weighted: dict[str, np.ndarray]
    judges: dict[str, np.ndarray]  # pass (True) / fail per judge
    passed: np.ndarray
    combined: np.ndarray

    def summary(self) -> dict[str, float]:
        """Means for logging: every objective raw and as weighted, each judge's pass rate, the combined reward."""
        out: dict[str, float] = {}
        for k, v in self.raw.items():
            out[f"reward/{k}"] = float(v.mean())
            out[f"reward/{k}_weighted"] = float(self.weighted[k].mean())
        for k, v in self.judges.items():
            out[f"judge/{k}_pass"] = float(v.mean())
        out["judge/all_pass"] = float(self.passed.mean())
        out["reward/combined"] = float(self.combined.mean())
        return out


@dataclass
class MultiObjectiveReward:
    objectives: list[Objective]
    judges: list = field(default_factory=list)
    fail_reward: float = -10.0
    normalise: bool = True

    def __post_init__(self) -> None:
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objective names must be unique, got {names}")

    def fit_normalisation(self, prompts: Sequence[str], responses: Sequence[str]) -> MultiObjectiveReward:
        """Set each objective's mean/std from reference responses (e.g. the baseline policy's)."""
        for o in self.objectives:
            s = np.asarray(o.scorer(list(prompts), list(responses)), dtype=float)
            o.mean, o.std = float(s.mean()), float(s.std() or 1.0)
        return self

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> RewardBreakdown:
        if len(prompts) != len(responses):
            raise ValueError(f"prompts ({len(prompts)}) and responses ({len(responses)}) differ in length")
        raw, norm, weighted = {}, {}, {}
        total = np.zeros(len(responses))
        for o in self.objectives:
            r = np.asarray(o.scorer(list(prompts), list(responses)), dtype=float)
            raw[o.name] = r
            norm[o.name] = (r - o.mean) / o.std if self.normalise else r
            weighted[o.name] = o.weight * norm[o.name]
            total += weighted[o.name]
        verdicts = {j.name: np.asarray(j(list(prompts), list(responses)), dtype=bool) for j in self.judges}
        passed = np.ones(len(responses), dtype=bool)
        for v in verdicts.values():
            passed &= v
        combined = np.where(passed, total, self.fail_reward)
        return RewardBreakdown(raw, norm, weighted, verdicts, passed, combined)

    def trl_reward_funcs(self) -> tuple[list[Callable], list[float]]:
        """TRL ``GRPOTrainer`` reward functions (one per objective, normalised, plus one judge gate) and weights.

        TRL sums ``reward_weights[i] * reward_funcs[i]``; the judge gate adds ``fail_reward`` to infeasible
        completions so they rank last, the nearest GRPO equivalent of "no reward". Each function is logged by TRL
        under its own name.
        """
        funcs: list[Callable] = []
        weights: list[float] = []

        def text(c) -> str:
            # Conversational completions are lists of messages; standard ones are strings.
            return c[-1]["content"] if isinstance(c, list) else str(c)

        for o in self.objectives:
            def fn(prompts, completions, _o=o, **_):
                r = np.asarray(_o.scorer([text(p) for p in prompts], [text(c) for c in completions]), dtype=float)
                return list((r - _o.mean) / _o.std if self.normalise else r)

            fn.__name__ = o.name
            funcs.append(fn)
            weights.append(o.weight)
        if self.judges:
            def judges_fn(prompts, completions, **_):
                p, c = [text(x) for x in prompts], [text(x) for x in completions]
                ok = np.ones(len(c), dtype=bool)
                for j in self.judges:
                    ok &= np.asarray(j(p, c), dtype=bool)
                return [0.0 if k else float(self.fail_reward) for k in ok]

            judges_fn.__name__ = "judges"
            funcs.append(judges_fn)
            weights.append(1.0)
        return funcs, weights
