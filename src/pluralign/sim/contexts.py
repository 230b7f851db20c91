"""The ``contexts`` suite: four-dimension personas with past conversations and a noisy self-description (see
:mod:`pluralign.sim.suites`)."""

from __future__ import annotations

import random

from pluralign.data.schema import Conversation, Message, PreferencePair, UserRecord
from pluralign.sim.personas import Persona, make_persona
from pluralign.sim.pets import LENGTH_EXTRAS_B, PETS_ANIMALS
from pluralign.sim.responses import ANIMAL_INFO, PET_PROMPTS_A, add_emojis, formalize, render_pet, warm_up
from pluralign.sim.suite import T0, Suite, labelled_pair, slot_time
from pluralign.sim.users import SimulatedUser

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


def build_contexts(seed: int, quick: bool) -> Suite:
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
                ra, rb = base + " " + rng.choice(LENGTH_EXTRAS_B), base
            elif dim == "emoji":
                ra, rb = add_emojis(base, rng, n=4), base
            else:
                ra, rb = formalize(base), warm_up(base, rng)
            for sim in couple:
                pairs[sim.user_id].append(labelled_pair(
                    sim, prompt, ra, rb, rng, pair_id=f"{sim.user_id}-{slot:02d}", topic=f"pets/{pid}",
                    timestamp=slot_time(rng, slot), meta={"contrast": dim}))
        for sim in couple:
            persona = sim.persona
            convs = [_conversation(persona, rng, k, sim.user_id) for k in range(rng.randint(3, 5))]
            users.append(UserRecord(user_id=sim.user_id, persona=persona.text, profile=_profile(persona, rng),
                                    pairs=pairs[sim.user_id], conversations=convs, source="sim:contexts",
                                    meta=dict(persona.traits)))
    return Suite("contexts", users, sims, description="Four-dimension personas with past conversations and a "
                 "noisy self-description; pairs vary one dimension each and are contested by mirrored couples.",
                 self_descriptions=CONTEXTS_SELF_DESCRIPTIONS)
