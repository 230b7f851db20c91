"""API keys with scopes: one admin key (from the environment) and end-user tokens bound to one user id.

An end-user token can read and edit only its own user's summary, submit only that user's feedback, score and chat
only as that user, and (scope ``full``, the default) erase only that user; scope ``no_erase`` cannot erase. Tokens
are random, shown once, stored as SHA-256 hashes, listed and revoked by their public ``token_id``, and may expire.
A revoked or expired token gets 401 from the next request on; a request authenticated just before the revocation
cannot write after it either (every write re-checks its token inside its transaction: :mod:`erasure`).

The admin key must look random: at least 16 characters and an estimated 64 bits (see :func:`check_admin_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from pluralign.service.errors import ApiError
from pluralign.service.tables import UserToken

TOKEN_PREFIX = "plu_"
SCOPES = ("full", "no_erase")
MIN_KEY_BITS = 64.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or the end user ``user_id`` (with the token's id, hash and scope), and when the
    credential was checked (``authenticated_at``, seconds since the epoch: writes after an erasure of the user that
    happened later than this are refused)."""

    is_admin: bool
    user_id: str | None = None
    token_id: str | None = None
    token_hash: str | None = None
    scope: str = "full"
    authenticated_at: float = 0.0

    def require_user(self, user_id: str) -> None:
        """Raise 403 unless this caller may act for ``user_id``."""
        if not self.is_admin and self.user_id != user_id:
            raise ApiError(403, "forbidden", f"this token is bound to another user and cannot act for {user_id!r}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ApiError(403, "forbidden", "this endpoint needs the admin key")

    def require_erase(self, user_id: str) -> None:
        self.require_user(user_id)
        if not self.is_admin and self.scope != "full":
            raise ApiError(403, "forbidden", f"this token's scope ({self.scope}) cannot erase the user; use a "
                           "'full' token or the admin key")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_bits(key: str) -> float:
    """A conservative estimate of a key's entropy in bits: length × the Shannon entropy of its characters, capped
    by what a repeating or stepping pattern of it would need."""
    if not key:
        return 0.0
    counts = Counter(key)
    per_char = -sum(c / len(key) * math.log2(c / len(key)) for c in counts.values())
    bits = per_char * len(key)
    for period in range(1, len(key) // 2 + 1):  # "abcabcabc...": only one period is chosen
        if all(key[i] == key[i % period] for i in range(len(key))):
            bits = min(bits, period * math.log2(max(len(counts), 2)))
            break
    steps = Counter(ord(b) - ord(a) for a, b in zip(key, key[1:], strict=False))
    breaks = len(key) - 1 - steps.most_common(1)[0][1]
    if breaks <= (len(key) - 1) // 4:  # "0123456789abcdef", "zyxw...": a start, a step and a few jumps
        bits = min(bits, 16.0 + 8.0 * breaks)
    return bits


def check_admin_key(key: str, env: str = "PLURALIGN_ADMIN_KEY") -> None:
    """Raise ``ValueError`` (a start-up error) unless ``key`` is long and random enough to be an admin key."""
    if not key or len(key) < 16:
        raise ValueError(f"the admin key must be at least 16 characters (set {env}; e.g. python -c "
                         "'import secrets; print(secrets.token_urlsafe(32))')")
    bits = key_bits(key)
    if bits < MIN_KEY_BITS:
        raise ValueError(f"the admin key in {env} looks guessable (about {bits:.0f} bits of entropy; at least "
                         f"{MIN_KEY_BITS:.0f} needed: no repeated or sequential patterns). Generate one with python -c "
                         "'import secrets; print(secrets.token_urlsafe(32))'")


@dataclass(frozen=True)
class _TokenInfo:
    user_id: str
    token_id: str
    scope: str
    expires_at: float | None


class Authenticator:
    """Checks bearer credentials. Token lookups are cached in memory; revocation and erasure drop cache entries
    (a lookup that raced a revocation is not cached: see ``_generation``)."""

    def __init__(self, admin_key: str, sessions: sessionmaker[Session], *, admin_key_env: str = "PLURALIGN_ADMIN_KEY"):
        check_admin_key(admin_key, admin_key_env)
        self._admin = admin_key.encode("utf-8")
        self._sessions = sessions
        self._cache: dict[str, _TokenInfo] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every invalidation

    def _principal(self, digest: str, info: _TokenInfo, now: float) -> Principal:
        if info.expires_at is not None and now >= info.expires_at:
            raise ApiError(401, "unauthorized", "this token has expired", headers={"WWW-Authenticate": "Bearer"})
        return Principal(is_admin=False, user_id=info.user_id, token_id=info.token_id, token_hash=digest,
                         scope=info.scope, authenticated_at=now)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <key or token>' header",
                           headers={"WWW-Authenticate": "Bearer"})
        scheme, _, cred = authorization.partition(" ")
        cred = cred.strip()
        if scheme.lower() != "bearer" or not cred:
            raise ApiError(401, "unauthorized", "expected 'Authorization: Bearer <key or token>'",
                           headers={"WWW-Authenticate": "Bearer"})
        now = time.time()
        if hmac.compare_digest(cred.encode("utf-8", "surrogatepass"), self._admin):
            return Principal(is_admin=True, authenticated_at=now)
        digest = hash_token(cred)
        info = self._lookup(digest) if cred.startswith(TOKEN_PREFIX) else None
        if info is None:
            raise ApiError(401, "unauthorized", "unknown or revoked key", headers={"WWW-Authenticate": "Bearer"})
        return self._principal(digest, info, now)

    def authenticate_cached(self, authorization: str | None) -> Principal | None:
        """The caller if known without touching the database (admin key or a cached token), else None."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        cred = authorization[7:].strip()
        now = time.time()
        if cred and hmac.compare_digest(cred.encode("utf-8", "surrogatepass"), self._admin):
            return Principal(is_admin=True, authenticated_at=now)
        digest = hash_token(cred)
        with self._lock:
            info = self._cache.get(digest)
        return self._principal(digest, info, now) if info is not None else None

    def _lookup(self, digest: str) -> _TokenInfo | None:
        with self._lock:
            if digest in self._cache:
                return self._cache[digest]
            generation = self._generation
        with self._sessions() as s:
            row = s.execute(sa.select(UserToken.user_id, UserToken.token_id, UserToken.scope, UserToken.expires_at)
                            .where(UserToken.token_hash == digest)).first()
        if row is None:
            return None
        info = _TokenInfo(row.user_id, row.token_id, row.scope, row.expires_at)
        with self._lock:
            if self._generation == generation:  # no revocation ran meanwhile: safe to remember
                self._cache[digest] = info
        return info

    @staticmethod
    def issue(session: Session, user_id: str, *, scope: str = "full", expires_at: float | None = None
              ) -> tuple[str, str]:
        """Create a token for ``user_id`` inside the caller's transaction; return ``(token, token_id)`` (only the
        token's hash is stored)."""
        if scope not in SCOPES:
            raise ValueError(f"scope: expected one of {SCOPES}, got {scope!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(8)
        session.add(UserToken(token_hash=hash_token(token), user_id=user_id, created_at=time.time(),
                              token_id=token_id, scope=scope, expires_at=expires_at))
        return token, token_id

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._generation += 1
            for digest in [d for d, info in self._cache.items() if info.user_id == user_id]:
                del self._cache[digest]

    def forget_token(self, token_id: str) -> None:
        with self._lock:
            self._generation += 1
            for digest in [d for d, info in self._cache.items() if info.token_id == token_id]:
                del self._cache[digest]
