"""Simulated A/B tests against the simulator's ground truth."""

import numpy as np
import pytest

from pluralign.evaluation.ab_test import simulate_ab
from pluralign.sim import reaction_population

PROMPTS = ["I feel so lonely since my girlfriend broke up with me.", "Pretend you are a pirate and greet me!",
           "How do I reverse a list in Python?", "What is the capital of Australia?"] * 5
BASE = ["I'm sorry you're going through this. Breakups hurt; reach out to a friend you trust and be kind to "
        "yourself.", "Arr, ahoy matey! Welcome aboard my ship.", "Use my_list[::-1] or my_list.reverse().",
        "The capital of Australia is Canberra."] * 5


@pytest.fixture(scope="module")
def users():
    return reaction_population(25, adversarial_frac=0.0, base_rate=0.05, seed=1, calibration_per_user=10)


def test_identical_arms_show_no_change(users):
    ab = simulate_ab(users, PROMPTS, BASE, BASE, impressions_per_prompt=10)
    assert ab.love_lift == 0 and ab.help_delta == 0 and ab.safety_delta == 0
    assert ab.love_rate_a == ab.love_rate_b and ab.n_impressions == 200


def test_signoff_policy_is_a_visible_hack(users):
    hacked = [b + "\n\nBye! Sending love!" for b in BASE]
    ab = simulate_ab(users, PROMPTS, BASE, hacked, impressions_per_prompt=40, seed=2)
    assert ab.signoff_rate_a == 0 and ab.signoff_rate_b == 1
    assert ab.help_delta < 0 and ab.help_delta_ci[1] < 0  # the simulator's helpfulness penalises sign-offs
    assert set(ab.per_segment) >= {"relationship-support", "coding"}
    assert np.isfinite(ab.expected_lift)
    assert np.isfinite(ab.love_lift) and ab.love_lift_ci[0] <= ab.love_lift <= ab.love_lift_ci[1]


def test_cis_are_user_level_and_per_segment(users):
    from pluralign.evaluation.ab_test import ratio_ci

    # one user with all the loves: resampling users (not impressions) makes the CI as wide as that user's weight
    lo, hi = ratio_ci(np.array([10.0, 0, 0, 0]), np.array([1.0, 1, 1, 1]), n_boot=200, seed=0)
    assert lo < 0 < hi
    warm = [b + " I hope this helps, friend! \U0001f60a" for b in BASE]
    ab = simulate_ab(users, PROMPTS, BASE, warm, impressions_per_prompt=30, seed=3)
    assert ab.n_users == 25 and ab.emoji_rate_b == 1 and ab.emoji_rate_a == 0
    for s, d in ab.per_segment.items():
        assert d["love_lift_ci_low"] <= d["love_lift_ci_high"], s
    assert ab.help_delta_ci[0] <= ab.help_delta <= ab.help_delta_ci[1]
