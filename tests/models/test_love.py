"""P[Love]: chronological split, prior-shift calibration, persistence, HF backbones, bad input, CLI."""

import json

import numpy as np
import pytest

from pluralign.cli import main
from pluralign.data.io import write_users
from pluralign.models.love import LoveModel, NgramEncoder, SentenceEncoder
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
    res = train_love(reaction_log, LoveConfig(defence=False, personalised=True, summarizer="stored"))
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
    assert isinstance(res.model.encoder, SentenceEncoder)
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
    rc = main(["train", "love", "--data", str(f), "--out", str(tmp_path / "m"), "--set", "defence=false",
               "--set", "C=0.5"])
    assert rc == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert {"auroc", "oracle_auroc", "ece", "ece_raw", "length_r"} <= set(metrics)
    assert json.loads((tmp_path / "m" / "love_config.json").read_text())["C"] == 0.5


@pytest.mark.slow  # fits P[Love] for every C on the grid: ~60 s of CPU
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


def test_views_see_a_closing_at_one_scale_whatever_the_length():
    """In the whole-text bag a sign-off weighs less the longer the reply; in the closing window it does not."""
    enc = NgramEncoder()
    short = "Sure thing. Bye! Sending love!"
    long = " ".join(["This is a long and careful answer with many words."] * 30) + " Bye! Sending love!"
    views = enc.views([short, long]).toarray()[:, : enc.n_features]
    shared = np.flatnonzero((views[0] > 0) & (views[1] > 0))  # the closing terms both replies end with
    ratio = views[1, shared] / views[0, shared]
    assert len(shared) >= 4 and ratio.min() > 0.5 and ratio.max() < 2.0, ratio
    body = enc.transform([short, long])
    shared = sorted(set(body[0].indices) & set(body[1].indices))
    assert np.median(body[1, shared].toarray()) < 0.1 * np.median(body[0, shared].toarray())  # shrunk by length


def test_symbol_counts_are_sublinear_and_see_emojis():
    enc = NgramEncoder()
    X = enc.views(["Great! \U0001F60A", "Great!!! \U0001F60A\U0001F60A\U0001F60A", "Great."]).toarray()
    sym = X[:, enc.n_features:]
    assert sym[1].sum() > sym[0].sum() > 0
    assert sym[1].max() == pytest.approx(np.log1p(3))  # three of the same symbol: log1p(3), not 3


def _toy_length_log(n=4000, seed=0):
    """Loves depend on a warm word and, spuriously, on length (long replies were shown to keener users)."""
    rng = np.random.default_rng(seed)
    prompts, responses, labels = [], [], []
    for i in range(n):
        warm = rng.random() < 0.5
        n_words = int(rng.integers(3, 80))
        body = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "omega", "sigma"], size=n_words))
        resp = ("Wonderful! " if warm else "") + body
        z = -3.0 + 1.2 * warm + 1.2 * np.log1p(n_words) / np.log1p(80) * 2
        labels.append(float(rng.random() < 1 / (1 + np.exp(-z))))
        prompts.append(f"question {i % 50}")
        responses.append(resp)
    return prompts, responses, np.array(labels)


@pytest.mark.slow  # ~25 s of CPU
def test_poe_length_debias_lowers_length_correlation_and_keeps_the_real_cue():
    from pluralign.evaluation.metrics import auroc, pearson_r

    p, r, y = _toy_length_log()
    pt, rt, yt = _toy_length_log(seed=1)
    lengths = np.array([len(x.split()) for x in rt], dtype=float)
    warm = np.array([x.startswith("Wonderful") for x in rt], dtype=float)
    plain = LoveModel(NgramEncoder()).fit(p, r, y)
    deb = LoveModel(NgramEncoder(), length_debias="poe").fit(p, r, y)
    r_plain = abs(pearson_r(plain.predict_proba(pt, rt), lengths))
    r_deb = abs(pearson_r(deb.predict_proba(pt, rt), lengths))
    assert r_plain > 0.3 and r_deb < 0.5 * r_plain, (r_plain, r_deb)
    assert auroc(warm, deb.predict_proba(pt, rt)) > 0.9  # the warm cue is still what it scores
    assert deb.length_expert is not None and deb.length_expert[1] > 0  # the expert took the length effect


