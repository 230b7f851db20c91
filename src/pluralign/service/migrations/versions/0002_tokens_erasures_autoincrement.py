"""Token ids, scopes and expiry; erasure tombstones; ids never reused on SQLite.

- ``user_tokens``: ``token_id`` (public, to list and revoke a token; existing tokens get ``tok_`` + the first 16 hex
  digits of their hash), ``scope`` (``full``, or ``no_erase``: a token that cannot erase its user) and
  ``expires_at`` (NULL: no expiry).
- ``user_erasures``: the SHA-256 of an erased user's id and when, checked inside every write transaction.
- SQLite: ``feedback_events`` and ``summaries`` are rebuilt with ``AUTOINCREMENT`` (ids of deleted rows are never
  handed out again; PostgreSQL sequences never did). Ids deleted before this migration cannot be known.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_tokens") as b:
        b.add_column(sa.Column("token_id", sa.String(40), nullable=True))
        b.add_column(sa.Column("scope", sa.String(20), nullable=False, server_default="full"))
        b.add_column(sa.Column("expires_at", sa.Float, nullable=True))
    op.execute("UPDATE user_tokens SET token_id = 'tok_' || substr(token_hash, 1, 16) WHERE token_id IS NULL")
    with op.batch_alter_table("user_tokens") as b:
        b.alter_column("token_id", existing_type=sa.String(40), nullable=False)
        b.create_unique_constraint("uq_user_tokens_token_id", ["token_id"])
    op.create_table(
        "user_erasures",
        sa.Column("user_key", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.Float, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for table in ("feedback_events", "summaries"):
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
                pass


def downgrade() -> None:
    op.drop_table("user_erasures")
    with op.batch_alter_table("user_tokens") as b:
        b.drop_constraint("uq_user_tokens_token_id", type_="unique")
        b.drop_column("expires_at")
        b.drop_column("scope")
        b.drop_column("token_id")
