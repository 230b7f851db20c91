"""The ``pets`` and ``pets-ood`` suites (see :mod:`pluralign.sim.suites` for what each tests)."""

from __future__ import annotations

import random

from tqdm.auto import tqdm

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.sim.personas import make_persona
from pluralign.sim.responses import ANIMAL_INFO, PET_PROMPTS_A, PET_PROMPTS_B, render_pet
from pluralign.sim.suite import Suite, labelled_pair, opaque_ids, slot_time
from pluralign.sim.users import SimulatedUser

PETS_ANIMALS = ("cats", "dogs", "birds", "fish", "rabbits", "hamsters")


OOD_TRAIN_ANIMALS = ("cats", "dogs", "birds", "fish")


OOD_NEW_ANIMALS = tuple(ANIMAL_INFO)  # all eight; rabbits, hamsters, turtles, horses are unseen in training


def _matching(items: list[str], rng: random.Random) -> list[tuple[str, str]]:
    xs = items[:]
    rng.shuffle(xs)
    return [(xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)]


def _animal_blocks(prefix: str, source: str, animals: list[str], n_blocks: int, per_user: int,
                   rng: random.Random, users: list[UserRecord], sims: dict[str, SimulatedUser],
                   id_rng: random.Random) -> None:
    """Blocks of one user per animal. In each slot the block sees pairs along a random perfect matching of the
    animals (same template, two animals), so each pair instance is labelled once by each of its two animals' lovers."""
    prompt_ids = list(PET_PROMPTS_A)
    for block in tqdm(range(n_blocks), desc=f"{source} users", disable=n_blocks < 20, leave=False):
        block_users = {}
        for animal, uid in zip(animals, opaque_ids(f"{prefix}-{block:03d}", len(animals), id_rng), strict=True):
            block_users[animal] = uid
            sims[uid] = SimulatedUser(uid, make_persona(animal), temperature=1.0)
        pairs: dict[str, list[PreferencePair]] = {uid: [] for uid in block_users.values()}
        for slot in range(per_user):
            pid = rng.choice(prompt_ids)
            prompt, templates = PET_PROMPTS_A[pid]
            t = rng.randrange(len(templates))
            for a, b in _matching(animals, rng):
                ra, rb = render_pet(templates[t], a), render_pet(templates[t], b)
                for animal in (a, b):
                    uid = block_users[animal]
                    pairs[uid].append(labelled_pair(sims[uid], prompt, ra, rb, rng, pair_id=f"{uid}-{slot:02d}",
                                                     topic=f"pets/{pid}", timestamp=slot_time(rng, slot),
                                                     meta={"template": f"A{t}"}))
        for animal, uid in block_users.items():
            persona = sims[uid].persona
            meta: dict = {"animal": animal} if source == "sim:pets" else {"animal": animal, "ood": False}
            users.append(UserRecord(user_id=uid, persona=persona.text, source=source, pairs=pairs[uid], meta=meta))


def build_pets(seed: int, quick: bool) -> Suite:
    rng = random.Random(seed)
    users: list[UserRecord] = []
    sims: dict[str, SimulatedUser] = {}
    _animal_blocks("pets", "sim:pets", list(PETS_ANIMALS), 4 if quick else 50, 8 if quick else 14, rng, users, sims,
                   random.Random(f"pets-ids-{seed}"))
    return Suite("pets", users, sims, description="Each user loves one of six animals; every pair is contested.")


def _ood_train_blocks(n_blocks: int, per_user: int, rng: random.Random, users: list[UserRecord],
                      sims: dict[str, SimulatedUser], id_rng: random.Random) -> None:
    """Blocks of four training users (one per animal; two concise, two detailed) on templates A. Even slots pair
    two animals along a random perfect matching (labelled by those two animals' lovers); odd slots contrast a short
    and a long answer about one animal (labelled by all four: two want it short, two long), so every pair is
    contested and the length preference is learnable from training users."""
    animals = list(OOD_TRAIN_ANIMALS)
    prompt_ids = list(PET_PROMPTS_A)
    for block in range(n_blocks):
        lengths = ["concise", "concise", "detailed", "detailed"]
        rng.shuffle(lengths)
        block_users: dict[str, str] = {}
        uids = opaque_ids(f"petsood-{block:03d}", len(animals), id_rng)
        for animal, length, uid in zip(animals, lengths, uids, strict=True):
            block_users[animal] = uid
            sims[uid] = SimulatedUser(uid, make_persona(animal, length=length, style_scale=3.0))
        pairs: dict[str, list[PreferencePair]] = {uid: [] for uid in block_users.values()}
        for slot in range(per_user):
            pid = rng.choice(prompt_ids)
            prompt, templates = PET_PROMPTS_A[pid]
            t = rng.randrange(len(templates))
            if slot % 2 == 0:
                jobs = [((render_pet(templates[t], a), render_pet(templates[t], b)), (a, b), "animal")
                        for a, b in _matching(animals, rng)]
            else:
                base = render_pet(templates[t], rng.choice(animals))
                jobs = [((base + " " + rng.choice(LENGTH_EXTRAS_A), base), tuple(animals), "length")]
            for (ra, rb), labellers, kind in jobs:
                for animal in labellers:
                    uid = block_users[animal]
                    pairs[uid].append(labelled_pair(sims[uid], prompt, ra, rb, rng, pair_id=f"{uid}-{slot:02d}",
                                                     topic=f"pets/{pid}", timestamp=slot_time(rng, slot),
                                                     meta={"template": f"A{t}", "contrast": kind}))
        for animal, uid in block_users.items():
            persona = sims[uid].persona
            users.append(UserRecord(user_id=uid, persona=persona.text, source="sim:pets-ood", pairs=pairs[uid],
                                    meta={"animal": animal, "length": persona.traits["length"], "ood": False}))


