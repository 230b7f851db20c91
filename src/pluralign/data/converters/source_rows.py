"""Reading source files for the converters: rows with their file and line, and every problem collected.

Converters never stop at the first bad row: they collect :class:`~pluralign.data.io.RecordIssue` objects in an
:class:`IssueLog` and raise one :class:`~pluralign.data.io.FeedbackFileError` listing them all before anything is
written. Line numbers are physical lines for JSONL and CSV; for formats without lines (a JSON array, parquet, a
``datasets`` folder) the "line" is the 1-based row number.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pluralign.data.io import FeedbackFileError, RecordIssue, iter_jsonl_objects
from pluralign.data.schema import Message

csv.field_size_limit(sys.maxsize)  # Arena answers run to tens of kB per cell

TABULAR_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".csv", ".parquet")


@dataclass
class SourceRow:
    """One row of a source file, and where it came from (for error messages)."""

    path: str
    line: int
    data: dict[str, Any]


class IssueLog:
    """Collects every problem found in the source; :meth:`raise_if_any` raises them all at once."""

    def __init__(self) -> None:
        self.issues: list[RecordIssue] = []

    def add(self, path: str | Path, line: int, field: str, message: str) -> None:
        self.issues.append(RecordIssue(str(path), line, field, message))

    def add_validation(self, path: str | Path, line: int, err: ValidationError, prefix: str = "") -> None:
        """Turn a pydantic error on a record built from this row into issues naming the schema field."""
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"])
            self.add(path, line, f"{prefix}{field}" if prefix else field, e["msg"])

    def raise_if_any(self) -> None:
        if self.issues:
            raise FeedbackFileError(self.issues)


def stable_id(*parts: object, n: int = 16) -> str:
    """A short content hash: the same input gives the same id on every run and machine."""
    h = hashlib.sha1()
    for p in parts:
        h.update(str(p).encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:n]


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in TABULAR_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def is_hf_dataset_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists()
                              or (path / "dataset_dict.json").exists())


def read_text(path: Path, log: IssueLog) -> str | None:
    """Whole file as UTF-8 text (gunzipped if ``.gz``); ``None`` with an issue naming the line if it is not UTF-8."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        log.add(path, line, "", f"not valid UTF-8 (byte offset {e.start}); save the file as UTF-8")
        return None


def iter_jsonl(path: Path, log: IssueLog) -> Iterator[SourceRow]:
    before, rows = len(log.issues), 0
    for lineno, obj in iter_jsonl_objects(path, "source", issues=log.issues):
        rows += 1
        yield SourceRow(str(path), lineno, obj)
    if rows == 0 and len(log.issues) == before:
        log.add(path, 0, "", "file is empty: expected one JSON object per line")


def iter_json(path: Path, log: IssueLog) -> Iterator[SourceRow]:
    text = read_text(path, log)
    if text is None:
        return
    if not text.strip():
        log.add(path, 0, "", "file is empty")
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        # A JSON file that is really JSONL is common: read it line by line instead of failing.
        if e.msg == "Extra data":
            yield from iter_jsonl(path, log)
            return
        log.add(path, e.lineno, "", f"invalid JSON: {e.msg} at column {e.colno}")
        return
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if isinstance(obj, dict):
        obj = [obj]
    if not isinstance(obj, list) or not obj:
        log.add(path, 0, "", "expected a JSON array of objects (or JSON lines)")
        return
    for i, item in enumerate(obj, start=1):
        if not isinstance(item, dict):
            log.add(path, i, "", f"row {i}: expected a JSON object, got {type(item).__name__}")
            continue
        yield SourceRow(str(path), i, item)


def iter_csv(path: Path, log: IssueLog, *, required: tuple[str, ...] = ()) -> Iterator[SourceRow]:
    """CSV rows as dicts; ``line`` is the physical line where the record starts (cells may span lines)."""
    text = read_text(path, log)
    if text is None:
        return
    if not text.strip():
        log.add(path, 0, "", "file is empty: expected a CSV header line")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as e:
        log.add(path, 1, "", f"bad CSV header: {e}")
        return
    missing = [c for c in required if c not in header]
    if missing:
        log.add(path, 1, missing[0], f"required column(s) missing: {', '.join(missing)} (header: {', '.join(header)})")
        return
    dupes = {c for c in header if header.count(c) > 1}
    if dupes:
        log.add(path, 1, sorted(dupes)[0], "duplicate column name in header")
        return
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            log.add(path, start, "", f"bad CSV: {e}")
            return
        if cells and len(cells) != len(header):
            log.add(path, start, "", f"expected {len(header)} cells (as in the header), got {len(cells)}")
        elif cells:
            yield SourceRow(str(path), start, dict(zip(header, cells, strict=True)))
        start = reader.line_num + 1


def iter_hf_rows(path: Path, log: IssueLog) -> Iterator[SourceRow]:
    """Parquet files and ``save_to_disk`` folders through HF ``datasets``; ``line`` is the row number."""
    # datasets (seconds to import) loads only for these sources: JSONL and CSV converters do without it
    import datasets

    try:
        if path.is_dir():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if len(ds) != 1:
                    log.add(path, 0, "", f"dataset folder has several splits ({', '.join(ds)}); convert one split folder")
                    return
                ds = next(iter(ds.values()))
        else:
            ds = datasets.Dataset.from_parquet(str(path))
    except Exception as e:  # datasets/pyarrow raise many types for unreadable files
        log.add(path, 0, "", f"cannot read with HF datasets: {type(e).__name__}: {e}")
        return
    if len(ds) == 0:
        log.add(path, 0, "", "dataset has no rows")
        return
    for i, row in enumerate(ds, start=1):
        yield SourceRow(str(path), i, dict(row))


