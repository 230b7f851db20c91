"""The ratings converter (any per-user ratings table -> within-user pairs) and `data convert ratings`."""

from __future__ import annotations

import csv
import random

import pytest

from pluralign.cli import main
from pluralign.data.converters import FORMATS, convert
from pluralign.data.io import FeedbackFileError, read_users

COLS = {"user_col": "user", "item_col": "movie", "text_col": "title", "rating_col": "stars"}


def test_pairs_from_rating_differences_ties_dropped_items_used_once(fixtures):
    assert FORMATS["ratings"] == "ratings"
    users = {u.user_id: u for u in convert("ratings", fixtures / "ratings" / "movies.csv", **COLS,
                                           profile_cols="age,occupation", time_col="ts", prompt="Pick a film")}
    assert set(users) == {"u1", "u2"}  # u3 rated both films 3: a tie, no pair, no user
    stars = {("u1", "m1"): 5, ("u1", "m2"): 3, ("u1", "m3"): 4, ("u1", "m4"): 1, ("u1", "m5"): 4,
             ("u2", "m1"): 2, ("u2", "m2"): 5, ("u2", "m3"): 2, ("u2", "m4"): 4}
    for uid, u in users.items():
        seen: list[str] = []
        for p in u.pairs:
            hi, lo = p.meta["chosen_item"], p.meta["rejected_item"]
            assert stars[(uid, hi)] > stars[(uid, lo)]  # the higher-rated item is chosen, never a tie
            assert p.meta["rating_gap"] == stars[(uid, hi)] - stars[(uid, lo)]
            assert p.prompt == "Pick a film" and p.pair_id == f"{uid}:{hi}>{lo}"
            assert p.timestamp is not None
            seen += [hi, lo]
        assert len(seen) == len(set(seen))  # each item in at most one of the user's pairs
        assert len(u.pairs) == sum(1 for (x, _) in stars if x == uid) // 2  # 5 items -> 2 pairs, 4 -> 2
    assert users["u1"].profile == "age: 25; occupation: writer"
    assert users["u2"].demographics == {"age": "56", "occupation": "farmer"}
    assert "Amélie (2001): une jeune femme à Paris" in {t for p in users["u2"].pairs for t in (p.chosen, p.rejected)}


def test_same_seed_same_pairs_other_seed_may_pair_differently(fixtures):
    a = convert("ratings", fixtures / "ratings" / "movies.csv", **COLS)
    b = convert("ratings", fixtures / "ratings" / "movies.csv", **COLS)
    assert [u.model_dump_json() for u in a] == [u.model_dump_json() for u in b]
    assert all(u.profile is None for u in a)  # no profile columns asked for: no profile


def test_bad_rows_are_all_reported_with_file_line_and_column(fixtures):
    path = fixtures / "ratings" / "bad.csv"
    with pytest.raises(FeedbackFileError) as err:
        convert("ratings", path, **COLS, profile_cols="age")
    found = {(i.line, i.field) for i in err.value.issues}
    assert found == {(3, "stars"), (4, "movie"), (5, "title"), (6, "title"), (8, "age")}
    text = str(err.value)
    assert "bad.csv:3" in text and "expected a number, got 'five'" in text
    assert "rated item 'm1' twice (first on line 2)" in text
    assert "different text than on line 2" in text and "profile columns must not change" in text


def test_missing_column_names_the_columns_found(fixtures):
    with pytest.raises(FeedbackFileError, match=r"movies.csv:1: field 'uid'.*columns: user, movie, title, stars"):
        convert("ratings", fixtures / "ratings" / "movies.csv", **{**COLS, "user_col": "uid"})


