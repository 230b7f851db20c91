"""Stored events back into the pluralign data model (:class:`~pluralign.data.schema.UserRecord`).

Used by the export (training files) and by summary refreshes (the summarizer reads the same records the trainers
do). A reaction that points at a stored turn gets its text here: the response is that turn, the prompt the nearest
user turn before it. Reactions whose turn is not stored are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pluralign.data.schema import Conversation, Message, PreferencePair, Reaction, UserRecord
from pluralign.service.tables import FeedbackEvent


@dataclass
class BuildStats:
    unresolved_reactions: int = 0
    skipped: list[str] = field(default_factory=list)


def _turn_text(conversations: dict[str, dict], conversation_id: str, turn_id: str) -> tuple[str, str] | None:
    conv = conversations.get(conversation_id)
    if conv is None:
        return None
    turns = conv["turns"]
    for i, t in enumerate(turns):
        if t["turn_id"] == turn_id:
            prompt = next((p["content"] for p in reversed(turns[:i]) if p["role"] == "user"), "")
            return prompt, t["content"]
    return None


def build_user_record(user_id: str, events: Iterable[FeedbackEvent], stats: BuildStats | None = None) -> UserRecord:
    """One :class:`UserRecord` from a user's stored events (in id order)."""
    stats = stats if stats is not None else BuildStats()
    events = list(events)
    conversations = {e.payload["conversation_id"]: e.payload for e in events if e.kind == "conversation"}
    rec = UserRecord(user_id=user_id, source="pluralign-service")
    for e in events:
        p = dict(e.payload)
        meta = dict(p.get("meta") or {})
        meta["event_id"] = e.id
        if e.kind == "conversation":
            rec.conversations.append(Conversation(
                conversation_id=p["conversation_id"], topic=p.get("topic"), timestamp=p.get("timestamp"), meta=meta,
                messages=[Message(role=t["role"], content=t["content"]) for t in p["turns"]]))
        elif e.kind == "pair":
            rec.pairs.append(PreferencePair(pair_id=p["pair_id"], prompt=p["prompt"], chosen=p["chosen"],
                                            rejected=p["rejected"], topic=p.get("topic"),
                                            timestamp=p.get("timestamp"), meta=meta))
        elif e.kind == "reaction":
            prompt, response = p.get("prompt"), p.get("response")
            if "conversation_id" in p:
                meta["conversation_id"], meta["turn_id"] = p["conversation_id"], p.get("turn_id")
            if prompt is None or response is None:
                found = _turn_text(conversations, p.get("conversation_id", ""), p.get("turn_id", ""))
                if found is None:
                    stats.unresolved_reactions += 1
                    stats.skipped.append(f"{user_id}/{p['reaction_id']}: turn not stored")
                    continue
                prompt, response = found
            rec.reactions.append(Reaction(reaction_id=p["reaction_id"], prompt=prompt, response=response,
                                          kind=p.get("kind", "love"), value=p.get("value", 1.0),
                                          item_id=p.get("item_id"), topic=p.get("topic"),
                                          timestamp=p.get("timestamp"), meta=meta))
    return rec


def load_user_record(session: Session, user_id: str, *, newest: int | None = None,
                     stats: BuildStats | None = None) -> tuple[UserRecord, int | None]:
    """The user's record from their events (only the ``newest`` N if given) and the newest event id read."""
    q = sa.select(FeedbackEvent).where(FeedbackEvent.user_id == user_id).order_by(FeedbackEvent.id.desc())
    if newest is not None:
        q = q.limit(newest)
    events = list(reversed(session.scalars(q).all()))
    # Reactions may point at older conversations than the newest N events; fetch those too.
    have = {e.payload.get("conversation_id") for e in events if e.kind == "conversation"}
    wanted = {e.payload.get("conversation_id") for e in events if e.kind == "reaction"} - have - {None}
    if wanted:
        extra = session.scalars(sa.select(FeedbackEvent).where(
            FeedbackEvent.user_id == user_id, FeedbackEvent.kind == "conversation",
            FeedbackEvent.item_id.in_(wanted))).all()
        events = sorted([*extra, *events], key=lambda e: e.id)
    last_id = max((e.id for e in events), default=None)
    return build_user_record(user_id, events, stats), last_id
