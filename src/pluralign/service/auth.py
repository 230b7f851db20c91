"""API keys with scopes: one admin key (from the environment) and end-user tokens bound to one user id.

An end-user token can read and edit only its own user's summary, submit only that user's feedback, score and chat
only as that user, and erase only that user. Tokens are random, shown once, and stored as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from pluralign.service.errors import ApiError
from pluralign.service.tables import UserToken

TOKEN_PREFIX = "plu_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or the end user ``user_id``."""

    is_admin: bool
    user_id: str | None = None

    def require_user(self, user_id: str) -> None:
        """Raise 403 unless this caller may act for ``user_id``."""
        if not self.is_admin and self.user_id != user_id:
            raise ApiError(403, "forbidden", f"this token is bound to another user and cannot act for {user_id!r}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ApiError(403, "forbidden", "this endpoint needs the admin key")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Authenticator:
    """Checks bearer credentials. Token lookups are cached in memory; erasing a user drops their tokens."""

    def __init__(self, admin_key: str, sessions: sessionmaker[Session]):
        if not admin_key or len(admin_key) < 16:
            raise ValueError("the admin key must be at least 16 characters (set PLURALIGN_ADMIN_KEY)")
        self._admin = admin_key.encode("utf-8")
        self._sessions = sessions
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <key or token>' header",
                           headers={"WWW-Authenticate": "Bearer"})
        scheme, _, cred = authorization.partition(" ")
        cred = cred.strip()
        if scheme.lower() != "bearer" or not cred:
            raise ApiError(401, "unauthorized", "expected 'Authorization: Bearer <key or token>'",
                           headers={"WWW-Authenticate": "Bearer"})
        if hmac.compare_digest(cred.encode("utf-8"), self._admin):
            return Principal(is_admin=True)
        user_id = self._lookup(hash_token(cred)) if cred.startswith(TOKEN_PREFIX) else None
        if user_id is None:
            raise ApiError(401, "unauthorized", "unknown or revoked key", headers={"WWW-Authenticate": "Bearer"})
        return Principal(is_admin=False, user_id=user_id)

    def authenticate_cached(self, authorization: str | None) -> Principal | None:
        """The caller if known without touching the database (admin key or a cached token), else None."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        cred = authorization[7:].strip()
        if cred and hmac.compare_digest(cred.encode("utf-8"), self._admin):
            return Principal(is_admin=True)
        with self._lock:
            user_id = self._cache.get(hash_token(cred))
        return Principal(is_admin=False, user_id=user_id) if user_id is not None else None

    def _lookup(self, digest: str) -> str | None:
        with self._lock:
            if digest in self._cache:
                return self._cache[digest]
        with self._sessions() as s:
            user_id = s.scalar(sa.select(UserToken.user_id).where(UserToken.token_hash == digest))
        if user_id is not None:
            with self._lock:
                self._cache[digest] = user_id
        return user_id

    @staticmethod
    def issue(session: Session, user_id: str) -> str:
        """Create a token for ``user_id`` inside the caller's transaction; return it (only its hash is stored)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        session.add(UserToken(token_hash=hash_token(token), user_id=user_id, created_at=time.time()))
        return token

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            for digest in [d for d, u in self._cache.items() if u == user_id]:
                del self._cache[digest]
