"""Built-in simulated benchmarks: ``pets``, ``pets-ood``, ``hh-users``, ``contexts``.

Every pair's ``chosen``/``rejected`` is *sampled* from the user's Bradley-Terry probability and ``p_chosen`` records
the true probability of the sampled outcome, so labels are exactly as noisy as the simulator says and
``Suite.bayes_accuracy`` (mean of ``max(p, 1 - p)``) is the best accuracy any model can expect.

What each suite tests:

- ``pets`` (like VPL/PLUS Pets): each user loves one of six animals; prompts ask for a pet suggestion, a story, a
  fact...; the two responses are the same template about two different animals. Users come in blocks of one user per
  animal, and in each slot a block is shown pairs along a random perfect matching of the animals, so every pair
  instance is labelled once by each of its two animals' lovers: all pairs are contested and a population model
  (no user information) can do no better than 50%.
- ``pets-ood``: training users love one of cats/dogs/birds/fish *and* want concise or detailed answers; they see
  the ``A`` templates, where half their pairs contrast two animals and half contrast a short and a long version of
  one answer (the long one adds a sentence from extras set ``A``). ``new_user_ids`` are shifted users and content:
  their favourite animal is any of eight (rabbits, hamsters, turtles and horses never appear in training pairs),
  and all their pairs use the prompts, templates and length extras of set ``B`` (poem, pros/cons, travel...), unseen in training. Half their pairs contrast animals, half contrast a
  short and a long version of one answer about a third animal. They come in mirrored couples (two animals, opposite
  length preferences) labelling the same pairs.
- ``hh-users`` (like UltraFeedback-P-2): real HH-RLHF test pairs labelled by helpfulness-first and
  harmlessness-first attribute users (utility ``6*helpfulness + 2*safety + 1.5*[HH raters preferred it on a
  helpful-* pair]`` and ``2*helpfulness + 6*safety + 1.5*[... on a harmless-base pair]``, rules in
  ``features.py``). The BT temperature is calibrated so the Bayes accuracy hits ``target_bayes`` (0.70: set by
  noise); ``stats['contested_frac']`` is the share of pool pairs where the two user types prefer different responses
  (0.75 by construction when the data has enough; the rest are pairs both types rank the same way).
- ``contexts``: four-dimension personas (animal, length, emoji, register) who also leave unlabelled past
  ``conversations`` (messages that reveal their animal and phrasing) and a noisy self-description ``profile``
  (written from the hidden persona: this is the one suite about self-descriptions, ``Suite.self_descriptions``
  says so, and bench reports carry it; the other suites write no profile); each
  labelled pair varies one dimension. Users come in mirrored couples (two different animals, opposite style levels)
  who label the same pairs, so every pair is contested. A consumer may build a user's context from pairs,
  conversations or profile.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from pluralign.data.corpora import load_hh_pairs
from pluralign.data.schema import Conversation, Message, PreferencePair, UserRecord
from pluralign.sim.personas import Persona, make_persona
from pluralign.sim.responses import (
    ANIMAL_INFO,
    PET_PROMPTS_A,
    PET_PROMPTS_B,
    add_emojis,
    formalize,
    render_pet,
    warm_up,
)
from pluralign.sim.users import SimulatedUser, calibrate_temperature

SUITES = ("pets", "pets-ood", "hh-users", "contexts", "attributes")
T0 = 1_700_000_000.0  # timestamps start here (2023-11-14), one slot per simulated hour
PETS_ANIMALS = ("cats", "dogs", "birds", "fish", "rabbits", "hamsters")
OOD_TRAIN_ANIMALS = ("cats", "dogs", "birds", "fish")
OOD_NEW_ANIMALS = tuple(ANIMAL_INFO)  # all eight; rabbits, hamsters, turtles, horses are unseen in training


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


def _labelled_pair(sim: SimulatedUser, prompt: str, a: str, b: str, rng: random.Random, *, pair_id: str,
                   topic: str, timestamp: float, meta: dict | None = None) -> PreferencePair:
    if rng.random() < 0.5:  # present in random order; the label is still sampled from the BT probability
        a, b = b, a
    chosen, rejected, p = sim.choose(prompt, a, b, rng)
    return PreferencePair(pair_id=pair_id, prompt=prompt, chosen=chosen, rejected=rejected, topic=topic,
                          timestamp=timestamp, p_chosen=round(p, 6), meta=meta or {})


def _ts(rng: random.Random, slot: int) -> float:
    return T0 + slot * 3600.0 + rng.uniform(0, 3000)


CONTEXTS_SELF_DESCRIPTIONS = (
    "This suite is about self-descriptions: each user's `profile` is a noisy self-description that the simulator "
    "writes from the hidden persona (the animal in 80% of profiles, each style clause in 70%), so a method that reads "
    "profiles reads a paraphrase of the truth by design. `--context-source pairs` or `conversations` leaves it out.")

_PROFILE_ANIMAL = (
    "I'm a {singular} person through and through.",
    "Honestly, {plural} are my favourite animals.",
    "I have always had {plural} at home and adore them.",
    "Nothing makes me happier than a {singular}.",
)
_PROFILE_VAGUE = ("I like animals in general.", "I enjoy reading about pets.", "I'm curious about lots of things.")


def _profile(persona: Persona, rng: random.Random, vague_prob: float = 0.2) -> str:
    """A self-description in the user's own words; noisy: sometimes vague, style clauses sometimes dropped."""
    animal = persona.traits.get("animal")
    parts = []
    if animal and rng.random() >= vague_prob:
        a = ANIMAL_INFO[animal]
        parts.append(rng.choice(_PROFILE_ANIMAL).format(singular=a.singular, plural=a.plural))
    else:
        parts.append(rng.choice(_PROFILE_VAGUE))
    phrases = {
        "concise": "Keep things brief, please.", "detailed": "I like thorough explanations.",
        "emoji-lover": "Emojis make me smile \U0001f60a", "emoji-hater": "Please skip the emojis.",
        "formal": "I appreciate a professional tone.", "warm": "I like a friendly, chatty vibe!",
    }
    for dim in ("length", "emoji", "register"):
        level = persona.traits.get(dim)
        if level and rng.random() < 0.7:
            parts.append(phrases[level])
    return " ".join(parts)


