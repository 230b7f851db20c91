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
