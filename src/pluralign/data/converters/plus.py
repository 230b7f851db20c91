"""The PLUS authors' rows -> users with context pairs, train pairs and held-out targets.

Columns (JSONL/JSON/CSV/parquet or a ``datasets`` folder): ``context`` (the summarizer's input text) and/or
``context_messages`` (the same as chat messages), ``reward_prompt``/``chosen``/``rejected`` (the pair that scores
the summarizer), ``train_prompt``/``train_chosen``/``train_rejected`` (the reward model's training pair),
``eval_prompt``/``eval_chosen``/``eval_rejected`` (held out), optional ``user_id`` and ``user_type``. Responses may be
strings or OpenRLHF-style chat lists.

What each becomes:
- users: each row is its own user ``{id_prefix}:{row}`` (the format has no user ids); rows sharing a ``user_id``
  are merged into one user;
- the reward and train pairs -> ``pairs`` (``meta.role`` = ``reward``/``train``; one pair if both are the same);
  the eval pair -> ``targets``;
- ``context``: always kept verbatim in ``meta.context`` (so the authors' exact summarizer input can be rebuilt).
  When it holds labelled pairs, i.e. blocks of ``Prompt:`` (or ``Question:``/``User:``), ``Chosen:`` (or
  ``Preferred:``) and ``Rejected:`` (or ``Dispreferred:``/``Other:``) lines, each block also becomes a pair with
  ``meta.role`` = ``context``, so pluralign's own context builders see the user's labelled history. Otherwise the
  text goes into ``profile``. Without ``context``, the last user message of ``context_messages`` is used;
- ``user_type`` (the synthetic user's ground-truth type, e.g. in Pets) -> ``group`` and ``meta.user_type``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from pluralign.data.converters.source_rows import (
    TABULAR_SUFFIXES,
    FieldError,
    IssueLog,
    SourceRow,
    as_messages,
    build_options,
    decode_chat_cells,
    files_in,
    is_hf_dataset_dir,
    iter_rows,
    preference_texts,
    stable_id,
)
from pluralign.data.schema import PreferencePair, UserRecord

SUMMARY = "PLUS authors' rows (context[_messages], reward/train/eval pairs, optional user_id/user_type)"

PAIR_COLUMNS = {
    "reward": ("reward_prompt", "chosen", "rejected"),
    "train": ("train_prompt", "train_chosen", "train_rejected"),
    "eval": ("eval_prompt", "eval_chosen", "eval_rejected"),
}
KNOWN_COLUMNS = {"context", "context_messages", "user_id", "user_type"} | {c for cols in PAIR_COLUMNS.values()
                                                                             for c in cols}

_LABEL = r"(?:Prompt|Question|User|Query)"
_GOOD = r"(?:Chosen|Preferred)(?: response| answer)?"
_BAD = r"(?:Rejected|Dispreferred|Other)(?: response| answer)?"
CONTEXT_PAIR = re.compile(
    rf"^{_LABEL}:[ \t]*(?P<prompt>.*?)\n{_GOOD}:[ \t]*(?P<chosen>.*?)\n{_BAD}:[ \t]*(?P<rejected>.*?)"
    rf"(?=\n[ \t]*\n|\n{_LABEL}:|\Z)",
    re.MULTILINE | re.DOTALL | re.IGNORECASE,
)


@dataclass
class Options:
    id_prefix: str = field(default="plus", metadata={"help": "user ids are '{id_prefix}:{row}' when rows have no user_id"})
    parse_context: bool = field(default=True, metadata={
        "help": "turn labelled pairs found in the context text into context pairs (else the text is the profile)"})
    extra_columns: str = field(default="error", metadata={"help": "other columns: error or ignore"})


def parse_context_pairs(text: str) -> list[tuple[str, str, str]]:
    """(prompt, chosen, rejected) for each labelled-pair block in a context text (empty if there are none)."""
    out = []
    for m in CONTEXT_PAIR.finditer(text):
        p, c, r = (m.group(k).strip() for k in ("prompt", "chosen", "rejected"))
        if c and r:
            out.append((p, c, r))
    return out


def _context_text(data: dict) -> str | None:
    ctx = data.get("context")
    if ctx is not None and not isinstance(ctx, str):
        raise FieldError("context", f"expected a string, got {type(ctx).__name__}")
    if ctx:
        return ctx
    if data.get("context_messages") is not None:
        try:
            msgs = as_messages(data["context_messages"])
        except ValueError as e:
            raise FieldError("context_messages", str(e)) from None
        users = [m.content for m in msgs if m.role == "user"]
        return users[-1] if users else None
    return None


def _row_to_parts(row: SourceRow, uid: str, row_no: int, opts: Options) -> dict[str, Any]:
    data = decode_chat_cells(row, ("context_messages", *(c for cols in PAIR_COLUMNS.values() for c in cols)))
    unknown = sorted(k for k in data if k not in KNOWN_COLUMNS)
    if unknown and opts.extra_columns == "error":
        raise FieldError(unknown[0], "unknown column (not part of the PLUS format; -s extra_columns=ignore to skip)")
    parts: dict[str, Any] = {"pairs": [], "targets": [], "context": _context_text(data)}
    tag = f"{uid}:{row_no}" if data.get("user_id") not in (None, "") else uid  # row_no counts across files
    made: dict[tuple[str, str, str], PreferencePair] = {}
    for role, cols in PAIR_COLUMNS.items():
        present = [c for c in cols if data.get(c) not in (None, "")]
        if not present:
            continue
        missing = [c for c in cols[1:] if c not in present]
        if missing:
            raise FieldError(missing[0], f"required with {', '.join(present)}")
        prompt, chosen, rejected = preference_texts(data.get(cols[0]), data[cols[1]], data[cols[2]], names=cols)
        key = (prompt, chosen, rejected)
        if role == "train" and key in made:  # authors recommend the same reward and train pair: keep one
            made[key].meta["role"] = "reward+train"
            continue
        pair = PreferencePair(pair_id=f"{tag}:{role}", prompt=prompt, chosen=chosen, rejected=rejected,
                              topic=stable_id(prompt, n=12), meta={"role": role})
        made[key] = pair
        parts["targets" if role == "eval" else "pairs"].append(pair)
    if not parts["pairs"] and not parts["targets"]:
        raise FieldError("chosen", "row has no complete pair (reward, train or eval prompt/chosen/rejected)")
    ctx = parts["context"]
    parsed = parse_context_pairs(ctx) if (ctx and opts.parse_context) else []
    parts["context_pairs"] = [
        PreferencePair(pair_id=f"{tag}:context:{i}", prompt=p, chosen=c, rejected=r, topic=stable_id(p, n=12),
                       meta={"role": "context"})
        for i, (p, c, r) in enumerate(parsed)
    ]
    return parts


def convert(source: Path, **opts) -> list[UserRecord]:
    o = build_options(Options, opts)
    if o.extra_columns not in ("error", "ignore"):
        raise ValueError(f"option extra_columns: expected error or ignore, got {o.extra_columns!r}")
    log = IssueLog()
    source = Path(source)
    paths = [source] if is_hf_dataset_dir(source) else files_in(source, TABULAR_SUFFIXES, log)
    users: dict[str, dict[str, Any]] = {}
    n_rows = 0
    for path in paths:
        for row in tqdm(iter_rows(path, log), desc=f"plus {path.name}", unit="row", disable=None):
            n_rows += 1
            raw_uid = row.data.get("user_id")
            if raw_uid not in (None, "") and not isinstance(raw_uid, str | int):
                log.add(row.path, row.line, "user_id", f"expected a string, got {type(raw_uid).__name__}")
                continue
            uid = str(raw_uid) if raw_uid not in (None, "") else f"{o.id_prefix}:{n_rows}"
            user_type = row.data.get("user_type")
            if user_type is not None and not isinstance(user_type, str | int):
                log.add(row.path, row.line, "user_type", f"expected a string, got {type(user_type).__name__}")
                continue
            try:
                parts = _row_to_parts(row, uid, n_rows, o)
            except FieldError as e:
                log.add(row.path, row.line, e.field, str(e))
                continue
            except ValidationError as e:
                log.add_validation(row.path, row.line, e)
                continue
            u = users.setdefault(uid, {"pairs": [], "targets": [], "contexts": [], "context_pairs": {},
                                       "user_type": None})
            u["pairs"] += parts["pairs"]
            u["targets"] += parts["targets"]
            if parts["context"] and parts["context"] not in u["contexts"]:
                u["contexts"].append(parts["context"])
            for cp in parts["context_pairs"]:  # the same labelled pair repeated across a user's rows: keep one
                u["context_pairs"].setdefault((cp.prompt, cp.chosen, cp.rejected), cp)
            if user_type is not None:
                u["user_type"] = str(user_type)
    log.raise_if_any()
    out = []
    for uid, u in users.items():
        parsed = list(u["context_pairs"].values())
        context = "\n\n".join(u["contexts"]) or None
        meta: dict[str, Any] = {}
        if context:
            meta["context"] = context
        if u["user_type"] is not None:
            meta["user_type"] = u["user_type"]
        out.append(UserRecord(user_id=uid, source="plus", group=u["user_type"],
                              profile=None if parsed else context, pairs=parsed + u["pairs"],
                              targets=u["targets"], meta=meta))
    return out
