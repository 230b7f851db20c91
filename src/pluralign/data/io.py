"""Read, write and validate feedback files (JSONL of :class:`UserRecord`), and convert to/from HF ``datasets``.

Writes are atomic (temp file + rename), so a failed conversion or a crash never leaves a half-written file and
never clobbers the previous one.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pluralign.data.schema import UserRecord

if TYPE_CHECKING:
    import datasets


@dataclass(frozen=True)
class RecordIssue:
    """One problem in one record: where it is and what was expected."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{where}: field '{self.field}': {self.message}" if self.field else f"{where}: {self.message}"


class FeedbackFileError(ValueError):
    """Raised when a feedback file has bad records; ``issues`` lists every one found."""

    def __init__(self, issues: list[RecordIssue]):
        self.issues = issues
        shown = "\n".join(f"  {i}" for i in issues[:20])
        more = f"\n  ... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"{len(issues)} bad record(s):\n{shown}{more}")


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _issues_from_pydantic(path: str, line: int, err: ValidationError) -> list[RecordIssue]:
    out = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (not part of the pluralign schema)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif "input" in e and not isinstance(e["input"], dict | list):
            msg = f"{msg} (got {str(e['input'])[:60]!r})"
        out.append(RecordIssue(path, line, field, msg))
    return out


