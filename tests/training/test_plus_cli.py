"""`pluralign train plus` with the paper's GPU config, shrunk to tiny models on CPU: the same code path that
`accelerate launch -m pluralign.cli train plus --config configs/plus-qwen2.5-3b-gpu.yaml` runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pet_users import make_users
from pluralign.cli import main
from pluralign.data.io import write_users
from pluralign.summarizers.store import SummaryStore
from ports import free_port

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
TINY = [arg for kv in ["summarizer=tiny", "rm.backbone=tiny", "max_new_tokens=8", "rollout_batch_size=8",
                       "minibatch_size=8", "rm.max_length=128", "tensorboard=false", "save_steps=0",
                       "summarizer_lr=1e-4", "rm.lr=1e-4"] for arg in ("--set", kv)]


def test_gpu_config_runs_end_to_end_with_tiny_models(tmp_path, capsys):
    data = tmp_path / "users.jsonl"
    write_users(data, make_users(10, 6))
    out = tmp_path / "run"
    rc = main(["train", "plus", "--config", str(ROOT / "configs/plus-qwen2.5-3b-gpu.yaml"), "--train", str(data),
               "--out", str(out), *TINY])
    assert rc == 0
    res = json.loads((out / "train_results.json").read_text())
    assert res["steps"] >= 1 and "new-users" in res["eval"]
    assert (out / "summarizer" / "hf_summarizer.json").exists() and (out / "rm" / "model.safetensors").exists()
    store = SummaryStore(out / "summaries.jsonl")
    assert len(store) > 0 and next(iter(store.latest().values())).summarizer_version.startswith("hf:tiny")
    # new users: summaries by inference from the saved summarizer, no training
    new = tmp_path / "new.jsonl"
    write_users(new, make_users(2, 3, seed=5))
    assert main(["summaries", "generate", "--users", str(new), "--summarizer", str(out / "summarizer"),
                 "--store", str(tmp_path / "new_store.jsonl")]) == 0
    assert len(SummaryStore(tmp_path / "new_store.jsonl")) == 2


def test_bad_training_file_names_line_and_writes_nothing(tmp_path, capsys):
    data = tmp_path / "users.jsonl"
    data.write_text('{"user_id": "a", "pairs": []}\n{"user_id": "b", "pairz": []}\n')
    out = tmp_path / "run"
    assert main(["train", "plus", "--config", str(ROOT / "configs/plus-cpu.yaml"), "--train", str(data),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "users.jsonl:2" in err and "pairz" in err
    assert not out.exists()


def test_two_processes_split_rollouts_and_stay_in_sync(tmp_path):
    """torchrun with 2 CPU processes (gloo): each rolls out half of every batch, gradients are averaged, and the
    replicas end with identical weights (without the averaging their checksums differ)."""
    data = tmp_path / "users.jsonl"
    write_users(data, make_users(12, 6))
    out = tmp_path / "run"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun comes with torch"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "pluralign.cli", "train", "plus",
         "--config", str(ROOT / "configs/plus-qwen2.5-3b-gpu.yaml"), "--train", str(data), "--out", str(out),
         *TINY], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "train_results.json").read_text())
    assert res["processes"] == 2
    a, b = res["replica_checksums"]
    assert abs(a - b) <= 1e-9 * abs(a)
    steps = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps[1]["contexts_per_process"] == 4  # a full rollout batch of 8 contexts split over 2 processes
    assert (out / "rm" / "model.safetensors").exists()
