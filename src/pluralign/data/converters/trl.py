"""TRL preference rows (``prompt``/``chosen``/``rejected``) -> users with preference pairs.

Accepts JSONL(.gz), JSON, CSV, parquet or a ``datasets`` ``save_to_disk`` folder; values are strings or
conversational lists of ``{"role", "content"}`` messages (explicit or implicit prompt, as TRL defines them; in CSV,
a cell holding such a list as JSON is decoded).
Optional columns: ``user_id`` (rows are grouped into users by it; without it every pair goes to one population user,
``population`` by default), ``pair_id`` (else a content hash), ``topic`` (else a hash of the prompt),
``timestamp`` (seconds). Any other column is an error unless ``extra_columns`` says otherwise, so a misspelt
column never silently drops data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from pluralign.data.converters.source_rows import (
    TABULAR_SUFFIXES,
    FieldError,
    IssueLog,
    build_options,
    decode_chat_cells,
    files_in,
    is_hf_dataset_dir,
    iter_rows,
    preference_texts,
    stable_id,
)
from pluralign.data.schema import PreferencePair, UserRecord

SUMMARY = "TRL preference rows (prompt/chosen/rejected [+ user_id]) in JSONL/JSON/CSV/parquet or a datasets folder"

log_ = logging.getLogger(__name__)

KNOWN_COLUMNS = ("prompt", "chosen", "rejected", "user_id", "pair_id", "topic", "timestamp")


@dataclass
class Options:
    population_user: str = field(default="population", metadata={
        "help": "user id given to rows without a user_id column (the whole file is one population)"})
    extra_columns: str = field(default="error", metadata={
        "help": "columns beyond prompt/chosen/rejected/user_id/pair_id/topic/timestamp: error, meta (keep scalar "
                "values in the pair's meta) or ignore"})


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _pair_from_row(data: dict, opts: Options) -> tuple[str, PreferencePair]:
    unknown = [k for k in data if k not in KNOWN_COLUMNS]
    if unknown and opts.extra_columns == "error":
        raise FieldError(unknown[0], "unknown column (expected prompt, chosen, rejected and optionally user_id, "
                         "pair_id, topic, timestamp; pass -s extra_columns=meta to keep it)")
    meta = {k: data[k] for k in unknown if opts.extra_columns == "meta" and _scalar(data[k])}
    for col in ("chosen", "rejected"):
        if col not in data:
            raise FieldError(col, "required field is missing")
    prompt, chosen, rejected = preference_texts(data.get("prompt"), data["chosen"], data["rejected"])
    user = data.get("user_id")
    if user is None or user == "":
        user = opts.population_user
    elif not isinstance(user, str | int):
        raise FieldError("user_id", f"expected a string, got {type(user).__name__}")
    user = str(user)
    pair_id = data.get("pair_id")
    if pair_id is None or pair_id == "":
        pair_id = "trl:" + stable_id(user, prompt, chosen, rejected)
    elif not isinstance(pair_id, str | int):
        raise FieldError("pair_id", f"expected a string, got {type(pair_id).__name__}")
    ts = data.get("timestamp")
    if ts == "":
        ts = None
    try:
        ts = float(ts) if ts is not None else None
    except (TypeError, ValueError):
        raise FieldError("timestamp", f"expected seconds since the epoch, got {ts!r}") from None
    topic = data.get("topic") or stable_id(prompt, n=12)
    return user, PreferencePair(pair_id=str(pair_id), prompt=prompt, chosen=chosen, rejected=rejected,
                                topic=str(topic), timestamp=ts, meta=meta)


def convert(source: Path, **opts) -> list[UserRecord]:
    """Group the rows of ``source`` (a file, a datasets folder, or a folder of files) into users."""
    o = build_options(Options, opts)
    if o.extra_columns not in ("error", "meta", "ignore"):
        raise ValueError(f"option extra_columns: expected error, meta or ignore, got {o.extra_columns!r}")
    log = IssueLog()
    source = Path(source)
    paths = [source] if is_hf_dataset_dir(source) else files_in(source, TABULAR_SUFFIXES, log)
    by_user: dict[str, list[PreferencePair]] = {}
    first_seen: dict[str, str] = {}
    n_dupes = 0
    for path in paths:
        for row in tqdm(iter_rows(path, log), desc=f"trl {path.name}", unit="row", disable=None):
            try:
                user, pair = _pair_from_row(decode_chat_cells(row, ("prompt", "chosen", "rejected")), o)
            except FieldError as e:
                log.add(row.path, row.line, e.field, str(e))
                continue
            except ValidationError as e:
                log.add_validation(row.path, row.line, e)
                continue
            where = f"{row.path}:{row.line}"
            if pair.pair_id in first_seen and pair.pair_id.startswith("trl:") and not row.data.get("pair_id"):
                n_dupes += 1  # the same pair repeated word for word: keep one copy
                continue
            if pair.pair_id in first_seen:
                log.add(row.path, row.line, "pair_id", f"duplicate pair id {pair.pair_id!r} (first at {first_seen[pair.pair_id]})")
                continue
            first_seen[pair.pair_id] = where
            by_user.setdefault(user, []).append(pair)
    log.raise_if_any()
    if n_dupes:
        log_.warning("trl: dropped %d exact duplicate row(s)", n_dupes)
    return [UserRecord(user_id=u, source="trl", pairs=pairs) for u, pairs in by_user.items()]
