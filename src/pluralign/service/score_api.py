"""``POST /v1/score``: personalised reward and P[Love] of candidate responses for one user."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from pluralign.service import summaries
from pluralign.service.deps import Caller, ServiceState, State
from pluralign.service.errors import ApiError
from pluralign.service.schemas import ScoreIn, ScoreOut

router = APIRouter(tags=["scoring"])


async def user_summary(svc: ServiceState, user_id: str) -> tuple[str | None, int | None]:
    def read():
        with svc.sessions() as s:
            row = summaries.current(s, user_id)
            return (row.text, row.version) if row else (None, None)

    return await run_in_threadpool(read)


@router.post("/v1/score", response_model=ScoreOut, summary="Score candidate responses for a user")
async def score(body: ScoreIn, svc: State, who: Caller) -> ScoreOut:
    """Uses the user's current summary (or ``summary`` if given); returns the versions of the models used."""
    who.require_user(body.user_id)
    if not svc.scorer.ready:
        raise ApiError(503, "no_model", "no scoring model is configured: start the server with --rm PATH and/or "
                       "--love PATH")
    text, version = (body.summary, None) if body.summary is not None else await user_summary(svc, body.user_id)
    n = len(body.responses)
    rewards, p_love = await svc.batcher.score([body.prompt] * n, list(body.responses), [text] * n)
    return ScoreOut(user_id=body.user_id, summary_version=version, rewards=rewards, p_love=p_love,
                    models=dict(svc.scorer.versions))
