"""Feedback ingestion: conversations, reactions and pairwise choices, acknowledged after their commit."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response

from pluralign.service.deps import Caller, State, UserId
from pluralign.service.errors import ApiError
from pluralign.service.ingest import PreparedEvent, StoredEvent, prepare
from pluralign.service.schemas import ConversationIn, FeedbackAck, FeedbackBatch, PairIn, ReactionIn
from pluralign.service.storable import check_storable

router = APIRouter(prefix="/v1/users/{user_id}", tags=["feedback"])


def _prepared(user_id: str, events, where: str) -> list[PreparedEvent]:
    out = []
    for i, ev in enumerate(events):
        p = prepare(user_id, ev)
        # Lone surrogates, NUL and NaN/Infinity would fail a commit shared with other clients' events (or, once
        # stored, every later export): refuse them here, naming the field.
        check_storable(p.payload, where.format(i=i))
        out.append(p)
    return out


def _ack(user_id: str, stored: list[StoredEvent]) -> Response:
    """The :class:`FeedbackAck` body, serialised directly to skip FastAPI's response-model pass (validate again,
    then encode) on the hottest endpoint. ``FeedbackAck`` stays the documented schema;
    ``test_feedback_ack_matches_its_schema`` checks the two agree."""
    dup = sum(s.duplicate for s in stored)
    body = {"user_id": user_id, "stored": len(stored) - dup, "duplicates": dup,
            "events": [{"id": s.id, "idempotency_key": s.idempotency_key, "duplicate": s.duplicate} for s in stored]}
    return Response(json.dumps(body, separators=(",", ":")).encode("utf-8"), media_type="application/json")


async def _store(svc, user_id: str, events: list[PreparedEvent], who) -> Response:
    try:
        stored = await svc.writer.add_events(events, who)
    except ApiError:  # refused inside the transaction: the token was revoked or the user erased meanwhile
        raise
    except Exception as e:  # noqa: BLE001 - the database failed: tell the client to retry (idempotent)
        raise ApiError(503, "storage_unavailable", f"the events were not stored ({type(e).__name__}); retry "
                       "with the same idempotency keys") from e
    return _ack(user_id, stored)


@router.post("/feedback", response_model=FeedbackAck, summary="Submit a batch of events of one user")
async def post_feedback(user_id: UserId, body: FeedbackBatch, svc: State, who: Caller) -> Response:
    """Up to ``max_batch_events`` events (``type``: conversation, reaction or pair) in one request."""
    who.require_user(user_id)
    if len(body.events) > svc.config.max_batch_events:
        raise ApiError(422, "invalid_request", f"body.events: at most {svc.config.max_batch_events} events per "
                       "request", field="body.events")
    return await _store(svc, user_id, _prepared(user_id, body.events, "body.events.{i}"), who)


@router.post("/conversations", response_model=FeedbackAck, summary="Submit one conversation (turns with ids)")
async def post_conversation(user_id: UserId, body: ConversationIn, svc: State, who: Caller) -> Response:
    who.require_user(user_id)
    return await _store(svc, user_id, _prepared(user_id, [body], "body"), who)


@router.post("/reactions", response_model=FeedbackAck, summary="Submit one reaction (love, vote, graded)")
async def post_reaction(user_id: UserId, body: ReactionIn, svc: State, who: Caller) -> Response:
    who.require_user(user_id)
    return await _store(svc, user_id, _prepared(user_id, [body], "body"), who)


@router.post("/pairs", response_model=FeedbackAck, summary="Submit one pairwise choice")
async def post_pair(user_id: UserId, body: PairIn, svc: State, who: Caller) -> Response:
    who.require_user(user_id)
    return await _store(svc, user_id, _prepared(user_id, [body], "body"), who)
