"""Polis open-data conversations -> one user per (conversation, participant), votes as reactions.

Source: a folder of conversation folders (at any depth), or one conversation folder, each with ``comments.csv`` and
either the long ``votes.csv`` (timestamp, [datetime,] comment-id, voter-id, vote) or only the wide ``participants-votes.csv``
(participant, [xid,] group-id, n-*, then one column per comment id). ``summary.csv`` (key,value rows) gives the topic.
Column sets differ between exports (``datetime``, ``xid``, ``is-meta``, ``is-seed``, ... come and go): only the
columns named above are required, the rest are ignored.

Mapping: user_id ``"{conversation}:{participant}"``; ``group`` = the participant's Polis ``group-id`` (if any);
each final vote is a :class:`Reaction` of kind ``vote`` with value 1 (agree), 0 (pass) or -1 (disagree),
``item_id`` = comment id, ``response`` = comment text, ``prompt`` = the conversation topic, ``topic`` = the
conversation name, ``timestamp`` in seconds (long form only: the wide form has no times).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from tqdm import tqdm

from pluralign.data.converters.source_rows import IssueLog, build_options, iter_csv, read_text
from pluralign.data.schema import Reaction, UserRecord

SUMMARY = "Polis open-data conversations (folder of conversations, or one) -> per-participant agree/pass/disagree votes"

# SIGN CONVENTION. Inside the Polis database and its math, -1 means AGREE and 1 means DISAGREE. The open-data export
# (votes.csv and participants-votes.csv) flips this: 1 = agree, -1 = disagree, 0 = pass. Checked on all 9 shared
# conversations: counting the last vote per (comment, voter) in votes.csv, the number of 1s equals comments.csv's
# `agrees` for 92-100% of comments and the number of -1s equals `disagrees` likewise (the few misses are counts taken
# at a different time), while the number of -1s almost never equals `agrees`. So the export's values are used as is:
# agree = 1, which is pluralign's convention too.
VOTE_VALUES = {-1, 0, 1}


@dataclass
class Options:
    votes: str = field(default="auto", metadata={
        "help": "vote table to read: auto (long votes.csv if present, else wide participants-votes.csv), long, wide"})
    min_votes: int = field(default=1, metadata={"help": "skip participants with fewer final votes than this"})
    drop_meta_comments: bool = field(default=False, metadata={
        "help": "also drop comments flagged is-meta (remarks about the process, excluded from Polis's clustering)"})


def _conversation_dirs(source: Path, log: IssueLog) -> list[Path]:
    if not source.is_dir():
        log.add(source, 0, "", "expected a folder of Polis conversations (or one conversation folder)")
        return []
    if (source / "comments.csv").exists():
        return [source]
    # Conversations may sit at any depth (e.g. exports grouped by year or organisation); a folder that holds a
    # conversation is not searched further.
    dirs: list[Path] = []
    for found in sorted(source.rglob("comments.csv")):
        folder = found.parent
        if not any(d in folder.parents for d in dirs):
            dirs.append(folder)
    if not dirs:
        log.add(source, 0, "", "no Polis conversation here: no comments.csv in it or in any subfolder")
    return dirs


def conversation_name(folder: Path, source: Path) -> str:
    """The folder's name for a conversation directly under ``source`` (or ``source`` itself), else its path
    relative to ``source`` (``2019/brexit``), so two nested conversations with the same folder name stay apart."""
    if folder == source or folder.parent == source:
        return folder.name
    return folder.relative_to(source).as_posix()


def _read_summary(path: Path, log: IssueLog) -> dict[str, str]:
    if not path.exists():
        return {}
    text = read_text(path, log)
    if text is None:
        return {}
    return {row[0].strip(): row[1].strip() for row in csv.reader(io.StringIO(text, newline="")) if len(row) >= 2}


def _parse_int(raw: str, path: str, line: int, field: str, log: IssueLog) -> int | None:
    try:
        f = float(raw)
        if not f.is_integer():
            raise ValueError
        return int(f)
    except ValueError:
        log.add(path, line, field, f"expected an integer, got {raw!r}")
        return None


def _read_comments(path: Path, opts: Options, log: IssueLog) -> tuple[dict[str, str], set[str]]:
    """(comment id -> text for kept comments, ids of dropped comments)."""
    kept: dict[str, str] = {}
    dropped: set[str] = set()
    seen: dict[str, int] = {}
    for row in iter_csv(path, log, required=("comment-id", "comment-body")):
        cid = row.data["comment-id"].strip()
        if _parse_int(cid, row.path, row.line, "comment-id", log) is None:
            continue
        if cid in seen:
            log.add(row.path, row.line, "comment-id", f"duplicate comment id {cid} (first on line {seen[cid]})")
            continue
        seen[cid] = row.line
        moderated = (row.data.get("moderated") or "").strip()
        mod = _parse_int(moderated, row.path, row.line, "moderated", log) if moderated else 0
        is_meta = (row.data.get("is-meta") or "").strip().lower() == "true"
        if mod == -1 or (opts.drop_meta_comments and is_meta):
            dropped.add(cid)
        elif not row.data["comment-body"].strip():
            log.add(row.path, row.line, "comment-body", "empty comment text")
        else:
            kept[cid] = row.data["comment-body"]
    return kept, dropped


def _check_vote(raw: str, path: str, line: int, field: str, log: IssueLog) -> int | None:
    v = _parse_int(raw, path, line, field, log)
    if v is not None and v not in VOTE_VALUES:
        log.add(path, line, field, f"vote must be 1 (agree), 0 (pass) or -1 (disagree), got {raw!r}")
        return None
    return v


def _known_comment(cid: str, comments: dict, dropped: set, path: str, line: int, field: str, log: IssueLog) -> bool:
    if cid in comments:
        return True
    if cid not in dropped:
        log.add(path, line, field, f"comment id {cid} is not in comments.csv")
    return False


def _read_long_votes(path: Path, comments: dict, dropped: set, log: IssueLog
                     ) -> dict[str, dict[str, tuple[float | None, int]]]:
    """participant -> comment -> (timestamp s, vote); the LAST vote by timestamp wins (file order breaks ties)."""
    out: dict[str, dict[str, tuple[float | None, int]]] = {}
    for row in iter_csv(path, log, required=("comment-id", "voter-id", "vote")):
        cid, pid = row.data["comment-id"].strip(), row.data["voter-id"].strip()
        vote = _check_vote(row.data["vote"], row.path, row.line, "vote", log)
        ts_raw = (row.data.get("timestamp") or "").strip()
        ts = None
        if ts_raw:
            ms = _parse_int(ts_raw, row.path, row.line, "timestamp", log)
            ts = ms / 1000.0 if ms is not None else None
        if vote is None or not pid or not _known_comment(cid, comments, dropped, row.path, row.line, "comment-id", log):
            continue
        prev = out.setdefault(pid, {}).get(cid)
        if prev is None or ts is None or prev[0] is None or ts >= prev[0]:
            out[pid][cid] = (ts, vote)
    return out


def _read_wide(path: Path, comments: dict, dropped: set, log: IssueLog
               ) -> tuple[dict[str, dict[str, tuple[None, int]]], dict[str, str]]:
    """(participant -> comment -> (None, vote), participant -> group-id) from participants-votes.csv."""
    votes: dict[str, dict[str, tuple[None, int]]] = {}
    groups: dict[str, str] = {}
    cols: list[str] | None = None
    for row in iter_csv(path, log, required=("participant",)):
        if cols is None:
            cols = [c for c in row.data if c.strip().isdigit()]
            for c in cols:
                _known_comment(c.strip(), comments, dropped, row.path, 1, c, log)
        pid = row.data["participant"].strip()
        group = (row.data.get("group-id") or "").strip()
        if group:
            groups[pid] = group
        mine = votes.setdefault(pid, {})
        for c in cols:
            raw = row.data[c].strip()
            if raw and c.strip() in comments:
                v = _check_vote(raw, row.path, row.line, c, log)
                if v is not None:
                    mine[c.strip()] = (None, v)
    return votes, groups


def _convert_conversation(folder: Path, opts: Options, log: IssueLog, conv: str | None = None) -> list[UserRecord]:
    conv = conv or folder.name
    summary = _read_summary(folder / "summary.csv", log)
    topic_text = summary.get("topic") or conv
    comments, dropped = _read_comments(folder / "comments.csv", opts, log)
    long_path, wide_path = folder / "votes.csv", folder / "participants-votes.csv"
    mode = opts.votes if opts.votes != "auto" else ("long" if long_path.exists() else "wide")
    need = long_path if mode == "long" else wide_path
    if not need.exists():
        log.add(need, 0, "", f"missing: votes={mode} needs this file")
        return []
    groups: dict[str, str] = {}
    wide_votes: dict = {}
    if wide_path.exists():
        wide_votes, groups = _read_wide(wide_path, comments, dropped, log)
    votes = _read_long_votes(long_path, comments, dropped, log) if mode == "long" else wide_votes

    users = []
    for pid in sorted(votes, key=lambda p: (len(p), p)):  # numeric order for numeric ids
        mine = votes[pid]
        if len(mine) < max(opts.min_votes, 1):
            continue
        ordered = sorted(mine.items(), key=lambda kv: (kv[1][0] or 0.0, int(kv[0])))
        try:
            reactions = [
                Reaction(reaction_id=f"{conv}:{pid}:{cid}", prompt=topic_text, response=comments[cid], kind="vote",
                         value=float(v), item_id=cid, topic=conv, timestamp=ts)
                for cid, (ts, v) in ordered
            ]
            users.append(UserRecord(user_id=f"{conv}:{pid}", group=groups.get(pid), source="polis",
                                    reactions=reactions, meta={"conversation": conv}))
        except ValidationError as e:
            log.add_validation(need, 0, e, prefix=f"participant {pid}: ")
    return users


def convert(source: Path, **opts) -> list[UserRecord]:
    """All conversations under ``source``; raises ``FeedbackFileError`` listing every bad row."""
    o = build_options(Options, opts)
    if o.votes not in ("auto", "long", "wide"):
        raise ValueError(f"option votes: expected auto, long or wide, got {o.votes!r}")
    log = IssueLog()
    users: list[UserRecord] = []
    for folder in tqdm(_conversation_dirs(Path(source), log), desc="polis conversations", unit="conv",
                       disable=None):
        users.extend(_convert_conversation(folder, o, log, conversation_name(folder, Path(source))))
    log.raise_if_any()
    return users
