"""Splits: deterministic, named as the benchmarks name them, and leak-free."""

from __future__ import annotations

import pytest

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.data.splits import SPLIT_NAMES, Example, SplitResult, check_no_leakage, make_splits, topic_of


def _users(n_users: int = 20, n_pairs: int = 12, timestamps: bool = True) -> list[UserRecord]:
    users = []
    for u in range(n_users):
        pairs = [
            PreferencePair(
                pair_id=f"u{u}-p{i}", prompt=f"question {i % 9}", chosen=f"answer A{i} for {u}",
                rejected=f"answer B{i}", topic=f"t{i % 9}", timestamp=1000.0 * i + u if timestamps else None,
            )
            for i in range(n_pairs)
        ]
        users.append(UserRecord(user_id=f"user{u}", pairs=pairs))
    return users


def test_all_four_splits_are_named_and_populated():
    res = make_splits(_users(), seed=1)
    assert set(res.eval) == set(SPLIT_NAMES)
    for name in SPLIT_NAMES:
        assert res.eval[name], f"split {name} is empty"
        assert all(e.split == name for e in res.eval[name])
    assert res.train and all(e.split == "train" for e in res.train)


def test_deterministic_given_seed_and_different_across_seeds():
    def sig(r: SplitResult):
        return [(e.user_id, e.target.pair_id, e.split) for e in r.train + sum(r.eval.values(), [])]

    assert sig(make_splits(_users(), seed=3)) == sig(make_splits(_users(), seed=3))
    assert sig(make_splits(_users(), seed=3)) != sig(make_splits(_users(), seed=4))
    # Input order does not matter.
    assert sig(make_splits(list(reversed(_users())), seed=3)) == sig(make_splits(_users(), seed=3))


def test_no_target_leaks_into_its_users_context():
    res = make_splits(_users(), seed=0)
    for e in res.train + [x for v in res.eval.values() for x in v]:
        ctx = {p.pair_id for p in e.context.pairs}
        assert e.target.pair_id not in ctx
        assert not e.context.targets


def test_leak_check_catches_a_duplicate_pair_under_another_id():
    users = _users(6, 8, timestamps=False)
    dup = users[0].pairs[0].model_copy(update={"pair_id": "same-content-other-id"})
    users[0] = users[0].model_copy(update={"pairs": [*users[0].pairs, dup]})
    res = make_splits(users, seed=0, new_topic_frac=0.0, new_user_frac=0.0)
    # The duplicate never sits in the context of a user whose target has the same content.
    for e in res.train + [x for v in res.eval.values() for x in v]:
        assert (e.target.prompt, {e.target.chosen, e.target.rejected}) not in [
            (p.prompt, {p.chosen, p.rejected}) for p in e.context.pairs]
    # And the checker really fails when someone builds a leaky example by hand.
    bad_target = users[0].pairs[1]
    leaky = Example("user0", users[0], bad_target, "seen-users")
    with pytest.raises(AssertionError, match="leaks"):
        check_no_leakage(SplitResult(train=[], eval={"seen-users": [leaky]}))


def test_held_out_users_topics_and_times_stay_out_of_training():
    res = make_splits(_users(), seed=2)
    train_users = {e.user_id for e in res.train}
    assert not train_users & set(res.new_user_ids)
    assert {e.user_id for e in res.eval["new-users"]} <= set(res.new_user_ids)
    assert not {topic_of(e.target) for e in res.train} & set(res.new_topics)
    assert {topic_of(e.target) for e in res.eval["new-topics"]} <= set(res.new_topics)
    assert all(e.target.timestamp >= res.chrono_t for e in res.eval["chrono"])
    assert all(p.timestamp < res.chrono_t for e in res.eval["chrono"] for p in e.context.pairs)
    # Contexts never include held-out topics.
    for e in res.train + res.eval["new-topics"]:
        assert not {topic_of(p) for p in e.context.pairs} & set(res.new_topics)


def test_fixed_new_users_and_explicit_targets():
    users = _users(8, 6, timestamps=False)
    t = PreferencePair(pair_id="explicit", prompt="q", chosen="a", rejected="b", topic="tx")
    users[0] = users[0].model_copy(update={"targets": [t]})
    res = make_splits(users, seed=0, new_user_ids=["user0"], new_topic_frac=0.0)
    assert res.new_user_ids == ["user0"]
    assert "explicit" in {e.target.pair_id for e in res.eval["new-users"]}
    assert res.eval["chrono"] == []  # no timestamps, no chrono split
    with pytest.raises(ValueError, match="not among the users"):
        make_splits(users, new_user_ids=["ghost"])
