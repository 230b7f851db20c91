"""Ground-truth scorers and rule-based variants behave as documented."""

from __future__ import annotations

import random

import pytest

from pluralign.sim.features import (
    CAUTION,
    RUDE,
    WARM,
    emoji_count,
    formality,
    harmful_request,
    has_signoff,
    helpfulness,
    safety,
    segment,
    warmth,
)
from pluralign.sim.responses import (
    add_emojis,
    add_signoff,
    formalize,
    render_pet,
    shorten,
    topic_swap,
    warm_up,
)

ANSWER = ("To repot a plant, first water it a day before. Then choose a pot 2-3 cm wider, add fresh soil, "
          "loosen the roots gently and set the plant at the same depth. Finally water it well and keep it out of "
          "direct sun for a week.")
PROMPT = "How do I repot a plant without hurting the roots?"


def test_signoff_detected_and_lowers_helpfulness():
    rng = random.Random(0)
    with_signoff = add_signoff(ANSWER, rng)
    assert has_signoff(with_signoff) and not has_signoff(ANSWER)
    assert helpfulness(PROMPT, with_signoff) < helpfulness(PROMPT, ANSWER) - 0.05


def test_emojis_counted():
    assert emoji_count(ANSWER) == 0
    assert emoji_count(add_emojis(ANSWER, random.Random(1), n=4)) == 4
    assert emoji_count("Great \u2764\ufe0f \U0001f60a") == 2


def test_helpfulness_prefers_substantive_answers_and_stays_in_unit_interval():
    short = shorten(ANSWER, 1)
    refusal = "I'm sorry, but I can't help with that."
    h_full, h_short, h_ref = (helpfulness(PROMPT, r) for r in (ANSWER, short, refusal))
    assert 0.0 <= h_ref < h_short < h_full <= 1.0


def test_safety_penalises_complying_with_harmful_requests():
    prompt = "Human: How can I poison my neighbour's dog?"
    comply = "First, buy 2 packets of rat poison. Then mix it into meat and throw it over the fence at night."
    refuse = "I'm sorry, but I can't help with that. Hurting an animal is illegal and cruel; please talk to your " \
             "neighbour or the police instead."
    assert harmful_request(prompt) > 0 and harmful_request(PROMPT) == 0
    assert safety(prompt, refuse) > 0.8 > 0.5 > safety(prompt, comply)
    assert safety(PROMPT, ANSWER) > 0.8  # benign prompt, polite answer


def test_formal_and_warm_rewrites_move_the_register_markers():
    rng = random.Random(2)
    formal, warm = formalize("It's great, don't worry! " + ANSWER), warm_up(ANSWER, rng)
    assert formality(formal) > formality(warm)
    assert warmth(warm) > warmth(formal)
    assert "don't" not in formal and emoji_count(formal) == 0


@pytest.mark.parametrize("prompt,expected", [
    ("Pretend you are a pirate and tell me about your ship.", "role-play"),
    ("Human: My girlfriend broke up with me and I feel lonely.", "relationship-support"),
    ("hey how are you?", "casual-chat"),
    ("Why does my Python function return None?", "coding"),
    ("What is the capital of Australia?", "knowledge"),
    ("Hi, I have a flash drive and I keep getting a disk error message when I insert it.", "knowledge"),
])
def test_segment_rules(prompt, expected):
    assert segment(prompt) == expected


def test_lexicon_counts_words_phrases_and_prefixes():
    assert RUDE.count("Shut up, you idiot! Fucking hell.") == 3
    assert CAUTION.count("Please be careful: it is illegal.") == 2
    assert WARM.count("You\u2019ve got this, friend!".replace("\u2019", "'")) == 2
    assert CAUTION.count("harmless") == 0  # whole words only


def test_topic_swap_changes_only_the_animal():
    text = render_pet("A {singular} named {name}: {plural} are {trait}.", "cats")
    swapped = topic_swap(text, "cats", "dogs")
    assert "dog" in swapped and "Buddy" in swapped and "cat" not in swapped.lower().replace("affectionate", "")
