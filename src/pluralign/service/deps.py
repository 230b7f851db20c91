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
from pluralign.service.ingest import WriteQueue
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
    upstream: httpx.AsyncClient | None = None
    background: list[asyncio.Task] = field(default_factory=list)


async def state(request: Request) -> ServiceState:
    # async: FastAPI runs plain-def dependencies in a thread pool, a needless hop on every request
    return request.app.state.svc


_bearer = HTTPBearer(auto_error=False, description="the admin key (PLURALIGN_ADMIN_KEY) or an end-user token")


async def caller(request: Request, _doc=Depends(_bearer)) -> Principal:  # noqa: B008 - FastAPI's idiom
    """Authenticate ``Authorization: Bearer ...``; 401 with a JSON error when missing or unknown."""
    auth: Authenticator = request.app.state.svc.auth
    header = request.headers.get("authorization")
    known = auth.authenticate_cached(header)
    return known if known is not None else await run_in_threadpool(auth.authenticate, header)


State = Annotated[ServiceState, Depends(state)]
Caller = Annotated[Principal, Depends(caller)]
UserId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@+-]+$",
                             description="the user's id")]
