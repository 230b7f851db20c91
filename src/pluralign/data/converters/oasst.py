"""OpenAssistant export trees (one ``{"message_tree_id", "prompt": {...nested replies}}`` per line) -> users.

Mapping (the export names message authors but not who reacted or ranked):
- every author of a ``prompter`` message is a user ``oasst:{user_id}``; each of their prompter messages becomes one
  :class:`Conversation` holding the thread from the root down to and including that message (so a follow-up
  question keeps the context it was asked in); ``conversation_id`` = message id, ``topic`` = tree id;
- every ``assistant`` reply with emoji counts gives :class:`Reaction` s of kind ``+1``, ``-1`` or ``red_flag``
  with ``value`` = the count (``_skip_*`` pseudo-emojis are ignored), ``prompt`` = the thread before the reply,
  attached to the population user ``oasst:crowd`` because reactors are anonymous;
- sibling assistant replies with a ``rank`` (0 = best) give preference pairs on ``oasst:crowd``: for every two
  ranked siblings, the better-ranked one is ``chosen`` (ties give no pair); ``meta`` keeps both ranks.
Deleted messages and everything below them are skipped. A tree that appears again with the same content apart from
``CRITERIA`` (an LLM score the Open-Paws subset adds per run: 31 of its 551 lines are such repeats) is kept once; a
repeat whose human content differs is an error. Thread prompts use the HH layout when longer than one turn.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from pluralign.data.converters.source_rows import (
    FieldError,
    IssueLog,
    SourceRow,
    build_options,
    files_in,
    iter_jsonl,
    render_dialogue,
    stable_id,
)
from pluralign.data.schema import Conversation, Message, PreferencePair, Reaction, UserRecord

SUMMARY = "OpenAssistant export trees (JSONL, one tree per line) -> authors' conversations + crowd reactions/ranks"

REACTION_KINDS = ("+1", "-1", "red_flag")
log_ = logging.getLogger(__name__)


def _human_content(obj: Any) -> Any:
    """The tree without the machine-added ``CRITERIA`` scores, for comparing repeats."""
    if isinstance(obj, dict):
        return {k: _human_content(v) for k, v in obj.items() if k != "CRITERIA"}
    if isinstance(obj, list):
        return [_human_content(v) for v in obj]
    return obj


@dataclass
class Options:
    crowd_user: str = field(default="oasst:crowd", metadata={
        "help": "id of the population user that holds the anonymous emoji reactions and rank pairs"})
    include_deleted: bool = field(default=False, metadata={"help": "keep messages marked deleted (and their replies)"})


def _timestamp(value: Any, where: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise FieldError(f"{where}.created_date", f"expected an ISO date, got {value!r}") from None


def _check_message(m: Any, where: str) -> None:
    if not isinstance(m, dict):
        raise FieldError(where, f"expected a message object, got {type(m).__name__}")
    for key, kind in (("message_id", str), ("role", str), ("text", str)):
        if not isinstance(m.get(key), kind):
            raise FieldError(f"{where}.{key}", "required field is missing" if key not in m
                             else f"expected a string, got {type(m[key]).__name__}")
    if m["role"] not in ("prompter", "assistant"):
        raise FieldError(f"{where}.role", f"expected prompter or assistant, got {m['role']!r}")
    if not isinstance(m.get("replies") or [], list):
        raise FieldError(f"{where}.replies", "expected a list of messages")
    if not isinstance(m.get("emojis") or {}, dict):
        raise FieldError(f"{where}.emojis", "expected an object of emoji counts")


class _TreeWalker:
    """Turns trees into conversations (per author), reactions and rank pairs (crowd)."""

    def __init__(self, opts: Options, log: IssueLog):
        self.opts, self.log = opts, log
        self.conversations: dict[str, list[Conversation]] = {}
        self.reactions: list[Reaction] = []
        self.pairs: list[PreferencePair] = []
        self.seen_ids: dict[str, str] = {}
        self.trees: dict[str, tuple[str, str]] = {}  # root id -> (canonical content, where first seen)
        self.n_repeats = 0

    def tree(self, row: SourceRow) -> None:
        if "prompt" not in row.data:
            self.log.add(row.path, row.line, "prompt", "required field is missing (the tree's root message)")
            return
        root = row.data["prompt"]
        tree_id = str(row.data.get("message_tree_id") or (root.get("message_id", "") if isinstance(root, dict) else ""))
        root_id = root.get("message_id") if isinstance(root, dict) else None
        if isinstance(root_id, str) and root_id in self.trees:
            canon, first = self.trees[root_id]
            if json.dumps(_human_content(row.data), sort_keys=True) == canon:
                self.n_repeats += 1
                return
            self.log.add(row.path, row.line, "prompt.message_id",
                         f"tree {root_id} repeated (first at {first}) with different content")
            return
        # Validate the whole tree first, so a bad tree adds nothing.
        out = _TreeWalker(self.opts, self.log)
        out.seen_ids = self.seen_ids
        try:
            out._walk(row.data["prompt"], "prompt", [], tree_id, row)
        except FieldError as e:
            self.log.add(row.path, row.line, e.field, str(e))
            return
        except ValidationError as e:
            self.log.add_validation(row.path, row.line, e)
            return
        for author, convs in out.conversations.items():
            self.conversations.setdefault(author, []).extend(convs)
        self.reactions += out.reactions
        self.pairs += out.pairs
        if isinstance(root_id, str):
            self.trees[root_id] = (json.dumps(_human_content(row.data), sort_keys=True), f"{row.path}:{row.line}")

    def _walk(self, m: Any, where: str, thread: list[Message], tree_id: str, row: SourceRow) -> None:
        _check_message(m, where)
        if m.get("deleted") and not self.opts.include_deleted:
            return
        mid = m["message_id"]
        if mid in self.seen_ids:
            raise FieldError(f"{where}.message_id", f"duplicate message id {mid} (first at {self.seen_ids[mid]})")
        self.seen_ids[mid] = f"{row.path}:{row.line}"
        ts = _timestamp(m.get("created_date"), where)
        lang = m.get("lang") if isinstance(m.get("lang"), str) else None
        if m["role"] == "prompter":
            msgs = [*thread, Message(role="user", content=m["text"])]
            author = m.get("user_id")
            if isinstance(author, str) and author:
                self.conversations.setdefault(author, []).append(Conversation(
                    conversation_id=mid, messages=msgs, topic=tree_id, timestamp=ts, meta={"lang": lang}))
        else:
            msgs = [*thread, Message(role="assistant", content=m["text"])]
            prompt = render_dialogue(thread) if thread else ""
            for kind in REACTION_KINDS:
                count = (m.get("emojis") or {}).get(kind) or 0
                if not isinstance(count, int | float):
                    raise FieldError(f"{where}.emojis.{kind}", f"expected a count, got {count!r}")
                if count > 0:
                    self.reactions.append(Reaction(
                        reaction_id=f"{mid}:{kind}", prompt=prompt, response=m["text"], kind=kind, value=float(count),
                        item_id=mid, topic=tree_id, timestamp=ts, meta={"lang": lang}))
        replies = m.get("replies") or []
        for i, r in enumerate(replies):
            self._walk(r, f"{where}.replies[{i}]", msgs, tree_id, row)
        if m["role"] == "prompter":
            self._rank_pairs(replies, msgs, tree_id)

    def _rank_pairs(self, replies: list[dict], thread: list[Message], tree_id: str) -> None:
        ranked = [r for r in replies if r["role"] == "assistant" and isinstance(r.get("rank"), int)
                  and (self.opts.include_deleted or not r.get("deleted"))]
        prompt = render_dialogue(thread)
        for a, b in itertools.combinations(sorted(ranked, key=lambda r: r["rank"]), 2):
            if a["rank"] == b["rank"]:
                continue
            self.pairs.append(PreferencePair(
                pair_id=f"oasst:{stable_id(a['message_id'], b['message_id'])}", prompt=prompt, chosen=a["text"],
                rejected=b["text"], topic=tree_id, timestamp=_timestamp(b.get("created_date"), "rank"),
                meta={"chosen_rank": a["rank"], "rejected_rank": b["rank"], "chosen_id": a["message_id"],
                      "rejected_id": b["message_id"]}))


def convert(source: Path, **opts) -> list[UserRecord]:
    o = build_options(Options, opts)
    log = IssueLog()
    walker = _TreeWalker(o, log)
    for path in files_in(Path(source), (".jsonl", ".jsonl.gz"), log):
        for row in tqdm(iter_jsonl(path, log), desc=f"oasst {path.name}", unit="tree", disable=None):
            walker.tree(row)
    log.raise_if_any()
    if walker.n_repeats:
        log_.info("oasst: %d repeated tree(s) (differing only in CRITERIA) kept once", walker.n_repeats)
    users = [UserRecord(user_id=f"oasst:{author}", source="oasst", conversations=convs)
             for author, convs in walker.conversations.items()]
    if walker.reactions or walker.pairs:
        users.append(UserRecord(user_id=o.crowd_user, source="oasst", reactions=walker.reactions, pairs=walker.pairs))
    return users
