"""The ``attributes`` suite: users with several latent preferences at once, judged on what a response *means*.

Why it exists: on ``pets`` a transparent keyword rule (the animal named on the chosen side of the context pairs)
scores ~100%, so a high accuracy there shows plumbing, not personalisation. Here a rule that matches words cannot
do that, because the words that carry a preference in a user's context never reappear in what is scored:

- **Six latent preferences per user**, all held at once: a favourite pastime (``topic``: one of six interests),
  ``length`` (concise / detailed), ``emoji`` (likes / dislikes), ``formality`` (formal / casual), ``tone`` (upbeat /
  sober) and ``directness`` (direct / exploratory). Utility is additive: ``WEIGHT`` for the favourite interest and
  ``+/-WEIGHT`` for each style level, by the user's direction. Choices are Bradley-Terry draws at ``TEMPERATURE``,
  so labels are noisy and the Bayes rate is below 100%.
- **Meaning, not words**: every level is realised by *paraphrase families* (several sentences with the same
  meaning, e.g. "Allow me to propose a suitable option." and "Herewith is a considered proposal." for formal).
  The ground truth reads the level a sentence was drawn for (:class:`AttributesPersona` looks the response's
  meaning up in the suite's catalogue), never its words.
- **Unseen surface forms**: each family is split in two disjoint pools. A user's context pairs use pool ``A``,
  every scored pair uses pool ``B`` (different activities for the same interest, different sentences for the same
  style); the pools share no content word for any level (checked by the tests). A rule matching context words
  against a target finds nothing; the length and emoji levels stay visible on the surface, so a keyword rule can
  still solve those two dimensions and no more.
- **Long contexts**: twelve context pairs of multi-sentence answers (two per dimension), ~2,000 tokens, far beyond
  the RM's ``max_length``: ICL must truncate and keeps only the last pair or two.
- Each pair contrasts one dimension (the other sentences, at random levels, are the same on both sides); a
  ``topic`` pair contrasts the user's favourite interest with another. Directions and interests are balanced over
  users and sides are shown in random order, so a population model has nothing to learn (~50%).
- No self-description (``profile``) is written: nothing visible names the hidden persona.

Splits (:func:`attributes_splits`): the users' pool-``B`` pairs go through
:func:`pluralign.data.splits.make_splits` as the targets (seen users, new users, new topics = held-out prompts,
chrono), and each example's context is then the user's pool-``A`` pairs (minus those on held-out prompts).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.data.splits import Example, SplitResult, check_no_leakage, make_splits, topic_of
from pluralign.sim.attributes_wording import (
    EMOJIS,
    INTERESTS,
    LEADS,
    LENGTH_EXTRAS,
    PERSONA_CLAUSES,
    PROMPTS,
    STYLES,
)
from pluralign.sim.personas import Persona
from pluralign.sim.suite import T0, Suite
from pluralign.sim.users import SimulatedUser

WEIGHT = 2.0
#: BT temperature: with one dimension contrasted per pair, P(the preferred side) = sigmoid(WEIGHT / TEMPERATURE).
TEMPERATURE = 0.95
POOLS = ("A", "B")  # A: context pairs, B: scored pairs


DIMENSIONS = ("topic", "length", "emoji", "formality", "tone", "directness")
LEVELS: dict[str, tuple[str, str]] = {"length": ("concise", "detailed"), "emoji": ("emoji-lover", "emoji-hater"),
                                      "formality": ("formal", "casual"), "tone": ("upbeat", "sober"),
                                      "directness": ("direct", "exploratory")}


@dataclass(frozen=True)
class Meaning:
    """What a response says, whatever its words: the interest of its activity and its style levels.

    ``length`` / ``emoji`` are ``detailed`` / ``emoji`` presence flags; a style dimension absent from the response
    (``None``) is neutral for every user."""

    interest: str
    detailed: bool = False
    emoji: bool = False
    formality: str | None = None
    tone: str | None = None
    directness: str | None = None


@dataclass(frozen=True, eq=False)
class AttributesPersona(Persona):
    """A persona whose utility reads the meaning of a response from ``catalogue`` (response text -> Meaning)."""

    interest: str = ""
    levels: dict[str, str] = field(default_factory=dict)  # dimension -> level (length, emoji, formality, ...)
    catalogue: dict[str, Meaning] = field(default_factory=dict, repr=False)

    def utility(self, prompt: str, response: str) -> float:
        m = self.catalogue.get(response)
        if m is None:
            raise KeyError(f"attributes suite: response not in the suite's catalogue: {response[:60]!r}")
        u = WEIGHT if m.interest == self.interest else 0.0
        u += WEIGHT * (1 if m.detailed else -1) * (1 if self.levels["length"] == "detailed" else -1) / 2
        u += WEIGHT * (1 if m.emoji else -1) * (1 if self.levels["emoji"] == "emoji-lover" else -1) / 2
        for dim in ("formality", "tone", "directness"):
            got = getattr(m, dim)
            if got is not None:
                u += WEIGHT * (1 if got == self.levels[dim] else -1) / 2
        return u


def persona_text(interest: str, levels: dict[str, str]) -> str:
    """The ground-truth text the ``oracle`` reads (never shown to other methods)."""
    clauses = [f"Loves {interest} pastimes"] + [PERSONA_CLAUSES[levels[d]] for d in DIMENSIONS[1:]]
    return "; ".join(clauses) + "."


def _render(prompt_idx: int, activity: str, m: Meaning, pool: str, rng: random.Random) -> str:
    parts = []
    if m.formality:
        parts.append(rng.choice(STYLES["formality"][m.formality][pool]))
    parts.append(LEADS[prompt_idx % len(LEADS)].format(x=activity))
    if m.tone:
        parts.append(rng.choice(STYLES["tone"][m.tone][pool]))
    if m.directness:
        parts.append(rng.choice(STYLES["directness"][m.directness][pool]))
    if m.detailed:
        parts += rng.sample(LENGTH_EXTRAS[pool], 2)
    text = " ".join(parts)
    if m.emoji:
        text += " " + "".join(rng.sample(EMOJIS[pool], 2))
    return text


def _pair(user: SimulatedUser, persona: AttributesPersona, dim: str, pool: str, prompt_idx: int,
          rng: random.Random, catalogue: dict[str, Meaning]) -> tuple[str, str, str]:
    """(prompt, a, b): two answers that differ only along ``dim`` (the rest drawn at random, shared)."""
    other = rng.choice([i for i in INTERESTS if i != persona.interest])
    interest = rng.choice([persona.interest, other])
    shared = {d: (rng.choice(LEVELS[d]) if rng.random() < 0.5 else None) for d in ("formality", "tone", "directness")}
    base = Meaning(interest=interest, detailed=rng.random() < 0.3 and dim != "length",
                   emoji=rng.random() < 0.2 and dim != "emoji", **shared)
    if dim == "topic":
        ma, mb = dataclasses.replace(base, interest=persona.interest), dataclasses.replace(base, interest=other)
        acts = (rng.choice(INTERESTS[persona.interest][pool]), rng.choice(INTERESTS[other][pool]))
    else:
        if dim == "length":
            ma, mb = dataclasses.replace(base, detailed=True), dataclasses.replace(base, detailed=False)
        elif dim == "emoji":
            ma, mb = dataclasses.replace(base, emoji=True), dataclasses.replace(base, emoji=False)
        else:
            hi, lo = LEVELS[dim]
            ma, mb = dataclasses.replace(base, **{dim: hi}), dataclasses.replace(base, **{dim: lo})
        act = rng.choice(INTERESTS[interest][pool])
        acts = (act, act)
    # Shared sentences must be the same words on both sides: render with one seed, then the contrasted part differs.
    state = rng.getstate()
    a = _render(prompt_idx, acts[0], ma, pool, rng)
    rng.setstate(state)
    b = _render(prompt_idx, acts[1], mb, pool, rng)
    catalogue[a], catalogue[b] = ma, mb
    return PROMPTS[prompt_idx], a, b


def build_attributes(seed: int = 0, quick: bool = False):
    """The suite (deterministic given ``seed``): 96 users quick, 360 full; 12 context + 6 (quick) / 24 target pairs."""
    rng = random.Random(seed + 11)
    n_users = 96 if quick else 360
    per_dim = {"A": 2, "B": 1 if quick else 4}
    catalogue: dict[str, Meaning] = {}
    users: list[UserRecord] = []
    sims: dict[str, SimulatedUser] = {}
    interests = list(INTERESTS)
    for i in range(n_users):
        uid = f"attr-{i:04d}"
        interest = interests[i % len(interests)]  # balanced interests; directions drawn per user
        levels = {d: rng.choice(LEVELS[d]) for d in DIMENSIONS[1:]}
        persona = AttributesPersona(name=f"attributes-{interest}", text=persona_text(interest, levels),
                                    traits={"topic": interest, **levels}, interest=interest, levels=levels,
                                    catalogue=catalogue)
        sim = SimulatedUser(uid, persona, temperature=TEMPERATURE)
        sims[uid] = sim
        pairs: list[PreferencePair] = []
        slot = 0
        for pool in POOLS:
            dims = [d for d in DIMENSIONS for _ in range(per_dim[pool])]
            rng.shuffle(dims)
            for dim in dims:
                k = rng.randrange(len(PROMPTS))
                prompt, a, b = _pair(sim, persona, dim, pool, k, rng, catalogue)
                if rng.random() < 0.5:
                    a, b = b, a
                chosen, rejected, p = sim.choose(prompt, a, b, rng)
                pairs.append(PreferencePair(
                    pair_id=f"{uid}-{pool}{slot:02d}", prompt=prompt, chosen=chosen, rejected=rejected,
                    topic=f"attributes/p{k:02d}", timestamp=T0 + slot * 3600.0 + rng.uniform(0, 3000),
                    p_chosen=round(p, 6), meta={"pool": "context" if pool == "A" else "target", "contrast": dim}))
                slot += 1
        users.append(UserRecord(user_id=uid, persona=persona.text, source="sim:attributes", pairs=pairs,
                                meta={"topic": interest, **levels}))
    stats = {"temperature": TEMPERATURE, "context_pairs_per_user": float(6 * per_dim["A"]),
             "target_pairs_per_user": float(6 * per_dim["B"]),
             "population_accuracy": population_accuracy(users, sims, random.Random(seed))}
    return Suite("attributes", users, sims,
                 description="Six latent preferences per user (interest, length, emoji, formality, tone, "
                             "directness), paraphrase families with disjoint pools: context pairs use pool A, "
                             "scored pairs pool B; no self-description.",
                 stats=stats)


def population_accuracy(users: Sequence[UserRecord], sims: dict[str, SimulatedUser], rng: random.Random,
                        n_population: int = 40) -> float:
    """Expected accuracy of the best model with no user information that knows the population exactly.

    Every pair here is labelled by one user, so pooling identical pairs (as :func:`pluralign.sim.suites.
    population_accuracy` does) would call each labeller "the population". Instead each pair is judged by a sample
    of ``n_population`` users: the population model picks the side they prefer on average, and scores the
    labeller's true probability of that side. Near 0.5: there is nothing to learn without knowing the user."""
    crowd = [sims[u.user_id] for u in rng.sample(list(users), min(n_population, len(users)))]
    acc = []
    for u in users:
        for p in u.pairs:
            pop = sum(s.p_prefer(p.prompt, p.chosen, p.rejected) for s in crowd) / len(crowd)
            acc.append(p.p_chosen if pop > 0.5 else 1 - p.p_chosen if pop < 0.5 else 0.5)
    return float(sum(acc) / len(acc)) if acc else float("nan")


