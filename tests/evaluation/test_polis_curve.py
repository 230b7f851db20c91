"""Polis few-shot curve (accuracy vs context votes) and the Polis reader on any folder of conversations: nested
folders, long and wide vote files, non-English text."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from pluralign.data.converters import polis
from pluralign.evaluation.polis_pairs import (
    add_context_vote_curve,
    context_votes_of,
    load_polis_split,
    parse_context_votes,
    plot_context_curve,
    tag_context_votes,
)
from pluralign.evaluation.results import Result

TEXTS = ["Mehr Radwege in der Stadt.", "公園にもっとベンチを。", "Más árboles en las calles.", "Less traffic downtown.",
         "Plus de bibliothèques ouvertes le soir.", "Free buses on Sundays."]


def write_conversation(folder: Path, *, seed: int, n_people: int = 24, n_comments: int = 36, wide: bool = False,
                       topic: str = "Unsere Stadt") -> None:
    """A Polis export: two opinion groups who agree with opposite halves of the comments (with noise); person p
    votes on 6 + 2p comments, so people differ in how many votes they gave."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    with open(folder / "comments.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "comment-id", "author-id", "agrees", "disagrees", "moderated", "comment-body"])
        for c in range(n_comments):
            w.writerow([1_700_000_000_000 + c, c, 0, 0, 0, 1, f"{TEXTS[c % len(TEXTS)]} (#{c})"])
    (folder / "summary.csv").write_text(f"topic,{topic}\nconversation-description,test\n", encoding="utf-8")
    votes: dict[int, dict[int, int]] = {}
    for p in range(n_people):
        group = p % 2
        mine = {}
        for c in rng.sample(range(n_comments), min(n_comments, 6 + 2 * p)):
            likes = (c % 2 == group) != (rng.random() < 0.15)
            mine[c] = 1 if likes else -1
        votes[p] = mine
    if wide:
        with open(folder / "participants-votes.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["participant", "group-id", "n-comments", "n-votes", *range(n_comments)])
            for p, mine in votes.items():
                w.writerow([p, p % 2, 0, len(mine), *[mine.get(c, "") for c in range(n_comments)]])
    else:
        with open(folder / "votes.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "datetime", "comment-id", "voter-id", "vote"])
            for p, mine in votes.items():
                for i, (c, v) in enumerate(mine.items()):
                    w.writerow([1_700_000_000_000 + 1000 * (p * 100 + i), "", c, p, v])


@pytest.fixture(scope="module")
def polis_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("polis-tree")
    write_conversation(root / "city" / "2021" / "bikes", seed=1)
    write_conversation(root / "city" / "2022" / "bikes", seed=2, wide=True)  # same folder name, other parent
    write_conversation(root / "parks", seed=3, topic="公園")
    write_conversation(root / "other" / "buses", seed=4, wide=True)
    return root


def test_nested_folders_long_and_wide_votes_and_non_english_text(polis_tree):
    users = polis.convert(polis_tree)
    convs = {u.meta["conversation"] for u in users}
    assert convs == {"city/2021/bikes", "city/2022/bikes", "parks", "other/buses"}
    assert len({u.user_id for u in users}) == len(users)  # the two "bikes" folders stay apart
    texts = {r.response for u in users for r in u.reactions}
    assert any("公園" in t for t in texts) and any("Radwege" in t for t in texts)
    assert {r.prompt for u in users if u.meta["conversation"] == "parks" for r in u.reactions} == {"公園"}


def test_context_votes_parse():
    assert parse_context_votes("16,2,4") == [2, 4, 16]
    for bad in ("3", "2,2", "0", "a,b", ""):
        with pytest.raises(ValueError, match="context-votes"):
            parse_context_votes(bad)
    assert context_votes_of("new-users@k=16") == 16 and context_votes_of("new-users") is None


def test_curve_contexts_are_nested_targets_fixed_and_short_users_left_out(polis_tree):
    split, counts = load_polis_split(polis_tree, seed=0, quick=False, context_votes=[2, 8, 32])
    curve = {k: split.eval[f"new-users@k={k}"] for k in (2, 8, 32)}
    assert curve[2] and curve[8]
    for k, examples in curve.items():
        assert all(len(e.context.pairs) == k // 2 for e in examples)
        assert counts[k]["users_scored"] == len({e.user_id for e in examples})
        assert counts[k]["users_scored"] + counts[k]["users_left_out"] == len(split.new_user_ids)
    assert counts[32]["users_left_out"] > counts[2]["users_left_out"]  # fewer people gave 32 votes
    by_user = {k: {} for k in curve}
    for k, examples in curve.items():
        for e in examples:
            by_user[k].setdefault(e.user_id, (e.context, set()))[1].add(e.target.pair_id)
            assert e.target.pair_id not in {p.pair_id for p in e.context.pairs}
            assert not {e.target.chosen, e.target.rejected} & {t for p in e.context.pairs for t in (p.chosen, p.rejected)}
    for uid, (ctx8, targets8) in by_user[8].items():
        ctx2, targets2 = by_user[2][uid]
        assert targets2 == targets8  # the same targets at every k
        assert {p.pair_id for p in ctx2.pairs} <= {p.pair_id for p in ctx8.pairs}  # contexts grow, nested
    assert "left out" in " ".join(split.notes)
    # Training is unchanged by the curve: the same split without it.
    plain, _ = load_polis_split(polis_tree, seed=0, quick=False)
    assert [e.target.pair_id for e in plain.train] == [e.target.pair_id for e in split.train]


def test_curve_plot_and_tags(tmp_path):
    recs = [Result("polis", m, f"new-users@k={k}", "accuracy", 0.6 + 0.01 * k, 40, 0.5, 0.7)
            for m in ("bt", "keyword") for k in (2, 4, 8)]
    recs.append(Result("polis", "bt", "new-users", "accuracy", 0.6, 40))
    tag_context_votes(recs)
    assert [r.context_votes for r in recs] == [2, 4, 8, 2, 4, 8, None]
    png = plot_context_curve(recs, tmp_path / "curve.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_context_curve(recs[-1:], tmp_path / "none.png") is None


def test_curve_split_without_enough_votes_is_empty_not_an_error(polis_tree):
    split, counts = load_polis_split(polis_tree, seed=0, quick=True, context_votes=[200])
    assert split.eval["new-users@k=200"] == [] and counts[200]["users_scored"] == 0
    assert add_context_vote_curve(split, [], [2])[2] == {"users_scored": 0, "users_left_out": 0}


def test_bench_polis_context_votes_records_counts_and_plot(polis_tree, tmp_path):
    from pluralign.evaluation.bench import run_suite

    out = tmp_path / "bench"
    results = run_suite("polis", out, methods=["keyword"], polis_dir=polis_tree, context_votes=[2, 8],
                        echo=False)
    curve = [r for r in results if r.metric == "accuracy" and r.context_votes is not None]
    assert {r.context_votes for r in curve} == {2, 8}
    assert all(r.split == f"new-users@k={r.context_votes}" and r.ci_unit == "user" for r in curve)
    left = {r.context_votes: r.value for r in results if r.metric == "users_left_out"}
    assert set(left) == {2, 8} and left[8] >= left[2]
    assert (out / "polis_context_votes.png").exists()
    assert "polis_context_votes.png" in (out / "report.md").read_text(encoding="utf-8")
    plain = run_suite("polis", tmp_path / "plain", methods=["keyword"], polis_dir=polis_tree, echo=False)
    assert all(r.context_votes is None for r in plain)
    with pytest.raises(ValueError, match="polis suite only"):
        run_suite("attributes", tmp_path / "x", quick=True, methods=["keyword"], context_votes=[2], echo=False)


def test_curve_adds_untrained_participants_of_training_conversations(polis_tree):
    plain, _ = load_polis_split(polis_tree, seed=0, quick=True)  # quick: 16 of the 24 people per conversation
    split, counts = load_polis_split(polis_tree, seed=0, quick=True, context_votes=[2, 16])
    trained = {e.user_id for e in split.train}
    assert set(plain.new_user_ids) < set(split.new_user_ids)
    assert not set(split.new_user_ids) & trained
    held = set(split.new_topics)
    scored = {e.user_id for e in split.eval["new-users@k=2"]}
    assert scored - set(plain.new_user_ids)  # people beyond the cap are scored
    assert not any(uid.rsplit(":", 1)[0] in held for uid in scored - set(plain.new_user_ids))
    assert counts[2]["users_scored"] + counts[2]["users_left_out"] == len(split.new_user_ids)
