"""The single writer: every database write goes through one thread that commits events in groups.

Requests put their events on a queue and wait; the writer takes everything queued (up to ``max_batch`` events),
writes it in one transaction and only then resolves the waiting requests. So an event is acknowledged only after
its commit (a killed server loses no acknowledged event), and under load many requests share one commit. Other
writes (summaries, tokens, deletions) run on the same thread in queue order, so SQLite never sees two writers and
a deletion always comes after the events submitted before it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pluralign.service.auth import Principal
from pluralign.service.db import session_factory
from pluralign.service.erasure import lock_users, refusals
from pluralign.service.errors import ApiError
from pluralign.service.schemas import ConversationIn, PairIn, ReactionIn
from pluralign.service.tables import FeedbackEvent, User

log = logging.getLogger(__name__)
T = TypeVar("T")

_ITEM_FIELD = {"conversation": "conversation_id", "reaction": "reaction_id", "pair": "pair_id"}


@dataclass(frozen=True)
class PreparedEvent:
    user_id: str
    kind: str
    item_id: str
    idempotency_key: str
    payload: dict
    event_time: float | None


@dataclass(frozen=True)
class StoredEvent:
    id: int
    idempotency_key: str
    duplicate: bool


def prepare(user_id: str, event: ConversationIn | ReactionIn | PairIn) -> PreparedEvent:
    """The row for one validated event; the idempotency key defaults to ``TYPE:ITEM_ID``."""
    item_id = getattr(event, _ITEM_FIELD[event.type])
    payload = event.model_dump(exclude={"type", "idempotency_key"}, exclude_none=True)
    return PreparedEvent(user_id, event.type, item_id, event.idempotency_key or f"{event.type}:{item_id}", payload,
                         event.timestamp)


@dataclass
class _EventsJob:
    events: list[PreparedEvent]  # all of one user
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    who: Principal | None = None


@dataclass
class _CallJob:
    fn: Callable[[Session], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


def _resolve(fut: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if fut.done():  # the client went away; the work is done (or failed) regardless
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _insert(engine: Engine, table):
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class WriteQueue:
    """Serialises all writes on one thread; events are group-committed (see the module docstring)."""

    def __init__(self, engine: Engine, *, max_batch: int = 2000):
        self.engine = engine
        self.sessions = session_factory(engine)
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pluralign-writer", daemon=True)
        self.commits = 0
        self.events_written = 0
        self._known_users: set[str] = set()
        ev = FeedbackEvent.__table__
        self._user_insert = _insert(engine, User.__table__).on_conflict_do_nothing(index_elements=["user_id"])
        self._event_insert = (_insert(engine, ev)
                              .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
                              .returning(ev.c.id, ev.c.user_id, ev.c.idempotency_key))

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Finish everything queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    async def add_events(self, events: list[PreparedEvent], who: Principal | None = None) -> list[StoredEvent]:
        """Store ``events`` of one user (duplicates by key are not stored again); return once they are committed.

        ``who`` authenticated the request: if its token was revoked, or the user erased, since then, nothing is
        written and the matching :class:`ApiError` is raised (see :mod:`pluralign.service.erasure`)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put(_EventsJob(events, loop, fut, who))
        return await fut

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` on the writer thread, after everything queued before it, and commit."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put(_CallJob(fn, loop, fut))
        return await fut

    # --- writer thread ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        pending: Any = None
        while True:
            job = pending if pending is not None else self._queue.get()
            pending = None
            if job is None:
                return
            if isinstance(job, _CallJob):
                self._run_call(job)
                continue
            batch = [job]
            n = len(job.events)
            while n < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(nxt, _EventsJob):
                    pending = nxt  # a call or the stop marker: run it after this commit, in order
                    break
                batch.append(nxt)
                n += len(nxt.events)
            self._run_events(batch)

    def _run_call(self, job: _CallJob) -> None:
        self._known_users.clear()  # the call may erase users; cheap to re-learn
        try:
            with self.sessions() as session, session.begin():
                result = job.fn(session)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting request, which turns it into a 4xx/5xx
            job.loop.call_soon_threadsafe(_resolve, job.future, None, e)
        else:
            job.loop.call_soon_threadsafe(_resolve, job.future, result)

    def _run_events(self, batch: list[_EventsJob]) -> None:
        try:
            results = self._write(batch)
        except BaseException as e:  # noqa: BLE001
            log.exception("writing %d event(s) failed", sum(len(j.events) for j in batch))
            for job in batch:
                job.loop.call_soon_threadsafe(_resolve, job.future, None, e)
            return
        for job, res in zip(batch, results, strict=True):
            if isinstance(res, ApiError):
                job.loop.call_soon_threadsafe(_resolve, job.future, None, res)
            else:
                job.loop.call_soon_threadsafe(_resolve, job.future, res)

    def _write(self, batch: list[_EventsJob]) -> list[list[StoredEvent] | ApiError]:
        """One transaction for the batch: jobs whose writer may no longer write (erased user, revoked token) are
        refused inside it, the rest stored. Returns each job's stored events or its refusal."""
        writers = [(job.events[0].user_id if job.events else "", job.who) for job in batch]
        with self.engine.begin() as conn:
            lock_users(conn, {u for u, _ in writers})
            erased: set[str] = set()
            refused = refusals(conn, writers, erased)
            # Another server process (PostgreSQL) may have erased a user this one has cached as known: a user with
            # a tombstone gets the users upsert again.
            self._known_users -= erased
            events = [e for i, job in enumerate(batch) if i not in refused for e in job.events]
            stored, new_users = self._insert_events(conn, events) if events else ([], set())
        self._known_users |= new_users
        self.commits += 1
        out: list[list[StoredEvent] | ApiError] = []
        i = 0
        for j, job in enumerate(batch):
            if j in refused:
                out.append(refused[j])
                continue
            out.append(stored[i:i + len(job.events)])
            i += len(job.events)
        return out

    def _insert_events(self, conn, events: list[PreparedEvent]) -> tuple[list[StoredEvent], set[str]]:
        # SQLAlchemy Core, not the ORM. The common case (no retries) is one multi-row
        # ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` per commit; only keys that were already stored need a
        # second statement to find their ids. Users seen before skip the users upsert (the cache is dropped after
        # every other write, so an erased user is re-created on their next event).
        now = time.time()
        fresh: dict[tuple[str, str], PreparedEvent] = {}
        for e in events:
            fresh.setdefault((e.user_id, e.idempotency_key), e)
        ev = FeedbackEvent.__table__
        new_users = {e.user_id for e in fresh.values()} - self._known_users
        if new_users:
            conn.execute(self._user_insert, [{"user_id": u, "created_at": now} for u in new_users])
        rows = conn.execute(self._event_insert, [
            {"user_id": e.user_id, "kind": e.kind, "item_id": e.item_id, "idempotency_key": e.idempotency_key,
             "payload": e.payload, "event_time": e.event_time, "received_at": now} for e in fresh.values()])
        new_ids = {(r.user_id, r.idempotency_key): r.id for r in rows}
        existing: dict[tuple[str, str], int] = {}
        retried = [k for k in fresh if k not in new_ids]
        for start in range(0, len(retried), 400):
            chunk = retried[start:start + 400]
            rows = conn.execute(sa.select(ev.c.id, ev.c.user_id, ev.c.idempotency_key)
                                .where(sa.tuple_(ev.c.user_id, ev.c.idempotency_key).in_(chunk)))
            existing.update({(r.user_id, r.idempotency_key): r.id for r in rows})
        self.events_written += len(new_ids)
        out = []
        claimed: set[tuple[str, str]] = set()
        for e in events:
            k = (e.user_id, e.idempotency_key)
            if k in new_ids and k not in claimed:
                claimed.add(k)
                out.append(StoredEvent(new_ids[k], e.idempotency_key, False))
            else:
                out.append(StoredEvent(new_ids.get(k) or existing[k], e.idempotency_key, True))
        return out, new_users