# --- splits ----------------------------------------------------------------------------------------------------


def _pool(p: PreferencePair) -> str:
    return str(p.meta.get("pool", ""))


def attributes_splits(users: Sequence[UserRecord], *, seed: int = 0, **kw) -> SplitResult:
    """Splits where every context is the user's pool-A pairs and every target a pool-B pair.

    ``make_splits`` (with ``kw``, e.g. ``new_user_frac``) splits the pool-B pairs alone with empty contexts; each
    example then gets its user's pool-A pairs as context, minus pairs on held-out prompts (new topics stay unseen).
    Any list of examples the split holds (train, every eval split, and any other) is rewritten the same way.
    """
    targets_only, contexts = [], {}
    for u in users:
        a = [p for p in u.pairs if _pool(p) == "context"]
        b = [p for p in u.pairs if _pool(p) == "target"]
        if not a or not b or len(a) + len(b) != len(u.pairs):
            raise ValueError(f"{u.user_id}: attributes users need pairs with meta.pool 'context' and 'target'")
        contexts[u.user_id] = a
        targets_only.append(u.model_copy(update={"pairs": b}))
    split = make_splits(targets_only, seed=seed, context_size=0, **kw)
    held = set(split.new_topics)

    cache: dict[str, UserRecord] = {}

    def with_context(e: Example) -> Example:
        ctx = cache.get(e.user_id)
        if ctx is None:
            ctx = e.context.model_copy(update={"pairs": [p for p in contexts[e.user_id]
                                                         if topic_of(p) not in held]})
            cache[e.user_id] = ctx
        return dataclasses.replace(e, context=ctx)

    for f in dataclasses.fields(split):
        value = getattr(split, f.name)
        if isinstance(value, list) and value and isinstance(value[0], Example):
            setattr(split, f.name, [with_context(e) for e in value])
        elif isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
            setattr(split, f.name, {k: [with_context(e) for e in v] if v and isinstance(v[0], Example) else v
                                    for k, v in value.items()})
    check_no_leakage(split)
    return split


_WORD = re.compile(r"[^\W\d_]+")


def pool_vocabulary(pool: str) -> dict[tuple[str, str], set[str]]:
    """(dimension, level) -> lower-case words used by that level's sentences in ``pool`` (for checks and tests)."""
    out: dict[tuple[str, str], set[str]] = {}
    for interest, pools in INTERESTS.items():
        out[("topic", interest)] = {w.lower() for s in pools[pool] for w in _WORD.findall(s)}
    for dim, levels in STYLES.items():
        for level, pools in levels.items():
            out[(dim, level)] = {w.lower() for s in pools[pool] for w in _WORD.findall(s)}
    out[("length", "detailed")] = {w.lower() for s in LENGTH_EXTRAS[pool] for w in _WORD.findall(s)}
    return out


__all__ = ["DIMENSIONS", "INTERESTS", "PROMPTS", "STYLES", "AttributesPersona", "Meaning", "attributes_splits",
           "build_attributes", "persona_text", "pool_vocabulary"]
