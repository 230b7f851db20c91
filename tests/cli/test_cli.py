"""The `pluralign` command explains itself and fails clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pluralign.cli import COMMANDS, build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out, f"'{name}' missing from pluralign --help"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "pluralign", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "pluralign" in r.stdout


def test_parser_builds_without_heavy_imports():
    code = ("import sys; from pluralign.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stdout + r.stderr
    assert build_parser().prog == "pluralign"


# --- one override syntax: --config YAML, then --set KEY=VALUE (dotted keys reach into sections) -------------------

CONFIG_COMMANDS = [["train", "rm"], ["train", "plus"], ["train", "love"], ["train", "policy"], ["demo"], ["bench"],
                   ["serve"], ["simulate"]]


@pytest.mark.parametrize("command", CONFIG_COMMANDS, ids=" ".join)
def test_help_of_every_config_command_explains_set(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--set KEY=VALUE" in out


def test_train_help_lists_nested_rm_keys(capsys):
    with pytest.raises(SystemExit):
        main(["train", "plus", "--help"])
    out = capsys.readouterr().out
    assert "rm.lr=5e-05" in out and "rm.backbone=" in out and "dotted KEY reaches into a section" in out


@pytest.mark.parametrize("argv, hint", [
    (["train", "plus", "--train", "u.jsonl", "--out", "o", "epochs=2"], "write --set epochs=2"),
    (["train", "rm", "--train", "t.jsonl", "--out", "o", "lr=1e-4", "max_steps=5"],
     "write --set lr=1e-4 --set max_steps=5"),
    (["demo", "--size", "tiny", "rm.max_steps=4"], "write --set rm.max_steps=4"),
    (["bench", "pets", "--out", "o", "--rm", "max_steps=300"], "--rm was removed: write --set rm.max_steps=300"),
    (["bench", "pets", "--out", "o", "--plus", "epochs=2"], "--plus was removed: write --set plus.epochs=2"),
])
def test_removed_override_forms_fail_with_the_new_spelling(argv, hint, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert hint in capsys.readouterr().err


def test_unknown_options_still_fail_as_before(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--no-such-flag"])
    assert e.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_demo_takes_nested_overrides(monkeypatch, tmp_path, capsys):
    import pluralign.demo

    seen = {}
    monkeypatch.setattr(pluralign.demo, "run_demo", lambda cfg, out: seen.setdefault("cfg", cfg) and [])
    monkeypatch.setattr(pluralign.demo, "summary_table", lambda rows: "")
    rc = main(["demo", "--out", str(tmp_path), "--set", "rm.max_steps=12", "--set", "rm.lr=3e-4",
               "--set", "methods=bt,icl", "--size", "tiny"])
    assert rc == 0
    cfg = seen["cfg"]
    assert (cfg.rm.max_steps, cfg.rm.lr, cfg.rm.max_length, cfg.methods, cfg.size) == (12, 3e-4, 160, ["bt", "icl"],
                                                                                       "tiny")


@pytest.mark.parametrize("argv, message", [
    (["demo", "--set", "rm.lrr=1"], "--set rm.lrr=1: unknown key 'rm.lrr' for DemoConfig; did you mean 'rm.lr'"),
    (["demo", "--set", "rm_max_steps=5"], "did you mean 'rm.max_steps'"),
    (["demo", "--set", "rm.max_steps=many"], "key 'rm.max_steps' expects int, got 'many'"),
    (["bench", "pets", "--out", "o", "--set", "max_steps=5"], "bench settings are rm.KEY"),
    (["bench", "pets", "--out", "o", "--set", "rm.max_steps=x"], "--set rm.max_steps=x: key 'max_steps' expects int"),
    (["bench", "pets", "--out", "o", "--set", "plus.epoch=2"], "--set plus.epoch=2: unknown key 'epoch' for "
                                                                "PlusConfig; did you mean 'epochs'"),
    (["bench", "pets", "--out", "o", "--objective-rm", "sentence-transformers/all-MiniLM-L6-v2"],
     "objective_rm is a setting of the rluf suite, not of 'pets'"),
    (["bench", "rluf", "--out", "o", "--objective-rm", "no/such-model"], "model 'no/such-model' is not a local"),
])
def test_bad_overrides_fail_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "runs").exists()


def test_old_flat_yaml_names_the_nested_key(tmp_path, capsys):
    old = tmp_path / "old-plus.yaml"
    old.write_text("epochs: 1\nrm_lr: 5.0e-5\n")
    assert main(["train", "plus", "--config", str(old), "--train", "u.jsonl", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "old-plus.yaml: unknown key 'rm_lr' for PlusConfig; did you mean 'rm.lr'?" in err
    assert "'rm: {lr: ...}' in YAML" in err


def test_bench_passes_rm_and_plus_sections(monkeypatch, tmp_path):
    import pluralign.evaluation.bench

    seen = {}
    monkeypatch.setattr(pluralign.evaluation.bench, "run_suite", lambda *a, **kw: seen.update(kw))
    assert main(["bench", "pets", "--quick", "--out", str(tmp_path), "--set", "rm.max_steps=7",
                 "--set", "plus.epochs=1", "--set", "plus.rm.lr=2e-4"]) == 0
    rm = seen["rm_config"]
    assert (rm.max_steps, rm.max_length, rm.batch_size, rm.lr) == (7, 160, 8, 1e-4)  # the quick budget + the override
    assert seen["plus_overrides"] == ["epochs=1", "rm.lr=2e-4"]


def test_bench_rluf_passes_the_objective_rm(monkeypatch, tmp_path):
    import pluralign.evaluation.bench

    seen = {}
    monkeypatch.setattr(pluralign.evaluation.bench, "run_suite", lambda *a, **kw: seen.update(kw))
    assert main(["bench", "rluf", "--quick", "--out", str(tmp_path)]) == 0
    assert seen["objective_rm"] == "head"
    assert main(["bench", "rluf", "--out", str(tmp_path), "--objective-rm",
                 "sentence-transformers/all-MiniLM-L6-v2"]) == 0
    assert seen["objective_rm"] == "sentence-transformers/all-MiniLM-L6-v2"
