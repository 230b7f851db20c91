"""SQLAlchemy tables of the feedback service.

One row per feedback event (conversation, reaction or pairwise choice) with its validated JSON payload, so the
export can rebuild :class:`pluralign.data.schema.UserRecord` objects without a column per schema field. Summaries
are versioned rows (the newest version is the current one; older ones are the history a user can inspect).
End-user tokens are stored only as SHA-256 hashes, with a public ``token_id`` to list and revoke them by. An erased
user leaves one row in ``user_erasures``: the SHA-256 of their id and when, so that a write authenticated before the
erasure is refused inside its own transaction (no id in clear text stays behind).

On SQLite the id columns are ``AUTOINCREMENT``: an erased event's id is never handed to a new event.

The migrations in ``service/migrations`` create exactly these tables; change both together.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    created_at: Mapped[float] = mapped_column(sa.Float, nullable=False)


class FeedbackEvent(Base):
    """A stored event. ``(user_id, idempotency_key)`` is unique: a retried event is stored once."""

    __tablename__ = "feedback_events"
    __table_args__ = (sa.UniqueConstraint("user_id", "idempotency_key", name="uq_feedback_events_user_key"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.String(200), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # conversation | reaction | pair
    item_id: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    payload: Mapped[dict] = mapped_column(sa.JSON, nullable=False)
    event_time: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    received_at: Mapped[float] = mapped_column(sa.Float, nullable=False)


class Summary(Base):
    """One version of a user's summary; ``source`` says who wrote it (user, admin or a summarizer refresh)."""

    __tablename__ = "summaries"
    __table_args__ = (sa.UniqueConstraint("user_id", "version", name="uq_summaries_user_version"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.String(200), nullable=False, index=True)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    summarizer: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    last_event_id: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    created_at: Mapped[float] = mapped_column(sa.Float, nullable=False)


class UserToken(Base):
    """An end-user bearer token, bound to one user id. Only the SHA-256 of the token is kept."""

    __tablename__ = "user_tokens"
    __table_args__ = (sa.UniqueConstraint("token_id", name="uq_user_tokens_token_id"),)

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(200), nullable=False, index=True)
    created_at: Mapped[float] = mapped_column(sa.Float, nullable=False)
    token_id: Mapped[str] = mapped_column(sa.String(40), nullable=False)  # public: list, revoke
    scope: Mapped[str] = mapped_column(sa.String(20), nullable=False, server_default="full")  # full | no_erase
    expires_at: Mapped[float | None] = mapped_column(sa.Float, nullable=True)


class UserErasure(Base):
    """When a user was last erased, keyed by the SHA-256 of their id (see the module docstring)."""

    __tablename__ = "user_erasures"

    user_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    erased_at: Mapped[float] = mapped_column(sa.Float, nullable=False)
