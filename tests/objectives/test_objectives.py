"""Judges, monitors, the multi-objective reward and best-of-N selection."""

import numpy as np
import pytest

from pluralign.objectives.judges import LengthJudge, RepetitionJudge, SignoffJudge, ThresholdJudge
from pluralign.objectives.monitors import has_signoff_rule, monitor_values, repetition
from pluralign.objectives.rewards import MultiObjectiveReward, Objective
from pluralign.training.policy import best_of_n, build_reward
from pluralign.training.policy_config import PolicyConfig

P = ["How do I bake bread?"] * 3
R = ["Mix flour, water, yeast and salt; knead, rise, bake at 230C for 30 minutes.",
     "Mix flour and water.\n\nBye! Sending love! \u2764\ufe0f",
     "ok"]


def words(p, r):
    return np.array([len(x.split()) for x in r], dtype=float)


def test_monitors_flag_signoffs_emojis_and_repetition():
    assert has_signoff_rule(R[1]) and not has_signoff_rule(R[0])
    m = monitor_values(R)
    assert list(m["signoff_rate"]) == [0.0, 1.0, 0.0]
    assert list(m["emoji_rate"]) == [0.0, 1.0, 0.0]
    assert repetition("the cat sat the cat sat the cat sat") > 0.5
    assert repetition(R[0]) == 0.0


def test_judges_pass_and_fail():
    assert list(SignoffJudge()(P, R)) == [True, False, True]
    assert list(LengthJudge(min_words=3, max_words=100)(P, R)) == [True, True, False]
    assert list(ThresholdJudge(words, 5.0)(P, R)) == [True, True, False]
    degenerate = "You're going to love it! You! You! You're going to love it! You! You! You're going to love it!"
    assert list(RepetitionJudge()(P[:2], [R[0], degenerate])) == [True, False]
    assert list(RepetitionJudge(max_repetition=1.0)(P[:1], [degenerate])) == [True]


def test_reward_normalises_weights_and_gates_by_judges():
    reward = MultiObjectiveReward([Objective("length", words, 2.0),
                                   Objective("bang", lambda p, r: np.array([x.count("!") for x in r], float), 0.5)],
                                  [SignoffJudge()], fail_reward=-7.0)
    reward.fit_normalisation(P, R)
    br = reward.score(P, R)
    z = (words(P, R) - words(P, R).mean()) / words(P, R).std()
    np.testing.assert_allclose(br.weighted["length"], 2.0 * z)
    assert br.combined[1] == -7.0  # the sign-off fails its judge: no reward
    np.testing.assert_allclose(br.combined[[0, 2]], (br.weighted["length"] + br.weighted["bang"])[[0, 2]])
    s = br.summary()
    assert s["judge/signoff_pass"] == pytest.approx(2 / 3) and "reward/bang_weighted" in s


def test_duplicate_objective_names_rejected():
    with pytest.raises(ValueError, match="unique"):
        MultiObjectiveReward([Objective("a", words), Objective("a", words)])


def test_best_of_n_prefers_feasible_and_respects_n():
    love = lambda p, r: np.array([1.0 if "love" in x.lower() else 0.0 for x in r])  # noqa: E731
    cands = [[R[0], R[1], R[2]]] * 2
    prompts = P[:2]
    cfg = PolicyConfig(w_love=1.0, w_help=0.0, w_safety=0.0, judges=[])
    hacked = best_of_n(prompts, cands, build_reward(cfg, love=love, helpfulness=None, safety=None))
    assert hacked.responses == [R[1], R[1]]  # love alone picks the sign-off
    cfg_j = PolicyConfig(w_love=1.0, w_help=0.0, w_safety=0.0, judges=["signoff", "length"])
    guarded = best_of_n(prompts, cands, build_reward(cfg_j, love=love, helpfulness=None, safety=None))
    assert guarded.responses == [R[0], R[0]] and guarded.feasible_share == 1.0
    only_first = best_of_n(prompts, cands, build_reward(cfg, love=love, helpfulness=None, safety=None), n=1)
    assert only_first.index == [0, 0]


def test_repetition_judge_stops_paying_for_degenerate_text():
    love = lambda p, r: np.array([x.lower().count("love") for x in r], dtype=float)  # noqa: E731
    fluent = "You will love this bread: mix flour, water, yeast and salt, then bake it hot."
    degenerate = "You will love it! Love it! You will love it! Love it! You will love it! Love it!"
    cfg = PolicyConfig(w_love=1.0, w_help=0.0, w_safety=0.0, judges=[])
    assert best_of_n(P[:1], [[fluent, degenerate]], build_reward(cfg, love=love, helpfulness=None,
                                                                 safety=None)).responses == [degenerate]
    cfg_j = PolicyConfig(w_love=1.0, w_help=0.0, w_safety=0.0, judges=["repetition"])
    guarded = best_of_n(P[:1], [[fluent, degenerate]], build_reward(cfg_j, love=love, helpfulness=None, safety=None))
    assert guarded.responses == [fluent] and guarded.feasible_share == 1.0


def test_safety_judge_needs_reference():
    cfg = PolicyConfig(judges=["safety"])
    with pytest.raises(ValueError, match="reference"):
        build_reward(cfg, love=None, helpfulness=words, safety=words)
    r = build_reward(cfg, love=None, helpfulness=words, safety=words, reference=(P, R))
    assert r.judges[0].name == "safety"