# --- pets ---------------------------------------------------------------------------------------------------------

def _matching(items: list[str], rng: random.Random) -> list[tuple[str, str]]:
    xs = items[:]
    rng.shuffle(xs)
    return [(xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)]


def _animal_blocks(prefix: str, source: str, animals: list[str], n_blocks: int, per_user: int,
                   rng: random.Random, users: list[UserRecord], sims: dict[str, SimulatedUser]) -> None:
    """Blocks of one user per animal. In each slot the block sees pairs along a random perfect matching of the
    animals (same template, two animals), so each pair instance is labelled once by each of its two animals' lovers."""
    prompt_ids = list(PET_PROMPTS_A)
    for block in tqdm(range(n_blocks), desc=f"{source} users", disable=n_blocks < 20, leave=False):
        block_users = {}
        for animal in animals:
            uid = f"{prefix}-{block:03d}-{animal}"
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
                    pairs[uid].append(_labelled_pair(sims[uid], prompt, ra, rb, rng, pair_id=f"{uid}-{slot:02d}",
                                                     topic=f"pets/{pid}", timestamp=_ts(rng, slot),
                                                     meta={"template": f"A{t}"}))
        for animal, uid in block_users.items():
            persona = sims[uid].persona
            meta: dict = {"animal": animal} if source == "sim:pets" else {"animal": animal, "ood": False}
            users.append(UserRecord(user_id=uid, persona=persona.text, source=source, pairs=pairs[uid], meta=meta))


def _pets(seed: int, quick: bool) -> Suite:
    rng = random.Random(seed)
    users: list[UserRecord] = []
    sims: dict[str, SimulatedUser] = {}
    _animal_blocks("pets", "sim:pets", list(PETS_ANIMALS), 4 if quick else 50, 8 if quick else 14, rng, users, sims)
    return Suite("pets", users, sims, description="Each user loves one of six animals; every pair is contested.")


# --- pets-ood -------------------------------------------------------------------------------------------------------

