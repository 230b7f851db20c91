"""The keyword floor, the hidden truth and the validation split, as the bench builds them."""

import json

import numpy as np
import pytest

from pluralign.data.schema import Conversation, Message, PreferencePair, UserRecord
from pluralign.data.splits import Example, carve_validation, hide_truth, make_splits
from pluralign.evaluation.methods import make_method
from pluralign.evaluation.metrics import pairwise_accuracy
from pluralign.evaluation.suite_splits import build_simulated_split
from pluralign.sim import build_suite

CATS = "A cat is a calm, independent companion that purrs on your lap."
DOGS = "A dog is a loyal, playful companion that loves long walks."


def _example(context: UserRecord, chosen: str, rejected: str) -> Example:
    target = PreferencePair(pair_id="t", prompt="Which pet should I get?", chosen=chosen, rejected=rejected)
    return Example(context.user_id, context, target, "new-users")


def _pair(i: int, chosen: str, rejected: str) -> PreferencePair:
    return PreferencePair(pair_id=f"c{i}", prompt="Tell me about a pet.", chosen=chosen, rejected=rejected)


def test_keyword_rule_reads_choices_length_emoji_and_the_users_own_words():
    kw = make_method("keyword")
    kw.fit([])
    cat_lover = UserRecord(user_id="u", pairs=[_pair(0, CATS, DOGS), _pair(1, "Cats nap all day.", "Dogs bark.")])
    # Words of what the user chose vs rejected: cats win, in either order of the pair.
    m = kw.score_pairs([_example(cat_lover, "My cat sleeps.", "My dog runs."),
                        _example(cat_lover, "My dog runs.", "My cat sleeps.")])
    assert m[0] > 0 and m[1] == -m[0]
    long = "Here is a long and careful answer with many extra words about care, budget and routine."
    wordy = UserRecord(user_id="w", pairs=[_pair(0, long, "Short one."), _pair(1, long + " More.", "Brief.")])
    assert kw.score_pairs([_example(wordy, "Fine answer " * 10, "Fine answer")])[0] > 0
    emoji = UserRecord(user_id="e", pairs=[_pair(0, "Great pick \U0001f60a\U0001f431", "Great pick")])
    assert kw.score_pairs([_example(emoji, "Nice \u2728", "Nice")])[0] > 0
    # No pairs at all: the profile and the user's own turns in past conversations are what the rule reads.
    told = UserRecord(user_id="p", profile="Keep things brief, please. I adore hamsters.",
                      conversations=[Conversation(conversation_id="c", messages=[
                          Message(role="user", content="Please skip the emojis."),
                          Message(role="assistant", content="Sure, lots of detailed emojis here.")])])
    m = kw.score_pairs([_example(told, "Hamsters are tiny.", "Rabbits are tiny."),
                        _example(told, "Short.", "A much longer reply that goes on and on."),
                        _example(told, "Plain reply.", "Plain reply \U0001f60a")])
    assert (m > 0).all(), m
    assert kw.tokens_per_pair([_example(told, "a b", "c d e")]) > 5
    nobody = UserRecord(user_id="n")
    assert kw.score_pairs([_example(nobody, CATS, DOGS)])[0] == 0.0  # nothing visible: a tie, scored as half


def test_keyword_is_near_perfect_on_pets_which_therefore_shows_plumbing_only(pets_split):
    kw = make_method("keyword")
    kw.fit(pets_split.train)
    new = pets_split.eval["new-users"]
    assert pairwise_accuracy(kw.score_pairs(new)) >= 0.9


@pytest.mark.parametrize("name", ["pets", "pets-ood", "hh-users", "contexts"])
def test_a_method_handed_a_context_record_cannot_find_the_persona(name):
    split = build_simulated_split(name, seed=0, quick=True)
    suite = build_suite(name, seed=0, quick=True)
    personas = {u.user_id: u.persona for u in suite.users}
    examples = split.examples()
    assert examples and split.truth is not None
    for e in examples:
        ctx = e.context
        seen = ctx.model_dump_json() + e.target.model_dump_json()
        assert ctx.persona is None and ctx.meta == {}
        assert personas[e.user_id] not in seen
        assert '"p_chosen":null' in e.target.model_dump_json().replace(" ", "")
        assert all(p.p_chosen is None and p.meta == {} for p in ctx.pairs)
        assert e.target.meta == {}
        assert split.truth.persona_of(e.user_id) == personas[e.user_id]
        # ids are opaque: neither the user's id nor a pair id names what the simulator knows of the user
        hidden = {str(v).split("-")[0] for v in split.truth.user_meta.get(e.user_id, {}).values() if isinstance(v, str)}
        ids = " ".join([e.user_id, e.target.pair_id, *(p.pair_id for p in ctx.pairs)])
        assert not any(word in ids for word in hidden), (hidden, ids)
        assert split.truth.p_chosen_of(e) is not None  # the scorers still have the truth, through the table
    profiles = {e.context.profile for e in examples}
    if name == "contexts":  # the one suite about self-descriptions: it says so in the report notes
        assert any(profiles) and any("self-description" in n for n in split.notes)
    else:
        assert profiles == {None} and not split.notes