def _line_issue(path: Path, lineno: int, raw: bytes) -> tuple[dict | None, RecordIssue | None]:
    """Parse one JSONL line: (object, None), or (None, the issue: not UTF-8, bad JSON, not an object)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, RecordIssue(str(path), lineno, "", f"not valid UTF-8 (byte offset {e.start})")
    try:
        obj = json.loads(text.rstrip("\r\n"))  # a cut-off line then reads as unterminated, not as a control char
    except json.JSONDecodeError as e:
        hint = " (truncated line?)" if "Unterminated" in e.msg or "Expecting" in e.msg else ""
        return None, RecordIssue(str(path), lineno, "", f"invalid JSON: {e.msg} at column {e.colno}{hint}")
    if not isinstance(obj, dict):
        return None, RecordIssue(str(path), lineno, "", f"expected a JSON object, got {type(obj).__name__}")
    return obj, None


def iter_jsonl_objects(path: str | os.PathLike, what: str, *,
                       issues: list[RecordIssue] | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file (``.gz`` too) of ``what`` rows (feedback
    records, responses, summaries...): the one JSONL reader. A missing file is a ``FileNotFoundError``; a bad line
    (not UTF-8, bad JSON, not an object) raises ``ValueError`` naming the file and line, unless ``issues`` is given:
    then its :class:`RecordIssue` is appended there and the line skipped."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: {what} file does not exist")
    with _open_text(p) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            obj, issue = _line_issue(p, lineno, raw)
            if issue is None:
                yield lineno, obj
            elif issues is None:
                raise ValueError(str(issue))
            else:
                issues.append(issue)


def iter_records(path: str | os.PathLike, *, collect: list[RecordIssue] | None = None) -> Iterator[UserRecord]:
    """Yield valid records. Bad ones raise, unless ``collect`` is given: then their issues are appended there."""
    p = Path(path)
    if not p.exists():
        issue = RecordIssue(str(p), 0, "", "file does not exist")
        if collect is None:
            raise FeedbackFileError([issue])
        collect.append(issue)
        return
    seen: dict[str, int] = {}
    had_issue = False
    pending: list[RecordIssue] = []  # issues of lines the reader skipped

    def report(issues: list[RecordIssue]) -> None:
        nonlocal had_issue
        had_issue = True
        if collect is None:
            raise FeedbackFileError(list(issues))
        collect.extend(issues)

    for lineno, obj in iter_jsonl_objects(p, "feedback", issues=pending):
        if pending:
            report(pending)
            pending.clear()
        try:
            rec = UserRecord.model_validate(obj)
        except ValidationError as e:
            report(_issues_from_pydantic(str(p), lineno, e))
            continue
        if rec.user_id in seen:
            report([RecordIssue(str(p), lineno, "user_id",
                                f"duplicate user_id {rec.user_id!r} (first on line {seen[rec.user_id]})")])
            continue
        seen[rec.user_id] = lineno
        yield rec
    if pending:
        report(pending)
    if not seen and not had_issue:
        issue = RecordIssue(str(p), 0, "", "file is empty: expected one JSON user record per line")
        if collect is None:
            raise FeedbackFileError([issue])
        collect.append(issue)


def read_users(path: str | os.PathLike) -> list[UserRecord]:
    """Read a whole feedback file; raise :class:`FeedbackFileError` listing every bad record."""
    issues: list[RecordIssue] = []
    users = list(iter_records(path, collect=issues))
    if issues:
        raise FeedbackFileError(issues)
    return users


def validate_file(path: str | os.PathLike) -> tuple[int, list[RecordIssue]]:
    """Return (number of valid records, every issue found)."""
    issues: list[RecordIssue] = []
    n = sum(1 for _ in iter_records(path, collect=issues))
    return n, issues


def write_jsonl_lines(path: str | os.PathLike, lines: Iterable[str]) -> int:
    """Write one JSON text per line atomically (temp file, fsync, rename: a failure never leaves a half-written file
    nor clobbers the previous one): the one JSONL writer. Returns how many lines were written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    n = 0
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600: data files must stay readable by other users/services
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line)
                fh.write("\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return n


def write_jsonl_objects(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write plain JSON objects (responses, exported rows...) as JSONL, atomically; returns the row count."""
    return write_jsonl_lines(path, (json.dumps(r, ensure_ascii=False) for r in rows))


def write_users(path: str | os.PathLike, users: Iterable[UserRecord]) -> int:
    """Write records atomically; return how many were written."""
    return write_jsonl_lines(path, (u.model_dump_json(exclude_defaults=True) for u in users))


# --- HF datasets -----------------------------------------------------------------------------------------------
# Nested ``meta`` dicts have free-form keys, which Arrow cannot type; they travel as JSON strings.

def _to_row(u: UserRecord) -> dict:
    d = u.model_dump()

    def enc(obj: dict) -> dict:
        obj["meta"] = json.dumps(obj.get("meta") or {})
        return obj

    enc(d)
    d["demographics"] = json.dumps(d["demographics"])
    for key in ("pairs", "targets", "reactions", "conversations"):
        d[key] = [enc(x) for x in d[key]]
    return d


def _from_row(row: dict) -> UserRecord:
    d = dict(row)

    def dec(obj: dict) -> dict:
        obj = dict(obj)
        obj["meta"] = json.loads(obj.get("meta") or "{}")
        return obj

    d = dec(d)
    d["demographics"] = json.loads(d.get("demographics") or "{}")
    for key in ("pairs", "targets", "reactions", "conversations"):
        d[key] = [dec(x) for x in d.get(key) or []]
    return UserRecord.model_validate(d)


def to_hf_dataset(users: Iterable[UserRecord]) -> datasets.Dataset:
    # datasets (seconds to import) loads only for the HF conversion: reading and validating files do without it
    import datasets

    return datasets.Dataset.from_list([_to_row(u) for u in users])


def from_hf_dataset(ds: datasets.Dataset) -> list[UserRecord]:
    return [_from_row(r) for r in ds]


def pairs_to_trl_rows(users: Iterable[UserRecord], *, which: str = "pairs") -> list[dict]:
    """Flatten users' pairs into TRL preference rows (``prompt``/``chosen``/``rejected`` + ``user_id``)."""
    rows = []
    for u in users:
        for p in getattr(u, which):
            rows.append({"user_id": u.user_id, "pair_id": p.pair_id, "prompt": p.prompt, "chosen": p.chosen,
                         "rejected": p.rejected, "topic": p.topic})
    return rows
