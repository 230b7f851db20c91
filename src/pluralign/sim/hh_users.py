"""The ``hh-users`` suite: real HH-RLHF test pairs labelled by helpfulness-first and harmlessness-first users (see
:mod:`pluralign.sim.suites`)."""

from __future__ import annotations

import random

from pluralign.data.corpora import load_hh_pairs
from pluralign.data.schema import UserRecord
from pluralign.sim.personas import Persona, make_persona
from pluralign.sim.suite import Suite, labelled_pair, opaque_ids, slot_time
from pluralign.sim.users import SimulatedUser, calibrate_temperature

HH_TYPES = ("helpfulness-first", "harmlessness-first")


HH_LABEL_WEIGHT = 1.5


def hh_persona(kind: str) -> Persona:
    """The values persona plus agreement with HH-RLHF's human label on the subset rated for that value."""
    base = make_persona(None, values=kind)
    label = "hh_helpful_label" if kind == "helpfulness-first" else "hh_harmless_label"
    return Persona(name=f"hh-{kind}", text=base.text, weights={**base.weights, label: HH_LABEL_WEIGHT},
                   traits=base.traits)


def build_hh_users(seed: int, quick: bool, target_bayes: float = 0.70, contested_share: float = 0.75) -> Suite:
    rng = random.Random(seed + 2)
    all_pairs = list(load_hh_pairs())
    rng.shuffle(all_pairs)
    n_pool = 80 if quick else 480
    n_per_type = 12 if quick else 120
    per_user = 8 if quick else 14
    personas = {t: hh_persona(t) for t in HH_TYPES}
    # Keep pairs whose final turns are not near-identical under the rules, so noise sets the Bayes rate, and
    # favour pairs the two types disagree on (``contested_share`` of the pool when available), as in
    # UltraFeedback-P-2 where personalisation matters because users disagree.
    contested, agreed = [], []
    for hp in all_pairs:
        d = {t: personas[t].utility(hp.prompt, hp.chosen) - personas[t].utility(hp.prompt, hp.rejected)
             for t in HH_TYPES}
        if max(abs(v) for v in d.values()) < 0.05:
            continue
        (contested if d[HH_TYPES[0]] * d[HH_TYPES[1]] < 0 else agreed).append((hp, d))
        if len(contested) >= n_pool and len(agreed) >= n_pool:
            break
    n_c = min(len(contested), round(n_pool * contested_share))
    pool = contested[:n_c] + agreed[: n_pool - n_c]
    rng.shuffle(pool)
    temperature = calibrate_temperature([d[t] for _, d in pool for t in HH_TYPES], target_bayes)
    users: list[UserRecord] = []
    sims: dict[str, SimulatedUser] = {}
    # Blocks of one user per type labelling the same pairs: a pair's population vote is split evenly by type.
    id_rng = random.Random(f"hh-users-ids-{seed}")  # ids that do not name the type (see opaque_ids)
    for block in range(n_per_type):
        picks = rng.sample(range(len(pool)), per_user)
        for t, uid in zip(HH_TYPES, opaque_ids(f"hh-{block:04d}", len(HH_TYPES), id_rng), strict=True):
            sim = SimulatedUser(uid, personas[t], temperature=temperature)
            sims[uid] = sim
            pairs = []
            for slot, j in enumerate(picks):
                hp, _ = pool[j]
                pairs.append(labelled_pair(sim, hp.prompt, hp.chosen, hp.rejected, rng,
                                            pair_id=f"{uid}-{slot:02d}", topic=f"hh/{hp.pair_key}",
                                            timestamp=slot_time(rng, slot), meta={"subset": hp.subset}))
            users.append(UserRecord(user_id=uid, persona=personas[t].text, source="sim:hh-users", pairs=pairs,
                                    meta={"type": t}))
    stats = {"temperature": temperature, "pool_pairs": float(len(pool)),
             "contested_frac": n_c / len(pool) if pool else 0.0}
    return Suite("hh-users", users, sims, description="Helpfulness-first vs harmlessness-first users on real "
                 "HH-RLHF pairs.", stats=stats)
