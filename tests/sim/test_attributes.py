"""The attributes suite: ground truth on meaning, disjoint wording between context and scored pairs, long contexts,
no visible persona, and a keyword rule held far below the Bayes rate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pluralign.data.io import read_users, write_users
from pluralign.data.splits import hide_truth, topic_of
from pluralign.sim.attributes import (
    DIMENSIONS,
    PROMPTS,
    AttributesPersona,
    Meaning,
    attributes_splits,
    build_attributes,
    pool_vocabulary,
)
from pluralign.sim.suites import SUITES, build_suite

# Function words may occur in both pools: they occur at every level alike, so they carry no preference.
FUNCTION_WORDS = {"a", "an", "and", "are", "at", "for", "is", "it", "on", "the", "this", "to", "will", "you", "your"}


@pytest.fixture(scope="module")
def quick():
    return build_suite("attributes", seed=0, quick=True)


@pytest.fixture(scope="module")
def full_split():
    suite = build_attributes(seed=100, quick=False)  # a design seed: the bench scores seeds 0, 1, 2
    return suite, attributes_splits(suite.users, seed=100, seen_eval_frac=0.3)


def test_registered_deterministic_and_valid(quick, tmp_path):
    assert "attributes" in SUITES
    again = build_suite("attributes", seed=0, quick=True)
    assert [u.model_dump_json() for u in again.users] == [u.model_dump_json() for u in quick.users]
    assert [u.model_dump_json() for u in build_attributes(seed=1, quick=True).users] != \
        [u.model_dump_json() for u in quick.users]
    write_users(tmp_path / "a.jsonl", quick.users)
    assert len(read_users(tmp_path / "a.jsonl")) == len(quick.users)
    for u in quick.users:
        assert u.profile is None and u.persona  # nothing a method sees is written from the persona
        pools = [p.meta["pool"] for p in u.pairs]
        assert pools == sorted(pools)  # context pairs first, then target pairs, in time order
        assert pools.count("context") == 12 and pools.count("target") == 6
        assert [p.timestamp for p in u.pairs] == sorted(p.timestamp for p in u.pairs)


def test_pools_share_no_content_word_for_any_level():
    a, b = pool_vocabulary("A"), pool_vocabulary("B")
    for key in a:
        shared = (a[key] & b[key]) - FUNCTION_WORDS
        assert not shared, f"{key}: pool A and pool B share {sorted(shared)}"


def test_truth_reads_meaning_not_words(quick):
    sim = quick.simulated[quick.users[0].user_id]
    persona = sim.persona
    assert isinstance(persona, AttributesPersona)
    # Two different wordings of one meaning have the same utility; the persona's favourite interest wins.
    catalogue = persona.catalogue
    by_meaning: dict[Meaning, list[str]] = {}
    for text, m in catalogue.items():
        by_meaning.setdefault(m, []).append(text)
    same = next(texts for texts in by_meaning.values() if len(texts) >= 2)
    assert len({persona.utility("q", t) for t in same}) == 1
    with pytest.raises(KeyError, match="catalogue"):
        persona.utility("q", "a sentence the suite never wrote")
    for p in quick.users[0].pairs:  # labels are BT draws at the suite's temperature
        assert sim.p_prefer(p.prompt, p.chosen, p.rejected) == pytest.approx(p.p_chosen, abs=1e-5)
        assert max(p.p_chosen, 1 - p.p_chosen) == pytest.approx(quick.bayes_accuracy, abs=1e-3)


def test_every_dimension_is_probed_and_the_population_has_nothing_to_learn(quick):
    contrasts = {p.meta["contrast"] for u in quick.users for p in u.pairs}
    assert contrasts == set(DIMENSIONS)
    assert abs(quick.stats["population_accuracy"] - 0.5) < 0.05
    assert 0.85 <= quick.bayes_accuracy <= 0.92


def test_split_contexts_are_pool_a_targets_pool_b_and_new_topics_stay_unseen(full_split):
    suite, split = full_split
    assert split.eval["new-users"] and split.eval["new-topics"] and split.train
    held = set(split.new_topics)
    b_texts = {t for u in suite.users for p in u.pairs if p.meta["pool"] == "target" for t in (p.chosen, p.rejected)}
    for e in split.examples():
        assert e.target.meta["pool"] == "target"
        assert e.context.pairs and all(p.meta["pool"] == "context" for p in e.context.pairs)
        assert not any(p.chosen in b_texts or p.rejected in b_texts for p in e.context.pairs)
        assert not any(topic_of(p) in held for p in e.context.pairs)
    new_users = {e.user_id for e in split.eval["new-users"]}
    assert not new_users & {e.user_id for e in split.train}


def test_contexts_are_longer_than_any_rm_input(full_split):
    _, split = full_split
    from pluralign.evaluation.methods.icl import render_icl_context

    words = [len(render_icl_context(e).split()) for e in split.eval["new-users"][:50]]
    assert min(words) > 400  # the RM reads at most 256 tokens (full bench), all inputs included


def test_hidden_truth_is_not_in_what_methods_see(full_split):
    suite, split = full_split
    blind = hide_truth(split)
    personas = {u.persona for u in suite.users}
    for e in blind.examples()[:500]:
        dump = e.context.model_dump_json() + e.target.model_dump_json()
        assert e.context.persona is None and not any(p in dump for p in personas)
        assert "\"pool\":" not in dump and "\"p_chosen\":0" not in dump


def test_keyword_floor_sits_far_below_the_bayes_rate_on_new_users(full_split):
    """The design target, checked on a design seed: a transparent rule gets the surface dimensions (length,
    emoji) and little else, at least 15 points under the Bayes rate."""
    from pluralign.evaluation.methods.keyword import KeywordMethod

    _, split = full_split
    ex = split.eval["new-users"]
    margins = KeywordMethod().score_pairs(ex)
    keyword = float(np.mean(np.where(margins > 0, 1.0, np.where(margins == 0, 0.5, 0.0))))
    bayes = float(np.mean([1.0 if e.target.p_chosen > 0.5 else 0.0 for e in ex]))
    assert bayes - keyword >= 0.15, (bayes, keyword)
    by_dim: dict[str, list[float]] = {}
    for e, m in zip(ex, margins, strict=True):
        by_dim.setdefault(e.target.meta["contrast"], []).append(float(m > 0) + 0.5 * float(m == 0))
    assert np.mean(by_dim["topic"]) < 0.6  # interests are worded differently in context and target


def test_prompts_are_the_new_topics_unit(quick):
    topics = {p.topic for u in quick.users for p in u.pairs}
    assert len(topics) == len(PROMPTS)
    assert dataclasses.is_dataclass(Meaning)


def test_bench_runs_the_suite_with_its_bayes_rate_and_keyword_floor(tmp_path):
    from pluralign.evaluation.bench import accuracy_of, run_suite

    results = run_suite("attributes", tmp_path, quick=True, methods=["keyword"], echo=False)
    for split in ("new-users", "new-topics", "seen-users"):
        assert accuracy_of(results, "bayes", split) - accuracy_of(results, "keyword", split) >= 0.15
    assert all(r.ci_unit == "user" for r in results if r.metric == "accuracy")
