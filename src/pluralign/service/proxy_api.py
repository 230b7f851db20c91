"""``POST /v1/chat/completions``: personalise a standard Chat Completions request and forward it upstream."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pluralign.service.deps import Caller, State
from pluralign.service.errors import ApiError
from pluralign.service.proxy import ChatRequestIn, message_text, personalise_messages
from pluralign.service.schemas import USER_ID_PATTERN
from pluralign.service.score_api import user_summary
from pluralign.service.storable import check_storable, first_problem

router = APIRouter(tags=["proxy"])


def _choice_texts(data: Any) -> tuple[list[dict], list[str]]:
    """The choices of an upstream Chat Completions answer and their texts; 502 if it is not one."""
    if not isinstance(data, dict):
        raise ApiError(502, "upstream_error", f"the upstream answered a JSON {type(data).__name__}, not a chat "
                       "completion object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise ApiError(502, "upstream_error", "the upstream answer has no list of choice objects")
    texts = []
    for c in choices:
        msg = c.get("message")
        content = msg.get("content") if isinstance(msg, dict) else None
        texts.append(content if isinstance(content, str) else "")
    return choices, texts


def _upstream_json(resp: httpx.Response, *, check_choices: bool = True) -> Any:
    """The upstream's JSON answer; 502 if it is not JSON or holds text that cannot be passed on. With
    ``check_choices=False`` (best-of-N) the choices are left to the caller, which drops the bad ones one by one."""
    try:
        data = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        raise ApiError(502, "upstream_error", f"the upstream answered {resp.status_code} with a non-JSON body"
                       ) from None
    checked = data if check_choices or not isinstance(data, dict) else {k: v for k, v in data.items()
                                                                         if k != "choices"}
    found = first_problem(checked, "upstream")
    if found is not None:
        raise ApiError(502, "upstream_error", f"the upstream's answer cannot be passed on: {found[0]}: {found[1]}")
    return data


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat, personalised with the user's summary")
async def chat_completions(body: ChatRequestIn, request: Request, svc: State, who: Caller) -> Response:
    """Any OpenAI client works: pass the user id as ``user`` (implied by an end-user token). The answer is the
    upstream's, unchanged in shape; with ``best_of`` N > 1 the upstream is asked for N answers and the one with the
    highest personalised reward is returned as choice 0.

    The request's leading system messages go after the service's rules: labelled operator instructions with the
    admin key, the user's own instructions with an end-user token (see :mod:`pluralign.service.proxy`)."""
    header_user = request.headers.get("x-pluralign-user")
    if header_user is not None and not re.fullmatch(USER_ID_PATTERN, header_user):
        raise ApiError(422, "invalid_request", "header X-Pluralign-User: not a valid user id", field="header."
                       "x-pluralign-user")
    user_id = body.user or header_user or who.user_id
    if user_id is None:
        raise ApiError(422, "invalid_request", "body.user: required with the admin key (the user to personalise "
                       "for)", field="body.user")
    who.require_user(user_id)
    payload = body.model_dump(exclude_none=True, exclude={"best_of"})
    check_storable(payload, "body")  # NaN/Infinity/1e999 or a lone surrogate cannot be forwarded as JSON
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
    payload["messages"] = personalise_messages(payload["messages"], summary, svc.config.summary_prompt_chars,
                                               from_operator=who.is_admin)
    if best_of > 1:
        payload["n"] = best_of
    try:
        resp = await svc.upstream.post("chat/completions", json=payload)
    except httpx.HTTPError as e:
        raise ApiError(502, "upstream_unavailable", f"the upstream chat server did not answer ({type(e).__name__})"
                       ) from e
    headers = {"X-Pluralign-Summary-Version": str(version or 0)}
    picking = best_of > 1 and resp.status_code < 400
    data = _upstream_json(resp, check_choices=not picking)
    if not picking:  # passed on as the upstream sent it
        return Response(resp.content, status_code=resp.status_code, headers=headers, media_type="application/json")
    choices, texts = _choice_texts(data)
    # a candidate that cannot be passed on (NUL, lone surrogate) is left out of the pick rather than failing the
    # request; only when every candidate is unusable is the answer a 502
    problems = [first_problem(c, f"upstream.choices.{i}") for i, c in enumerate(choices)]
    keep = [i for i, p in enumerate(problems) if p is None]
    if not keep:
        path, why = next(p for p in problems if p is not None)
        raise ApiError(502, "upstream_error", f"the upstream's answer cannot be passed on: {path}: {why}")
    if len(keep) < len(choices):
        headers["X-Pluralign-Best-Of-Dropped"] = str(len(choices) - len(keep))
    choices, texts = [choices[i] for i in keep], [texts[i] for i in keep]
    prompt = next((message_text(m.get("content")) for m in reversed(payload["messages"]) if m.get("role") == "user"),
                  "")
    rewards, _ = await svc.batcher.score([prompt] * len(texts), texts, [summary] * len(texts), key=user_id)
    best = max(range(len(texts)), key=lambda i: rewards[i])
    data["choices"] = [{**choices[best], "index": 0}]
    headers["X-Pluralign-Best-Of"] = str(len(texts))
    headers["X-Pluralign-Rewards"] = ",".join(f"{r:.4f}" for r in rewards)
    headers["X-Pluralign-Reward-Model"] = svc.scorer.versions.get("reward_model", "")
    return JSONResponse(data, status_code=resp.status_code, headers=headers)