def iter_rows(path: Path, log: IssueLog) -> Iterator[SourceRow]:
    """Rows of a JSONL/JSON/CSV/parquet file or a ``datasets`` folder, chosen by file name."""
    if is_hf_dataset_dir(path):
        yield from iter_hf_rows(path, log)
        return
    if path.is_dir():
        log.add(path, 0, "", "is a folder but not a HF datasets folder (no dataset_info.json / state.json)")
        return
    if path.stat().st_size == 0:
        log.add(path, 0, "", "file is empty")
        return
    suffix = _suffix(path)
    if suffix in (".jsonl", ".jsonl.gz"):
        yield from iter_jsonl(path, log)
    elif suffix in (".json", ".json.gz"):
        yield from iter_json(path, log)
    elif suffix == ".csv":
        yield from iter_csv(path, log)
    elif suffix == ".parquet":
        yield from iter_hf_rows(path, log)
    else:
        log.add(path, 0, "", f"unknown file type {suffix!r}: expected one of {', '.join(TABULAR_SUFFIXES)} "
                "or a datasets folder")


def files_in(source: Path, suffixes: tuple[str, ...], log: IssueLog) -> list[Path]:
    """``source`` itself if it is a file, else every matching file below it (sorted, so runs are reproducible)."""
    if not source.exists():
        log.add(source, 0, "", "does not exist")
        return []
    if source.is_file():
        return [source]
    found = sorted(p for p in source.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
    if not found:
        log.add(source, 0, "", f"no {' / '.join(suffixes)} files in this folder")
    return found


# --- chat messages -------------------------------------------------------------------------------------------

_ROLE_ALIASES = {"user": "user", "human": "user", "prompter": "user", "assistant": "assistant", "gpt": "assistant",
                 "bot": "assistant", "model": "assistant", "system": "system"}
_ROLE_LABEL = {"user": "Human", "assistant": "Assistant", "system": "System"}


def as_messages(value: Any) -> list[Message]:
    """A conversational column (list of ``{"role", "content"}``) as messages; ``ValueError`` says what is wrong."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list of chat messages, got {type(value).__name__}")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ValueError(f"message {i}: expected {{'role': ..., 'content': str}}, got {str(m)[:60]!r}")
        role = _ROLE_ALIASES.get(str(m.get("role", "")).lower())
        if role is None:
            raise ValueError(f"message {i}: unknown role {m.get('role')!r} (expected system, user or assistant)")
        out.append(Message(role=role, content=m["content"]))
    return out


def render_dialogue(messages: list[Message]) -> str:
    """A prompt string from chat turns: one user turn is just its text; longer dialogues use the HH-RLHF layout
    ("Human: ...\\n\\nAssistant: ..."), so converted multi-turn prompts from every source look alike."""
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    return "\n\n".join(f"{_ROLE_LABEL[m.role]}: {m.content}" for m in messages)


def build_options(cls: type, opts: dict[str, Any]):
    """``cls(**opts)`` with a clear error naming the unknown option and the known ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {cls.__module__.rsplit('.', 1)[-1]} "
                         f"(known: {', '.join(sorted(known)) or 'none'})")
    return cls(**opts)


class FieldError(ValueError):
    """A bad value in one named column of a source row."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def preference_texts(prompt: Any, chosen: Any, rejected: Any, *, names: tuple[str, str, str] = (
        "prompt", "chosen", "rejected")) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) strings from TRL-style values: strings, or conversational message lists.

    Conversational ``chosen``/``rejected`` give their final turn as the response; when ``prompt`` is missing
    ("implicit prompt" rows) the turns before it, which must be the same in both, become the prompt.
    """
    out = []
    for name, value in zip(names[1:], (chosen, rejected), strict=True):
        if isinstance(value, str):
            out.append((None, value))
        elif isinstance(value, list):
            try:
                msgs = as_messages(value)
            except ValueError as e:
                raise FieldError(name, str(e)) from None
            if msgs[-1].role != "assistant":
                raise FieldError(name, "the last message must be the assistant's response")
            out.append((msgs[:-1], msgs[-1].content))
        else:
            raise FieldError(name, f"expected a string or a list of chat messages, got {type(value).__name__}")
    (c_ctx, c_text), (r_ctx, r_text) = out
    if prompt is None or (isinstance(prompt, str) and not prompt and c_ctx):
        if not c_ctx:
            raise FieldError(names[0], "required field is missing (string rows need a prompt)")
        if c_ctx != r_ctx:
            raise FieldError(names[2], "chosen and rejected conversations differ before the final response")
        return render_dialogue(c_ctx), c_text, r_text
    if isinstance(prompt, str):
        return prompt, c_text, r_text
    if isinstance(prompt, list):
        try:
            return render_dialogue(as_messages(prompt)), c_text, r_text
        except ValueError as e:
            raise FieldError(names[0], str(e)) from None
    raise FieldError(names[0], f"expected a string or a list of chat messages, got {type(prompt).__name__}")


def decode_chat_cells(row: SourceRow, columns: tuple[str, ...]) -> dict[str, Any]:
    """CSV cannot hold lists: a cell in ``columns`` holding a JSON list of chat messages is decoded into that list.

    Only rows read from CSV are touched, and only cells that parse as a list of objects with a ``role``, so a plain
    text answer that happens to start with ``[`` stays text.
    """
    if not row.path.lower().endswith(".csv"):
        return row.data
    data = dict(row.data)
    for col in columns:
        v = data.get(col)
        if isinstance(v, str) and v.lstrip().startswith("[{"):
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError:
                continue
            if isinstance(parsed, list) and parsed and all(isinstance(m, dict) and "role" in m for m in parsed):
                data[col] = parsed
    return data
