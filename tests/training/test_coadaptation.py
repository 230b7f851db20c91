"""PLUS co-adaptation on CPU (statement summarizer + MiniLM RM), and summaries as a product: an edit that reverses
a user's preference reverses the RM's predicted choice; new users are summarised by inference alone."""

from __future__ import annotations

import json

import pytest

from pet_users import make_users
from pluralign.summarizers.store import SummaryStore
from pluralign.training.plus_config import PlusConfig
from pluralign.training.plus_trainer import PlusRow, PlusTrainer
from pluralign.training.rm_config import RMConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # trains MiniLM twice over; ~1 min idle, 3-4 min on the shared 2-core box


def _rows(users) -> list[PlusRow]:
    return [PlusRow(u.user_id, u.model_copy(update={"pairs": u.pairs[:3]}), u.pairs[3:]) for u in users]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, encoder):
    from pluralign.summarizers.cpu import CpuSummarizer, CpuSummarizerConfig

    out = tmp_path_factory.mktemp("plus")
    cfg = PlusConfig(backend="cpu", kl_coef=0.0, reward_pairs=1, epochs=2, rollout_batch_size=8, group_size=4,
                     rm=RMConfig(max_length=128, lr=1e-4, batch_size=8), warm_start_rm_epochs=8, rm_passes=3.0, word_budget=14, output_dir=str(out), seed=0)
    summarizer = CpuSummarizer(CpuSummarizerConfig(word_budget=14), encoder=encoder, seed=0)
    trainer = PlusTrainer(cfg, _rows(make_users(8, 6, seed=1)), summarizer=summarizer)
    trainer.train()
    return trainer, out


def test_loop_logs_and_saves_both_models(trained):
    trainer, out = trained
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert recs[0]["phase"] == "warm_start"
    steps = [r for r in recs if "reward" in r]
    assert len(steps) == 2 and all(k in steps[-1] for k in ("reward", "rm_accuracy", "summary_words", "kl"))
    assert all(r["summary_words"] <= 14 for r in steps)
    for part in ("summarizer/scorer.pt", "rm/model.safetensors", "checkpoint-2/state.json", "summaries.jsonl"):
        assert (out / part).exists(), part
    entry = SummaryStore(out / "summaries.jsonl").get("user00")
    assert entry.step == 2 and entry.summarizer_version == trainer.summarizer.version
