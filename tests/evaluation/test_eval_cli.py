"""`pluralign bench` and `pluralign eval` through the real command line entry point."""

import json

import pytest

from pluralign.cli import main
from pluralign.data.io import write_users
from pluralign.data.schema import PreferencePair, Reaction, UserRecord
from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.training.rm_config import RMConfig
from pluralign.training.rm_trainer import train_reward_model


@pytest.mark.slow  # trains the latent method in a quick bench: > 20 s of CPU
def test_bench_cli_quick_latent(tmp_path, capsys):
    out = tmp_path / "b"
    code = main(["bench", "pets", "--quick", "--methods", "latent", "--max-eval", "8", "--out", str(out)])
    assert code == 0
    rows = json.loads((out / "results.json").read_text())
    # The keyword floor always runs, with the paired comparison of the learned method against it.
    assert {r["method"] for r in rows} == {"latent", "bayes", "keyword", "latent-vs-keyword"}
    assert "| latent |" in capsys.readouterr().out  # the markdown table is printed


def test_bench_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["bench", "polis", "--out", str(tmp_path / "p")]) == 1
    assert "--polis-dir" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["bench", "pets", "--quick", "--seeds", "0,x", "--out", str(tmp_path / "s")]) == 1
    assert "--seeds" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _feedback(path):
    cats = "Cats are calm, independent companions that purr on your lap."
    dogs = "Dogs are loyal, playful companions that love long walks."
    users = [
        UserRecord(user_id=f"u{i}", targets=[
            PreferencePair(pair_id=f"t{i}-{j}", prompt="Which pet should I get?", chosen=a, rejected=b,
                           meta={"split": "new-users" if i % 2 else "seen-users"})
            for j, (a, b) in enumerate([(cats, dogs), (dogs, cats)])],
            reactions=[Reaction(reaction_id=f"r{i}-{k}", prompt="Tell me about a pet.", response=resp,
                                kind="love", value=float(k % 2)) for k, resp in enumerate([cats, dogs, cats, dogs])])
        for i in range(4)
    ]
    write_users(path, users)


def test_eval_cli_scores_targets_and_reactions(tmp_path):
    model = SummaryConditionedRM.from_backbone(max_length=64)
    rows = [{"prompt": "Which pet should I get?", "chosen": "Cats purr.", "rejected": "Dogs bark."}] * 4
    train_reward_model(model, rows, RMConfig(max_length=64, max_steps=1, batch_size=2, bf16=False))
    model.save_pretrained(tmp_path / "rm")
    data = tmp_path / "fb.jsonl"
    _feedback(data)
    summaries = tmp_path / "s.json"
    summaries.write_text(json.dumps({"u0": "I love cats", "u1": "I love dogs"}))
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(tmp_path / "rm"), "--data", str(data), "--summaries", str(summaries),
                 "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())
    got = {(r["split"], r["metric"]): r for r in rows}
    assert set(got) == {("seen-users", "accuracy"), ("new-users", "accuracy"), ("all", "auroc")}
    # each user's two targets are mirror images, so any deterministic scorer gets exactly one of them right
    assert got[("seen-users", "accuracy")]["value"] == 0.5 and got[("seen-users", "accuracy")]["n"] == 4
    assert got[("all", "auroc")]["n"] == 16


def test_eval_cli_bad_data_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"user_id": "u1"}\n{"user_id": "u2", "targets": [{"pair_id": "x"}]}\n')
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(tmp_path / "nowhere"), "--data", str(data), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "targets.0.prompt" in err
    assert not out.exists()
