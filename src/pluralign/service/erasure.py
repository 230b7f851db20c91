"""Erasure that races nothing: a write authenticated before a user's erasure never lands after it.

A request is authenticated, then its write waits in the writer's queue; an erasure of the same user may commit in
between. So every write transaction re-checks, after taking the user's lock:

- a token-authenticated write: its token still exists (a revoked token, or one erased with its user, writes
  nothing: 401);
- any write: the user was not erased at or after the moment the request was authenticated (``user_erasures``
  holds the SHA-256 of the id and the time; 409 ``user_erased``). A request authenticated after the erasure (with
  the admin key) may create the user afresh.

Locks: on SQLite the single writer thread already runs erasures and writes one after another. On PostgreSQL, where
several server processes may share a database, writes take a shared and erasures an exclusive transaction-level
advisory lock on the user, so an erasure waits for writes in flight and writes that follow it see its tombstone.

On SQLite, erased text must not linger on disk: connections run with ``secure_delete`` (deleted content is
overwritten with zeros) and an erasure ends with a ``TRUNCATE`` checkpoint that empties the WAL file.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from pluralign.service.auth import Principal
from pluralign.service.errors import ApiError
from pluralign.service.tables import FeedbackEvent, Summary, User, UserErasure, UserToken

log = logging.getLogger(__name__)


def user_key(user_id: str) -> str:
    return hashlib.sha256(("pluralign-user:" + user_id).encode("utf-8")).hexdigest()


def lock_users(conn: Connection | Session, user_ids: Iterable[str], *, exclusive: bool = False) -> None:
    """PostgreSQL: transaction-level advisory locks on the users (shared for writes, exclusive for erasure)."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    if bind.dialect.name != "postgresql":
        return
    keys = sorted(set(user_ids))
    if not keys:
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(sa.text(f"SELECT count({fn}(hashtextextended(k, 0))) FROM unnest(CAST(:keys AS text[])) AS k"),
                 {"keys": ["pluralign-user:" + k for k in keys]})


def refusals(conn: Connection | Session, writers: Sequence[tuple[str, Principal | None]],
             erased_users: set[str] | None = None) -> dict[int, ApiError]:
    """Which of the ``(user_id, principal)`` writes must not happen (index -> the error to answer with).

    ``erased_users``, if given, receives the ids among ``writers`` that were ever erased (their user row may need
    re-creating by a write that is allowed)."""
    checked = [(i, u, w) for i, (u, w) in enumerate(writers) if w is not None]
    if not checked:
        return {}
    keys = {user_key(u) for _, u, _ in checked}
    erased = dict(conn.execute(sa.select(UserErasure.user_key, UserErasure.erased_at)
                               .where(UserErasure.user_key.in_(keys))).all())
    hashes = {w.token_hash for _, _, w in checked if w.token_hash is not None}
    live = set(conn.execute(sa.select(UserToken.token_hash).where(UserToken.token_hash.in_(hashes))).scalars()
               ) if hashes else set()
    out: dict[int, ApiError] = {}
    if erased_users is not None and erased:
        erased_users.update(u for _, u, _ in checked if user_key(u) in erased)
    for i, u, w in checked:
        if w.token_hash is not None and w.token_hash not in live:
            out[i] = ApiError(401, "unauthorized", "this token was revoked (or its user erased) before the write "
                              "was stored; nothing was written", headers={"WWW-Authenticate": "Bearer"})
        elif (t := erased.get(user_key(u))) is not None and t >= w.authenticated_at:
            out[i] = ApiError(409, "user_erased", f"user {u!r} was erased after this request was authenticated; "
                              "nothing was written")
    return out


def guard_write(session: Session, user_id: str, who: Principal | None) -> None:
    """Inside a write transaction: lock the user and raise if ``who`` may no longer write for them."""
    lock_users(session, [user_id])
    err = refusals(session, [(user_id, who)]).get(0)
    if err is not None:
        raise err


def erase_user(session: Session, user_id: str) -> dict[str, int]:
    """Delete everything of ``user_id`` and record the erasure, in the caller's transaction; return the counts."""
    lock_users(session, [user_id], exclusive=True)
    counts = {}
    for name, table in (("events", FeedbackEvent), ("summaries", Summary), ("tokens", UserToken), ("users", User)):
        counts[name] = session.execute(sa.delete(table).where(table.user_id == user_id)).rowcount or 0
    key, now = user_key(user_id), time.time()
    if session.get(UserErasure, key) is None:
        session.add(UserErasure(user_key=key, erased_at=now))
    else:
        session.execute(sa.update(UserErasure).where(UserErasure.user_key == key).values(erased_at=now))
    return counts


def truncate_wal(engine: Engine, attempts: int = 20) -> bool:
    """SQLite: copy the WAL into the database and truncate it to zero bytes, so erased rows' old frames are gone.

    Waits briefly for readers holding old snapshots; returns False (and logs) if the WAL could not be emptied.
    """
    if engine.dialect.name != "sqlite":
        return True
    for _ in range(attempts):
        with engine.connect() as conn:
            busy, _log_frames, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy == 0:
            return True
        time.sleep(0.05)
    log.warning("could not truncate the SQLite WAL after an erasure (readers kept it busy); the next checkpoint will")
    return False
