"""``POST /v1/score``: personalised reward and P[Love] of candidate responses for one user."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from pluralign.service import summaries
from pluralign.service.deps import Caller, ServiceState, State
from pluralign.service.errors import ApiError
from pluralign.service.limits import too_many
from pluralign.service.schemas import ScoreIn, ScoreOut
from pluralign.service.storable import check_storable

router = APIRouter(tags=["scoring"])


async def user_summary(svc: ServiceState, user_id: str) -> tuple[str | None, int | None]:
    def read():
        with svc.sessions() as s:
            row = summaries.current(s, user_id)
            return (row.text, row.version) if row else (None, None)

    return await run_in_threadpool(read)


@router.post("/v1/score", response_model=ScoreOut, summary="Score candidate responses for a user")
async def score(body: ScoreIn, svc: State, who: Caller) -> ScoreOut:
    """Uses the user's current summary (or ``summary`` if given); returns the versions of the models used.

    Per user: at most ``score_user_concurrency`` requests in flight and ``score_rate_per_s`` candidates a second
    (429 with Retry-After beyond), and the model is shared fairly between users (see ``score_user_share``)."""
    who.require_user(body.user_id)
    # a tokenizer fails on lone surrogates: refuse them here, not inside a batch shared with other requests
    check_storable({"prompt": body.prompt, "responses": body.responses, "summary": body.summary}, "body")
    if not svc.scorer.ready:
        raise ApiError(503, "no_model", "no scoring model is configured: start the server with --rm PATH and/or "
                       "--love PATH")
    n = len(body.responses)
    wait = svc.score_rate.try_take(body.user_id, n)
    if wait:
        raise too_many(f"/v1/score for user {body.user_id!r} ({svc.config.score_rate_per_s:g} candidates/s)", wait)
    with svc.score_slots.hold(body.user_id, "/v1/score"):
        text, version = ((body.summary, None) if body.summary is not None
                         else await user_summary(svc, body.user_id))
        rewards, p_love = await svc.batcher.score([body.prompt] * n, list(body.responses), [text] * n,
                                                  key=body.user_id)
    return ScoreOut(user_id=body.user_id, summary_version=version, rewards=rewards, p_love=p_love,
                    models=dict(svc.scorer.versions))
