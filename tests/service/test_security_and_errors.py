"""Scopes, wrong-user access on every endpoint, strict 4xx JSON errors, size limits, no stack traces."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from svc_helpers import ADMIN_KEY, admin, as_user, live_server, token_for

from pluralign.service.app import create_app
from pluralign.service.config import ServiceConfig

PAIR = {"pair_id": "p1", "prompt": "q", "chosen": "a", "rejected": "b"}
# (method, path, json body) for every authenticated endpoint, aimed at user "victim".
ENDPOINTS = [
    ("POST", "/v1/users/victim/feedback", {"events": [{"type": "pair", **PAIR}]}),
    ("POST", "/v1/users/victim/conversations",
     {"conversation_id": "c", "turns": [{"turn_id": "t", "role": "user", "content": "hi"}]}),
    ("POST", "/v1/users/victim/reactions", {"reaction_id": "r", "prompt": "p", "response": "x"}),
    ("POST", "/v1/users/victim/pairs", PAIR),
    ("GET", "/v1/users/victim/summary", None),
    ("PUT", "/v1/users/victim/summary", {"summary": "I am someone else now"}),
    ("GET", "/v1/users/victim/summary/history", None),
    ("POST", "/v1/users/victim/summary:refresh", None),
    ("DELETE", "/v1/users/victim", None),
    ("POST", "/v1/users/victim/tokens", None),
    ("GET", "/v1/users/victim/tokens", None),
    ("DELETE", "/v1/users/victim/tokens/tok_0123456789abcdef", None),
    ("POST", "/v1/score", {"user_id": "victim", "prompt": "p", "responses": ["x"]}),
    ("POST", "/v1/chat/completions", {"user": "victim", "messages": [{"role": "user", "content": "hi"}]}),
]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('sec') / 's.db'}"
    with live_server(create_app(ServiceConfig(db=db, max_body_bytes=20_000), admin_key=ADMIN_KEY)) as url:
        with admin(url) as c:
            c.post("/v1/users/victim/pairs", json=PAIR).raise_for_status()
            c.put("/v1/users/victim/summary", json={"summary": "Likes cats"}).raise_for_status()
        yield url


def test_every_endpoint_is_in_the_table():
    app = create_app(ServiceConfig(db="sqlite:////tmp/unused-pluralign.db"), admin_key=ADMIN_KEY)
    routes = {(m, p) for p, ops in app.openapi()["paths"].items() for m in ops}
    covered = {(m.lower(), p.replace("victim", "{user_id}").replace("tok_0123456789abcdef", "{token_id}"))
               for m, p, _ in ENDPOINTS} | {("get", "/healthz")}
    assert routes == covered
    assert APIRouter  # the table must grow with the routers


@pytest.mark.parametrize("method,path,body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_wrong_user_token_is_refused(base, method, path, body):
    tok = token_for(base, "mallory")
    with as_user(base, tok) as c:
        r = c.request(method, path, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    with admin(base) as c:  # nothing changed for the victim
        assert c.get("/v1/users/victim/summary").json()["summary"] == "Likes cats"


@pytest.mark.parametrize("method,path,body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_no_or_bad_key_is_401(base, method, path, body):
    with httpx.Client(base_url=base) as c:
        assert c.request(method, path, json=body).status_code == 401
        r = c.request(method, path, json=body, headers={"Authorization": "Bearer plu_not-a-real-token"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_own_token_scopes(base):
    tok = token_for(base, "ursula")
    with as_user(base, tok) as c:
        assert c.post("/v1/users/ursula/pairs", json=PAIR).json()["stored"] == 1
        assert c.put("/v1/users/ursula/summary", json={"summary": "mine"}).json()["source"] == "user"
        assert c.get("/v1/users/ursula/summary").json()["summary"] == "mine"
        assert c.post("/v1/users/ursula/tokens").status_code == 403  # issuing tokens is admin-only
        # No scoring model configured: a clear 503, after the scope check passed.
        r = c.post("/v1/score", json={"user_id": "ursula", "prompt": "p", "responses": ["x"]})
        assert r.status_code == 503 and "--rm" in r.json()["error"]["message"]
        assert c.delete("/v1/users/ursula").json()["deleted"]["events"] == 1


def test_validation_errors_name_the_field(base):
    with admin(base) as c:
        r = c.post("/v1/users/victim/feedback", json={"events": [{"type": "pair", **PAIR}, {
            "type": "reaction", "reaction_id": "r", "prompt": "p", "response": "x", "value": "lots"}]})
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["code"] == "invalid_request" and err["field"] == "body.events.1.reaction.value"
        r = c.post("/v1/users/victim/pairs", json={**PAIR, "chosen_typo": "a"})
        assert r.json()["error"]["field"] == "body.chosen_typo" and "unknown field" in r.json()["error"]["message"]
        r = c.post("/v1/users/victim/reactions", json={"reaction_id": "r"})
        assert r.status_code == 422 and "prompt and response" in r.json()["error"]["message"]
        r = c.post("/v1/users/bad%20id/pairs", json=PAIR)
        assert r.status_code == 422 and r.json()["error"]["field"] == "path.user_id"
        r = c.put("/v1/users/victim/summary", json={"summary": "x" * 2001})
        assert r.status_code == 422 and r.json()["error"]["field"] == "body.summary"
        r = c.post("/v1/users/victim/pairs", json={**PAIR, "pair_id": "nul", "prompt": "a\u0000b"})
        assert r.status_code == 422
        r = c.post("/v1/users/victim/pairs", content=b'{"pair_id": "nan", "prompt": "q", "chosen": "a", '
                   b'"rejected": "b", "meta": {"score": NaN}}', headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "body.meta.score"
        assert "finite" in r.json()["error"]["message"]
        r = c.post("/v1/users/victim/pairs", content=b'{\n  "pair_id": "p",\n  oops}',
                   headers={"Content-Type": "application/json"})
        err = r.json()["error"]
        assert r.status_code == 400 and err["code"] == "invalid_json" and "field" not in err
        assert "not valid JSON" in err["message"] and "line 3 column 3" in err["message"]
        assert c.get("/v1/users/victim/summary/history").json()["versions"][0]["summary"] == "Likes cats"


def test_size_limit_and_no_stack_traces(base):
    with admin(base) as c:
        big = {"events": [{"type": "pair", **PAIR, "pair_id": f"b{i}", "chosen": "y" * 500} for i in range(100)]}
        r = c.post("/v1/users/victim/feedback", json=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        def chunks():  # no Content-Length: the limit still applies while streaming
            for _ in range(50):
                yield b" " * 1000

        r = c.post("/v1/users/victim/feedback", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        r = c.get("/v1/nowhere")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert "Traceback" not in r.text
