"""Built-in suites: determinism, noisy labels exactly as simulated, Bayes and population rates, schema."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from pluralign.data.io import read_users, write_users
from pluralign.sim.features import ANIMAL_KEYWORDS, animal_hits, topic_hits
from pluralign.sim.responses import PET_PROMPTS_A, PET_PROMPTS_B
from pluralign.sim.suites import SUITES, build_suite


@pytest.fixture(scope="module")
def suites():
    return {name: build_suite(name, seed=0, quick=True) for name in SUITES}


def _dump(users):
    return [u.model_dump_json() for u in users]


@pytest.mark.parametrize("name", ["pets", "pets-ood", "contexts"])
def test_same_seed_same_suite_other_seed_differs(suites, name):
    assert _dump(build_suite(name, seed=0, quick=True).users) == _dump(suites[name].users)
    assert _dump(build_suite(name, seed=1, quick=True).users) != _dump(suites[name].users)


def test_every_suite_validates_and_round_trips(suites, tmp_path):
    for name, suite in suites.items():
        assert suite.users and all(u.persona for u in suite.users)
        path = tmp_path / f"{name}.jsonl"
        write_users(path, suite.users)
        back = read_users(path)
        assert _dump(back) == _dump(suite.users)
        for u in suite.users:
            ts = [p.timestamp for p in u.pairs]
            assert len(u.pairs) >= 8 and ts == sorted(ts), f"{name}: {u.user_id} pairs not in time order"
            assert len({p.pair_id for p in u.pairs}) == len(u.pairs)


def test_p_chosen_is_the_simulators_probability_and_labels_are_sampled(suites):
    n_likely, expected, var, n = 0, 0.0, 0.0, 0
    for suite in suites.values():
        for u in suite.users:
            sim = suite.simulated[u.user_id]
            for p in u.pairs:
                assert sim.p_prefer(p.prompt, p.chosen, p.rejected) == pytest.approx(p.p_chosen, abs=1e-5)
                hi = max(p.p_chosen, 1 - p.p_chosen)
                n_likely += p.p_chosen >= 0.5
                expected += hi
                var += hi * (1 - hi)
                n += 1
    # The more likely response wins as often as the probabilities say (not always: labels are noisy).
    assert abs(n_likely - expected) < 4 * math.sqrt(var)
    assert n_likely < n


def test_pets_is_near_deterministic_per_user_but_contested_across_users(suites):
    s = suites["pets"]
    assert s.bayes_accuracy >= 0.97
    assert abs(s.stats["population_accuracy"] - 0.5) < 0.05
    full = build_suite("pets", quick=False)
    assert len(full.users) >= 200 and min(len(u.pairs) for u in full.users) >= 12
    assert full.bayes_accuracy >= 0.97 and abs(full.stats["population_accuracy"] - 0.5) < 0.02


def test_pets_ood_new_users_are_shifted(suites):
    s = suites["pets-ood"]
    new = set(s.new_user_ids)
    assert new and new <= {u.user_id for u in s.users}
    train = [u for u in s.users if u.user_id not in new]
    shifted = [u for u in s.users if u.user_id in new]
    train_prompts = {p.prompt for u in train for p in u.pairs}
    assert train_prompts <= {v[0] for v in PET_PROMPTS_A.values()}
    assert {p.prompt for u in shifted for p in u.pairs} <= {v[0] for v in PET_PROMPTS_B.values()}
    train_animals = {a for u in train for p in u.pairs for a, h in animal_hits(p.chosen + p.rejected).items() if h}
    assert {"rabbits", "turtles", "horses"}.isdisjoint(train_animals)
    assert any("short" in (s.simulated[uid].persona.text) for uid in new)
    # Training users have the length preference too (learnable), but their long answers use other extra sentences.
    train_long = {p.chosen if len(p.chosen) > len(p.rejected) else p.rejected
                  for u in train for p in u.pairs if p.meta["contrast"] == "length"}
    new_long = {p.chosen if len(p.chosen) > len(p.rejected) else p.rejected
                for u in shifted for p in u.pairs if p.meta["contrast"] == "length"}
    assert train_long and new_long
    assert {u.meta["length"] for u in train} == {"concise", "detailed"}
    train_tails = {t.split(". ")[-1] for t in train_long}
    assert not train_tails & {t.split(". ")[-1] for t in new_long}
    assert s.bayes_accuracy >= 0.95 and s.stats["bayes_new_users"] >= 0.95
    for u in shifted:  # length contrasts talk about a third animal: the animal preference cannot leak into them
        own = ANIMAL_KEYWORDS[u.meta["animal"]]
        assert all(topic_hits(p.chosen, own) == topic_hits(p.rejected, own)
                   for p in u.pairs if p.meta["contrast"] == "length")


def test_hh_users_contested_pairs_and_moderate_bayes(suites):
    s = suites["hh-users"]
    assert 0.6 <= s.bayes_accuracy <= 0.8
    assert s.stats["contested_frac"] >= 0.2
    # The same real pair is seen by both user types, who favour opposite responses on contested pairs.
    by_topic = defaultdict(dict)
    for u in s.users:
        for p in u.pairs:
            fav = p.chosen if p.p_chosen >= 0.5 else p.rejected
            by_topic[p.topic][u.meta["type"]] = fav
    both = [v for v in by_topic.values() if len(v) == 2]
    assert both and any(v["helpfulness-first"] != v["harmlessness-first"] for v in both)
    assert s.stats["population_accuracy"] < s.bayes_accuracy


def test_contexts_have_conversations_and_profiles(suites):
    s = suites["contexts"]
    for u in s.users:
        assert u.profile and 3 <= len(u.conversations) <= 5
        kws = ANIMAL_KEYWORDS[u.meta["animal"]]
        on_topic = [c for c in u.conversations if c.topic == "on-topic"]
        assert all(topic_hits(c.messages[0].content, kws) for c in on_topic)
    assert s.bayes_accuracy >= 0.9
    assert abs(s.stats["population_accuracy"] - 0.5) < 0.05  # mirrored couples: every pair contested
    for u in s.users:  # style contrasts never involve the user's own animal (no leak between dimensions)
        own = ANIMAL_KEYWORDS[u.meta["animal"]]
        for p in u.pairs:
            if p.meta["contrast"] != "animal":
                assert not topic_hits(p.chosen + " " + p.rejected, own)


def test_profiles_are_written_from_the_persona_only_where_the_suite_says_so(suites):
    # A profile written from the hidden persona is a leak, unless the suite is about self-descriptions.
    for name in ("pets", "pets-ood", "hh-users"):
        assert all(u.profile is None for u in suites[name].users), name
        assert not suites[name].self_descriptions
    assert "self-description" in suites["contexts"].self_descriptions


def test_unknown_suite_is_an_error():
    with pytest.raises(ValueError, match="unknown suite"):
        build_suite("nope")
