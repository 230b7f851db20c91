"""Neural P[Love]: learns a separable signal, prior correction, summary conditioning, no persona, persistence, CLI,
and the OpenAssistant real-reaction path on a small fixture.

The fine-tuning tests use the tiny random-weight BERT of conftest.py (the real HF code path at test speed): its
trainable token embeddings make lexical cues learnable.
"""

import json
from dataclasses import replace

import numpy as np
import pytest

from pluralign.cli import main
from pluralign.data.schema import Reaction, UserRecord
from pluralign.models.love import LoveModel
from pluralign.models.love_neural import NeuralLoveModel, format_input
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import (
    attach_summaries,
    chrono_split,
    epoch_plan,
    fit_neural_love,
    make_summarizer,
    reaction_table,
    train_love,
)

WARM = "Wonderful question, happy to help!"


def _toy_table(n=320, seed=0, pos_rate=0.3):
    """Love iff the reply opens warmly (with label noise); users u0..u9, timestamps in order."""
    rng = np.random.default_rng(seed)
    users = []
    for u in range(10):
        rx = []
        for k in range(n // 10):
            warm = rng.random() < 0.5
            body = " ".join(rng.choice(["the", "answer", "is", "forty", "two", "steps", "first", "then"], size=8))
            p = min(0.95, pos_rate * 2.7) if warm else pos_rate * 0.15
            rx.append(Reaction(reaction_id=f"u{u}-{k}", prompt=f"question {k % 7}", response=(WARM + " " if warm
                               else "") + body, kind="love", value=float(rng.random() < p),
                               timestamp=1000.0 * k + u, p_true=p))
        users.append(UserRecord(user_id=f"u{u}", reactions=rx))
    return users


def _neural_cfg(tiny_encoder_dir, **kw):
    base = dict(model="neural", neural_backbone=tiny_encoder_dir, neural_max_length=48, epochs=4, lr=2e-3,
                head_lr=1e-2, train_layers=0, train_batch_size=16, defence=False, bf16=False, target_pos_share=0.3,
                neural_row_pos_share=0.3)
    return LoveConfig(**(base | kw))


@pytest.mark.slow  # fine-tunes the neural P[Love]: ~30 s of CPU
def test_neural_love_learns_a_separable_signal(tiny_encoder_dir):
    res = train_love(_toy_table(), _neural_cfg(tiny_encoder_dir))
    assert isinstance(res.model, NeuralLoveModel)
    m = res.metrics
    assert m["auroc"] > 0.95 * m["oracle_auroc"] and m["oracle_auroc"] > 0.8, m  # the warm opening is what it scores
    p = res.model.predict_proba(["q", "q"], [WARM + " yes", "yes"])
    assert p[0] > p[1]


def test_epoch_plan_encodes_the_target_share_and_the_prior_correction_undoes_it(tiny_encoder_dir):
    y = np.array([1.0] * 20 + [0.0] * 980)
    w = np.ones_like(y)
    rows, wt, share = epoch_plan(y, w, 0.1, 0.25, np.random.default_rng(0))
    assert share == 0.1 and (y[rows] == 1).sum() == 20 and len(rows) == 80  # 25% positive rows
    weighted = wt[y[rows] == 1].sum() / wt.sum()
    # expected weighted share is 10%: 20 m / (20 m + 60) with m = 0.1 * (60 / 980) * 980 / (0.9 * 20)
    assert weighted == pytest.approx(0.1, abs=1e-9)
    table = reaction_table(_toy_table(pos_rate=0.1))
    model = fit_neural_love(table, np.ones(len(table)), _neural_cfg(tiny_encoder_dir, target_pos_share=0.4,
                                                                   epochs=2))
    assert model.train_prior == pytest.approx(0.4)
    assert model.live_prior == pytest.approx(float(table.labels.mean()))
    raw = model.predict_proba(table.prompts, table.responses, corrected=False)
    cor = model.predict_proba(table.prompts, table.responses)
    assert (cor < raw).all()  # trained at a 40% share, the live rate is ~10%
    assert abs(cor.mean() - table.labels.mean()) < abs(raw.mean() - table.labels.mean())


def test_summary_conditioning_changes_predictions_and_can_be_switched_off(tiny_encoder_dir):
    table = reaction_table(_toy_table())
    pers = fit_neural_love(table, np.ones(len(table)), _neural_cfg(tiny_encoder_dir, personalised=True, epochs=1))
    prompts, responses = ["q"] * 2, [WARM + " yes"] * 2
    summaries = ["Prefers: answers with emojis.", "Dislikes: long formal replies about tax law."]
    a = pers.predict_proba(prompts, responses, summaries)
    assert a[0] != pytest.approx(a[1], rel=1e-6)
    assert format_input("q", "r", "S")[0].startswith("About the user: S")
    pop = fit_neural_love(table, np.ones(len(table)), _neural_cfg(tiny_encoder_dir, personalised=False, epochs=1))
    b = pop.predict_proba(prompts, responses, summaries)
    assert b[0] == pytest.approx(b[1], rel=1e-9)


class _HistoryEcho:
    """A real (if trivial) Summarizer: the summary lists the reaction ids of the loves in the user's history."""

    version = "echo"

    def summarize(self, contexts, *, sample=False):
        return [" ".join(sorted(p.pair_id.split(":")[1].split(">")[0] for p in c.pairs)) for c in contexts]


def test_summaries_come_only_from_earlier_reactions():
    table = reaction_table(_toy_table())
    train_idx, test_idx = chrono_split(table, 0.2)
    out = attach_summaries(table, train_idx, _HistoryEcho(), blocks=4, max_loves=1000)
    t = np.array(out.timestamps)
    for i in range(len(out)):
        seen = [int(x) for x in (out.summaries[i] or "").split()]
        assert i not in seen  # never the reaction being predicted
        assert all(out.user_ids[j] == out.user_ids[i] and t[j] < t[i] for j in seen)  # the user's own past only
    # test rows see every training love of their user
    i = int(test_idx[0])
    loves = {j for j in train_idx if out.labels[j] == 1 and out.user_ids[j] == out.user_ids[i]}
    assert {int(x) for x in (out.summaries[i] or "").split()} == loves
    latest = attach_summaries(table, train_idx, _HistoryEcho(), blocks=4, max_loves=2)  # the default keeps 4
    assert {int(x) for x in (latest.summaries[i] or "").split()} == set(sorted(loves, key=lambda j: t[j])[-2:])


@pytest.mark.slow  # ~60 s of CPU
def test_no_persona_reaches_p_love(reaction_log):
    """The simulator's persona is ground truth: changing it must not change a personalised P[Love] at all."""
    table = reaction_table(reaction_log)
    assert not any(table.summaries)  # a simulated log carries no summary, and the persona is not one
    other = [u.model_copy(update={"persona": "I adore sign-offs and emojis and long answers"}) for u in reaction_log]
    cfg = LoveConfig(personalised=True, defence=False, summarizer="cpu")
    summarizer = make_summarizer(cfg.summarizer)  # one summarizer: its sentence cache serves both runs
    a = train_love(reaction_log, cfg, summarizer=summarizer)
    b = train_love(other, cfg, summarizer=summarizer)
    assert a.table.summaries == b.table.summaries
    assert any(a.table.summaries)  # the summarizer did write summaries from the users' own reactions
    assert not any("adore" in (z or "") for z in b.table.summaries)
    np.testing.assert_allclose(a.model.predict_proba(table.prompts[:50], table.responses[:50],
                                                     a.table.summaries[:50]),
                               b.model.predict_proba(table.prompts[:50], table.responses[:50],
                                                     b.table.summaries[:50]))


def test_neural_save_load_round_trip_and_dispatch(tmp_path, tiny_encoder_dir):
    table = reaction_table(_toy_table())
    m = fit_neural_love(table, np.ones(len(table)), _neural_cfg(tiny_encoder_dir, epochs=1, length_debias=True))
    assert m.length_expert is not None
    m.save_pretrained(tmp_path / "m")
    again = LoveModel.from_pretrained(tmp_path / "m")  # the generic loader hands back the neural model
    assert isinstance(again, NeuralLoveModel)
    np.testing.assert_allclose(again.predict_proba(table.prompts[:20], table.responses[:20]),
                               m.predict_proba(table.prompts[:20], table.responses[:20]), rtol=1e-5)
    assert again.train_prior == m.train_prior and again.length_expert == m.length_expert


def test_length_aware_scoring_sees_what_truncation_hides(tmp_path, tiny_encoder_dir):
    """Love here depends on length alone, past what the network reads (8 tokens): the length-aware model ranks by
    it, keeps doing so after a save and load; the debiased model's score carries no length; both at once is an error."""
    from pluralign.evaluation.metrics import auroc
    from pluralign.training.love_trainer import ReactionTable

    rng = np.random.default_rng(0)
    n_words = rng.integers(5, 60, size=200)
    responses = [" ".join(["step"] * int(k)) for k in n_words]
    y = (n_words > 30).astype(float)
    n = len(y)
    table = ReactionTable([f"u{i % 10}" for i in range(n)], ["how?"] * n, responses, y, list(range(n)),
                          np.full(n, np.nan), ["honest"] * n, [None] * n, [None] * n)
    cfg = _neural_cfg(tiny_encoder_dir, epochs=1, neural_max_length=8, target_pos_share=None)
    aware = fit_neural_love(table, np.ones(n), replace(cfg, length_aware=True))
    assert auroc(y, aware.predict_proba(table.prompts, responses)) > 0.95
    aware.save_pretrained(tmp_path / "aware")
    again = LoveModel.from_pretrained(tmp_path / "aware")
    np.testing.assert_allclose(again.predict_proba(table.prompts, responses),
                               aware.predict_proba(table.prompts, responses), rtol=1e-5)
    debiased = fit_neural_love(table, np.ones(n), replace(cfg, length_debias=True))
    assert abs(auroc(y, debiased.predict_proba(table.prompts, responses)) - 0.5) < 0.1
    with pytest.raises(ValueError, match="length_aware keeps the length expert"):
        LoveConfig(model="neural", length_aware=True, length_debias=True)


def test_bad_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="model must be 'linear' or 'neural'"):
        LoveConfig(model="forest")


