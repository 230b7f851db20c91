"""Every registered method fits and scores on a tiny real suite; ICL truncation is counted; the registry extends."""

import numpy as np
import pytest

from pluralign.evaluation.methods import METHODS, make_method
from pluralign.evaluation.methods.latent import LatentConfig
from pluralign.evaluation.methods.summary import load_summaries
from pluralign.training.rm_config import RMConfig


def _eval(split, k=12):
    return split.eval["seen-users"][:k] + split.eval["new-users"][:k]


@pytest.mark.parametrize("name", ["bt", "icl", "oracle", "group", "summary"])
def test_rm_methods_fit_and_score(name, pets_split, tiny_rm):
    summaries = {e.user_id: f"summary of {e.user_id}" for v in [pets_split.train, *pets_split.eval.values()]
                 for e in v}
    method = make_method(name, rm_config=tiny_rm, summaries=summaries)
    if hasattr(method, "use_truth"):
        method.use_truth(pets_split.truth)
    method.fit(pets_split.train[:16], seed=0)
    examples = _eval(pets_split)
    margins = method.score_pairs(examples)
    assert margins.shape == (len(examples),) and np.isfinite(margins).all()
    assert len(set(np.round(margins, 6))) > 1  # the model actually reads its inputs
    tokens = method.tokens_per_pair(examples)
    assert 0 < tokens <= 2 * tiny_rm.max_length
    if name in ("icl", "oracle", "summary"):
        bare = make_method("bt", rm_config=tiny_rm)
        bare.model = method.model
        assert tokens > bare.tokens_per_pair(examples)  # the conditioning text is part of the input


def test_latent_fits_scores_and_handles_new_users(pets_split):
    method = make_method("latent", latent_config=LatentConfig(steps=20, batch_size=16, eval_every=5))
    method.fit(pets_split.train, seed=0, validation=pets_split.validation)
    # Early stopping read the validation split: four checks, and the kept step is the one with the lowest loss.
    assert [s for s, _ in method.val_history] == [5, 10, 15, 20]
    assert method.chosen_steps == min(method.val_history, key=lambda x: x[1])[0]
    new = pets_split.eval["new-users"]
    margins = method.score_pairs(new)
    assert margins.shape == (len(new),) and np.isfinite(margins).all()
    # Swapping chosen and rejected negates the margin: the score is a function of the pair, not its order.
    swapped = [type(e)(e.user_id, e.context, e.target.model_copy(update={"chosen": e.target.rejected,
                                                                         "rejected": e.target.chosen}), e.split)
               for e in new]
    assert np.allclose(method.score_pairs(swapped), -margins, atol=1e-5)
    assert method.tokens_per_pair(new) > 0


def test_icl_truncation_is_counted(pets_split):
    examples = pets_split.eval["seen-users"][:8]
    short = make_method("icl", rm_config=RMConfig(max_length=96, max_steps=1, batch_size=4, bf16=False))
    short.fit(pets_split.train[:4], seed=0)
    cut = short.extra_metrics(examples)
    assert cut["truncated_share"] == 1.0 and cut["tokens_cut_per_pair"] > 0
    short_tokens = short.tokens_per_pair(examples)
    assert short_tokens <= 2 * 96
    roomy = make_method("icl", rm_config=RMConfig(max_length=512, max_steps=1, batch_size=4, bf16=False))
    roomy.model = short.model  # same weights; only the length budget differs
    roomy.model.max_length = 512
    assert roomy.extra_metrics(examples) == {"truncated_share": 0.0, "tokens_cut_per_pair": 0.0}
    # What the short budget cut is exactly what the roomy one reads on top (prompts and responses fit in both).
    assert roomy.tokens_per_pair(examples) - short_tokens == pytest.approx(cut["tokens_cut_per_pair"])


def test_oracle_reads_the_truth_table_never_the_context(pets_split, tiny_rm):
    # The bench's examples carry no persona; without the split's truth table the oracle has nothing to read.
    assert all(e.context.persona is None for e in pets_split.train)
    with pytest.raises(ValueError, match="persona"):
        make_method("oracle", rm_config=tiny_rm).fit(pets_split.train[:2], seed=0)
    oracle = make_method("oracle", rm_config=tiny_rm)
    oracle.use_truth(pets_split.truth)
    e = pets_split.train[0]
    assert oracle.conditioning(e) == pets_split.truth.persona[e.user_id]
    assert "loves" in oracle.conditioning(e) or "love" in oracle.conditioning(e)


def test_registry_unknown_method_and_one_line_extension(monkeypatch):
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        make_method("nope")
    monkeypatch.setitem(METHODS, "bt-again", "pluralign.evaluation.methods.bt:BradleyTerryMethod")
    assert make_method("bt-again", rm_config=RMConfig(max_steps=1)).name == "bt"


def test_summary_method_needs_summaries_and_reports_bad_files(tmp_path):
    with pytest.raises(ValueError, match="--summaries"):
        make_method("summary")
    good = tmp_path / "s.jsonl"
    good.write_text('{"user_id": "u1", "summary": "likes cats"}\n{"user_id": "u1", "summary": "likes dogs"}\n')
    assert load_summaries(good) == {"u1": "likes dogs"}  # the latest line wins, as in SummaryStore
    as_json = tmp_path / "s.json"
    as_json.write_text('{"u1": "likes cats", "u2": "likes fish"}')
    assert load_summaries(as_json)["u2"] == "likes fish"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "u1", "summary": "ok"}\n{"user_id": "u2"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'summary'"):
        load_summaries(bad)


@pytest.mark.slow
def test_oracle_beats_bt_on_tiny_pets(pets_split):
    """The true persona makes every pets pair decidable; with no user information BT cannot exceed chance."""
    from pluralign.evaluation.metrics import pairwise_accuracy

    examples = pets_split.eval["seen-users"] + pets_split.eval["new-users"]
    acc = {}
    for name in ("oracle", "bt"):
        method = make_method(name, rm_config=RMConfig(max_length=96, max_steps=16, batch_size=8, lr=3e-4,
                                                      bf16=False))
        if name == "oracle":
            method.use_truth(pets_split.truth)
        method.fit(pets_split.train, seed=0)
        acc[name] = pairwise_accuracy(method.score_pairs(examples))
    assert acc["oracle"] >= 0.85, acc
    assert acc["oracle"] - acc["bt"] >= 0.3, acc
