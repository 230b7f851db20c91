"""Bad source files fail clearly (file, line, field), list every problem, and never touch the --out file."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from pluralign.cli import main
from pluralign.data.converters import convert
from pluralign.data.io import FeedbackFileError

GOOD_TRL = {"prompt": "p", "chosen": "a", "rejected": "b"}


def _jsonl(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def _issues(fmt, src, **opts):
    with pytest.raises(FeedbackFileError) as e:
        convert(fmt, src, **opts)
    return e.value.issues


def test_truncated_jsonl_names_the_line(tmp_path):
    src = tmp_path / "pairs.jsonl"
    _jsonl(src, [GOOD_TRL, '{"prompt": "p", "chosen": "a", "rejec'])
    (issue,) = _issues("trl", src)
    assert (issue.path, issue.line) == (str(src), 2) and "truncated" in issue.message


def test_wrong_types_name_the_field_and_all_lines_are_reported(tmp_path):
    src = tmp_path / "pairs.jsonl"
    _jsonl(src, [{"prompt": "p", "chosen": 3, "rejected": "b"}, GOOD_TRL,
                 {"prompt": "p", "chosen": "a", "rejected": ["not", "messages"]},
                 {"prompt": "p", "chosen": "a", "rejected": "   "}])
    issues = _issues("trl", src)
    assert [(i.line, i.field) for i in issues] == [(1, "chosen"), (3, "rejected"), (4, "rejected")]
    assert "non-empty" in issues[2].message


def test_empty_files(tmp_path):
    for name in ("empty.jsonl", "empty.csv", "blank.jsonl"):
        src = tmp_path / name
        src.write_text("" if name != "blank.jsonl" else "\n\n", encoding="utf-8")
        (issue,) = _issues("trl", src)
        assert issue.path == str(src) and "empty" in issue.message


def test_unknown_fields_are_errors_unless_asked(tmp_path):
    src = tmp_path / "pairs.jsonl"
    _jsonl(src, [{**GOOD_TRL, "scroe": 0.5}])
    (issue,) = _issues("trl", src)
    assert issue.field == "scroe" and "unknown column" in issue.message
    users = convert("trl", src, extra_columns="meta")
    assert users[0].pairs[0].meta == {"scroe": 0.5}
    plus = tmp_path / "plus.jsonl"
    _jsonl(plus, [{"reward_prompt": "p", "chosen": "a", "rejected": "b", "contxt": "typo"}])
    (issue,) = _issues("plus", plus)
    assert issue.field == "contxt"
    hh = tmp_path / "hh.jsonl"
    _jsonl(hh, [{"chosen": "\n\nHuman: x\n\nAssistant: y", "rejected": "\n\nHuman: x\n\nAssistant: z", "id": 1}])
    assert _issues("hh-rlhf", hh)[0].field == "id"


def test_duplicate_ids(tmp_path, fixtures):
    src = tmp_path / "pairs.jsonl"
    _jsonl(src, [{**GOOD_TRL, "pair_id": "x"}, {**GOOD_TRL, "chosen": "c", "pair_id": "x"}])
    (issue,) = _issues("trl", src)
    assert (issue.line, issue.field) == (2, "pair_id") and "first at" in issue.message
    conv = tmp_path / "conv"
    shutil.copytree(fixtures / "polis" / "tiny-long", conv)
    with open(conv / "comments.csv", "a", encoding="utf-8") as fh:
        fh.write('1600000400000,x,3,0,0,0,1,"A second comment 3"\n')
    (issue,) = _issues("polis", conv)
    assert issue.path.endswith("comments.csv") and issue.line == 7 and issue.field == "comment-id"
    trees = tmp_path / "trees.jsonl"
    lines = (fixtures / "oasst" / "trees.jsonl").read_text(encoding="utf-8").splitlines()
    t1 = json.loads(lines[0])
    t1["prompt"]["text"] = "edited"  # same tree id, different human content
    _jsonl(trees, [lines[0], json.dumps(t1)])
    (issue,) = _issues("oasst", trees)
    assert issue.line == 2 and "different content" in issue.message


def test_non_utf8_names_the_line(tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_bytes(json.dumps(GOOD_TRL).encode() + b"\n" + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n')
    (issue,) = _issues("trl", src)
    assert issue.line == 2 and "UTF-8" in issue.message
    csv_src = tmp_path / "battles.csv"
    csv_src.write_bytes(b"question,preference,a,b\nq,a,x,y\nq2,a,caf\xe9,y\n")
    (issue,) = _issues("arena", csv_src)
    assert issue.line == 3 and "UTF-8" in issue.message


def test_polis_bad_votes_and_unknown_comment(tmp_path, fixtures):
    conv = tmp_path / "conv"
    shutil.copytree(fixtures / "polis" / "tiny-long", conv)
    with open(conv / "votes.csv", "a", encoding="utf-8") as fh:
        fh.write("1600000990000,x,0,5,2\n1600000990000,x,99,5,1\n")
    issues = _issues("polis", conv)
    assert [(i.line, i.field) for i in issues] == [(10, "vote"), (11, "comment-id")]
    assert "not in comments.csv" in issues[1].message


def test_oasst_bad_message_names_the_nested_field(tmp_path, fixtures):
    tree = json.loads((fixtures / "oasst" / "trees.jsonl").read_text(encoding="utf-8").splitlines()[1])
    tree["prompt"]["replies"][0]["text"] = None
    src = tmp_path / "trees.jsonl"
    _jsonl(src, [tree])
    (issue,) = _issues("oasst", src)
    assert issue.field == "prompt.replies[0].text"


def test_failed_conversion_leaves_existing_out_file_byte_identical(tmp_path, capsys):
    out = tmp_path / "users.jsonl"
    out.write_bytes(b"previous content\n")
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(json.dumps(GOOD_TRL).encode() + b"\n{broken\n")
    code = main(["data", "convert", "trl", str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and f"{bad}:2" in err and "invalid JSON" in err
    assert out.read_bytes() == b"previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl.gz", "users.jsonl"]  # no temp file left
    missing = tmp_path / "new.jsonl"
    assert main(["data", "convert", "hh-rlhf", str(tmp_path / "nope"), "--out", str(missing)]) == 1
    assert "does not exist" in capsys.readouterr().err and not missing.exists()


def test_unknown_converter_option_is_a_clear_error(tmp_path, fixtures, capsys):
    out = tmp_path / "o.jsonl"
    code = main(["data", "convert", "polis", str(fixtures / "polis"), "--out", str(out), "-s", "vote=long"])
    assert code == 1 and "unknown key 'vote'" in capsys.readouterr().err and not out.exists()


def test_json_array_rows_are_numbered_and_json_lines_in_a_json_file_are_read(tmp_path):
    arr = tmp_path / "rows.json"
    arr.write_text(json.dumps([GOOD_TRL, {"prompt": "p", "chosen": None, "rejected": "b"}]), encoding="utf-8")
    (issue,) = _issues("trl", arr)
    assert (issue.line, issue.field) == (2, "chosen")
    jl = tmp_path / "lines.json"
    _jsonl(jl, [GOOD_TRL, {**GOOD_TRL, "chosen": "c"}])
    assert len(convert("trl", jl)[0].pairs) == 2


def test_from_hf_names_the_bad_row_and_writes_nothing(tmp_path, capsys):
    import datasets

    from pluralign.data.io import to_hf_dataset
    from pluralign.data.schema import UserRecord

    rows = to_hf_dataset([UserRecord(user_id="a"), UserRecord(user_id="b")]).to_list()
    rows[1]["user_id"] = ""  # violates min_length=1
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    out = tmp_path / "back.jsonl"
    assert main(["data", "from-hf", str(tmp_path / "ds"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'ds'}:2: field 'user_id'" in err and not out.exists()
