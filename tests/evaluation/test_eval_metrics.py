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
