"""Personalisation a user can feel: answers picked with the user's summary vs default answers.

For each simulated user we take prompts from the suite, draw N candidate answers for each (the responses the
simulator showed for that prompt), and pick one answer twice: best-of-N under the *personalised* reward model
(conditioned on the user's summary) and best-of-N under the *default* (population) reward model. The user's
ground-truth utility judges the two picks: win, loss, or tie when both picks are equally good for this user.
``win_rate`` is wins / (wins + losses), as in PLUS's "72% vs 28%"; ties are reported separately.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pluralign.data.splits import Example
from pluralign.evaluation.results import Result, bootstrap_ci


@dataclass
class WinRate:
    wins: int
    losses: int
    ties: int
    win_rate: float
    ci_low: float
    ci_high: float
    examples: list[dict]

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties

    def results(self, benchmark: str, method: str, split: str) -> list[Result]:
        n_dec = self.wins + self.losses
        return [
            Result(benchmark, method, split, "win_rate", self.win_rate, n_dec, self.ci_low, self.ci_high),
            Result(benchmark, method, split, "tie_rate", self.ties / self.n if self.n else float("nan"), self.n),
        ]


def candidate_pools(users: Sequence[Any]) -> dict[str, list[str]]:
    """prompt → distinct responses shown for it anywhere in the suite (the candidate answers)."""
    pools: dict[str, set[str]] = defaultdict(set)
    for u in users:
        for p in (*u.pairs, *u.targets):
            pools[p.prompt].update((p.chosen, p.rejected))
    return {k: sorted(v) for k, v in pools.items() if len(v) >= 2}


def _pick(method: Any, example: Example, prompt: str, candidates: list[str]) -> int:
    summary = method.conditioning(example)
    scores = method.model.score([prompt] * len(candidates), candidates, [summary] * len(candidates))
    return int(np.argmax(scores))


def personalised_win_rate(
    examples: Sequence[Example],
    simulated: dict[str, Any],
    pools: dict[str, list[str]],
    personal: Any,
    default: Any,
    *,
    n_candidates: int = 4,
    prompts_per_user: int = 3,
    seed: int = 0,
    max_users: int | None = None,
) -> WinRate:
    """Compare best-of-N picks of ``personal`` and ``default`` (methods with ``.model`` and ``.conditioning``).

    One context per user is used (the first example of that user); ``simulated[user_id].utility`` judges.
    """
    rng = random.Random(seed)
    first: dict[str, Example] = {}
    for e in examples:
        first.setdefault(e.user_id, e)
    users = sorted(first)
    if max_users is not None:
        users = users[:max_users]
    prompts = sorted(pools)
    outcomes: list[float] = []
    shown: list[dict] = []
    for uid in users:
        ex, sim = first[uid], simulated[uid]
        for prompt in rng.sample(prompts, min(prompts_per_user, len(prompts))):
            cands = rng.sample(pools[prompt], min(n_candidates, len(pools[prompt])))
            a = cands[_pick(personal, ex, prompt, cands)]
            b = cands[_pick(default, ex, prompt, cands)]
            ua, ub = sim.utility(prompt, a), sim.utility(prompt, b)
            outcome = 1.0 if ua > ub + 1e-9 else (-1.0 if ub > ua + 1e-9 else 0.0)
            outcomes.append(outcome)
            if len(shown) < 6 and outcome != 0:
                shown.append({"user_id": uid, "prompt": prompt, "personalised": a, "default": b,
                              "outcome": {1.0: "win", -1.0: "loss"}[outcome]})
    arr = np.asarray(outcomes)
    decided = arr[arr != 0]
    wins, losses = int((arr > 0).sum()), int((arr < 0).sum())
    rate = wins / len(decided) if len(decided) else float("nan")
    lo, hi = bootstrap_ci((decided > 0).astype(float), seed=seed) if len(decided) else (float("nan"),) * 2
    return WinRate(wins, losses, int((arr == 0).sum()), rate, lo, hi, shown)
