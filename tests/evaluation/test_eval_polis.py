"""Per-user Polis pairs and Polis splits, on real Polis conversations from the shared data folder."""

from collections import Counter
from pathlib import Path

import pytest

from pluralign.data.converters import polis
from pluralign.evaluation.polis_pairs import conversation_of, polis_pair_users, polis_splits, user_pairs

POLIS = Path(__file__).resolve().parents[3] / "shared" / "data" / "polis"
SMALL = ["london.youth.policing", "brexit-consensus", "scoop-hivemind.freshwater"]

pytestmark = pytest.mark.skipif(not POLIS.is_dir(), reason="shared Polis data not available")


@pytest.fixture(scope="module")
def voters():
    return [u for name in SMALL for u in polis.convert(POLIS / name)]


def test_pairs_are_agree_vs_disagree_and_use_each_vote_once(voters):
    n_checked = 0
    for u in voters[:120]:
        votes = {r.response: r.value for r in u.reactions}
        pairs = user_pairs(u, seed=0)
        used = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        assert len(used) == len(set(used)), "a vote appears in two pairs of the same user"
        for p in pairs:
            assert votes[p.chosen] == 1 and votes[p.rejected] == -1
            assert p.topic == u.reactions[0].topic
        n_agree = sum(v == 1 for v in votes.values())
        n_disagree = sum(v == -1 for v in votes.values())
        assert len(pairs) == min(n_agree, n_disagree)
        n_checked += len(pairs)
    assert n_checked > 50


def test_presentation_order_is_balanced(voters):
    users = polis_pair_users(voters, min_pairs=1)
    bits = Counter(p.meta["a_is_chosen"] for u in users for p in u.pairs)
    share = bits[True] / (bits[True] + bits[False])
    assert 0.4 < share < 0.6
    assert all(not u.reactions for u in users)  # votes (which include targets) never reach a context


def test_splits_hold_out_a_whole_conversation(voters):
    users = polis_pair_users(voters, min_pairs=4, seed=0)
    split = polis_splits(users, seed=0, context_size=3)
    assert len(split.new_topics) == 1
    held = split.new_topics[0]
    assert split.eval["new-topics"] and split.eval["new-users"] and split.eval["seen-users"]
    assert all(conversation_of(e.context) == held for e in split.eval["new-topics"])
    assert all(e.target.topic != held for e in split.train)
    train_users = {e.user_id for e in split.train}
    assert not train_users & {e.user_id for e in split.eval["new-users"]}
    for e in split.train + [x for v in split.eval.values() for x in v]:
        ctx_texts = {t for p in e.context.pairs for t in (p.chosen, p.rejected)}
        assert e.target.chosen not in ctx_texts and e.target.rejected not in ctx_texts
        assert e.context.group == next(u.group for u in users if u.user_id == e.user_id)
