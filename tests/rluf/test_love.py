"""P[Love]: chronological split, prior-shift calibration, persistence, HF backbones, bad input, CLI."""

import json

import numpy as np
import pytest

from pluralign.cli import main
from pluralign.data.io import write_users
from pluralign.models.love import LoveModel, NgramEncoder, TextEncoder
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import chrono_split, reaction_table, select_C, train_love


def test_chrono_split_holds_out_the_latest(reaction_log):
    table = reaction_table(reaction_log)
    tr, te = chrono_split(table, 0.2)
    t = np.array(table.timestamps)
    assert len(te) == round(0.2 * len(table)) and t[tr].max() <= t[te].min()


def test_p_love_learns_and_prior_correction_calibrates(honest_log):
    res = train_love(honest_log, LoveConfig(defence=False, target_pos_share=0.3))
    m = res.metrics
    assert m["auroc"] > 0.6, m  # real signal on the chronological test split
    # trained at a 30% positive share, raw outputs are too high; the analytic shift brings them to the live rate
    assert m["ece"] < 0.75 * m["ece_raw"], m
    raw = res.model.predict_proba(["hi"], ["hello"], corrected=False)[0]
    cor = res.model.predict_proba(["hi"], ["hello"])[0]
    assert cor < raw and res.model.train_prior == pytest.approx(0.3)
    assert res.model.live_prior == pytest.approx(float(np.mean(
        reaction_table(honest_log).labels[res.train_idx])))


def test_save_load_round_trip(tmp_path, reaction_log):
    res = train_love(reaction_log, LoveConfig(defence=False, personalised=True))
    table = reaction_table(reaction_log[:3])
    res.model.save_pretrained(tmp_path / "m")
    again = LoveModel.from_pretrained(tmp_path / "m")
    a = res.model.predict_proba(table.prompts, table.responses, table.summaries)
    b = again.predict_proba(table.prompts, table.responses, table.summaries)
    np.testing.assert_allclose(a, b)
    assert again.personalised and (a > 0).all() and (a < 1).all()


def test_any_hf_backbone(tiny_encoder_dir, reaction_log):
    users = reaction_log[:30]
    res = train_love(users, LoveConfig(backbone=tiny_encoder_dir, defence=False, max_length=32))
    assert isinstance(res.model.encoder, TextEncoder)
    table = reaction_table(users[:2])
    p = res.model.predict_proba(table.prompts, table.responses)
    assert p.shape == (len(table),) and np.isfinite(p).all()


def test_bad_reaction_value_names_line_and_field(tmp_path, reaction_log):
    bad = [u.model_copy(deep=True) for u in reaction_log[:3]]
    bad[1].reactions[2].value = 0.5
    f = tmp_path / "bad.jsonl"
    write_users(f, bad)
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'reactions.2.value'"):
        from pluralign.data.io import read_users

        train_love(read_users(f), LoveConfig(), source=str(f))
    assert main(["train", "love", "--data", str(f), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


def test_cli_train_love(tmp_path, reaction_log):
    f = tmp_path / "log.jsonl"
    write_users(f, reaction_log)
    rc = main(["train", "love", "--data", str(f), "--out", str(tmp_path / "m"), "defence=false", "C=0.5"])
    assert rc == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert {"auroc", "oracle_auroc", "ece", "ece_raw", "length_r"} <= set(metrics)
    assert json.loads((tmp_path / "m" / "love_config.json").read_text())["C"] == 0.5


def test_select_C_never_looks_at_the_test_split(honest_log):
    table = reaction_table(honest_log)
    cfg = LoveConfig(defence=False, target_pos_share=0.3)
    best, scores = select_C(table, cfg, grid=(0.1, 1.0, 10.0))
    assert set(scores) == {0.1, 1.0, 10.0} and best in scores and all(0.0 <= v <= 1.0 for v in scores.values())
    _, test_idx = chrono_split(table, cfg.test_fraction)
    table.labels[test_idx] = 1.0 - table.labels[test_idx]  # scramble the test split: the choice must not move
    assert select_C(table, cfg, grid=(0.1, 1.0, 10.0)) == (best, scores)


def test_ngram_transform_hashes_repeated_texts_once_with_the_same_result():
    enc = NgramEncoder()
    texts = ["Hello there!", "Sure, here you go \U0001F60A", "Hello there!", "bye", "Sure, here you go \U0001F60A"]
    assert np.array_equal(enc.transform(texts).toarray(), enc._vec.transform(texts).toarray())
