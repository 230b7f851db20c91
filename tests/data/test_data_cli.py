"""`pluralign data ...` end to end through pluralign.cli.main: exit codes, stdout/stderr, files written."""

from __future__ import annotations

import json
import sys

import pytest

from pluralign.cli import main
from pluralign.data.io import read_users, write_users
from pluralign.data.schema import PreferencePair, Reaction, UserRecord


@pytest.mark.parametrize("fmt, src", [("plus", "plus/pets_rows.jsonl"), ("trl", "trl"), ("polis", "polis"),
                                      ("hh-rlhf", "hh"), ("arena", "arena"), ("oasst", "oasst")])
def test_convert_every_format_then_validate(fmt, src, fixtures, tmp_path, capsys):
    out = tmp_path / f"{fmt}.jsonl"
    assert main(["data", "convert", fmt, str(fixtures / src), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert out.stat().st_mode & 0o777 == 0o644  # readable by others, not mkstemp's 0600
    assert main(["data", "validate", str(out)]) == 0
    assert "ok:" in capsys.readouterr().out
    assert read_users(out) == __import__("pluralign.data.converters", fromlist=["convert"]).convert(
        fmt, fixtures / src)


def test_convert_options_from_set_and_config(fixtures, tmp_path, capsys):
    cfg = tmp_path / "opts.yaml"
    cfg.write_text("votes: wide\nmin_votes: 3\n", encoding="utf-8")
    out = tmp_path / "p.jsonl"
    assert main(["data", "convert", "polis", str(fixtures / "polis"), "--out", str(out), "--config", str(cfg)]) == 0
    assert [u.user_id for u in read_users(out)] == ["tiny-long:1"]
    assert main(["data", "convert", "polis", str(fixtures / "polis"), "--out", str(out), "--config", str(cfg),
                 "-s", "min_votes=2"]) == 0
    assert len(read_users(out)) == 3


def test_validate_lists_every_bad_line(tmp_path, capsys):
    good = UserRecord(user_id="u1", pairs=[PreferencePair(pair_id="p", prompt="q", chosen="a", rejected="b")])
    f = tmp_path / "users.jsonl"
    lines = [good.model_dump_json(), '{"user_id": "u2", "pairs": [{"pair_id": "p", "prompt": "q", "chosen": "a"}]}',
             '{"user_id": "u3", "colour": "red"}', good.model_dump_json(), '{"user_id": "u4", "pai']
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    other = tmp_path / "other.jsonl"
    write_users(other, [good])
    assert main(["data", "validate", str(f), str(other)]) == 1
    cap = capsys.readouterr()
    bad = [ln for ln in cap.out.splitlines() if ln.startswith(f"{f}:")]
    assert [ln.split(":")[1] for ln in bad] == ["2", "3", "4", "5"]
    assert "pairs.0.rejected" in bad[0] and "colour" in bad[1] and "duplicate user_id" in bad[2]
    assert f"{other}: 1 valid records" in cap.out and "4 problem(s)" in cap.err


def test_stats_text_and_json(tmp_path, capsys):
    users = [
        UserRecord(user_id="a", source="sim", pairs=[
            PreferencePair(pair_id=f"p{i}", prompt="q", chosen="x", rejected="y", p_chosen=0.8,
                           meta={"chosen_first": i % 2 == 0}) for i in range(4)]),
        UserRecord(user_id="b", source="polis", reactions=[
            Reaction(reaction_id=f"r{i}", prompt="t", response="c", kind="vote", value=v)
            for i, v in enumerate([1, 1, 0, -1])]),
    ]
    f = tmp_path / "u.jsonl"
    write_users(f, users)
    assert main(["data", "stats", str(f), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["users"] == 2 and s["sources"] == {"sim": 1, "polis": 1}
    assert s["items_per_user"]["pairs"] == {"total": 4, "mean": 2.0, "median": 2.0, "max": 4}
    assert s["labels"]["chosen_first_share"] == 0.5 and s["labels"]["p_chosen_mean"] == pytest.approx(0.8)
    assert s["reactions"]["vote"]["values"] == {"-1": 1, "0": 1, "1": 2}
    assert main(["data", "stats", str(f)]) == 0
    out = capsys.readouterr().out
    assert "users: 2" in out and "chosen shown first: 0.500 of 4 pairs" in out and "reactions 'vote'" in out


def test_hf_round_trip_gives_identical_records(fixtures, tmp_path, capsys):
    src = tmp_path / "oasst.jsonl"
    assert main(["data", "convert", "oasst", str(fixtures / "oasst"), "--out", str(src)]) == 0
    plus = tmp_path / "plus.jsonl"
    assert main(["data", "convert", "plus", str(fixtures / "plus" / "pets_grouped.jsonl"), "--out", str(plus)]) == 0
    for f in (src, plus):
        ds_dir, back = tmp_path / f"{f.stem}-hf", tmp_path / f"{f.stem}-back.jsonl"
        assert main(["data", "to-hf", str(f), "--out", str(ds_dir)]) == 0
        assert main(["data", "to-hf", str(f), "--out", str(ds_dir)]) == 1  # exists: refuse without --overwrite
        assert "already exists" in capsys.readouterr().err
        assert main(["data", "from-hf", str(ds_dir), "--out", str(back)]) == 0
        assert read_users(back) == read_users(f)
        assert back.read_bytes() == f.read_bytes()


def test_split_writes_one_file_per_split(tmp_path, capsys):
    users = [UserRecord(user_id=f"u{u}", pairs=[
        PreferencePair(pair_id=f"u{u}p{i}", prompt=f"q{i % 6}", chosen=f"a{i}-{u}", rejected=f"b{i}", topic=f"t{i % 6}",
                       timestamp=100.0 * i + u) for i in range(10)]) for u in range(12)]
    f = tmp_path / "u.jsonl"
    write_users(f, users)
    out = tmp_path / "splits"
    assert main(["data", "split", str(f), "--out", str(out), "--seed", "3"]) == 0
    names = ("train", "seen-users", "new-users", "new-topics", "chrono")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.jsonl" for n in names)
    from pluralign.data.splits import make_splits

    res = make_splits(users, seed=3)
    for name, examples in {"train": res.train, **res.eval}.items():
        recs = read_users(out / f"{name}.jsonl") if examples else []
        assert sum(len(r.targets) for r in recs) == len(examples)
        for r in recs:  # no target leaks into the context it is written with
            ctx = {p.pair_id for p in r.pairs}
            assert not ctx & {t.pair_id for t in r.targets}


def test_export_without_the_service_exporter_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pluralign.service.export", None)  # as if the module were not installed
    assert main(["data", "export", "--db", "sqlite:///x.db", "--out", str(tmp_path / "o")]) == 1
    assert "pluralign.service.export" in capsys.readouterr().err


def test_data_help_explains_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = capsys.readouterr().out
    for sub in ("convert", "validate", "stats", "to-hf", "from-hf", "split", "export", "formats"):
        assert sub in out
    assert main(["data", "formats"]) == 0
    out = capsys.readouterr().out
    assert "votes='auto'" in out and "hh-rlhf:" in out


def test_export_runs_the_service_exporter_on_an_empty_database(tmp_path, capsys):
    pytest.importorskip("pluralign.service.export", reason="the feedback service's exporter is not in this build")
    from pluralign.service.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    migrate(make_engine(url))
    assert main(["data", "export", "--db", url, "--out", str(tmp_path / "out")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert isinstance(summary, dict) and summary
