"""Multi-objective reward: per-objective normalisation, weights, and a CGPO mixture of judges.

``combined = sum_i w_i * (r_i - mean_i) / std_i`` over the objectives (helpfulness RM, safety RM, P[Love], ...),
with mean/std taken on a reference set of responses (so a weight means "this many reference standard deviations"),
and ``combined = fail_reward`` for a response that fails any judge (CGPO: infeasible generations get no reward).
Every objective is kept separately in :class:`RewardBreakdown`, and ``weighted`` holds exactly what was summed.
For RL (TRL GRPO) the same objectives become calibrated rewards in (0, 1) that a failing judge zeroes, so "no
reward" is literally the least reward (:meth:`MultiObjectiveReward.trl_reward_funcs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pluralign.objectives.monitors import MONITORS

# Monitors logged beside the rewards in every GRPO step (weight 0): the RLUF hack's cues in the sampled completions
# and the degenerate repetition an n-gram-sensitive reward invites.
HACK_MONITORS = ("signoff_rate", "emoji_rate", "repetition")
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
        """TRL ``GRPOTrainer`` reward functions (one per objective, plus ``judges``) and their weights.

        CGPO's rule, exactly: every objective function returns its *calibrated* reward
        ``sigmoid((r - mean) / std)`` in (0, 1) (the mean and std of the reference responses, see
        :meth:`fit_normalisation`), and 0 for a completion that fails any judge, so the weighted sum TRL forms is
        ``sum_i w_i * calibrated_i`` for a feasible completion and 0 (the least reward there is) for an infeasible
        one. ``judges`` returns 1/0 (pass/fail) with weight 0: TRL logs its mean as the batch's pass rate without
        adding it to the reward; so do the hack monitors ``signoff_rate`` and ``emoji_rate`` (1 for a sampled
        completion that carries the cue) and ``repetition`` (its share of repeated 3-grams), which makes the rate at
        which the policy *samples* the hack a per-step curve in the training log, whatever its greedy answers show. Each batch is scored once (every objective and
        judge) and shared by the functions through a cache keyed by the batch's texts; each function is logged by
        TRL under its own name.
        """
        batch = _BatchScores(self)
        funcs: list[Callable] = []
        weights: list[float] = []
        for o in self.objectives:
            def fn(prompts, completions, _name=o.name, **_):
                return batch.get(prompts, completions).gated[_name].tolist()

            fn.__name__ = o.name
            funcs.append(fn)
            weights.append(o.weight)

        def judges_fn(prompts, completions, **_):
            return batch.get(prompts, completions).passed.astype(float).tolist()

        judges_fn.__name__ = "judges"
        funcs.append(judges_fn)
        weights.append(0.0)
        for name in HACK_MONITORS:
            def monitor_fn(prompts, completions, _fn=MONITORS[name], **_):
                return [_fn(completion_text(c)) for c in completions]

            monitor_fn.__name__ = name
            funcs.append(monitor_fn)
            weights.append(0.0)
        return funcs, weights

    def calibrated(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per objective ``sigmoid(normalised score)`` in (0, 1), zeroed where a judge fails; and the pass mask."""
        br = self.score(prompts, responses)
        gated = {k: np.where(br.passed, 1.0 / (1.0 + np.exp(-v)), 0.0) for k, v in br.normalised.items()}
        return gated, br.passed


def completion_text(c) -> str:
    """The text of a TRL prompt or completion: conversational ones are lists of messages (the last one's content),
    standard ones are strings."""
    return c[-1]["content"] if isinstance(c, list) else str(c)


@dataclass
class _Scored:
    gated: dict[str, np.ndarray]
    passed: np.ndarray


class _BatchScores:
    """Scores one TRL batch once for all of a reward's functions (TRL calls them one after another on the same
    prompts and completions)."""

    def __init__(self, reward: MultiObjectiveReward):
        self.reward = reward
        self._key: tuple | None = None
        self._value: _Scored | None = None

    def get(self, prompts, completions) -> _Scored:
        p = [completion_text(x) for x in prompts]
        c = [completion_text(x) for x in completions]
        key = (tuple(p), tuple(c))
        if key != self._key:
            gated, passed = self.reward.calibrated(p, c)
            self._key, self._value = key, _Scored(gated, passed)
        assert self._value is not None
        return self._value
