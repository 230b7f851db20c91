"""The bench harness end to end on the real (quick) pets suite, the results contract, and bad input."""

import dataclasses
import json
import math

import pytest

from pluralign.evaluation.bench import accuracy_of, run_suite
from pluralign.evaluation.results import OPTIONAL_FIELDS, REQUIRED_FIELDS, SPLITS

FIELDS = {"benchmark", "method", "split", "metric", "value", "n", "ci_low", "ci_high", "seconds", "ci_unit",
          "n_users"}


@pytest.mark.slow  # a quick bench over every default method: over 40 s of CPU
def test_bench_writes_the_results_contract(tmp_path, tiny_rm):
    out = tmp_path / "pets"
    tiny_rm = dataclasses.replace(tiny_rm, eval_steps=1, keep_best=True)  # the budget is chosen on validation users
    results = run_suite("pets", out, quick=True, methods=["bt", "latent"], rm_config=tiny_rm,
                        max_eval_per_split=10, echo=False)
    rows = json.loads((out / "results.json").read_text())
    assert (out / "report.md").read_text().startswith("# pluralign bench: pets")
    assert len(rows) == len(results) > 0
    assert set(REQUIRED_FIELDS) == FIELDS
    assert all(FIELDS <= set(r) <= FIELDS | set(OPTIONAL_FIELDS) for r in rows)
    assert all(r["seed"] == 0 for r in rows)
    assert {r["split"] for r in rows} <= set(SPLITS) | {"all", "validation"}
    for method in ("bt", "latent", "bayes", "keyword"):
        for split in SPLITS:
            acc = [r for r in rows if r["method"] == method and r["split"] == split and r["metric"] == "accuracy"]
            assert len(acc) == 1, (method, split)
            assert 0 <= acc[0]["value"] <= 1 and acc[0]["ci_low"] <= acc[0]["value"] <= acc[0]["ci_high"]
            assert acc[0]["n"] == 10 and acc[0]["ci_unit"] == "user" and 1 <= acc[0]["n_users"] <= 10
    # Tuning reads the validation users (bayes is no method: it has no validation record).
    assert {r["method"] for r in rows if r["split"] == "validation" and r["metric"] == "accuracy"} == {
        "bt", "latent", "keyword"}
    # Paired comparisons: every learned method against bt and against the keyword floor, on every split.
    diffs = {(r["method"], r["split"]): r for r in rows if r["metric"] == "accuracy_diff"}
    assert {m for m, _ in diffs} == {"latent-vs-bt", "latent-vs-keyword", "bt-vs-keyword"}
    acc = {(r["method"], r["split"]): r["value"] for r in rows if r["metric"] == "accuracy"}
    for split in SPLITS:
        d = diffs[("latent-vs-keyword", split)]
        assert d["value"] == pytest.approx(acc[("latent", split)] - acc[("keyword", split)])
        assert d["ci_low"] <= d["value"] <= d["ci_high"] and d["ci_unit"] == "user"
    report = (out / "report.md").read_text()
    assert "## The floor: `keyword`" in report and "cluster bootstrap over users" in report
    metrics = {(r["method"], r["metric"]) for r in rows}
    for method in ("bt", "latent"):
        assert {(method, "tokens_per_pair"), (method, "train_seconds"), (method, "peak_rss_mb")} <= metrics
    assert ("bayes", "expected_accuracy") in metrics
    chosen = [r["value"] for r in rows if r["method"] == "bt" and r["metric"] == "chosen_steps"]
    assert chosen and all(v in (1, 2) for v in chosen)  # the step kept by the validation check
    rss = [r["value"] for r in rows if r["metric"] == "peak_rss_mb"]
    assert all(v > 50 for v in rss)  # a process holding torch and MiniLM is well over 50 MB
    # The simulator's pets pairs are all contested but labels are only noisy, so the Bayes rule is far above chance.
    assert accuracy_of(results, "bayes", "seen-users") > 0.6
    assert math.isnan(accuracy_of(results, "oracle", "seen-users"))
    # Each method was saved as it finished; a re-run with the same settings reuses them (same numbers, no training),
    # a changed setting or resume=False trains again.
    saved = out / "methods" / "seed0"
    assert (saved / "bt.json").exists() and (saved / "latent.json").exists()
    (saved / "latent.json").write_text((saved / "latent.json").read_text().replace(
        '"train_seconds", "value": ', '"train_seconds", "value": 1000'))
    again = run_suite("pets", out, quick=True, methods=["bt", "latent"], rm_config=tiny_rm, max_eval_per_split=10,
                      echo=False)
    assert [r.value for r in again if r.metric == "accuracy"] == [r.value for r in results if r.metric == "accuracy"]
    assert any(r.metric == "train_seconds" and r.value >= 1000 for r in again)  # came from the saved file
    fresh = run_suite("pets", out, quick=True, methods=["latent"], rm_config=tiny_rm, max_eval_per_split=10,
                      echo=False, resume=False)
    assert all(r.value < 1000 for r in fresh if r.metric == "train_seconds")