def test_hide_truth_keeps_what_a_person_could_have_written():
    u = UserRecord(user_id="u", persona="I love cats.", profile="cat person", group="2", meta={"animal": "cats"},
                   pairs=[PreferencePair(pair_id=f"p{i}", prompt="q", chosen=f"a{i}", rejected=f"b{i}", p_chosen=0.9,
                                         meta={"contrast": "animal"}) for i in range(6)])
    split = make_splits([u, u.model_copy(update={"user_id": "v"})], seed=0, context_size=2, new_user_frac=0.0)
    blind = hide_truth(split)
    e = blind.train[0]
    assert (e.context.profile, e.context.group) == ("cat person", "2")
    assert e.context.persona is None and e.target.p_chosen is None
    assert blind.truth.user_meta["u"] == {"animal": "cats"}
    assert blind.truth.pair_meta[("u", e.target.pair_id)] == {"contrast": "animal"}
    assert split.train[0].context.persona == "I love cats."  # the input split is not modified


def test_validation_users_leave_training_and_every_test_split():
    suite = build_suite("pets", seed=0, quick=True)
    split = make_splits(suite.users, seed=0, context_size=3, seen_eval_frac=0.3)
    carved = carve_validation(split, frac=0.15, seed=0)
    held = set(carved.validation_user_ids)
    assert len(held) >= 2 and carved.validation and {e.split for e in carved.validation} == {"validation"}
    assert {e.user_id for e in carved.validation} == held
    for name in ("seen-users", "new-topics", "chrono"):
        assert not held & {e.user_id for e in carved.eval[name]}
    assert not held & {e.user_id for e in carved.train} and not held & set(carved.train_user_ids)
    assert carved.eval["new-users"] == split.eval["new-users"]
    moved = {e.target.pair_id for e in carved.validation}
    before = {e.target.pair_id for e in split.train + split.eval["seen-users"] if e.user_id in held}
    assert moved == before
    tiny = make_splits(suite.users[:6], seed=0, context_size=3, new_user_frac=0.0)
    assert carve_validation(tiny, frac=0.5, seed=0, min_train_users=5).validation == []  # too few users to spare


def test_results_json_rows_are_plain_json(pets_split):
    from pluralign.evaluation.results import Result, result_row

    row = result_row(Result("b", "m", "new-users", "accuracy", 0.5, 4, 0.2, 0.8, ci_unit="user", n_users=2,
                            seed=1))
    assert json.loads(json.dumps(row))["seed"] == 1 and "seeds" not in row and "context_votes" not in row
    assert np.isfinite(row["value"])


def test_oracle_also_trains_on_training_users_context_pairs_and_nothing_scored():
    """The oracle reads the persona, not the context, so each training user's labelled context pairs are training
    pairs for it (once per user); a method conditioned on the context must not train on them (they are in view)."""
    split = build_simulated_split("attributes", seed=0, quick=True)
    oracle = make_method("oracle", quick=True)
    oracle.use_truth(split.truth)
    rows = oracle._rows(split.train, with_context_pairs=True)[len(split.train):]  # the targets' rows come first
    contexts = {e.user_id: e.context for e in split.train}
    assert len(rows) == sum(len(c.pairs) for c in contexts.values()) > len(contexts)
    assert {r["summary"] for r in rows} == {split.truth.persona_of(u) for u in contexts}
    scored = {(e.target.chosen, e.target.rejected) for e in [*split.validation, *(e for v in split.eval.values() for e in v)]}
    assert not scored & {(r["chosen"], r["rejected"]) for r in rows}
    assert oracle.trains_on_context_pairs
    assert not any(make_method(m, quick=True).trains_on_context_pairs for m in ("bt", "icl", "plus-extractive"))