def test_cli_train_love_neural(tmp_path, tiny_encoder_dir):
    from pluralign.data.io import write_users

    f = tmp_path / "log.jsonl"
    write_users(f, _toy_table())
    rc = main(["train", "love", "--data", str(f), "--out", str(tmp_path / "m"), "--set", "model=neural",
               "--set", f"neural_backbone={tiny_encoder_dir}", "--set", "epochs=1", "--set", "defence=false",
               "--set", "neural_max_length=32"])
    assert rc == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert {"auroc", "ece", "ece_raw", "length_r", "auroc_normal"} <= set(metrics)
    assert isinstance(LoveModel.from_pretrained(tmp_path / "m"), NeuralLoveModel)


def _oasst_trees(n_trees=24, seed=0):
    """Small OpenAssistant-format trees: per tree one prompt, a detailed reply (+1) and a curt one (-1 / red flag)."""
    rng = np.random.default_rng(seed)
    rows = []

    def msg(t, mid, role, text, emojis, replies=()):
        return {"message_id": mid, "parent_id": None, "user_id": f"a{t}", "created_date":
                f"2023-02-{1 + t % 27:02d}T10:00:00+00:00", "text": text, "role": role, "lang": "en",
                "deleted": False, "rank": None, "emojis": emojis, "replies": list(replies)}

    for t in range(n_trees):
        good = msg(t, f"t{t}-g", "assistant", "Here is a careful, detailed answer with steps and sources. "
                   + " ".join(rng.choice(["first", "then", "finally", "check"], size=6)), {"+1": int(rng.integers(1, 4))})
        bad = msg(t, f"t{t}-b", "assistant", "no idea lol", {"-1": 1} if t % 2 else {"red_flag": 1})
        rows.append({"message_tree_id": f"t{t}", "prompt": msg(t, f"t{t}", "prompter", f"How do I do task {t}?", {},
                                                               [good, bad])})
    return rows