@pytest.mark.slow  # two quick bench runs: over 25 s of CPU
def test_several_seeds_give_per_seed_records_and_pooled_ones(tmp_path):
    out = tmp_path / "seeds"
    results = run_suite("pets-ood", out, quick=True, methods=["latent"], seeds=[0, 1], max_eval_per_split=12,
                        echo=False)
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == len(results)
    per_seed = [r for r in rows if "seed" in r]
    pooled = [r for r in rows if "seeds" in r]
    assert {r["seed"] for r in per_seed} == {0, 1} and pooled
    assert all(r["seeds"] == [0, 1] for r in pooled)
    for method in ("latent", "keyword", "bayes"):
        seeds = [r["value"] for r in per_seed if (r["method"], r["split"], r["metric"]) ==
                 (method, "new-users", "accuracy")]
        agg = [r for r in pooled if (r["method"], r["split"], r["metric"]) == (method, "new-users", "accuracy")]
        assert len(seeds) == 2 and len(agg) == 1
        a = agg[0]
        assert a["value"] == pytest.approx(sum(seeds) / 2)
        assert a["seed_min"] == pytest.approx(min(seeds)) and a["seed_max"] == pytest.approx(max(seeds))
        assert a["ci_low"] <= a["value"] <= a["ci_high"] and a["ci_unit"] == "user"
    assert any(r["method"] == "latent-vs-keyword" and r["metric"] == "accuracy_diff" for r in pooled)
    report = (out / "report.md").read_text()
    assert "mean ± SD over seeds 0, 1" in report and "## accuracy (%) per seed" in report
    assert (out / "methods" / "seed1" / "latent.json").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "nope"}, "unknown suite"),
    ({"name": "pets", "methods": ["bt", "vpl"]}, "unknown method"),
    ({"name": "pets", "methods": ["summary"]}, "--summaries"),
    ({"name": "polis"}, "--polis-dir"),
    ({"name": "polis", "polis_dir": "/nonexistent/polis"}, "does not exist"),
])
def test_bad_input_fails_before_anything_is_written(tmp_path, kwargs, message):
    out = tmp_path / "out"
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        run_suite(out_dir=out, quick=True, echo=False, **kwargs)
    assert not out.exists()


def test_bad_summaries_file_names_the_line(tmp_path):
    bad = tmp_path / "s.jsonl"
    bad.write_text('{"user_id": "u1", "summary": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match=r"s.jsonl:2"):
        run_suite("pets", tmp_path / "out", quick=True, summaries=bad, echo=False)
    assert not (tmp_path / "out").exists()


def test_context_source_keeps_only_one_kind_of_history():
    from pluralign.evaluation.suite_splits import build_simulated_split, restrict_context

    split = build_simulated_split("contexts", seed=0, quick=True)
    only = restrict_context(split, "conversations")
    examples = only.train + [e for v in only.eval.values() for e in v]
    assert examples and all(not e.context.pairs and e.context.profile is None for e in examples)
    assert any(e.context.conversations for e in examples)
    assert [e.target.pair_id for e in only.train] == [e.target.pair_id for e in split.train]
    assert any(e.context.pairs for e in split.train)  # the original split is untouched
    prof = restrict_context(split, "profile")
    assert all(not e.context.pairs and not e.context.conversations for e in prof.train)
    assert any(e.context.profile for e in prof.train)
    with pytest.raises(ValueError, match="context source"):
        restrict_context(split, "tweets")
