"""Users' summaries: versioned storage, the default extractive summarizer, and refreshes.

A summary is data about the user, owned by the user: they can read it, replace it and see its history. A refresh
writes a new version from the user's newest feedback with a :class:`Summarizer` (``summarize(contexts:
list[UserRecord]) -> list[str]``, the protocol of ``pluralign.summarizers``). Scheduled refreshes skip users whose
current summary they wrote themselves; an explicit refresh request always writes a new version.
"""

from __future__ import annotations

import importlib
import time
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pluralign.data.schema import UserRecord
from pluralign.service.tables import FeedbackEvent, Summary


class Summarizer(Protocol):
    def summarize(self, contexts: list[UserRecord]) -> list[str]: ...


def _quote(text: str, n: int) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= n else text[: n - 1].rstrip() + "…") + '"'


class ExtractiveSummarizer:
    """Quotes of the user's newest feedback, newest first: what they chose over what, what they loved or not,
    what they asked about. Nothing is inferred, so it is honest but not abstract; a trained summarizer does better.
    """

    name = "extractive"

    def __init__(self, max_chars: int = 600, snippet_chars: int = 80, items: int = 3):
        self.max_chars, self.snippet_chars, self.items = max_chars, snippet_chars, items

    def summarize(self, contexts: list[UserRecord]) -> list[str]:
        return [self._one(c) for c in contexts]

    def _one(self, rec: UserRecord) -> str:
        n, k = self.snippet_chars, self.items
        parts = []
        pairs = list(reversed(rec.pairs))[:k]
        if pairs:
            parts.append("Preferred " + "; ".join(f"{_quote(p.chosen, n)} over {_quote(p.rejected, n)}"
                                                  for p in pairs) + ".")
        loved = [r for r in reversed(rec.reactions) if r.value > 0][:k]
        if loved:
            parts.append("Reacted well to " + "; ".join(_quote(r.response, n) for r in loved) + ".")
        disliked = [r for r in reversed(rec.reactions) if r.value < 0][:k]
        if disliked:
            parts.append("Reacted badly to " + "; ".join(_quote(r.response, n) for r in disliked) + ".")
        asked = [m.content for c in reversed(rec.conversations) for m in c.messages if m.role == "user"][:k]
        if asked:
            parts.append("Recently asked about " + "; ".join(_quote(a, n) for a in asked) + ".")
        text = " ".join(parts) or "No feedback yet."
        return text if len(text) <= self.max_chars else text[: self.max_chars - 1] + "…"


_TRAINED = {"cpu": ("pluralign.summarizers.cpu", "CpuSummarizer"), "hf": ("pluralign.summarizers.hf", "HFSummarizer")}


def load_summarizer(spec: str) -> Summarizer:
    """``extractive``; ``cpu:DIR`` / ``hf:DIR`` (a trained pluralign summarizer, ``from_pretrained(DIR)``); or
    ``module:attribute`` (a Summarizer, or a class/factory called with no arguments)."""
    if spec == "extractive":
        return ExtractiveSummarizer()
    kind, _, path = spec.partition(":")
    if kind in _TRAINED and path:
        mod, cls = _TRAINED[kind]
        try:
            obj = getattr(importlib.import_module(mod), cls).from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ValueError(f"summarizer: cannot load {spec!r}: {e}") from None
        obj.name = spec
        return obj
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise ValueError(f"summarizer: expected 'extractive' or 'module:attribute', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"summarizer: cannot load {spec!r}: {e}") from None
    if isinstance(obj, type) or not hasattr(obj, "summarize"):
        obj = obj()  # a class or a factory
    if not hasattr(obj, "summarize"):
        raise ValueError(f"summarizer: {spec!r} has no summarize(contexts) method")
    return obj


def current(session: Session, user_id: str) -> Summary | None:
    return session.scalars(sa.select(Summary).where(Summary.user_id == user_id)
                           .order_by(Summary.version.desc()).limit(1)).first()


def history(session: Session, user_id: str) -> list[Summary]:
    return list(session.scalars(sa.select(Summary).where(Summary.user_id == user_id)
                                .order_by(Summary.version.desc())).all())


def add_version(session: Session, user_id: str, text: str, source: str, *, summarizer: str | None = None,
                last_event_id: int | None = None) -> Summary:
    """Append a new version (must run on the writer thread: versions are numbered there without races)."""
    cur = current(session, user_id)
    row = Summary(user_id=user_id, version=(cur.version + 1) if cur else 1, text=text, source=source,
                  summarizer=summarizer, last_event_id=last_event_id, created_at=time.time())
    session.add(row)
    session.flush()
    return row


def users_needing_refresh(session: Session) -> list[str]:
    """Users with events newer than their current summary, whose current summary no user or admin wrote."""
    newest = (sa.select(FeedbackEvent.user_id, sa.func.max(FeedbackEvent.id).label("last"))
              .group_by(FeedbackEvent.user_id).subquery())
    latest_v = (sa.select(Summary.user_id, sa.func.max(Summary.version).label("v"))
                .group_by(Summary.user_id).subquery())
    cur = (sa.select(Summary.user_id, Summary.source, Summary.last_event_id)
           .join(latest_v, sa.and_(Summary.user_id == latest_v.c.user_id, Summary.version == latest_v.c.v))
           .subquery())
    q = (sa.select(newest.c.user_id).outerjoin(cur, cur.c.user_id == newest.c.user_id)
         .where(sa.or_(cur.c.user_id.is_(None),
                       sa.and_(cur.c.source == "refresh",
                               sa.or_(cur.c.last_event_id.is_(None), cur.c.last_event_id < newest.c.last)))))
    return [r[0] for r in session.execute(q)]