def test_cli_convert_ratings_with_column_flags(fixtures, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    rc = main(["data", "convert", "ratings", str(fixtures / "ratings" / "movies.csv"), "--user-col", "user",
               "--item-col", "movie", "--text-col", "title", "--rating-col", "stars", "--profile-cols",
               "age,occupation", "--prompt", "Which film: tonight?", "--out", str(out)])
    assert rc == 0
    users = read_users(out)
    assert [u.user_id for u in users] == ["u1", "u2"]
    assert users[0].pairs[0].prompt == "Which film: tonight?"  # taken verbatim, colon and all
    assert "wrote 2 users (4 pairs)" in capsys.readouterr().out
    bad = main(["data", "convert", "ratings", str(fixtures / "ratings" / "bad.csv"), "--user-col", "user",
                "--item-col", "movie", "--text-col", "title", "--rating-col", "stars", "--out",
                str(tmp_path / "bad.jsonl")])
    assert bad == 1 and not (tmp_path / "bad.jsonl").exists()
    assert "bad.csv:3: field 'stars'" in capsys.readouterr().err
    wrong = main(["data", "convert", "polis", str(fixtures / "polis"), "--user-col", "user", "--out",
                  str(tmp_path / "p.jsonl")])
    assert wrong != 0 and "--user-col applies to the ratings format only" in capsys.readouterr().err


def write_ratings_csv(path, n_users: int = 30, n_items: int = 16, seed: int = 0) -> None:
    """Users who like one of two genres (rating 4-5 vs 1-2), with noise: a small per-user ratings table."""
    rng = random.Random(seed)
    genres = ["space opera", "cosy baking show"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "item", "text", "rating", "age"])
        for u in range(n_users):
            likes = u % 2
            for i in rng.sample(range(n_items), 12):
                g = i % 2
                r = rng.choice([4, 5]) if g == likes else rng.choice([1, 2])
                w.writerow([f"user{u}", f"item{i}", f"Episode {i} of a {genres[g]}", r, 20 + u % 40])


def test_bench_ratings_new_users_and_new_items(tmp_path):
    from pluralign.data.converters import convert
    from pluralign.data.io import write_users
    from pluralign.evaluation.bench import run_suite
    from pluralign.evaluation.ratings_pairs import load_ratings_split, pair_items

    write_ratings_csv(tmp_path / "r.csv", n_users=40)
    users = convert("ratings", tmp_path / "r.csv", user_col="user", item_col="item", text_col="text",
                    rating_col="rating", profile_cols="age")
    write_users(tmp_path / "r.jsonl", users)
    split = load_ratings_split(tmp_path / "r.jsonl", seed=0, quick=True)
    assert split.eval["new-items"] and split.eval["new-users"]
    held = {i for e in split.eval["new-items"] for i in (e.target.chosen, e.target.rejected)}
    seen_in_training = {t for e in split.train for t in (e.target.chosen, e.target.rejected)}
    seen_in_training |= {t for e in split.examples() for p in e.context.pairs for t in (p.chosen, p.rejected)}
    # every new-items pair has an item that no training pair and no context shows
    assert all({e.target.chosen, e.target.rejected} - seen_in_training for e in split.eval["new-items"])
    assert held and not {e.user_id for e in split.eval["new-items"]} & set(split.new_user_ids)
    assert all(pair_items(e.target) is None for e in split.examples())  # item ids are not shown to methods

    results = run_suite("ratings", tmp_path / "out", quick=True, methods=["keyword"], data=tmp_path / "r.jsonl",
                        echo=False)
    splits = {r.split for r in results if r.metric == "accuracy"}
    assert {"new-users", "new-items"} <= splits
    assert all(r.ci_unit == "user" for r in results if r.metric == "accuracy")
    with pytest.raises(ValueError, match="convert the table first"):
        run_suite("ratings", tmp_path / "out2", quick=True, methods=["keyword"], data=tmp_path / "r.csv", echo=False)
    with pytest.raises(ValueError, match="needs --data"):
        run_suite("ratings", tmp_path / "out3", quick=True, methods=["keyword"], echo=False)
    with pytest.raises(ValueError, match="oracle"):
        run_suite("ratings", tmp_path / "out4", quick=True, methods=["oracle"], data=tmp_path / "r.jsonl", echo=False)
