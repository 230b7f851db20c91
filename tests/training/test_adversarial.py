"""The user-level reaction defence: reliability from cross-fitted scores, caps, bursts, and on simulated logs."""

import numpy as np
import pytest

from pluralign.training.adversarial import (
    DefenceReport,
    burst_factors,
    cap_factors,
    cross_fitted_probs,
    reliability_from_scores,
)
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import reaction_table, train_love


def _synthetic(seed=0, n_users=40, per_user=60):
    """Users react to items whose true P(love) is known: honest users follow it, inverters follow its reverse,
    random users ignore it."""
    rng = np.random.default_rng(seed)
    uids, y, p = [], [], []
    for u in range(n_users):
        kind = "inverter" if u % 4 == 0 else "random" if u % 4 == 1 else "normal"
        q = rng.uniform(0.01, 0.5, size=per_user)
        truth = {"normal": q, "inverter": 0.51 - q, "random": np.full(per_user, q.mean())}[kind]
        uids += [f"{kind}-{u}"] * per_user
        y += list((rng.random(per_user) < truth).astype(float))
        p += list(q)
    return uids, np.array(y), np.array(p)


def test_reliability_separates_honest_inverters_random():
    uids, y, p = _synthetic()
    rel = reliability_from_scores(uids, y, p, honest_prior=0.8)
    mean = {k: np.mean([r.reliability for u, r in rel.items() if u.startswith(k)])
            for k in ("normal", "inverter", "random")}
    assert mean["normal"] > 0.9 and mean["inverter"] < 0.1, mean
    assert mean["inverter"] < mean["random"] < mean["normal"], mean


def test_caps_and_bursts():
    uids = ["a"] * 6 + ["b"] * 2
    y = np.array([1, 1, 1, 1, 0, 0, 1, 0], dtype=float)
    f = cap_factors(uids, y, cap=2)
    assert list(f[:4]) == [0.5] * 4 and f[4] == 1 and f[6] == 1
    ts = [0.0, 10.0, 20.0, 5000.0, 30.0, 40.0, 0.0, 1.0]
    b = burst_factors(uids, y, ts, window_s=60)
    np.testing.assert_allclose(b[:4], [1 / 3, 1 / 3, 1 / 3, 1.0])
    assert b[6] == 1.0


@pytest.mark.slow  # fits P[Love] several times over the simulated log: ~25 s of CPU
def test_defence_down_weights_adversaries_on_simulated_log(reaction_log):
    table = reaction_table(reaction_log)
    res = train_love(table, LoveConfig(defence=True, target_pos_share=0.3, defence_rounds=1, defence_folds=2))
    kinds = dict(zip(table.user_ids, table.user_kinds, strict=True))
    rel = {k: np.mean([r.reliability for u, r in res.defence.users.items() if kinds[u] == k])
           for k in set(kinds.values())}
    # Spammers' bursts of loves explain nothing the population model predicts: clearly down-weighted.
    # (Inverters at a low love rate are not reliably caught on a log this small; see docs/bench/rluf.md.)
    assert rel["spammer"] < rel["normal"] and rel["random"] < rel["normal"] - 0.1, rel
    w = res.defence.weights
    tr = table.take(res.train_idx)
    pos_w = {k: w[(tr.labels == 1) & (np.array(tr.user_kinds) == k)].mean() for k in ("normal", "spammer")}
    assert pos_w["spammer"] < 0.75 * pos_w["normal"], pos_w


def _prompt_driven(seed=0, n_users=60, per_user=80):
    """Most of P(love) comes from the prompt (a part inverters share); the content part is what inverters reverse.
    Returns user ids, labels, the model's probabilities and its content logits for every row."""
    rng = np.random.default_rng(seed)
    uids, y, probs, content = [], [], [], []
    for u in range(n_users):
        kind = "inverter" if u % 6 == 0 else "normal"
        prompt = rng.normal(0.0, 2.0, size=per_user)
        c = rng.normal(0.0, 1.0, size=per_user)
        base = -2.5 + prompt + c
        truth = base if kind == "normal" else base - 2 * c
        uids += [f"{kind}-{u}"] * per_user
        y += list((rng.random(per_user) < 1 / (1 + np.exp(-truth))).astype(float))
        probs += list(1 / (1 + np.exp(-base)))
        content += list(c)
    return uids, np.array(y), np.array(probs), np.array(content)


def test_inverters_who_keep_the_prompt_effect_are_caught_only_through_the_content_part():
    uids, y, p, c = _prompt_driven()
    inverters = {u for u in uids if u.startswith("inverter")}
    whole = reliability_from_scores(uids, y, p, honest_prior=0.8)
    split = reliability_from_scores(uids, y, p, honest_prior=0.8, content=c)
    caught_whole = {u for u, r in whole.items() if r.reliability < 0.5}
    caught_split = {u for u, r in split.items() if r.reliability < 0.5 and r.verdict == "inverter"}
    assert len(caught_split & inverters) >= 0.8 * len(inverters) > len(caught_whole & inverters), (
        len(caught_split & inverters), len(caught_whole & inverters))
    honest_flagged = {u for u, r in split.items() if r.reliability < 0.5} - inverters
    assert len(honest_flagged) <= 2, honest_flagged
    assert np.mean([split[u].agreement for u in inverters]) < 0 < np.mean(
        [r.agreement for u, r in split.items() if u not in inverters])


def test_detection_precision_recall_per_kind():
    uids, y, p, c = _prompt_driven()
    users = reliability_from_scores(uids, y, p, content=c)
    report = DefenceReport(np.ones(len(uids)), users)
    kind_of = {u: u.split("-")[0] for u in users}
    det = report.detection(kind_of)
    flagged = set(report.flagged())
    inv = {u for u in users if kind_of[u] == "inverter"}
    assert det["inverter"]["n"] == len(inv) and det["inverter"]["recall"] == len(flagged & inv) / len(inv)
    assert det["all"]["precision"] == pytest.approx(len(flagged & inv) / len(flagged))
    assert 0.0 <= det["inverter"]["typed_precision"] <= 1.0


def test_cross_fitted_probs_pass_content_through():
    uids = [f"u{i % 6}" for i in range(60)]
    seen = []

    def fit_predict(train, w, score):
        seen.append(set(np.array(uids)[train]) & set(np.array(uids)[score]))
        return np.full(len(score), 0.1), np.arange(len(score), dtype=float)

    probs, content = cross_fitted_probs(uids, np.ones(60), fit_predict, folds=3)
    assert not np.isnan(probs).any() and not np.isnan(content).any()
    assert all(not s for s in seen)  # a user is never scored by a model trained on them
