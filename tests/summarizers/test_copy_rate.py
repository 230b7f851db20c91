"""``copy_rate``: the share of a summary's word 8-grams found verbatim in the user's history."""

from __future__ import annotations

import pytest

from pet_users import make_users
from pluralign.summarizers.copying import context_text, copy_rate, mean_copy_rate

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_copied_sentence_counts_and_a_paraphrase_does_not():
    user = make_users(2, 3)[0]
    chosen = user.pairs[0].chosen  # e.g. "Dogs are loyal and love long walks. Think about your budget first."
    assert copy_rate("Prefers: " + chosen, user) > 0.6
    assert copy_rate("This user likes answers about loyal dogs and walking, not cats.", user) == 0.0
    assert copy_rate("Likes dogs.", user) == 0.0  # under eight words: nothing to copy


def test_case_and_punctuation_are_ignored_and_the_mean_is_per_summary():
    text = "one two three four five six seven eight nine"
    assert copy_rate("ONE two, three four five six seven eight!", text) == 1.0
    half = "one two three four five six seven eight x y z w v u t"
    assert 0 < copy_rate(half, text) < 0.2
    users = make_users(2, 3)
    zs = [users[0].pairs[0].chosen + " " + users[0].pairs[1].chosen, "short"]
    assert mean_copy_rate(zs, users) == copy_rate(zs[0], users[0]) / 2
    assert users[0].pairs[0].prompt in context_text(users[0])
