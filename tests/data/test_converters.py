"""Each converter on small hand-made fixtures (exact expectations) and on the real shared data folders."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from pluralign.data.converters import FORMATS, convert, get_converter
from pluralign.data.converters.plus import parse_context_pairs
from pluralign.data.schema import UserRecord


def _by_id(users: list[UserRecord]) -> dict[str, UserRecord]:
    return {u.user_id: u for u in users}


def test_registry_lists_every_format_with_options():
    assert set(FORMATS) == {"plus", "trl", "polis", "hh-rlhf", "arena", "oasst", "ratings"}
    for name in FORMATS:
        mod = get_converter(name)
        assert callable(mod.convert) and mod.SUMMARY
        assert all(f.metadata.get("help") for f in mod.Options.__dataclass_fields__.values())
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        get_converter("nope")


# --- plus ------------------------------------------------------------------------------------------------------

def test_plus_rows_become_users_with_context_pairs_and_targets(fixtures):
    users = convert("plus", fixtures / "plus" / "pets_rows.jsonl")
    assert [u.user_id for u in users] == ["plus:1", "plus:2", "plus:3"]
    u1 = users[0]
    roles = [p.meta["role"] for p in u1.pairs]
    assert roles == ["context", "context", "reward+train"]  # identical reward and train pair kept once
    assert u1.pairs[0].prompt == "What pet should I get for a small flat?"
    assert u1.pairs[0].chosen.startswith("A cat") and u1.pairs[0].rejected.startswith("A border collie")
    assert [t.meta["role"] for t in u1.targets] == ["eval"] and u1.targets[0].chosen.startswith("Brush your cat")
    assert u1.meta["context"].endswith("##Summary") and u1.profile is None
    u2 = users[1]
    assert [p.meta["role"] for p in u2.pairs] == ["context", "reward", "train"]
    # row 3: no parseable pairs -> the user's context text is the profile; chat-list responses unwrapped
    u3 = users[2]
    assert u3.profile.startswith("I live on a farm") and u3.pairs[0].chosen.startswith("Chickens")
    assert u3.pairs[0].prompt == "What animal should I keep?"


def test_plus_groups_rows_by_user_id_and_keeps_user_type(fixtures):
    users = _by_id(convert("plus", fixtures / "plus" / "pets_grouped.jsonl"))
    assert set(users) == {"u-cat", "u-dog"}
    cat = users["u-cat"]
    assert cat.group == "cat person" and cat.meta["user_type"] == "cat person"
    assert len(cat.targets) == 2
    assert sum(p.meta["role"] == "context" for p in cat.pairs) == 2  # same context in both rows: pairs kept once
    assert len({p.pair_id for p in cat.pairs + cat.targets}) == len(cat.pairs) + len(cat.targets)


def test_plus_context_parser_handles_multiline_and_alternative_labels():
    text = ("Intro.\n\nQuestion: Best tea?\nPreferred response: Green tea,\nbrewed at 80C.\n"
            "Other response: Builder's tea.\nQuestion: Best coffee?\nChosen: Espresso.\nRejected: Instant.\n\nEnd.")
    assert parse_context_pairs(text) == [
        ("Best tea?", "Green tea,\nbrewed at 80C.", "Builder's tea."),
        ("Best coffee?", "Espresso.", "Instant."),
    ]
    assert parse_context_pairs("I like dogs and long walks.") == []


# --- trl -------------------------------------------------------------------------------------------------------

def test_trl_string_conversational_and_csv_rows(fixtures):
    users = _by_id(convert("trl", fixtures / "trl"))
    assert set(users) == {"alice", "bob", "carol", "population"}
    assert len(users["population"].pairs) == 2  # the word-for-word repeat is kept once
    alice = users["alice"].pairs
    assert alice[0].prompt == "Write a haiku about rain." and alice[0].chosen.startswith("Soft rain")
    # implicit prompt: the shared turns become an HH-layout dialogue
    assert alice[1].prompt == "Human: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke."
    assert alice[1].rejected == "No."
    carol = users["carol"].pairs
    assert carol[0].prompt == "Summarize: the cat sat\non the mat."  # multi-line CSV cell
    # same prompt, different users: same topic, different pair ids
    assert alice[0].topic == users["bob"].pairs[0].topic and alice[0].pair_id != users["bob"].pairs[0].pair_id


def test_trl_reads_a_datasets_folder_and_parquet(fixtures, tmp_path):
    import datasets

    rows = [{"prompt": "2+2?", "chosen": "4", "rejected": "5", "user_id": "u1"},
            {"prompt": "3+3?", "chosen": "6", "rejected": "7", "user_id": "u2"}]
    ds = datasets.Dataset.from_list(rows)
    ds.save_to_disk(str(tmp_path / "ds"))
    ds.to_parquet(str(tmp_path / "rows.parquet"))
    for src in (tmp_path / "ds", tmp_path / "rows.parquet"):
        users = _by_id(convert("trl", src))
        assert set(users) == {"u1", "u2"} and users["u2"].pairs[0].chosen == "6"


# --- polis -----------------------------------------------------------------------------------------------------

def test_polis_last_vote_wins_and_moderated_comments_dropped(fixtures):
    users = _by_id(convert("polis", fixtures / "polis"))
    assert set(users) == {"tiny-long:0", "tiny-long:1", "tiny-long:2", "tiny-wide:10", "tiny-wide:11"}
    v0 = {r.item_id: r.value for r in users["tiny-long:0"].reactions}
    assert v0 == {"0": 1.0, "1": 1.0}  # re-vote on comment 1 (-1 then 1, rows out of order): 1 stands; 2 moderated
    r = users["tiny-long:1"].reactions
    assert [x.item_id for x in r] == ["0", "1", "3"] and [x.value for x in r] == [-1.0, 0.0, 1.0]
    assert r[0].timestamp == 1600000700.0 and r[0].kind == "vote" and r[0].topic == "tiny-long"
    assert r[0].prompt == "Should the town build a new library?"
    assert r[1].response == "The money should fix the roads first,\nthen we can talk."
    assert users["tiny-long:0"].group == "0" and users["tiny-long:2"].group is None
    # wide-only conversation: group from group-id, no timestamps, comment 8 moderated, participant 12 never voted
    w = users["tiny-wide:10"]
    assert w.group == "0" and [(x.item_id, x.value, x.timestamp) for x in w.reactions] == [("5", 1.0, None),
                                                                                            ("7", -1.0, None)]
    assert w.reactions[0].prompt == "Parks, paths and play areas"
    assert all(x.item_id != "8" for u in users.values() for x in u.reactions)


def test_polis_drop_meta_comments_option(fixtures):
    users = _by_id(convert("polis", fixtures / "polis" / "tiny-wide", drop_meta_comments=True))
    assert [x.item_id for x in users["tiny-wide:10"].reactions] == ["5"]


def test_polis_long_and_wide_give_the_same_last_votes(fixtures):
    long_ = convert("polis", fixtures / "polis" / "tiny-long", votes="long")
    wide = convert("polis", fixtures / "polis" / "tiny-long", votes="wide")
    key = lambda users: {(u.user_id, r.item_id): r.value for u in users for r in u.reactions}  # noqa: E731
    assert key(long_) == key(wide) and len(key(long_)) == 6


def test_polis_sign_convention_matches_comment_counts(fixtures):
    """agree = 1: per comment, the count of final +1 votes equals comments.csv's `agrees`."""
    import csv

    users = convert("polis", fixtures / "polis" / "tiny-long")
    plus = Counter(r.item_id for u in users for r in u.reactions if r.value == 1)
    with open(fixtures / "polis" / "tiny-long" / "comments.csv", newline="") as fh:
        agrees = {row["comment-id"]: int(row["agrees"]) for row in csv.DictReader(fh) if row["moderated"] != "-1"}
    assert {c: plus.get(c, 0) for c in agrees} == agrees


