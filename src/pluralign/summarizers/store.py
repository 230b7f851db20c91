"""Summaries as a product: a JSONL file of per-user summaries, each with its provenance.

The file is an append-only log (one :class:`SummaryEntry` per line); the latest entry for a user is the one in force,
so an edit by a person simply becomes the newest entry and is what the reward model reads next, while the history of
model-written versions stays auditable. Every write rewrites the file atomically, so a bad entry never reaches disk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pluralign.data.io import FeedbackFileError, RecordIssue, iter_jsonl_objects, write_jsonl_lines


class SummaryEntry(BaseModel):
    """One version of one user's summary and where it came from."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1)
    summary: str
    summarizer_version: str = Field(min_length=1, description="backend + weights id, or 'human' for an edit")
    step: int | None = Field(None, ge=0, description="training step of the summarizer that wrote it")
    created_at: float = Field(default_factory=time.time, description="seconds since the epoch")
    source: Literal["model", "edit"] = "model"
    author: str | None = Field(None, description="who edited it (edits only)")


class SummaryStore:
    """Per-user summaries in a JSONL file; ``get`` returns the entry in force (the latest one)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._entries: list[SummaryEntry] = self._read() if self.path.exists() else []

    def _read(self) -> list[SummaryEntry]:
        entries, issues = [], []
        for lineno, obj in iter_jsonl_objects(self.path, "summaries", issues=issues):
            try:
                entries.append(SummaryEntry.model_validate(obj))
            except ValidationError as e:
                for err in e.errors():
                    field = ".".join(str(p) for p in err["loc"])
                    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
                    issues.append(RecordIssue(str(self.path), lineno, field, msg))
        if issues:
            raise FeedbackFileError(issues)
        return entries

    def _write(self, entries: list[SummaryEntry], path: Path | None = None) -> None:
        write_jsonl_lines(path or self.path, (e.model_dump_json() for e in entries))

    def __len__(self) -> int:
        return len(self.latest())

    def __contains__(self, user_id: str) -> bool:
        return any(e.user_id == user_id for e in self._entries)

    def get(self, user_id: str) -> SummaryEntry | None:
        for e in reversed(self._entries):
            if e.user_id == user_id:
                return e
        return None

    def history(self, user_id: str) -> list[SummaryEntry]:
        return [e for e in self._entries if e.user_id == user_id]

    def latest(self) -> dict[str, SummaryEntry]:
        out: dict[str, SummaryEntry] = {}
        for e in self._entries:
            out[e.user_id] = e
        return out

    def put_many(self, entries: Iterable[SummaryEntry]) -> None:
        new = [SummaryEntry.model_validate(e.model_dump()) for e in entries]  # validated before anything is written
        self._write(self._entries + new)
        self._entries.extend(new)

    def put(self, user_id: str, summary: str, *, summarizer_version: str, step: int | None = None) -> SummaryEntry:
        entry = SummaryEntry(user_id=user_id, summary=summary, summarizer_version=summarizer_version, step=step)
        self.put_many([entry])
        return entry

    def record(self, summaries: Mapping[str, str], *, summarizer_version: str, step: int | None = None) -> None:
        """Store model-written summaries for many users at once (one file write)."""
        self.put_many(SummaryEntry(user_id=u, summary=s, summarizer_version=summarizer_version, step=step)
                      for u, s in summaries.items())

    def edit(self, user_id: str, summary: str, *, author: str | None = None) -> SummaryEntry:
        """A person's correction; it becomes the summary in force for ``user_id``."""
        if user_id not in self:
            raise KeyError(f"{self.path}: no summary for user {user_id!r} to edit")
        if not summary.strip():
            raise ValueError("an edited summary must not be empty")
        entry = SummaryEntry(user_id=user_id, summary=summary.strip(), summarizer_version="human", source="edit",
                             author=author or os.environ.get("USER"))
        self.put_many([entry])
        return entry

    def export(self, out: str | os.PathLike) -> int:
        """Write only the summaries in force (one per user) to ``out``; return how many."""
        latest = list(self.latest().values())
        self._write(latest, Path(out))
        return len(latest)

    def summaries(self) -> dict[str, str]:
        return {u: e.summary for u, e in self.latest().items()}


def summaries_for(users, summarizer=None, store: SummaryStore | None = None) -> list[str]:
    """The summary in force for each user: the store's (a person's edit wins, being newest), else inference.

    New users need no retraining: whoever is missing from the store is summarised from their context alone.
    """
    out: list[str | None] = [None] * len(users)
    missing = []
    for i, u in enumerate(users):
        entry = store.get(u.user_id) if store is not None else None
        if entry is not None:
            out[i] = entry.summary
        else:
            missing.append(i)
    if missing:
        if summarizer is None:
            raise KeyError(f"no stored summary for {len(missing)} user(s) (e.g. {users[missing[0]].user_id!r}) "
                           "and no summarizer to write one")
        for i, z in zip(missing, summarizer.summarize([users[i] for i in missing], sample=False), strict=True):
            out[i] = z
    return [z or "" for z in out]
