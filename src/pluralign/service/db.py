"""Engines and migrations: SQLite in WAL mode by default, PostgreSQL by URL, Alembic ``upgrade head`` at startup."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)
# With background checkpoints on, SQLite's own checkpoint (run inside whichever commit crosses the threshold) is only
# a backstop should the checkpointer fall behind: 10,000 pages is about 40 MB of WAL.
BACKSTOP_AUTOCHECKPOINT_PAGES = 10_000


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", sqlite_background_checkpoint: bool = False) -> Engine:
    """An engine for ``url``. SQLite files get WAL (readers never block the writer) and a busy timeout.

    ``sqlite_synchronous`` is FULL by default: a commit is on disk before the event is acknowledged. NORMAL is
    still safe against a killed process (only a power cut can lose the last commits) and faster.
    ``sqlite_background_checkpoint`` raises SQLite's automatic checkpoint threshold so that a
    :class:`WalCheckpointer` does that work instead of the commit that crosses it.
    """
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("--db: an in-memory SQLite database is not shared between connections; use a file URL")
        path = sa.engine.make_url(url).database
        if path:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        mode = sqlite_synchronous.upper()
        if mode not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"sqlite_synchronous: expected OFF, NORMAL, FULL or EXTRA, got {sqlite_synchronous!r}")

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={mode}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten, not just unlinked
            if sqlite_background_checkpoint:
                cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_AUTOCHECKPOINT_PAGES}")
            cur.close()

        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise ValueError(f"--db: unsupported database URL {url!r} (expected sqlite:///PATH or postgresql+psycopg://...)")


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest migration (``alembic upgrade head``); return the revision now current."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() or ""


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class WalCheckpointer:
    """Copies SQLite's WAL into the database file every ``interval_s`` on its own thread and connection.

    By default SQLite checkpoints inside the commit that makes the WAL exceed 1,000 pages, and with
    ``synchronous=FULL`` that commit then also waits for the database file's fsync: a latency spike for every
    request sharing it. A PASSIVE checkpoint never blocks the writer, so here it costs the requests nothing.
    """

    def __init__(self, engine: Engine, interval_s: float):
        self.engine = engine
        self.interval_s = interval_s
        self.last: tuple[int, int, int] | None = None  # (busy, WAL frames, frames checkpointed) of the last run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pluralign-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with self.engine.connect() as conn:
                    self.last = tuple(conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one())
            except sa.exc.SQLAlchemyError:  # the writer's backstop checkpoint still bounds the WAL
                log.warning("background WAL checkpoint failed", exc_info=True)