# --- hh-rlhf, arena, oasst -------------------------------------------------------------------------------------

def test_hh_rlhf_splits_prompt_and_final_turns(fixtures, tmp_path):
    users = convert("hh-rlhf", fixtures / "hh")
    assert [u.user_id for u in users] == ["hh:tiny-base"]
    pairs = users[0].pairs
    assert len(pairs) == 2  # a duplicate and a pair with different contexts are skipped
    assert pairs[0].prompt == "Human: How do I boil an egg?" and pairs[0].chosen == "Put it in boiling water for 8 minutes."
    assert pairs[1].prompt == "Human: Hi\n\nAssistant: Hello!\n\nHuman: What's 2+2?" and pairs[1].rejected == "5."
    # gzip input, and ids are stable across runs and file encodings
    gz_dir = tmp_path / "tiny-base"
    gz_dir.mkdir()
    import gzip

    with gzip.open(gz_dir / "test.jsonl.gz", "wb") as fh:
        fh.write((fixtures / "hh" / "tiny-base" / "test.jsonl").read_bytes())
    again = convert("hh-rlhf", gz_dir / "test.jsonl.gz")
    assert [p.pair_id for p in again[0].pairs] == [p.pair_id for p in pairs]


def test_arena_dedupes_repeated_battles_and_keeps_category(fixtures):
    users = convert("arena", fixtures / "arena")
    assert [u.user_id for u in users] == ["arena:population"]
    pairs = users[0].pairs
    assert len(pairs) == 3
    coding = next(p for p in pairs if p.meta["category"] == "Coding")
    assert coding.chosen == "s[::-1]" and coding.meta["chosen_model"] == "not_llama"
    assert coding.rejected.startswith("Use a loop")


