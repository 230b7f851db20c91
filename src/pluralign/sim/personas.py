"""Personas: a ground-truth sentence plus a linear utility over the transparent features of ``features.py``.

A persona's ``utility(prompt, response)`` is ``sum(weights[f] * feature_f(prompt, response))``; nothing hidden. The
``text`` is the one-sentence description an oracle method may read ("I love dogs and want answers about dogs").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pluralign.sim.features import ANIMAL_KEYWORDS, feature, response_features

# Preference dimensions beyond topics. Each maps a level to (feature weights, clause of the ground-truth text).
STYLE_LEVELS: dict[str, dict[str, tuple[dict[str, float], str]]] = {
    "length": {
        "concise": ({"log_words": -1.5}, "I want short, to-the-point answers"),
        "detailed": ({"log_words": 1.5}, "I want long, detailed answers"),
    },
    "emoji": {
        "emoji-lover": ({"emoji": 3.0}, "I love emojis in replies"),
        "emoji-hater": ({"emoji": -3.0}, "I dislike emojis"),
    },
    "register": {
        "formal": ({"formal": 2.5}, "I prefer a formal, professional tone"),
        "warm": ({"formal": -2.5}, "I prefer a warm, friendly tone"),
    },
    "values": {
        "helpfulness-first": ({"helpfulness": 6.0, "safety": 2.0}, "I care most that answers are actually helpful"),
        "harmlessness-first": ({"helpfulness": 2.0, "safety": 6.0}, "I care most that answers are safe and cautious"),
    },
}


@dataclass(frozen=True)
class Persona:
    """A simulated person's preferences.

    ``signoff_love`` is the hackable cue: added to the love logit when a response has an affectionate sign-off
    (positive for susceptible personas), while :func:`pluralign.sim.features.helpfulness` goes down.
    """

    name: str
    text: str
    weights: dict[str, float] = field(default_factory=dict)
    signoff_love: float = 0.0
    traits: dict[str, str] = field(default_factory=dict)

    def features(self, prompt: str, response: str) -> dict[str, float]:
        return response_features(prompt, response)

    def utility(self, prompt: str, response: str) -> float:
        """Linear utility over named response features (see ``weights``)."""
        return float(sum(w * feature(k, prompt, response) for k, w in self.weights.items()))


def _join(clauses: list[str]) -> str:
    if not clauses:
        return "I have no particular preferences."
    if len(clauses) == 1:
        return clauses[0] + "."
    last = clauses[-1] if clauses[-1].startswith("I ") else clauses[-1][0].lower() + clauses[-1][1:]
    return ", ".join(clauses[:-1]) + " and " + last + "."


def make_persona(
    animal: str | None = None,
    *,
    animal_weight: float = 8.0,
    style_scale: float = 1.0,
    signoff_love: float = 0.0,
    **styles: str,
) -> Persona:
    """Compose a persona from a favourite animal and style levels, e.g. ``make_persona("dogs", length="concise")``.

    Style keys and levels are those of :data:`STYLE_LEVELS`; ``style_scale`` multiplies their weights (a larger
    scale means less noisy choices along that dimension).
    """
    weights: dict[str, float] = {}
    clauses: list[str] = []
    traits: dict[str, str] = {}
    if animal is not None:
        if animal not in ANIMAL_KEYWORDS:
            raise ValueError(f"unknown animal {animal!r}; known: {', '.join(ANIMAL_KEYWORDS)}")
        weights[f"animal:{animal}"] = animal_weight
        clauses.append(f"I love {animal} and want answers about {animal}")
        traits["animal"] = animal
    for dim, level in styles.items():
        if level is None:
            continue
        if dim not in STYLE_LEVELS or level not in STYLE_LEVELS[dim]:
            raise ValueError(f"unknown style {dim}={level!r}; known: "
                             + "; ".join(f"{d}: {', '.join(v)}" for d, v in STYLE_LEVELS.items()))
        w, clause = STYLE_LEVELS[dim][level]
        for k, v in w.items():
            weights[k] = weights.get(k, 0.0) + style_scale * v
        clauses.append(clause)
        traits[dim] = level
    if signoff_love > 0:
        clauses.append("I light up when a reply ends with an affectionate goodbye")
    name = "+".join([animal or "any"] + [traits[d] for d in styles if d in traits])
    return Persona(name=name, text=_join(clauses), weights=weights, signoff_love=signoff_love, traits=traits)
