"""Shared request dependencies: the service state, the caller (from the bearer header), path parameters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

import httpx
from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from pluralign.service.auth import Authenticator, Principal
from pluralign.service.config import ServiceConfig
from pluralign.service.errors import ApiError
from pluralign.service.ingest import WriteQueue
from pluralign.service.limits import AuthFailureThrottle, ConcurrencyLimiter, RateLimiter
from pluralign.service.schemas import USER_ID_PATTERN
from pluralign.service.scoring import MicroBatcher, Scorer
from pluralign.service.summaries import Summarizer


@dataclass
class ServiceState:
    config: ServiceConfig
    engine: Engine
    sessions: sessionmaker[Session]
    writer: WriteQueue
    auth: Authenticator
    scorer: Scorer
    batcher: MicroBatcher
    summarizer: Summarizer
    summarizer_name: str
    revision: str
    score_rate: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    score_slots: ConcurrencyLimiter = field(default_factory=lambda: ConcurrencyLimiter(0))
    auth_throttle: AuthFailureThrottle = field(default_factory=lambda: AuthFailureThrottle(0, 1))
    upstream: httpx.AsyncClient | None = None
    background: list[asyncio.Task] = field(default_factory=list)


async def state(request: Request) -> ServiceState:
    # async: FastAPI runs plain-def dependencies in a thread pool, a needless hop on every request
    return request.app.state.svc


_bearer = HTTPBearer(auto_error=False, description="the admin key (PLURALIGN_ADMIN_KEY) or an end-user token")


async def caller(request: Request, _doc=Depends(_bearer)) -> Principal:  # noqa: B008 - FastAPI's idiom
    """Authenticate ``Authorization: Bearer ...``; 401 with a JSON error when missing or unknown.

    An address that keeps presenting wrong credentials is throttled (429) before its next credential is checked,
    whatever it is, so guessing the admin key or a token stops paying (``auth_fail_per_s``)."""
    svc: ServiceState = request.app.state.svc
    client = request.client.host if request.client else "unknown"
    svc.auth_throttle.check(client)
    header = request.headers.get("authorization")
    known = svc.auth.authenticate_cached(header)
    if known is not None:
        return known
    try:
        return await run_in_threadpool(svc.auth.authenticate, header)
    except ApiError as e:
        if e.status == 401 and header:  # a credential was presented and was wrong
            svc.auth_throttle.failed(client)
        raise


State = Annotated[ServiceState, Depends(state)]
Caller = Annotated[Principal, Depends(caller)]
UserId = Annotated[str, Path(min_length=1, max_length=200, pattern=USER_ID_PATTERN,
                             description="the user's id (letters, digits and ._:@+-; not only dots)")]