def test_oasst_auroc_path_on_a_small_fixture(tmp_path, tiny_encoder_dir):
    from pluralign.evaluation.love_oasst import load_oasst_users, oasst_reaction_table, run_oasst_love

    d = tmp_path / "oasst"
    d.mkdir()
    (d / "trees.jsonl").write_text("\n".join(json.dumps(r) for r in _oasst_trees()) + "\n", encoding="utf-8")
    users = load_oasst_users(d)
    table = oasst_reaction_table(users)
    assert len(table) == 48 and table.labels.sum() == 24 and len(set(table.user_ids)) == 24
    results, details = run_oasst_love(users, folds=3, seed=0, epoch_choices=(1, 2), length_choices=(False, True),
                                      neural=_neural_cfg(tiny_encoder_dir, target_pos_share=None, epochs=5))
    got = {(r.benchmark, r.method, r.metric): r for r in results}
    lin, neu = got[("oasst", "love-linear", "auroc")], got[("oasst", "love", "auroc")]
    assert lin.value > 0.9 and lin.ci_low <= lin.value <= lin.ci_high  # separable by wording
    assert (lin.ci_unit, lin.n_users) == ("tree", 24)  # the CI resamples whole trees
    assert 0.0 <= neu.value <= 1.0 and neu.n == 48
    # the floor: the detailed replies are longer, so word count alone ranks them first
    assert got[("oasst", "length", "auroc")].value > 0.9
    diff = got[("oasst", "love-linear-vs-length", "auroc_diff")]  # paired over the same replies, trees resampled
    assert diff.value == pytest.approx(lin.value - got[("oasst", "length", "auroc")].value)
    assert diff.ci_low <= diff.value <= diff.ci_high and diff.ci_unit == "tree"
    assert details["trees"] == 24 and len(details["love"]["per_fold_auroc"]) == 3
    # the neural model's epochs and length-awareness were chosen on held-out training trees, not left as given
    choice = details["neural_choice"]
    grid = {f"epochs={e},length_aware={a}" for e in (1, 2) for a in ("false", "true")}
    assert set(choice["held_out_training_auroc"]) == grid and choice["chosen"] in grid
    # the folds hold out whole trees: no tree has replies on both sides of any split
    from pluralign.evaluation.love_oasst import tree_folds

    folds = tree_folds(table.user_ids, 3, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(table)))
    trees = [{table.user_ids[i] for i in f} for f in folds]
    assert not (trees[0] & trees[1]) and not (trees[0] & trees[2]) and not (trees[1] & trees[2])


