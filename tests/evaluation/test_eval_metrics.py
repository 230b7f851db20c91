"""Metrics against hand-computed values, and bootstrap CIs that bracket their estimate."""

import math

import numpy as np
import pytest

from pluralign.evaluation.metrics import (
    accuracy_result,
    auroc,
    auroc_result,
    ece,
    ece_result,
    pair_correct,
    pairwise_accuracy,
    pearson_r,
    pearson_result,
)


def test_pairwise_accuracy_ties_count_half():
    assert pair_correct([1.0, -1.0, 0.0, 2.0]).tolist() == [1.0, 0.0, 0.5, 1.0]
    assert pairwise_accuracy([1.0, -1.0, 0.0, 2.0]) == pytest.approx(0.625)


def test_nan_margin_is_an_error():
    with pytest.raises(ValueError, match="NaN"):
        pairwise_accuracy([1.0, float("nan")])


def test_auroc_hand_computed():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 wins 1 of 2, 0.8 wins 2 of 2 -> 3/4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(auroc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_ece_equal_width_and_equal_mass_bins_differ_as_computed_by_hand():
    probs, labels = [0.1, 0.2, 0.3, 0.9], [0, 1, 0, 1]
    # equal width, 2 bins: {.1,.2,.3} p=.2 y=1/3 -> .75*(1/3-.2); {.9} p=.9 y=1 -> .25*.1
    assert ece(labels, probs, n_bins=2, strategy="uniform") == pytest.approx(0.75 * (1 / 3 - 0.2) + 0.025)
    # equal mass, edge at the median .25: {.1,.2} p=.15 y=.5 -> .5*.35; {.3,.9} p=.6 y=.5 -> .5*.1
    assert ece(labels, probs, n_bins=2, strategy="quantile") == pytest.approx(0.175 + 0.05)
    assert ece([1], [1.0]) == 0.0  # p = 1 falls in the last bin, not outside
    with pytest.raises(ValueError, match="strategy"):
        ece(labels, probs, strategy="bogus")


def test_pearson_hand_computed():
    assert pearson_r([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))
    assert math.isnan(pearson_r([1, 1, 1], [1, 2, 3]))


def test_results_have_cis_that_contain_the_estimate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = labels + rng.normal(0, 1.0, 300)
    probs = 1 / (1 + np.exp(-scores))
    results = [
        accuracy_result("b", "m", "seen-users", scores - 0.3),
        auroc_result("b", "m", "seen-users", labels, scores),
        ece_result("b", "m", "seen-users", labels, probs, strategy="quantile"),
        pearson_result("b", "m", "all", labels, scores),
    ]
    for r in results:
        assert r.n == 300
        assert r.ci_low < r.value < r.ci_high, r
        assert r.ci_high - r.ci_low < 0.3
    assert results[0].metric == "accuracy" and results[1].metric == "auroc"


def test_cluster_bootstrap_is_wider_when_a_users_pairs_agree_with_each_other():
    from pluralign.evaluation.results import bootstrap_ci

    rng = np.random.default_rng(1)
    # 30 users x 10 pairs; each user is either always right or always wrong: 30 independent units, not 300.
    per_user = rng.integers(0, 2, 30).astype(float)
    values = np.repeat(per_user, 10)
    users = np.repeat([f"u{i}" for i in range(30)], 10)
    lo_p, hi_p = bootstrap_ci(values, seed=0)
    lo_u, hi_u = bootstrap_ci(values, clusters=users, seed=0)
    assert lo_u <= values.mean() <= hi_u
    assert (hi_u - lo_u) > 2.5 * (hi_p - lo_p)  # sqrt(10) wider in theory
    # Strata keep their own number of clusters: a stratum that never varies adds no width.
    strata = np.repeat(["a", "b"], 150)
    fixed = np.where(strata == "a", 1.0, values)
    lo_s, hi_s = bootstrap_ci(fixed, clusters=users, strata=strata, seed=0)
    assert lo_s <= fixed.mean() <= hi_s
    with pytest.raises(ValueError, match="one key per row"):
        bootstrap_ci(values, clusters=users[:5])


def test_accuracy_records_say_what_the_ci_resampled():
    users = ["a", "a", "b", "b", "c"]
    r = accuracy_result("b", "m", "new-users", [1, -1, 1, 1, 0], user_ids=users)
    assert (r.ci_unit, r.n_users, r.n) == ("user", 3, 5)
    assert r.value == pytest.approx(0.7)
    bare = accuracy_result("b", "m", "new-users", [1, -1])
    assert (bare.ci_unit, bare.n_users) == ("pair", None)


def test_pooled_over_seeds_mean_spread_and_ci():
    from pluralign.evaluation.results import pooled_mean_result

    rng = np.random.default_rng(0)
    per_seed = {s: (rng.binomial(1, p, 200).astype(float), [f"u{i // 5}" for i in range(200)])
                for s, p in ((0, 0.6), (1, 0.7), (2, 0.8))}
    r = pooled_mean_result("b", "m", "new-users", "accuracy", per_seed)
    means = [v.mean() for v, _ in per_seed.values()]
    assert r.value == pytest.approx(np.mean(means)) and r.seeds == [0, 1, 2]
    assert r.seed_sd == pytest.approx(np.std(means, ddof=1))
    assert (r.seed_min, r.seed_max) == (min(means), max(means))
    assert r.ci_low < r.value < r.ci_high and r.ci_unit == "user" and r.n_users == 120 and r.n == 600


def test_paired_differences_are_method_minus_other_on_the_same_pairs():
    from pluralign.evaluation.seed_stats import paired_diffs

    users = ["a", "a", "b", "b"]
    items = {"keyword": {"new-users": {"user_ids": users, "values": [1.0, 0.0, 0.0, 0.0]}},
             "bt": {"new-users": {"user_ids": users, "values": [1.0, 1.0, 0.0, 0.0]}},
             "icl": {"new-users": {"user_ids": users, "values": [1.0, 1.0, 1.0, 0.5]}},
             "bayes": {"new-users": {"user_ids": users, "values": [1.0, 1.0, 1.0, 1.0]}}}
    diffs = {r.method: r for r in paired_diffs("b", items, seed=0)}
    assert set(diffs) == {"icl-vs-bt", "icl-vs-keyword", "bt-vs-keyword"}
    assert diffs["icl-vs-bt"].value == pytest.approx(0.375) and diffs["icl-vs-bt"].metric == "accuracy_diff"
    assert diffs["icl-vs-keyword"].value == pytest.approx(0.625)
    assert diffs["bt-vs-keyword"].ci_unit == "user" and diffs["bt-vs-keyword"].n_users == 2
    items["bt"]["new-users"]["user_ids"] = ["a", "b", "a", "b"]
    with pytest.raises(RuntimeError, match="different pairs"):
        paired_diffs("b", items, seed=0)