def test_oasst_authors_reactions_and_rank_pairs(fixtures):
    users = _by_id(convert("oasst", fixtures / "oasst"))
    assert set(users) == {"oasst:author-a", "oasst:author-b", "oasst:crowd"}
    a = users["oasst:author-a"].conversations
    assert [c.conversation_id for c in a] == ["t1", "t2"] and a[0].messages[0].content.startswith("Is a vegan")
    b = users["oasst:author-b"].conversations[0]
    assert [m.role for m in b.messages] == ["user", "assistant", "user"]  # the follow-up keeps its thread
    crowd = users["oasst:crowd"]
    got = sorted((r.item_id, r.kind, r.value) for r in crowd.reactions)
    assert got == [("t1-a1", "+1", 3.0), ("t1-a2", "-1", 2.0), ("t1-a2", "red_flag", 1.0), ("t1-a3", "+1", 1.0),
                   ("t2-a1", "+1", 1.0)]  # _skip_labeling ignored, deleted reply dropped, repeated tree kept once
    ranks = sorted((p.meta["chosen_rank"], p.meta["rejected_rank"]) for p in crowd.pairs)
    assert ranks == [(0, 1), (0, 2), (1, 2)]
    assert all(p.prompt == "Is a vegan diet healthy for teenagers?" for p in crowd.pairs)
    follow = next(r for r in crowd.reactions if r.item_id == "t1-a3")
    assert follow.prompt.startswith("Human: Is a vegan") and follow.prompt.endswith("Human: Which foods give iron?")


# --- real shared data ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, folder, expect", [
    ("hh-rlhf", "hh-rlhf-test", {"users": 4, "pairs": 8524}),
    ("arena", "arena-llama3-battles", {"users": 1, "pairs": 1415}),
    ("oasst", "oasst2-subset", {"users": 546, "pairs": 502, "reactions": 555}),
])
def test_real_shared_folders_convert(shared_data, fmt, folder, expect):
    users = convert(fmt, shared_data / folder)
    assert len(users) == expect["users"]
    for k in ("pairs", "reactions"):
        if k in expect:
            assert sum(len(getattr(u, k)) for u in users) == expect[k]
    assert len({u.user_id for u in users}) == len(users)


def test_real_polis_small_conversations_long_equals_wide(shared_data, tmp_path):
    for conv in ("brexit-consensus", "london.youth.policing"):
        src = shared_data / "polis" / conv
        long_ = convert("polis", src, votes="long")
        wide = convert("polis", src, votes="wide")
        key = lambda users: {(u.user_id, r.item_id): r.value for u in users for r in u.reactions}  # noqa: E731
        assert key(long_) == key(wide) and len(key(long_)) > 600
    # london.youth.policing has 3 moderated-out comments: none of them may appear
    import csv

    with open(shared_data / "polis" / "london.youth.policing" / "comments.csv", newline="") as fh:
        hidden = {r["comment-id"] for r in csv.DictReader(fh) if r["moderated"] == "-1"}
    assert hidden and not hidden & {r.item_id for u in long_ for r in u.reactions}


@pytest.mark.slow
def test_real_polis_all_conversations_convert(shared_data):
    users = convert("polis", shared_data / "polis")
    convs = Counter(u.meta["conversation"] for u in users)
    assert len(convs) == 9 and convs["american-assembly.bowling-green"] > 1000  # the wide-only one
    values = Counter(r.value for u in users for r in u.reactions)
    assert set(values) == {-1.0, 0.0, 1.0} and values[1.0] > values[-1.0]  # agree is the commonest vote


def test_real_polis_copy_without_votes_csv_uses_wide(shared_data, tmp_path):
    src = shared_data / "polis" / "brexit-consensus"
    dst = tmp_path / "brexit-consensus"
    dst.mkdir()
    for name in ("comments.csv", "participants-votes.csv", "summary.csv"):
        shutil.copy(src / name, dst / name)
    users = convert("polis", dst)
    assert len(users) == len(convert("polis", src))


def test_trl_csv_cells_holding_chat_json_are_decoded(tmp_path):
    import csv
    import json

    src = tmp_path / "rows.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "chosen", "rejected"])
        w.writerow([json.dumps([{"role": "user", "content": "Hi?"}]),
                    json.dumps([{"role": "assistant", "content": "Hello."}]), "[not json] just text"])
    (pair,) = convert("trl", src)[0].pairs
    assert (pair.prompt, pair.chosen, pair.rejected) == ("Hi?", "Hello.", "[not json] just text")
