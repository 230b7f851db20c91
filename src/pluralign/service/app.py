"""The FastAPI app: ``create_app(config)`` wires storage, the writer, auth, models, the proxy and the schedule.

Startup runs the Alembic migrations, starts the single writer thread, loads the scoring models once and opens
the upstream client; shutdown drains the writer (everything acknowledged is committed already; queued work is
finished) and closes the rest. The API is documented at ``/docs`` (OpenAPI at ``/openapi.json``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from pluralign import __version__
from pluralign.service import feedback_api, proxy_api, score_api, users_api
from pluralign.service.auth import Authenticator
from pluralign.service.config import ServiceConfig
from pluralign.service.db import WalCheckpointer, make_engine, migrate, session_factory
from pluralign.service.deps import ServiceState
from pluralign.service.errors import BodySizeLimit, CatchAll, install_error_handlers
from pluralign.service.ingest import WriteQueue
from pluralign.service.limits import AuthFailureThrottle, ConcurrencyLimiter, RateLimiter
from pluralign.service.scoring import MicroBatcher, Scorer, load_scorer
from pluralign.service.summaries import load_summarizer

log = logging.getLogger(__name__)


def create_app(config: ServiceConfig | None = None, *, admin_key: str | None = None,
               scorer: Scorer | None = None) -> FastAPI:
    """Build the app. The admin key comes from ``$PLURALIGN_ADMIN_KEY`` (``config.admin_key_env``) unless given.

    Bad settings (no admin key, unknown DB URL, unloadable summarizer) raise ``ValueError`` here, before serving.
    """
    config = config or ServiceConfig()
    key = admin_key if admin_key is not None else os.environ.get(config.admin_key_env, "")
    if not key:
        raise ValueError(f"no admin key: set the environment variable {config.admin_key_env}")
    engine = make_engine(config.db, sqlite_synchronous=config.sqlite_synchronous,
                         sqlite_background_checkpoint=config.sqlite_checkpoint_s > 0)
    sessions = session_factory(engine)
    auth = Authenticator(key, sessions, admin_key_env=config.admin_key_env)
    summarizer = load_summarizer(config.summarizer)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        revision = await run_in_threadpool(migrate, engine)
        writer = WriteQueue(engine, max_batch=config.write_batch_max)
        writer.start()
        checkpointer = None
        if engine.dialect.name == "sqlite" and config.sqlite_checkpoint_s > 0:
            checkpointer = WalCheckpointer(engine, config.sqlite_checkpoint_s)
            checkpointer.start()
        models = scorer if scorer is not None else await run_in_threadpool(
            lambda: load_scorer(config.rm, config.love, torch_threads=config.torch_threads))
        batcher = MicroBatcher(models, enabled=config.score_batching, max_batch=config.score_max_batch,
                               max_wait_ms=config.score_max_wait_ms, torch_threads=config.torch_threads,
                               user_share=config.score_user_share)
        await batcher.start()
        upstream = None
        if config.upstream_url:
            upstream_key = os.environ.get(config.upstream_key_env)
            upstream = httpx.AsyncClient(
                base_url=config.upstream_url.rstrip("/") + "/", timeout=config.upstream_timeout_s,
                headers={"Authorization": f"Bearer {upstream_key}"} if upstream_key else None)
        svc = ServiceState(config=config, engine=engine, sessions=sessions, writer=writer, auth=auth, scorer=models,
                           batcher=batcher, summarizer=summarizer, revision=revision, upstream=upstream,
                           summarizer_name=getattr(summarizer, "name", None) or type(summarizer).__name__,
                           score_rate=RateLimiter(config.score_rate_per_s, config.score_burst),
                           score_slots=ConcurrencyLimiter(config.score_user_concurrency),
                           auth_throttle=AuthFailureThrottle(config.auth_fail_per_s, config.auth_fail_burst))
        app.state.svc = svc
        app.state.checkpointer = checkpointer
        if config.refresh_interval_s > 0:
            svc.background.append(asyncio.create_task(users_api.refresh_loop(svc)))
        log.info("pluralign service ready: db=%s schema=%s models=%s", engine.url.render_as_string(
            hide_password=True), revision, models.versions or "none")
        try:
            yield
        finally:
            for task in svc.background:
                task.cancel()
            await run_in_threadpool(writer.close)
            if checkpointer is not None:
                await run_in_threadpool(checkpointer.close)
            await batcher.close()
            if upstream is not None:
                await upstream.aclose()
            engine.dispose()

    app = FastAPI(
        title="pluralign feedback service",
        version=__version__,
        description="Collect users' feedback, let users own their summaries, score responses with personalised "
        "models, and personalise any chat model through an OpenAI-compatible proxy. Every endpoint except "
        "/healthz takes `Authorization: Bearer <admin key or end-user token>`.",
        lifespan=lifespan,
        redirect_slashes=False,  # Starlette's redirect builds its Location from the client's Host header
    )
    install_error_handlers(app)
    app.add_middleware(CatchAll)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    for module in (feedback_api, users_api, score_api, proxy_api):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"], summary="Liveness and database check (no key needed)")
    async def healthz() -> dict:
        svc: ServiceState = app.state.svc

        def ping() -> bool:
            try:
                with engine.connect() as c:
                    c.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.SQLAlchemyError:
                return False

        ok = await run_in_threadpool(ping)
        return {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable",
                "schema_revision": svc.revision, "models": svc.scorer.versions}

    return app
