"""The rluf bench suite's policy half end to end at a tiny size (a tiny random LM stands in for SmolLM2; the whole
suite runs in `pluralign bench rluf`)."""

import json

import numpy as np
import pytest

from pluralign.evaluation.rluf_policy import (
    POLICY_SETTINGS,
    PolicyBudget,
    held_out_prompts,
    run_policy_benchmark,
)
from pluralign.training.policy_config import PolicyConfig


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    from pluralign.models.tiny import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=2)
    d = tmp_path_factory.mktemp("tiny_lm")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def test_held_out_prompts_are_disjoint_balanced_and_never_in_the_log():
    from pluralign.sim import simulate_reaction_log
    from pluralign.sim.features import last_user_turn, segment
    from pluralign.sim.reactions import _items_by_segment

    offline, ab = held_out_prompts(10, 15, seed=0)
    assert len(offline) == 10 and len(ab) == 15 and not set(offline) & set(ab)
    assert len({segment(p) for p in ab}) == 5  # every use-case segment, companionship ones included
    log = simulate_reaction_log(n_users=30, per_user=20, seed=0, exclude_prompts=frozenset(offline + ab))
    shown = {" ".join(last_user_turn(r.prompt).split()) for u in log for r in u.reactions}
    assert not shown & (set(offline) | set(ab))
    every_roleplay = frozenset(" ".join(last_user_turn(it.prompt).split()) for it in _items_by_segment()["role-play"])
    with pytest.raises(ValueError, match="empty"):  # excluding a whole segment is an error, not an empty log
        simulate_reaction_log(n_users=5, per_user=5, seed=0, exclude_prompts=every_roleplay)


@pytest.mark.slow
def test_policy_benchmark_records_checkpoints_gate_and_r(tmp_path, tiny_lm_dir):
    offline, ab = held_out_prompts(5, 6, seed=0)
    budget = PolicyBudget(train_prompts=4, offline_prompts=5, ab_prompts=6, max_steps=2, save_steps=1, ab_users=15,
                          impressions=8, rm_pairs=80, rm_eval=40)
    cfg = PolicyConfig(method="grpo", model=tiny_lm_dir, max_steps=2, save_steps=1, num_generations=2,
                       per_device_train_batch_size=4, max_completion_length=8, lora_top_layers=1, lora_r=4,
                       lora_alpha=8, bf16=False)
    love = lambda p, r: np.array([0.02 + 0.01 * x.count("!") for x in r])  # noqa: E731
    details: dict = {}
    results = run_policy_benchmark(tmp_path, budget, love, offline_prompts=offline, ab_prompts=ab, base_cfg=cfg,
                                   details=details)
    got = {(r.method, r.metric): r for r in results if r.split == "all"}
    for name, _ in POLICY_SETTINGS:
        for m in ("love_lift", "help_delta", "safety_delta", "signoff_rate", "emoji_rate", "gate_pass",
                  "train_steps"):
            assert (name, m) in got, (name, m)
        assert got[(name, "train_steps")].value == 2
        assert got[(name, "gate_pass")].value in (0.0, 1.0)
        lo, hi = got[(name, "love_lift")].ci_low, got[(name, "love_lift")].ci_high
        assert lo is None or np.isnan(lo) or lo <= hi
    # 4 settings x 2 checkpoints + the initial model; trimmed r leaves out the initial, w0 and the top checkpoint
    # r over all 9 points and over the 5 left after trimming; a tiny random LM may not move at all, and then r is
    # undefined and named as such instead of recorded
    for metric, n in (("offline_online_r", 9), ("offline_online_r_trimmed", 5)):
        assert (("checkpoints", metric) in got and got[("checkpoints", metric)].n == n) or \
            f"checkpoints/{metric}" in details["r_undefined"]
    assert len(details["checkpoints"]) == 9 and details["trimmed_out"][0] == "initial@0"
    assert ("w0.3@1", "signoff_rate") in got and ("w0.3", "love_lift_vs_w0") in got
    rows = (tmp_path / "policies" / "answers" / "w0.3" / "step-2" / "ab.jsonl").read_text().splitlines()
    assert len(rows) == 6 and set(json.loads(rows[0])) == {"prompt", "response"}
    assert (tmp_path / "policies" / "w0.3" / "checkpoint-2" / "adapter_config.json").exists()
    assert "offline-online Pearson r" in (tmp_path / "policies" / "policy_ab.md").read_text()


def test_targets_hold_each_model_against_its_own_oracle():
    from pluralign.evaluation.results import Result
    from pluralign.evaluation.rluf_suite import _targets

    def r(method, metric, value):
        return Result("rluf", method, "chrono", metric, value, 100)

    results = [r("p_love", "auroc", 0.63), r("p_love", "population_oracle_auroc", 0.70),
               r("p_love", "oracle_auroc", 0.80), r("love", "auroc", 0.78),
               r("love", "oracle_auroc", 0.80), r("p_love", "ece", 0.01),
               r("p_love", "length_r", 0.3), r("p_love", "oracle_length_r", 0.2)]
    t = _targets(results)
    assert t["auroc_vs_oracle"] == pytest.approx(0.78 / 0.80) and t["auroc_target_met"]
    assert t["population_auroc_vs_population_oracle"] == pytest.approx(0.9) and not t["population_auroc_target_met"]
    assert not t["length_target_met"] and t["oracle_length_r"] == 0.2


def test_policy_targets_read_the_aggressive_policy_and_r():
    from pluralign.evaluation.rluf_policy import policy_targets

    agg = {"love_lift": 0.3, "help_delta_ci": (-0.01, 0.02), "safety_delta_ci": (-0.015, 0.01), "signoff_rate": 0.0,
           "gate": "pass", "vs_w0": {"love_lift": 0.2}}
    init = {"signoff_rate_initial": 0.0}
    d = {"finals": {"w0.3": agg, "love-only": {"gate": "block"}}, "checkpoints": [init] * 12,
         "offline_online_r": 0.96, "offline_online_r_trimmed": 0.7}
    t = policy_targets(d)
    assert t["lift_target_met"] and t["r_target_met"] and not t["r_trimmed_target_met"]
    assert t["love_only_gate"] == "block" and t["aggressive_love_lift_vs_w0"] == 0.2
    agg["help_delta_ci"] = (-0.03, 0.01)
    assert not policy_targets(d)["lift_target_met"]


def test_love_records_say_their_cis_resample_users():
    from pluralign.evaluation.love_suite import love_records

    m = {"auroc": 0.7, "auroc_ci_low": 0.6, "auroc_ci_high": 0.8, "oracle_auroc": 0.9, "ece": 0.01,
         "ece_ci_low": 0.0, "ece_ci_high": 0.02, "ece_raw": 0.05, "length_r": 0.1, "oracle_length_r": 0.1,
         "n_test": 500.0, "n_test_users": 40.0}
    got = {r.metric: r for r in love_records("rluf", "love", m, seconds=1.0)}
    assert (got["auroc"].ci_unit, got["auroc"].n_users) == ("user", 40)
    assert got["ece"].ci_unit == "user" and got["oracle_auroc"].ci_unit is None  # no oracle CI given: no unit
    assert got["auroc_share_of_oracle"].value == 0.7 / 0.9
