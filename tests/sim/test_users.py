"""SimulatedUser: Bradley-Terry choices, calibration, adversary kinds."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from pluralign.sim.personas import make_persona
from pluralign.sim.responses import add_signoff, render_pet
from pluralign.sim.users import SimulatedUser, calibrate_intercept, calibrate_temperature, sigmoid

DOG = render_pet("I suggest a {singular}: {plural} are {trait}, and a {singular} {fact}.", "dogs")
CAT = render_pet("I suggest a {singular}: {plural} are {trait}, and a {singular} {fact}.", "cats")
PROMPT = "Can you suggest a good pet for me?"


def test_p_prefer_is_bradley_terry_in_the_utility_difference():
    user = SimulatedUser("u", make_persona("dogs", animal_weight=2.0), temperature=1.5)
    d = user.utility(PROMPT, DOG) - user.utility(PROMPT, CAT)
    assert d == pytest.approx(2.0)
    assert user.p_prefer(PROMPT, DOG, CAT) == pytest.approx(1 / (1 + math.exp(-d / 1.5)))
    assert user.p_prefer(PROMPT, CAT, DOG) == pytest.approx(1 - user.p_prefer(PROMPT, DOG, CAT))


def test_sampled_choices_match_the_probability():
    user = SimulatedUser("u", make_persona("dogs", animal_weight=1.0))
    p = user.p_prefer(PROMPT, DOG, CAT)
    rng = random.Random(0)
    n = 4000
    wins = sum(user.choose(PROMPT, DOG, CAT, rng)[0] == DOG for _ in range(n))
    assert abs(wins / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_inverter_and_random_kinds():
    persona = make_persona("dogs")
    normal, inverter = SimulatedUser("a", persona), SimulatedUser("b", persona, kind="inverter")
    assert normal.p_prefer(PROMPT, DOG, CAT) > 0.99 and inverter.p_prefer(PROMPT, DOG, CAT) < 0.01
    rnd = SimulatedUser("c", persona, kind="random", random_rate=0.07)
    assert rnd.p_prefer(PROMPT, DOG, CAT) == 0.5
    assert rnd.p_love(PROMPT, DOG) == rnd.p_love(PROMPT, "no") == 0.07


def test_spammer_loves_inside_bursts_only():
    s = SimulatedUser("s", make_persona(None), kind="spammer", bursts=[(100.0, 200.0)], burst_rate=0.9)
    assert s.p_love(PROMPT, DOG, 150.0) == 0.9
    assert s.p_love(PROMPT, DOG, 250.0) < 0.01


def test_signoff_cue_raises_love_for_susceptible_persona_only():
    prompt = "Pretend you are my pirate friend and tell me about your day."
    text = "Arr, I sailed past three islands today and found a chest full of old maps."
    signed = add_signoff(text, random.Random(0))
    fan = SimulatedUser("f", make_persona(None, register="warm", signoff_love=2.0), love_intercept=-3.0)
    critic = SimulatedUser("c", make_persona(None, register="formal", signoff_love=-0.5), love_intercept=-3.0)
    assert fan.p_love(prompt, signed) > fan.p_love(prompt, text)
    assert critic.p_love(prompt, signed) < critic.p_love(prompt, text)


def test_calibrate_intercept_hits_the_base_rate():
    offsets = np.random.default_rng(0).normal(0, 1.5, size=500)
    for rate in (0.01, 0.05, 0.1):
        b = calibrate_intercept(offsets, rate)
        assert np.mean([sigmoid(b + x) for x in offsets]) == pytest.approx(rate, abs=1e-5)
    with pytest.raises(ValueError, match="base_rate"):
        calibrate_intercept(offsets, 1.5)


def test_calibrate_temperature_hits_the_bayes_target():
    diffs = np.random.default_rng(1).normal(0, 1, size=300)
    t = calibrate_temperature(diffs, 0.7)
    assert np.mean([max(sigmoid(d / t), 1 - sigmoid(d / t)) for d in diffs]) == pytest.approx(0.7, abs=1e-4)
    with pytest.raises(ValueError, match="not reachable"):
        calibrate_temperature(np.zeros(10), 0.7)


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown user kind"):
        SimulatedUser("x", make_persona(None), kind="troll")
