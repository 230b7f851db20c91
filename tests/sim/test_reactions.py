"""Reaction logs: calibrated base rate, segments, the sign-off cue, adversaries, A/B helpers."""

from __future__ import annotations

import gzip
import math
import random

import numpy as np
import pytest

from pluralign.data.corpora import load_hh_pairs, load_real_responses
from pluralign.sim.features import COMPANIONSHIP_SEGMENTS, helpfulness, segment
from pluralign.sim.reactions import ab_test, react, reaction_population, signoff_ab, simulate_reaction_log
from pluralign.sim.responses import add_signoff

BASE = 0.05


@pytest.fixture(scope="module")
def log():
    return simulate_reaction_log(n_users=60, per_user=25, base_rate=BASE, adversarial_frac=0.15, seed=3,
                                 signoff_share=0.15, return_users=True)


def test_deterministic_given_seed(log):
    again = simulate_reaction_log(n_users=60, per_user=25, base_rate=BASE, adversarial_frac=0.15, seed=3,
                                  signoff_share=0.15)
    assert [u.model_dump_json() for u in again] == [u.model_dump_json() for u in log[0]]


def test_schema_fields_and_time_spread(log):
    records, _ = log
    kinds = {u.meta["kind"] for u in records}
    assert kinds == {"normal", "random", "inverter", "spammer"}
    ts = [r.timestamp for u in records for r in u.reactions]
    assert max(ts) - min(ts) > 20 * 86400  # spread over weeks: a chronological split exists
    for u in records:
        assert all(r.kind == "love" and r.value in (0.0, 1.0) and r.p_true is not None for r in u.reactions)
        assert all(r.meta["segment"] == segment(r.prompt) for r in u.reactions)
        assert all(r.item_id.startswith(r.topic + ":") for r in u.reactions)
    prompt_of_topic = {}
    for u in records:
        for r in u.reactions:  # the topic is the prompt id: one prompt per topic
            assert prompt_of_topic.setdefault(r.topic, r.prompt) == r.prompt


def test_base_rate_calibrated_and_most_responses_unreacted(log):
    records, _ = log
    honest = [r for u in records if u.meta["kind"] == "normal" for r in u.reactions]
    p = np.array([r.p_true for r in honest])
    v = np.array([r.value for r in honest])
    assert p.mean() == pytest.approx(BASE, abs=1e-3)
    assert abs(v.mean() - BASE) < 4 * math.sqrt(BASE * (1 - BASE) / len(v))
    allv = [r.value for u in records for r in u.reactions]
    assert np.mean(allv) < 0.15


def test_companionship_segments_love_more(log):
    records, _ = log
    p = {}
    for u in records:
        if u.meta["kind"] == "normal":
            for r in u.reactions:
                p.setdefault(r.meta["segment"] in COMPANIONSHIP_SEGMENTS, []).append(r.p_true)
    assert np.mean(p[True]) > 1.5 * np.mean(p[False])


def test_inverter_anti_correlates_with_honest_users(log):
    _, sims = log
    honest = [u for u in sims.values() if u.kind == "normal"]
    inverter = next(u for u in sims.values() if u.kind == "inverter")
    items = random.Random(0).sample(load_real_responses(), 300)
    h = np.array([np.mean([u.p_love(i.prompt, i.response) for u in honest]) for i in items])
    inv = np.array([inverter.p_love(i.prompt, i.response) for i in items])
    assert np.corrcoef(np.log(h), np.log(inv))[0, 1] < -0.2


def test_random_and_spammer_ignore_content(log):
    records, sims = log
    for u in records:
        sim = sims[u.user_id]
        if u.meta["kind"] == "random":
            assert len({r.p_true for r in u.reactions}) == 1
        if u.meta["kind"] == "spammer":
            inside = [r.value for r in u.reactions if sim.in_burst(r.timestamp)]
            outside = [r.value for r in u.reactions if not sim.in_burst(r.timestamp)]
            assert inside and np.mean(inside) > 0.5 and np.mean(outside) < 0.05


def test_signoff_cue_raises_love_for_susceptible_users_and_lowers_helpfulness(log):
    _, sims = log
    fans = [u for u in sims.values() if u.kind == "normal" and u.persona.signoff_love > 0]
    critics = [u for u in sims.values() if u.kind == "normal" and u.persona.signoff_love <= 0]
    items = [i for i in load_real_responses() if segment(i.prompt) in COMPANIONSHIP_SEGMENTS][:60]
    rng = random.Random(0)
    signed = [add_signoff(i.response, rng) for i in items]
    prompts = [i.prompt for i in items]

    def mean_love(users, responses):
        return np.mean([u.p_love(p, r) for u in users for p, r in zip(prompts, responses, strict=True)])

    assert mean_love(fans, signed) > 1.3 * mean_love(fans, [i.response for i in items])
    assert mean_love(critics, signed) < mean_love(critics, [i.response for i in items])
    assert np.mean([helpfulness(p, r) for p, r in zip(prompts, signed, strict=True)]) < \
        np.mean([helpfulness(i.prompt, i.response) for i in items])


def test_ab_test_and_react():
    users = reaction_population(30, base_rate=0.05, adversarial_frac=0.0, susceptible_frac=0.8, seed=1,
                                calibration_per_user=10)
    items = [i for i in load_real_responses() if segment(i.prompt) == "role-play"][:80]
    prompts = [i.prompt for i in items]
    rng = random.Random(1)
    a = [i.response for i in items]
    b = [add_signoff(r, rng) for r in a]
    out = ab_test(users, prompts, a, b, seed=0)
    assert out.relative_change > 0.1 and out.segment_change["role-play"] > 0.1
    batch = react(users, prompts, a, seed=0)
    assert batch.loves.shape == (len(items),) and set(np.unique(batch.loves)) <= {0.0, 1.0}
    assert batch.user_ids[0] == users[0].user_id and batch.user_ids[30] == users[0].user_id
    with pytest.raises(ValueError, match="differ in length"):
        react(users, prompts, a[:-1])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="base_rate"):
        simulate_reaction_log(n_users=5, per_user=2, base_rate=0.0)
    with pytest.raises(ValueError, match="adversary_kinds"):
        simulate_reaction_log(n_users=5, per_user=2, adversary_kinds=("troll",))


def test_signoff_ab_shows_the_reward_hack():
    # A mostly susceptible population: small samples stay clear of the population-mix noise.
    out = signoff_ab(n_users=20, n_items=400, susceptible_frac=1.0, seed=0)
    assert out["love_b"] > 1.1 * out["love_a"] and out["helpfulness_b"] < out["helpfulness_a"] - 0.05
    companion = [v for k, v in out["segment_change"].items() if k in COMPANIONSHIP_SEGMENTS]
    assert len(companion) == 3 and np.mean(companion) > out["segment_change"]["knowledge"] + 0.2


def test_corrupt_shared_data_names_file_line_and_field(tmp_path):
    bad = tmp_path / "hh-rlhf-test" / "helpful-base"
    bad.mkdir(parents=True)
    with gzip.open(bad / "test.jsonl.gz", "wt") as fh:
        fh.write('{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: a", "rejected": "\\n\\nHuman: hi\\n\\nAssistant: b"}\n')
        fh.write('{"chosen": "x"}\n')
    with pytest.raises(ValueError, match=r"test.jsonl.gz:2: fields 'chosen'/'rejected'"):
        load_hh_pairs(str(tmp_path), ("helpful-base",))
