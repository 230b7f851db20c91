"""What every simulated benchmark is made of: the :class:`Suite` record, the Bayes and population accuracies that
bound what a model can reach on it, and how a simulated user labels one pair."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.sim.users import SimulatedUser

T0 = 1_700_000_000.0  # timestamps start here (2023-11-14), one slot per simulated hour


@dataclass
class Suite:
    """A simulated benchmark: users with labelled pairs and the simulators that labelled them."""

    name: str
    users: list[UserRecord]
    simulated: dict[str, SimulatedUser]
    new_user_ids: list[str] = field(default_factory=list)
    description: str = ""
    bayes_accuracy: float = float("nan")
    stats: dict[str, float] = field(default_factory=dict)
    self_descriptions: str = ""  # non-empty when users' profiles are written from the hidden persona: says so


    def n_pairs(self) -> int:
        return sum(len(u.pairs) for u in self.users)


def bayes_accuracy(users: list[UserRecord]) -> float:
    """Mean of ``max(p, 1 - p)`` over every pair with ``p_chosen``: the accuracy of the true-probability oracle."""
    ps = [p.p_chosen for u in users for p in u.pairs if p.p_chosen is not None]
    return float(np.mean([max(p, 1 - p) for p in ps])) if ps else float("nan")


def population_accuracy(users: list[UserRecord]) -> float:
    """Expected accuracy of the best model with no user information that knows the population exactly.

    Instances of the same (prompt, unordered response pair) are pooled; the model predicts, for every instance, the
    response with the higher mean true probability. Near 0.5 means the pairs are contested across users.
    """
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for u in users:
        for p in u.pairs:
            if p.p_chosen is None:
                continue
            a, b = sorted((p.chosen, p.rejected))
            groups[(p.prompt, a, b)].append(p.p_chosen if p.chosen == a else 1.0 - p.p_chosen)
    n = sum(len(v) for v in groups.values())
    if not n:
        return float("nan")
    return float(sum(len(v) * max(np.mean(v), 1 - np.mean(v)) for v in groups.values()) / n)


def labelled_pair(sim: SimulatedUser, prompt: str, a: str, b: str, rng: random.Random, *, pair_id: str,
                  topic: str, timestamp: float, meta: dict | None = None) -> PreferencePair:
    """``sim``'s label on responses ``a`` and ``b`` (shown in random order), sampled from its Bradley-Terry
    probability; ``p_chosen`` records the true probability of the sampled outcome."""
    if rng.random() < 0.5:  # present in random order; the label is still sampled from the BT probability
        a, b = b, a
    chosen, rejected, p = sim.choose(prompt, a, b, rng)
    return PreferencePair(pair_id=pair_id, prompt=prompt, chosen=chosen, rejected=rejected, topic=topic,
                          timestamp=timestamp, p_chosen=round(p, 6), meta=meta or {})


def slot_time(rng: random.Random, slot: int) -> float:
    """A timestamp inside simulated hour ``slot``."""
    return T0 + slot * 3600.0 + rng.uniform(0, 3000)


def opaque_ids(group: str, n: int, id_rng: random.Random) -> list[str]:
    """``n`` user ids for one block or couple that say nothing about who the users are: ``<group>-u<k>`` with the
    ``k`` shuffled by ``id_rng`` (a generator of its own, so the suite's data draws do not move), because an id that
    named the persona ("...-cats-concise") would hand every method the hidden truth."""
    slots = list(range(n))
    id_rng.shuffle(slots)
    return [f"{group}-u{k}" for k in slots]
