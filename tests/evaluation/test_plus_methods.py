"""The bench's PLUS methods: ``plus`` on the LLM backend (a tiny causal LM here), its zero-shot summaries from the
same model with the adapter off, ``copy_rate`` among its metrics; ``plus-extractive`` is the statement selector."""

from __future__ import annotations

import pytest

from pet_users import make_users
from pluralign.data.splits import Example
from pluralign.evaluation.methods import make_method
from pluralign.training.plus_config import PlusConfig
from pluralign.training.rm_config import RMConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _examples(users, split: str) -> list[Example]:
    out = []
    for u in users:
        ctx = u.model_copy(update={"pairs": u.pairs[:3]})
        out += [Example(u.user_id, ctx, p, split) for p in u.pairs[3:]]
    return out


def test_plus_on_a_tiny_llm_fits_scores_and_reports_copy_rate():
    users = make_users(8, 5, seed=6)
    train, new = _examples(users[:6], "train"), _examples(users[6:], "new-users")
    cfg = PlusConfig(summarizer="tiny", rm=RMConfig(backbone="tiny", max_length=96, batch_size=4), max_new_tokens=8,
                     lora_r=4, lora_layers=1, epochs=1, rollout_batch_size=3, group_size=2, warm_start_rm_epochs=1,
                     summarizer_lr=1e-3)
    plus = make_method("plus", plus_config=cfg)
    plus.fit(train, seed=0)
    assert [h["step"] for h in plus.history if "reward" in h] == [1, 2]
    assert all("copy_rate" in h and "rollout_seconds" in h for h in plus.history if "reward" in h)
    margins = plus.score_pairs(new)
    assert margins.shape == (len(new),)
    metrics = plus.extra_metrics(new)
    assert 0.0 <= metrics["copy_rate"] <= 1.0 and {"summary_words", "summary_tokens", "context_tokens"} <= set(metrics)
    zero_shot = plus.initial_summaries(new)
    assert len(zero_shot) == len(new) and zero_shot[0] == zero_shot[1]  # one summary per user context


def test_plus_extractive_is_the_statement_selector_and_plus_the_llm():
    assert make_method("plus-extractive").plus_config.backend == "cpu"
    cfg = make_method("plus").plus_config
    assert (cfg.backend, cfg.summarizer, cfg.lora_r, cfg.lora_layers, cfg.algo) == ("hf", "smollm2-135m", 16, 12,
                                                                                      "grpo")
    assert make_method("plus-untrained").plus_config.backend == "hf"