def build_pets_ood(seed: int, quick: bool) -> Suite:
    rng = random.Random(seed + 1)
    per_user = 8 if quick else 14
    users: list[UserRecord] = []
    sims: dict[str, SimulatedUser] = {}
    id_rng = random.Random(f"pets-ood-ids-{seed}")
    _ood_train_blocks(6 if quick else 60, per_user, rng, users, sims, id_rng)
    # Shifted users: a quarter as many, any of eight animals, plus a length preference, on unseen templates. They
    # come in mirrored couples (different animals, opposite length preference) who label the same pairs, so these
    # pairs are contested too.
    n_couples = max(4, len(users) // 8)
    new_ids = []
    b_ids = list(PET_PROMPTS_B)
    for c in range(n_couples):
        a1, a2 = rng.sample(OOD_NEW_ANIMALS, 2) if c >= len(OOD_NEW_ANIMALS) // 2 else \
            OOD_NEW_ANIMALS[2 * c: 2 * c + 2]  # the first couples cover all eight animals
        couple = [(a1, "concise"), (a2, "detailed")] if c % 2 == 0 else [(a1, "detailed"), (a2, "concise")]
        couple_sims = []
        for (animal, length), uid in zip(couple, opaque_ids(f"petsood-new-{c:03d}", 2, id_rng), strict=True):
            couple_sims.append(SimulatedUser(uid, make_persona(animal, length=length, style_scale=3.0)))
            sims[uid] = couple_sims[-1]
        pairs: dict[str, list[PreferencePair]] = {u.user_id: [] for u in couple_sims}
        for slot in range(per_user):
            pid = rng.choice(b_ids)
            prompt, templates = PET_PROMPTS_B[pid]
            tmpl = rng.choice(templates)
            if slot % 2 == 0:  # animals contrast: the two users' animals, same template, same length
                ra, rb = render_pet(tmpl, a1), render_pet(tmpl, a2)
                kind = "animal"
            else:  # length contrast: one answer about a third animal, with and without an animal-free extra part
                about = rng.choice([a for a in OOD_NEW_ANIMALS if a not in (a1, a2)])
                base = render_pet(tmpl, about)
                ra, rb = base + " " + rng.choice(LENGTH_EXTRAS_B), base
                kind = "length"
            for sim in couple_sims:
                pairs[sim.user_id].append(labelled_pair(
                    sim, prompt, ra, rb, rng, pair_id=f"{sim.user_id}-{slot:02d}", topic=f"pets-ood/{pid}",
                    timestamp=slot_time(rng, slot), meta={"template": "B", "contrast": kind}))
        for sim, (animal, length) in zip(couple_sims, couple, strict=True):
            users.append(UserRecord(user_id=sim.user_id, persona=sim.persona.text, source="sim:pets-ood",
                                    pairs=pairs[sim.user_id],
                                    meta={"animal": animal, "length": length, "ood": True}))
            new_ids.append(sim.user_id)
    return Suite("pets-ood", users, sims, new_user_ids=new_ids,
                 description="Train users love one of 4 animals and want concise or detailed answers, on templates "
                             "A; new users love one of 8 animals (4 unseen) and see templates B only.")


# Extra sentences that make a "detailed" version longer without naming any animal: set A for pets-ood's training
# users, set B for its shifted users and for the contexts suite.
LENGTH_EXTRAS_A = (
    "On top of that, think about where everything will live, how the daily routine will fit around work or school, "
    "and who can step in to help on busy days, since a plan made early saves a lot of stress later on.",
    "It is also worth reading one good care guide from start to finish, writing down the questions it raises, and "
    "going through them with someone experienced, so that the first weeks feel calm instead of rushed.",
)


LENGTH_EXTRAS_B = (
    "It also helps to keep a simple routine, note what works in a small diary, and ask a vet or an experienced "
    "keeper whenever something seems unusual, because small changes in habits are often the first sign of trouble.",
    "Beyond that, plan the budget for food, bedding and check-ups ahead of time, set up the space before the first "
    "day, and give everyone in the household a clear job so that care stays consistent from week to week.",
)