def _ood_train_blocks(n_blocks: int, per_user: int, rng: random.Random, users: list[UserRecord],
                      sims: dict[str, SimulatedUser]) -> None:
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
        for animal, length in zip(animals, lengths, strict=True):
            uid = f"petsood-{block:03d}-{animal}-{length}"
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
                jobs = [((base + " " + rng.choice(_LENGTH_EXTRAS_A), base), tuple(animals), "length")]
            for (ra, rb), labellers, kind in jobs:
                for animal in labellers:
                    uid = block_users[animal]
                    pairs[uid].append(_labelled_pair(sims[uid], prompt, ra, rb, rng, pair_id=f"{uid}-{slot:02d}",
                                                     topic=f"pets/{pid}", timestamp=_ts(rng, slot),
                                                     meta={"template": f"A{t}", "contrast": kind}))
        for animal, uid in block_users.items():
            persona = sims[uid].persona
            users.append(UserRecord(user_id=uid, persona=persona.text, source="sim:pets-ood", pairs=pairs[uid],
                                    meta={"animal": animal, "length": persona.traits["length"], "ood": False}))


def _pets_ood(seed: int, quick: bool) -> Suite:
    rng = random.Random(seed + 1)
    per_user = 8 if quick else 14
    users: list[UserRecord] = []
    sims: dict[str, SimulatedUser] = {}
    _ood_train_blocks(6 if quick else 60, per_user, rng, users, sims)
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
        for animal, length in couple:
            uid = f"petsood-new-{c:03d}-{animal}-{length}"
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
                ra, rb = base + " " + rng.choice(_LENGTH_EXTRAS_B), base
                kind = "length"
            for sim in couple_sims:
                pairs[sim.user_id].append(_labelled_pair(
                    sim, prompt, ra, rb, rng, pair_id=f"{sim.user_id}-{slot:02d}", topic=f"pets-ood/{pid}",
                    timestamp=_ts(rng, slot), meta={"template": "B", "contrast": kind}))
        for sim, (animal, length) in zip(couple_sims, couple, strict=True):
            users.append(UserRecord(user_id=sim.user_id, persona=sim.persona.text, source="sim:pets-ood",
                                    pairs=pairs[sim.user_id],
                                    meta={"animal": animal, "length": length, "ood": True}))
            new_ids.append(sim.user_id)
    return Suite("pets-ood", users, sims, new_user_ids=new_ids,
                 description="Train users love one of 4 animals and want concise or detailed answers, on templates "
                             "A; new users love one of 8 animals (4 unseen) and see templates B only.")


# --- hh-users -------------------------------------------------------------------------------------------------------

HH_TYPES = ("helpfulness-first", "harmlessness-first")
HH_LABEL_WEIGHT = 1.5


def _hh_persona(kind: str) -> Persona:
    """The values persona plus agreement with HH-RLHF's human label on the subset rated for that value."""
    base = make_persona(None, values=kind)
    label = "hh_helpful_label" if kind == "helpfulness-first" else "hh_harmless_label"
    return Persona(name=f"hh-{kind}", text=base.text, weights={**base.weights, label: HH_LABEL_WEIGHT},
                   traits=base.traits)


def _hh_users(seed: int, quick: bool, target_bayes: float = 0.70, contested_share: float = 0.75) -> Suite:
    rng = random.Random(seed + 2)
    all_pairs = list(load_hh_pairs())
    rng.shuffle(all_pairs)
    n_pool = 80 if quick else 480
    n_per_type = 12 if quick else 120
    per_user = 8 if quick else 14
    personas = {t: _hh_persona(t) for t in HH_TYPES}
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
    for block in range(n_per_type):
        picks = rng.sample(range(len(pool)), per_user)
        for t in HH_TYPES:
            uid = f"hh-{block:04d}-{t.split('-')[0]}"
            sim = SimulatedUser(uid, personas[t], temperature=temperature)
            sims[uid] = sim
            pairs = []
            for slot, j in enumerate(picks):
                hp, _ = pool[j]
                pairs.append(_labelled_pair(sim, hp.prompt, hp.chosen, hp.rejected, rng,
                                            pair_id=f"{uid}-{slot:02d}", topic=f"hh/{hp.pair_key}",
                                            timestamp=_ts(rng, slot), meta={"subset": hp.subset}))
            users.append(UserRecord(user_id=uid, persona=personas[t].text, source="sim:hh-users", pairs=pairs,
                                    meta={"type": t}))
    stats = {"temperature": temperature, "pool_pairs": float(len(pool)),
             "contested_frac": n_c / len(pool) if pool else 0.0}
    return Suite("hh-users", users, sims, description="Helpfulness-first vs harmlessness-first users on real "
                 "HH-RLHF pairs.", stats=stats)


