"""``pluralign simulate`` writes valid feedback files and rejects bad options without writing."""

from __future__ import annotations

import json

import pytest

from pluralign.cli import main
from pluralign.data.io import read_users


def test_simulate_pets_writes_a_valid_file_and_summary(tmp_path, capsys):
    out, summary = tmp_path / "pets.jsonl", tmp_path / "summary.json"
    assert main(["simulate", "pets", "--quick", "--seed", "2", "--out", str(out), "--summary-out", str(summary)]) == 0
    users = read_users(out)
    info = json.loads(summary.read_text())
    assert info["users"] == len(users) == 24 and info["pairs"] == sum(len(u.pairs) for u in users)
    assert info["bayes_accuracy"] >= 0.97
    assert "bayes_accuracy" in capsys.readouterr().out


def test_simulate_reactions_json_summary(tmp_path, capsys):
    out = tmp_path / "rx.jsonl"
    assert main(["simulate", "reactions", "--quick", "--users", "12", "--per-user", "5", "--base-rate", "0.05",
                 "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["users"] == 12 and info["reactions"] == 60
    assert info["honest_mean_p_true"] == pytest.approx(0.05, abs=1e-3)
    assert all(u.meta["kind"] in ("normal", "random", "inverter", "spammer") for u in read_users(out))


def test_bad_options_fail_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    with pytest.raises(SystemExit) as e:
        main(["simulate", "reactions", "--out", str(out), "--base-rate", "3"])
    assert e.value.code == 2 and "--base-rate" in capsys.readouterr().err
    assert main(["simulate", "reactions", "--quick", "--out", str(out), "--adversary-kinds", "troll"]) == 1
    assert "adversary_kinds" in capsys.readouterr().err
    assert not out.exists()


def test_reactions_config_file_and_flag_override(tmp_path, capsys):
    cfg = tmp_path / "rx.yaml"
    cfg.write_text("n_users: 10\nper_user: 4\nbase_rate: 0.1\nadversary_kinds: [inverter]\nseed: 5\n")
    out = tmp_path / "rx.jsonl"
    assert main(["simulate", "reactions", "--config", str(cfg), "--users", "12", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_users"] == 12 and info["per_user"] == 4 and info["seed"] == 5
    assert info["kinds"] == {"normal": 11, "inverter": 1}
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_user: 10\n")
    assert main(["simulate", "reactions", "--config", str(bad), "--out", str(tmp_path / "y.jsonl")]) == 1
    assert "unknown key 'n_user'" in capsys.readouterr().err and not (tmp_path / "y.jsonl").exists()


def test_same_seed_same_bytes_across_processes(tmp_path):
    """No dependence on Python's per-process hash seed (set iteration order) anywhere in the simulator."""
    import os
    import subprocess
    import sys

    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"rx{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        r = subprocess.run([sys.executable, "-m", "pluralign", "simulate", "reactions", "--users", "6", "--per-user",
                            "3", "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