def test_debias_setting_names():
    assert LoveModel(length_debias=True).debias == "joint" and LoveModel(length_debias=False).debias == "none"
    assert LoveModel(length_debias="poe").length_debias
    with pytest.raises(ValueError, match="length_debias"):
        LoveModel(length_debias="sideways")


def test_fit_logistic_matches_sklearn_without_offset():
    from sklearn.linear_model import LogisticRegression

    from pluralign.models.love import fit_logistic

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = (rng.random(400) < 1 / (1 + np.exp(-(X @ [1.0, -2.0, 0.5, 0.0, 0.0] - 1)))).astype(float)
    w = rng.uniform(0.5, 2.0, size=400)
    ref = LogisticRegression(C=0.7, tol=1e-8, max_iter=5000).fit(X, y, sample_weight=w)
    coef, b = fit_logistic(X, y, w, 0.7, tol=1e-8)
    np.testing.assert_allclose(coef, ref.coef_[0], atol=1e-3)
    assert b == pytest.approx(ref.intercept_[0], abs=1e-3)
    # a fixed offset moves the intercept, not the slopes, when it is constant
    coef2, b2 = fit_logistic(X, y, w, 0.7, offset=np.full(400, 0.5), tol=1e-8)
    np.testing.assert_allclose(coef2, coef, atol=1e-3)
    assert b2 == pytest.approx(b - 0.5, abs=1e-3)


def test_models_saved_with_the_legacy_layout_still_load(tmp_path, honest_log):
    table = reaction_table(honest_log)
    m = LoveModel(NgramEncoder(), views=False).fit(table.prompts, table.responses, table.labels)
    m.save_pretrained(tmp_path / "old")
    head = tmp_path / "old" / "love_head.json"
    state = json.loads(head.read_text())
    del state["views"], state["edge_tokens"]  # what a model saved before the views existed carries
    head.write_text(json.dumps(state))
    again = LoveModel.from_pretrained(tmp_path / "old")
    assert not again.views
    np.testing.assert_allclose(again.predict_proba(table.prompts[:20], table.responses[:20]),
                               m.predict_proba(table.prompts[:20], table.responses[:20]))


def test_summary_descriptor_crosses_follow_the_summary():
    from scipy import sparse

    enc = NgramEncoder()
    D = sparse.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 0.0]]))
    S = ["I love emojis", "I dislike emojis", "I love emojis", "I love emojis"]
    X = enc.cross_descriptors(S, D).toarray()
    np.testing.assert_allclose(X[0], X[3])  # same summary, same descriptors: same row (row order kept)
    assert not np.allclose(X[0], X[1])  # another user: other features
    assert set(np.flatnonzero(X[0])).isdisjoint(np.flatnonzero(X[2]))  # another descriptor: other features
    assert enc.cross_descriptors([None, ""], D[:2]).nnz == 0  # no summary: no crosses


@pytest.mark.slow  # ~25 s of CPU
def test_auroc_se_shrinks_with_more_loves_and_bounds_the_C_choice(honest_log):
    from pluralign.training.love_trainer import auroc_se

    assert auroc_se(0.6, 20, 1000) > auroc_se(0.6, 200, 10000) > 0.0
    assert auroc_se(0.6, 0, 10) == 0.0
    table = reaction_table(honest_log)
    best, scores = select_C(table, LoveConfig(defence=False, target_pos_share=0.3), grid=(0.1, 1.0, 10.0))
    assert scores[best] >= max(scores.values()) - 0.2  # within one SE of the best (a few dozen validation loves)
    assert all(c >= best for c in scores if scores[c] >= scores[best])  # nothing more regularised qualified
