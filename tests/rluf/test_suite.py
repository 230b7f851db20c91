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
    assert all(r.benchmark == "rluf" and r.split == "all" for r in results)
    # the unguarded love-only policy may use sign-offs; every judged policy never does
    for name, cfg in POLICIES:
        if "signoff" in cfg.get("judges", ["signoff"]):
            assert details["policies"][name]["signoff_rate"] == 0.0, name
    rows = (tmp_path / "responses" / "w0.3.jsonl").read_text().splitlines()
    assert len(rows) == 25 and set(json.loads(rows[0])) == {"prompt", "response"}
