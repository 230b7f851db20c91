"""``pluralign train rm``: TRL-style and feedback-file inputs, clear errors that write nothing."""

import json
import shutil
from pathlib import Path

import numpy as np

from pluralign.cli import main
from pluralign.cli.train_rm import load_rows
from pluralign.models.reward_model import SummaryConditionedRM
from ports import free_port


def _write(path, objs):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def test_train_rm_from_trl_rows(tmp_path, capsys):
    rows = [{"prompt": "Describe a pet.", "chosen": f"A dog number {i}.", "rejected": f"A cat number {i}.",
             "summary": "I love dogs."} for i in range(8)]
    train = _write(tmp_path / "train.jsonl", rows)
    out = tmp_path / "rm"
    rc = main(["train", "rm", "--train", str(train), "--eval", str(train), "--out", str(out),
               "--set", "max_steps=2", "--set", "batch_size=4", "--set", "max_length=48", "--set", "logging_steps=1"])
    assert rc == 0
    report = json.loads((out / "train_results.json").read_text())
    assert report["steps"] == 2 and 0.0 <= report["eval_accuracy"] <= 1.0
    rm = SummaryConditionedRM.from_pretrained(out)
    assert rm.max_length == 48 and np.isfinite(rm.score(["Describe a pet."], ["A dog."], ["I love dogs."])).all()
    assert "saved reward model" in capsys.readouterr().out


def test_train_rm_checkpoints_load_and_resume(tmp_path):
    """Every checkpoint-<step> and the final directory are library checkpoints; a stopped run resumes from the
    newest one (the Trainer's own resume: weights, optimizer, schedule, RNG, data order) and ends where an
    uninterrupted run does."""
    from transformers import AutoModel

    rows = [{"prompt": "Describe a pet.", "chosen": f"A dog number {i}.", "rejected": f"A cat number {i}.",
             "summary": "I love dogs."} for i in range(12)]
    train = _write(tmp_path / "train.jsonl", rows)
    common = [f"--set={kv}" for kv in ("batch_size=4", "max_length=48", "logging_steps=1", "bf16=false",
                                       "save_total_limit=0", "max_steps=4", "save_steps=2")]
    out = tmp_path / "rm"
    assert main(["train", "rm", "--train", str(train), "--out", str(out), *common]) == 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert isinstance(AutoModel.from_pretrained(out / "checkpoint-2"), SummaryConditionedRM)
    shutil.rmtree(out / "checkpoint-4")  # as if the run had stopped during step 3
    assert main(["train", "rm", "--train", str(train), "--out", str(out), *common,
                 "--set", "resume_from_checkpoint=latest"]) == 0
    report = json.loads((out / "train_results.json").read_text())
    assert report["steps"] == 4 and report["pairs_seen"] == 2 * 4  # steps 3 and 4 only
    resumed = SummaryConditionedRM.from_pretrained(out)
    straight = tmp_path / "straight"
    assert main(["train", "rm", "--train", str(train), "--out", str(straight), *common[:-1]]) == 0
    probe = (["Describe a pet."] * 2, ["A dog.", "A cat."], ["I love dogs."] * 2)
    np.testing.assert_allclose(resumed.score(*probe), SummaryConditionedRM.from_pretrained(straight).score(*probe),
                               atol=1e-5)


def test_bad_row_names_file_line_field_and_writes_nothing(tmp_path, capsys):
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    train = _write(tmp_path / "train.jsonl", [good, good, {"prompt": "p", "chosen": "a", "rejected": 3}])
    out = tmp_path / "rm"
    assert main(["train", "rm", "--train", str(train), "--out", str(out), "--set", "max_steps=1"]) == 1
    err = capsys.readouterr().err
    assert "train.jsonl line 3: field 'rejected' must be a string" in err
    assert not out.exists()
    assert main(["train", "rm", "--train", str(train), "--out", str(out), "--set", "no_such_field=1"]) == 1
    assert "unknown key 'no_such_field'" in capsys.readouterr().err and not out.exists()


def test_feedback_file_rows_take_the_condition(tmp_path):
    user = {"user_id": "u1", "profile": "I love dogs.", "persona": "dog person",
            "pairs": [{"pair_id": "p1", "prompt": "Pet?", "chosen": "Dog.", "rejected": "Cat."}]}
    path = _write(tmp_path / "users.jsonl", [user])
    assert load_rows(path, "profile")[0]["summary"] == "I love dogs."
    assert load_rows(path, "persona")[0]["summary"] == "dog person"
    assert load_rows(path, "none")[0]["summary"] is None


def test_train_rm_on_two_processes(tmp_path):
    """torchrun with 2 CPU processes (gloo, DDP through accelerate): each takes its share of every batch."""
    import os
    import subprocess
    import sys

    rows = [{"prompt": "Describe a pet.", "chosen": f"A dog number {i}.", "rejected": f"A cat number {i}.",
             "summary": "I love dogs."} for i in range(16)]
    train = _write(tmp_path / "train.jsonl", rows)
    out = tmp_path / "rm"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "pluralign.cli",
                           "train", "rm", "--train", str(train), "--out", str(out), "--set", "max_steps=3",
                           "--set", "batch_size=4", "--set", "max_length=48"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "train_results.json").read_text())
    assert report["steps"] == 3 and report["pairs_seen"] == 3 * 4 * 2
    assert np.isfinite(SummaryConditionedRM.from_pretrained(out).score(["Describe a pet."], ["A dog."])).all()
