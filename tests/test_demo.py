"""The demo at a tiny size: every artefact exists, and the report's numbers are results.json's numbers."""

from __future__ import annotations

import json
import re

import pytest

from pluralign.demo import DemoConfig, run_demo
from pluralign.evaluation.stages import StageCache


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(size="tiny", methods=["bt", "oracle", "plus-untrained", "plus"])
    rows = run_demo(cfg, out)
    return out, rows


@pytest.mark.slow
def test_every_artefact_exists(tiny_demo):
    out, rows = tiny_demo
    for name in ("results.json", "report.md", "report.html", "figures/accuracy.png", "figures/p_love.png",
                 "figures/ab_segments.png", "models/p_love", "models/bt", "stages/love.json", "stages/ab.json"):
        assert (out / name).exists(), name
    metrics = {r["metric"] for r in rows}
    assert {"accuracy", "tokens_per_pair", "auroc", "ece", "love_lift", "win_rate"} <= metrics
    assert {r["split"] for r in rows if r["metric"] == "accuracy"} >= {"seen-users", "new-users", "new-topics"}


@pytest.mark.slow
def test_report_numbers_match_results_json(tiny_demo):
    out, _ = tiny_demo
    rows = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    # The "All results" table lists every record with the value as written in results.json.
    for r in rows:
        if r["value"] is None:
            continue
        cell = f"| {r['benchmark']} | {r['method']} | {r['split']} | {r['metric']} | {r['value']:.4f} |"
        assert cell in md, cell
        assert f"<td>{r['value']:.4f}</td>" in html
    # The headline accuracy table agrees too.
    acc = [r for r in rows if r["metric"] == "accuracy" and r["method"] == "oracle" and r["split"] == "new-users"]
    assert acc and f"{100 * acc[0]['value']:.1f}%" in md
    assert not re.search(r"\bnan\b", md)


@pytest.mark.slow
def test_rerun_resumes_from_stages(tiny_demo, monkeypatch):
    out, rows = tiny_demo
    import pluralign.demo as demo

    def boom(*a, **k):
        raise AssertionError("a finished stage was run again")

    monkeypatch.setattr(demo, "run_method_stage", boom)
    monkeypatch.setattr(demo, "run_love_stage", boom)
    monkeypatch.setattr(demo, "run_ab_stage", boom)
    again = run_demo(DemoConfig(size="tiny", methods=["bt", "oracle", "plus-untrained", "plus"]), out)
    strip = [(r["method"], r["split"], r["metric"], r["value"]) for r in rows if r["metric"] != "wall_seconds"]
    assert strip == [(r["method"], r["split"], r["metric"], r["value"]) for r in again
                     if r["metric"] != "wall_seconds"]


def test_a_different_config_in_the_same_folder_is_refused(tmp_path):
    StageCache(tmp_path, {"seed": 0})
    with pytest.raises(ValueError, match="another configuration"):
        StageCache(tmp_path, {"seed": 1})


def test_shipped_demo_configs_load():
    from pathlib import Path

    from pluralign.config import load_config
    from pluralign.training.plus_config import PlusConfig

    root = Path(__file__).resolve().parents[1]
    assert load_config(DemoConfig, root / "configs/demo-cpu.yaml") == DemoConfig()
    gpu = load_config(DemoConfig, root / "configs/demo-paper-gpu.yaml")
    plus = load_config(PlusConfig, root / gpu.plus_config)
    assert (plus.backend, plus.algo, plus.kl_coef, plus.max_new_tokens) == ("hf", "ppo", 0.01, 256)
    assert gpu.rm.backbone == plus.rm.backbone == "Qwen/Qwen2.5-0.5B-Instruct"


def test_missing_polis_dir_fails_before_any_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        run_demo(DemoConfig(polis_dir=str(tmp_path / "nope")), tmp_path / "out")
    assert not (tmp_path / "out" / "stages").exists()