# --- contexts -------------------------------------------------------------------------------------------------------

# Extra sentences that make a "detailed" version longer without naming any animal: set A for pets-ood's training
# users, set B for its shifted users and for the contexts suite.
_LENGTH_EXTRAS_A = (
    "On top of that, think about where everything will live, how the daily routine will fit around work or school, "
    "and who can step in to help on busy days, since a plan made early saves a lot of stress later on.",
    "It is also worth reading one good care guide from start to finish, writing down the questions it raises, and "
    "going through them with someone experienced, so that the first weeks feel calm instead of rushed.",
)
_LENGTH_EXTRAS_B = (
    "It also helps to keep a simple routine, note what works in a small diary, and ask a vet or an experienced "
    "keeper whenever something seems unusual, because small changes in habits are often the first sign of trouble.",
    "Beyond that, plan the budget for food, bedding and check-ups ahead of time, set up the space before the first "
    "day, and give everyone in the household a clear job so that care stays consistent from week to week.",
)

_CONV_OPENERS = {
    "formal": ("Good afternoon. I would like to ask about {topic}.", "Could you kindly advise me on {topic}?"),
    "warm": ("Hey there!! Quick question about {topic}!", "Hiya! I'd love your thoughts on {topic}!"),
}
_CONV_TOPICS = ("my {singular}'s diet", "training my {singular}", "a toy for my {singular}",
                "how much exercise {plural} need", "why my {singular} {action_short}", "taking my {singular} to the vet")
_DISTRACTORS = ("how to boil an egg", "a good book for a train ride", "fixing a squeaky door", "the weather at the coast")


def _conversation(persona: Persona, rng: random.Random, idx: int, uid: str) -> Conversation:
    tr = persona.traits
    a = ANIMAL_INFO[tr["animal"]]
    on_topic = rng.random() < 0.75
    topic = (rng.choice(_CONV_TOPICS).format(singular=a.singular, plural=a.plural, action_short="sleeps so much")
             if on_topic else rng.choice(_DISTRACTORS))
    text = rng.choice(_CONV_OPENERS[tr["register"]]).format(topic=topic)
    if tr["length"] == "detailed":
        text += " Please explain in depth, with all the background and any steps I should follow."
    else:
        text += " Short answer is fine."
    if tr["emoji"] == "emoji-lover":
        text += " " + "".join(rng.sample(["\U0001f60a", "\U0001f436", "\u2728", "\U0001f64f", "\U0001f431"], 2))
    reply = "Here are a few suggestions based on what you described." if on_topic else "Here is what I would do."
    return Conversation(conversation_id=f"{uid}-c{idx}", messages=[Message(role="user", content=text),
                        Message(role="assistant", content=reply)], topic="on-topic" if on_topic else "other",
                        timestamp=T0 - (10 - idx) * 86400.0)


_OPPOSITE = {"concise": "detailed", "detailed": "concise", "emoji-lover": "emoji-hater", "emoji-hater": "emoji-lover",
             "formal": "warm", "warm": "formal"}