def test_oasst_epoch_choice_reads_only_training_trees(tmp_path, tiny_encoder_dir, monkeypatch):
    """The epochs are chosen on part of the first fold's training trees: no model in the choice sees a scored tree,
    and a quarter of the training trees is kept out of its fit."""
    from pluralign.evaluation import love_oasst

    d = tmp_path / "oasst"
    d.mkdir()
    (d / "trees.jsonl").write_text("\n".join(json.dumps(r) for r in _oasst_trees()) + "\n", encoding="utf-8")
    table = love_oasst.oasst_reaction_table(love_oasst.load_oasst_users(d))
    parts = love_oasst.tree_folds(table.user_ids, 3, seed=0)
    train_ix = np.sort(np.concatenate(parts[1:]))
    fitted = []
    real_fit = love_oasst.fit_neural_love

    def recording_fit(tr, weights, cfg):
        fitted.append((set(tr.user_ids), cfg.epochs))
        return real_fit(tr, weights, cfg)

    monkeypatch.setattr(love_oasst, "fit_neural_love", recording_fit)
    best, scores = love_oasst.choose_neural(table, train_ix, _neural_cfg(tiny_encoder_dir, target_pos_share=None),
                                            (2, 1, 2), seed=0)
    train_trees = {table.user_ids[i] for i in train_ix}
    assert [e for _, e in fitted] == [1, 2] and best.epochs in (1, 2) and not best.length_aware
    assert set(scores) == {"epochs=1,length_aware=false", "epochs=2,length_aware=false"}
    for trees, _ in fitted:
        assert trees < train_trees and len(trees) == len(train_trees) - len(train_trees) // 4


def test_a_causal_lm_backbone_pools_its_last_real_token(tmp_path):
    """Any HF backbone by name: a (tiny) Llama-architecture causal LM, as SmolLM2 is, trains and scores."""
    from pluralign.models.tiny import tiny_causal_lm

    model, tok = tiny_causal_lm(arch="llama", seed=1)
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    table = reaction_table(_toy_table(n=120))
    m = fit_neural_love(table, np.ones(len(table)), _neural_cfg(str(tmp_path / "lm"), epochs=1, train_layers=1))
    assert m.pooling == "last"
    short = m.predict_proba(["q"], ["yes"])
    m.clear_cache()  # score again, now in a padded batch
    padded = m.predict_proba(["q", "q"], ["yes", WARM + " " + " ".join(["long"] * 30)])
    assert short[0] == pytest.approx(padded[0], rel=1e-4)  # right padding never reaches the pooled token
