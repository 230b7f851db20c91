"""The rluf bench suite's policy half end to end on a tiny size (the whole suite runs in `pluralign bench rluf`)."""

import json

import pytest

from pluralign.evaluation.rluf_suite import POLICIES, SuiteSize, policy_section
from pluralign.models.love import NgramEncoder
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import train_love


@pytest.mark.slow
def test_policy_section_metrics_and_files(tmp_path, honest_log):
    love = train_love(honest_log, LoveConfig(defence=False)).model
    size = SuiteSize(n_users=0, per_user=0, n_prompts=25, impressions=8, ab_users=20, rm_pairs=80, rm_eval=40)
    details: dict = {}
    results = policy_section(tmp_path, size, love, NgramEncoder(), details, seed=0)
    names = {r.method for r in results}
    assert {n for n, _ in POLICIES} <= names and "baseline" in names and len(POLICIES) >= 10
    metrics = {(r.method, r.metric) for r in results}
    for m in ("love_lift", "help_delta", "safety_delta", "signoff_rate"):
        assert ("w0.3", m) in metrics
    assert ("all-policies", "offline_online_r") in metrics
    # both AUROC ratios (personalised vs per-user oracle, population vs population oracle) and the length figures
    assert {"auroc_vs_oracle", "population_auroc_vs_population_oracle", "length_r", "oracle_length_r",
            "population_oracle_length_r", "offline_online_target_met"} <= set(details["targets"])
    assert all(r.benchmark == "rluf" and r.split == "all" for r in results)
    # the unguarded love-only policy may use sign-offs; every judged policy never does
    for name, cfg in POLICIES:
        if "signoff" in cfg.get("judges", ["signoff"]):
            assert details["policies"][name]["signoff_rate"] == 0.0, name
    rows = (tmp_path / "responses" / "w0.3.jsonl").read_text().splitlines()
    assert len(rows) == 25 and set(json.loads(rows[0])) == {"prompt", "response"}


def test_targets_hold_each_model_against_its_own_oracle():
    from pluralign.evaluation.results import Result
    from pluralign.evaluation.rluf_suite import _targets

    def r(method, metric, value):
        return Result("rluf", method, "chrono", metric, value, 100)

    results = [r("p_love", "auroc", 0.63), r("p_love", "population_oracle_auroc", 0.70),
               r("p_love", "oracle_auroc", 0.80), r("p_love-personalised", "auroc", 0.78),
               r("p_love-personalised", "oracle_auroc", 0.80), r("p_love", "ece", 0.01),
               r("p_love", "length_r", 0.3), r("p_love", "oracle_length_r", 0.2),
               r("all-policies", "offline_online_r", 0.96)]
    t = _targets(results, {})
    assert t["auroc_vs_oracle"] == pytest.approx(0.78 / 0.80) and t["auroc_target_met"]
    assert t["population_auroc_vs_population_oracle"] == pytest.approx(0.9) and not t["population_auroc_target_met"]
    assert t["offline_online_target_met"] and not t["length_target_met"] and t["oracle_length_r"] == 0.2