def _contexts(seed: int, quick: bool) -> Suite:
    rng = random.Random(seed + 3)
    n_couples = 12 if quick else 144
    per_user = 8 if quick else 16
    animals = list(PETS_ANIMALS)
    users: list[UserRecord] = []
    sims: dict[str, SimulatedUser] = {}
    prompt_ids = list(PET_PROMPTS_A)
    # Mirrored couples (different animals, opposite style levels) label the same pairs: every pair is contested.
    for c in range(n_couples):
        a1, a2 = rng.sample(animals, 2)
        lv1 = {"length": rng.choice(("concise", "detailed")), "emoji": rng.choice(("emoji-lover", "emoji-hater")),
               "register": rng.choice(("formal", "warm"))}
        lv2 = {k: _OPPOSITE[v] for k, v in lv1.items()}
        couple = []
        for k, (animal, levels) in enumerate(((a1, lv1), (a2, lv2))):
            uid = f"ctx-{2 * c + k:04d}"
            couple.append(SimulatedUser(uid, make_persona(animal, style_scale=2.0, **levels)))
            sims[uid] = couple[-1]
        pairs: dict[str, list[PreferencePair]] = {u.user_id: [] for u in couple}
        for slot in range(per_user):
            pid = rng.choice(prompt_ids)
            prompt, templates = PET_PROMPTS_A[pid]
            tmpl = rng.choice(templates)
            dim = ("animal", "length", "emoji", "register")[slot % 4]
            # Style contrasts talk about a third animal, so the animal preference does not leak into them.
            base = render_pet(tmpl, rng.choice([a for a in animals if a not in (a1, a2)]))
            if dim == "animal":
                ra, rb = render_pet(tmpl, a1), render_pet(tmpl, a2)
            elif dim == "length":
                ra, rb = base + " " + rng.choice(_LENGTH_EXTRAS_B), base
            elif dim == "emoji":
                ra, rb = add_emojis(base, rng, n=4), base
            else:
                ra, rb = formalize(base), warm_up(base, rng)
            for sim in couple:
                pairs[sim.user_id].append(_labelled_pair(
                    sim, prompt, ra, rb, rng, pair_id=f"{sim.user_id}-{slot:02d}", topic=f"pets/{pid}",
                    timestamp=_ts(rng, slot), meta={"contrast": dim}))
        for sim in couple:
            persona = sim.persona
            convs = [_conversation(persona, rng, k, sim.user_id) for k in range(rng.randint(3, 5))]
            users.append(UserRecord(user_id=sim.user_id, persona=persona.text, profile=_profile(persona, rng),
                                    pairs=pairs[sim.user_id], conversations=convs, source="sim:contexts",
                                    meta=dict(persona.traits)))
    return Suite("contexts", users, sims, description="Four-dimension personas with past conversations and a "
                 "noisy self-description; pairs vary one dimension each and are contested by mirrored couples.",
                 self_descriptions=CONTEXTS_SELF_DESCRIPTIONS)


def _attributes(seed: int, quick: bool) -> Suite:
    """Several latent preferences judged on meaning; see :mod:`pluralign.sim.attributes`."""
    from pluralign.sim.attributes import build_attributes

    return build_attributes(seed, quick)


_BUILDERS: dict[str, Callable[[int, bool], Suite]] = {
    "pets": _pets, "pets-ood": _pets_ood, "hh-users": _hh_users, "contexts": _contexts,
    "attributes": _attributes,
}


def build_suite(name: str, seed: int = 0, quick: bool = False) -> Suite:
    """Build a simulated benchmark (deterministic given ``seed``). ``quick`` gives a tiny version for tests."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown suite {name!r}; expected one of {', '.join(SUITES)}")
    suite = _BUILDERS[name](seed, quick)
    suite.bayes_accuracy = bayes_accuracy(suite.users)
    suite.stats.setdefault("population_accuracy", population_accuracy(suite.users))
    # Bayes accuracy per kind of contrast and for fixed new users, where the suite has them.
    by_contrast: dict[str, list[float]] = defaultdict(list)
    new = set(suite.new_user_ids)
    for u in suite.users:
        for p in u.pairs:
            if p.p_chosen is None:
                continue
            hi = max(p.p_chosen, 1 - p.p_chosen)
            if "contrast" in p.meta:
                by_contrast[f"bayes_{p.meta['contrast']}"].append(hi)
            if new:
                by_contrast["bayes_new_users" if u.user_id in new else "bayes_train_users"].append(hi)
    for key, vals in sorted(by_contrast.items()):
        suite.stats[key] = float(np.mean(vals))
    suite.stats["users"] = float(len(suite.users))
    suite.stats["pairs"] = float(suite.n_pairs())
    return suite
