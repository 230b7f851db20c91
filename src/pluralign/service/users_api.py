"""Users own their data: tokens, summaries (view, edit, history, refresh) and erasure."""

from __future__ import annotations

import asyncio
import logging
import time

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pluralign.service import summaries
from pluralign.service.auth import Authenticator
from pluralign.service.deps import Caller, ServiceState, State, UserId
from pluralign.service.errors import ApiError
from pluralign.service.records import load_user_record
from pluralign.service.schemas import DeletedOut, SummaryHistory, SummaryIn, SummaryOut, TokenOut
from pluralign.service.tables import FeedbackEvent, Summary, User, UserToken

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/users/{user_id}", tags=["users"])


def _out(row: Summary) -> SummaryOut:
    return SummaryOut(user_id=row.user_id, summary=row.text, version=row.version, source=row.source,
                      summarizer=row.summarizer, created_at=row.created_at)


@router.post("/tokens", response_model=TokenOut, summary="Issue an end-user token (admin)")
async def create_token(user_id: UserId, svc: State, who: Caller) -> TokenOut:
    """A bearer token bound to ``user_id``; it is shown once (only its hash is stored)."""
    who.require_admin()
    ins = pg_insert if svc.engine.dialect.name == "postgresql" else sqlite_insert

    def issue(session) -> str:
        session.execute(ins(User).on_conflict_do_nothing(index_elements=["user_id"]),
                        [{"user_id": user_id, "created_at": time.time()}])
        return Authenticator.issue(session, user_id)

    return TokenOut(user_id=user_id, token=await svc.writer.run(issue))


@router.get("/summary", response_model=SummaryOut, summary="The user's current summary")
async def get_summary(user_id: UserId, svc: State, who: Caller) -> SummaryOut:
    who.require_user(user_id)

    def read():
        with svc.sessions() as s:
            return summaries.current(s, user_id)

    row = await run_in_threadpool(read)
    if row is None:
        raise ApiError(404, "not_found", f"user {user_id!r} has no summary yet (PUT one, or POST "
                       f"/v1/users/{user_id}/summary:refresh)")
    return _out(row)


@router.put("/summary", response_model=SummaryOut, summary="Replace the user's summary (a new version)")
async def put_summary(user_id: UserId, body: SummaryIn, svc: State, who: Caller) -> SummaryOut:
    """The old versions stay in the history. The text is stored as data and quoted, never obeyed, by the proxy."""
    who.require_user(user_id)
    cap = svc.config.summary_max_chars
    if len(body.summary) > cap:
        raise ApiError(422, "invalid_request", f"body.summary: at most {cap} characters (got {len(body.summary)})",
                       field="body.summary")
    if "\x00" in body.summary:
        raise ApiError(422, "invalid_request", "body.summary: must not contain NUL characters", field="body.summary")
    source = "admin" if who.is_admin else "user"
    row = await svc.writer.run(lambda s: summaries.add_version(s, user_id, body.summary, source))
    return _out(row)


@router.get("/summary/history", response_model=SummaryHistory, summary="Every version of the user's summary")
async def get_history(user_id: UserId, svc: State, who: Caller) -> SummaryHistory:
    who.require_user(user_id)

    def read():
        with svc.sessions() as s:
            return summaries.history(s, user_id)

    return SummaryHistory(user_id=user_id, versions=[_out(r) for r in await run_in_threadpool(read)])


async def refresh_summary(svc: ServiceState, user_id: str, *, scheduled: bool = False) -> Summary | None:
    """Summarise the user's newest feedback into a new version; None if the user has no feedback."""

    def read():
        with svc.sessions() as s:
            return load_user_record(s, user_id, newest=svc.config.summary_history_items)

    record, last_id = await run_in_threadpool(read)
    if last_id is None:
        return None
    (text,) = await run_in_threadpool(svc.summarizer.summarize, [record])
    text = (text or "").replace("\x00", "")[: svc.config.summary_max_chars]

    def write(s):
        if scheduled:  # the user may have edited it meanwhile: a schedule never overwrites their own words
            cur = summaries.current(s, user_id)
            if cur is not None and cur.source != "refresh":
                return None
        return summaries.add_version(s, user_id, text, "refresh", summarizer=svc.summarizer_name,
                                     last_event_id=last_id)

    return await svc.writer.run(write)


@router.post("/summary:refresh", response_model=SummaryOut, summary="Rewrite the summary from newest feedback")
async def post_refresh(user_id: UserId, svc: State, who: Caller) -> SummaryOut:
    who.require_user(user_id)
    row = await refresh_summary(svc, user_id)
    if row is None:
        raise ApiError(404, "not_found", f"user {user_id!r} has no feedback to summarise")
    return _out(row)


@router.delete("", response_model=DeletedOut, summary="Erase the user (right to be forgotten)")
async def delete_user(user_id: UserId, svc: State, who: Caller) -> DeletedOut:
    """Deletes the user's feedback events, every summary version, their tokens and the user row, after any of
    their events already queued have been written (so nothing submitted before the erasure survives it)."""
    who.require_user(user_id)

    def erase(s) -> dict[str, int]:
        counts = {}
        for name, table in (("events", FeedbackEvent), ("summaries", Summary), ("tokens", UserToken),
                            ("users", User)):
            counts[name] = s.execute(sa.delete(table).where(table.user_id == user_id)).rowcount or 0
        return counts

    counts = await svc.writer.run(erase)
    svc.auth.forget_user(user_id)
    return DeletedOut(user_id=user_id, deleted=counts)


async def refresh_loop(svc: ServiceState) -> None:
    """Background task: every ``refresh_interval_s``, refresh users with feedback newer than their summary."""
    interval = svc.config.refresh_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            def due():
                with svc.sessions() as s:
                    return summaries.users_needing_refresh(s)

            for uid in await run_in_threadpool(due):
                await refresh_summary(svc, uid, scheduled=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep the schedule alive; the error is in the log
            log.exception("scheduled summary refresh failed")
