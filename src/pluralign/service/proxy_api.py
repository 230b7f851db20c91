"""``POST /v1/chat/completions``: personalise a standard Chat Completions request and forward it upstream."""

from __future__ import annotations

import json

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pluralign.service.deps import Caller, State
from pluralign.service.errors import ApiError
from pluralign.service.proxy import ChatRequestIn, personalise_messages
from pluralign.service.score_api import user_summary

router = APIRouter(tags=["proxy"])


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat, personalised with the user's summary")
async def chat_completions(body: ChatRequestIn, request: Request, svc: State, who: Caller) -> JSONResponse:
    """Any OpenAI client works: pass the user id as ``user`` (implied by an end-user token). The answer is the
    upstream's, unchanged in shape; with ``best_of`` N > 1 the upstream is asked for N answers and the one with the
    highest personalised reward is returned as choice 0."""
    user_id = body.user or request.headers.get("x-pluralign-user") or who.user_id
    if user_id is None:
        raise ApiError(422, "invalid_request", "body.user: required with the admin key (the user to personalise "
                       "for)", field="body.user")
    who.require_user(user_id)
    if svc.upstream is None:
        raise ApiError(503, "no_upstream", "no upstream chat server is configured (--upstream-url)")
    if body.stream:
        raise ApiError(400, "unsupported", "body.stream: streaming is not supported by the proxy yet",
                       field="body.stream")
    best_of = body.best_of if body.best_of is not None else svc.config.best_of
    if best_of > 1:
        if body.n not in (None, 1):
            raise ApiError(422, "invalid_request", "body.n: use either n or best_of, not both", field="body.n")
        if svc.scorer.rm is None:
            raise ApiError(503, "no_model", "best_of needs a reward model: start the server with --rm PATH")

    summary, version = await user_summary(svc, user_id)
    payload = body.model_dump(exclude_none=True, exclude={"best_of"})
    payload["messages"] = personalise_messages(payload["messages"], summary, svc.config.summary_prompt_chars)
    if best_of > 1:
        payload["n"] = best_of
    try:
        resp = await svc.upstream.post("chat/completions", json=payload)
    except httpx.HTTPError as e:
        raise ApiError(502, "upstream_unavailable", f"the upstream chat server did not answer ({type(e).__name__})"
                       ) from e
    headers = {"X-Pluralign-Summary-Version": str(version or 0)}
    try:
        data = resp.json()
    except json.JSONDecodeError:
        raise ApiError(502, "upstream_error", f"the upstream answered {resp.status_code} with a non-JSON body"
                       ) from None
    if resp.status_code >= 400:
        return JSONResponse(data, status_code=resp.status_code, headers=headers)
    if best_of > 1:
        choices = data.get("choices") or []
        texts = [str((c.get("message") or {}).get("content") or "") for c in choices]
        if not texts:
            raise ApiError(502, "upstream_error", "the upstream returned no choices")
        prompt = next((str(m.get("content") or "") for m in reversed(payload["messages"]) if m.get("role") == "user"),
                      "")
        rewards, _ = await svc.batcher.score([prompt] * len(texts), texts, [summary] * len(texts))
        best = max(range(len(texts)), key=lambda i: rewards[i])
        data["choices"] = [{**choices[best], "index": 0}]
        headers["X-Pluralign-Best-Of"] = str(len(texts))
        headers["X-Pluralign-Rewards"] = ",".join(f"{r:.4f}" for r in rewards)
        headers["X-Pluralign-Reward-Model"] = svc.scorer.versions.get("reward_model", "")
    return JSONResponse(data, status_code=resp.status_code, headers=headers)
