"""Users own their data: tokens, summaries (view, edit, history, refresh) and erasure."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pluralign.service import summaries
from pluralign.service.auth import Authenticator, Principal
from pluralign.service.deps import Caller, ServiceState, State, UserId
from pluralign.service.erasure import erase_user, guard_write, truncate_wal
from pluralign.service.errors import ApiError
from pluralign.service.records import load_user_record
from pluralign.service.schemas import (
    DeletedOut,
    RevokedOut,
    SummaryHistory,
    SummaryIn,
    SummaryOut,
    TokenIn,
    TokenInfo,
    TokenList,
    TokenOut,
)
from pluralign.service.storable import check_storable
from pluralign.service.tables import Summary, User, UserToken

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/users/{user_id}", tags=["users"])


def _out(row: Summary) -> SummaryOut:
    return SummaryOut(user_id=row.user_id, summary=row.text, version=row.version, source=row.source,
                      summarizer=row.summarizer, created_at=row.created_at)


@router.post("/tokens", response_model=TokenOut, summary="Issue an end-user token (admin)")
async def create_token(user_id: UserId, svc: State, who: Caller, body: TokenIn | None = None) -> TokenOut:
    """A bearer token bound to ``user_id``; it is shown once (only its hash is stored). Optional body:
    ``{"scope": "full" | "no_erase", "expires_in_s": seconds}``."""
    who.require_admin()
    body = body or TokenIn()
    ttl = body.expires_in_s if body.expires_in_s is not None else (svc.config.token_ttl_s or None)
    expires_at = time.time() + ttl if ttl else None
    ins = pg_insert if svc.engine.dialect.name == "postgresql" else sqlite_insert

    def issue(session) -> tuple[str, str]:
        guard_write(session, user_id, who)
        session.execute(ins(User).on_conflict_do_nothing(index_elements=["user_id"]),
                        [{"user_id": user_id, "created_at": time.time()}])
        return Authenticator.issue(session, user_id, scope=body.scope, expires_at=expires_at)

    token, token_id = await svc.writer.run(issue)
    return TokenOut(user_id=user_id, token=token, token_id=token_id, scope=body.scope, expires_at=expires_at)


@router.get("/tokens", response_model=TokenList, summary="List the user's tokens (admin)")
async def list_tokens(user_id: UserId, svc: State, who: Caller) -> TokenList:
    """Ids, scopes, creation and expiry times of the user's tokens (never the tokens themselves), oldest first."""
    who.require_admin()

    def read():
        with svc.sessions() as s:
            return s.execute(sa.select(UserToken.token_id, UserToken.scope, UserToken.created_at,
                                       UserToken.expires_at).where(UserToken.user_id == user_id)
                             .order_by(UserToken.created_at, UserToken.token_id)).all()

    now = time.time()
    return TokenList(user_id=user_id, tokens=[
        TokenInfo(token_id=r.token_id, scope=r.scope, created_at=r.created_at, expires_at=r.expires_at,
                  expired=r.expires_at is not None and now >= r.expires_at) for r in await run_in_threadpool(read)])


@router.delete("/tokens/{token_id}", response_model=RevokedOut, summary="Revoke one of the user's tokens (admin)")
async def revoke_token(user_id: UserId, token_id: Annotated[str, Path(pattern=r"^tok_[0-9a-f]{16}$")], svc: State,
                       who: Caller) -> RevokedOut:
    """The token gets 401 from the next request on; a write it had in flight is refused in its transaction."""
    who.require_admin()

    def revoke(session) -> int:
        return session.execute(sa.delete(UserToken).where(UserToken.user_id == user_id,
                                                          UserToken.token_id == token_id)).rowcount or 0

    if not await svc.writer.run(revoke):
        raise ApiError(404, "not_found", f"user {user_id!r} has no token {token_id!r}")
    svc.auth.forget_token(token_id)
    return RevokedOut(user_id=user_id, token_id=token_id, revoked=True)


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
    check_storable(body.summary, "body.summary")
    source = "admin" if who.is_admin else "user"

    def write(s):
        guard_write(s, user_id, who)
        return summaries.add_version(s, user_id, body.summary, source)

    row = await svc.writer.run(write)
    return _out(row)


@router.get("/summary/history", response_model=SummaryHistory, summary="Every version of the user's summary")
async def get_history(user_id: UserId, svc: State, who: Caller) -> SummaryHistory:
    who.require_user(user_id)

    def read():
        with svc.sessions() as s:
            return summaries.history(s, user_id)

    return SummaryHistory(user_id=user_id, versions=[_out(r) for r in await run_in_threadpool(read)])


async def refresh_summary(svc: ServiceState, user_id: str, *, scheduled: bool = False,
                          who: Principal | None = None) -> Summary | None:
    """Summarise the user's newest feedback into a new version; None if the user has no feedback.

    The write is refused if the user is erased (or ``who``'s token revoked) after the read began."""
    who = who or Principal(is_admin=True, authenticated_at=time.time())

    def read():
        with svc.sessions() as s:
            return load_user_record(s, user_id, newest=svc.config.summary_history_items)

    record, last_id = await run_in_threadpool(read)
    if last_id is None:
        return None
    (text,) = await run_in_threadpool(svc.summarizer.summarize, [record])
    text = (text or "").replace("\x00", "")[: svc.config.summary_max_chars]

    def write(s):
        guard_write(s, user_id, who)
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
    row = await refresh_summary(svc, user_id, who=who)
    if row is None:
        raise ApiError(404, "not_found", f"user {user_id!r} has no feedback to summarise")
    return _out(row)


@router.delete("", response_model=DeletedOut, summary="Erase the user (right to be forgotten)")
async def delete_user(user_id: UserId, svc: State, who: Caller) -> DeletedOut:
    """Deletes the user's feedback events, every summary version, their tokens and the user row, after any of
    their events already queued have been written (so nothing submitted before the erasure survives it). Requests
    authenticated before the erasure that reach the database after it write nothing (409 or 401); on SQLite the
    WAL is emptied so the erased text does not linger on disk. Tokens of scope ``no_erase`` get 403."""
    who.require_erase(user_id)
    counts = await svc.writer.run(lambda s: erase_user(s, user_id))
    svc.auth.forget_user(user_id)
    await run_in_threadpool(truncate_wal, svc.engine)
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
