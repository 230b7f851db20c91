"""Fuzz: a fixed-seed corpus of hostile requests against every endpoint of the real server on loopback.

Bodies (lone surrogates, NaN/Infinity/1e999, 5,000-digit numbers, deep nesting, wrong types, control characters,
NUL, broken encodings, wrong content types), headers (missing, malformed, foreign and revoked credentials, control
characters, huge values) and path ids (``.``/``..``, percent-encoded tricks, slashes, NUL, overlong, non-ASCII),
sent with valid and invalid credentials. Every answer must be below 500, carry no stack trace or driver message,
and be the JSON error shape when it is an error; afterwards the victim's stored data is byte-for-byte unchanged
and the whole database still exports. Requests are sent byte for byte (raw sockets), so nothing is normalised
on the way.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from svc_helpers import ADMIN_KEY, admin, live_server, raw_request

from pluralign.service.app import create_app
from pluralign.service.config import ServiceConfig
from pluralign.service.export import export_feedback

SEED = 20261130
CORPUS_SIZE = 2400
FORBIDDEN = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3.", "pydantic_core", "Exception:")

VICTIM_PAIR = {"pair_id": "vp", "prompt": "Which pet?", "chosen": "A cat", "rejected": "A dog", "meta": {"k": 1}}
VALID_BODIES = {
    "feedback": {"events": [{"type": "pair", "pair_id": "p", "prompt": "q", "chosen": "a", "rejected": "b"},
                            {"type": "reaction", "reaction_id": "r", "prompt": "p", "response": "x", "value": 1}]},
    "conversations": {"conversation_id": "c", "turns": [{"turn_id": "t1", "role": "user", "content": "hi"},
                                                        {"turn_id": "t2", "role": "assistant", "content": "hello"}]},
    "reactions": {"reaction_id": "r", "prompt": "p", "response": "x", "value": 1.0, "kind": "love"},
    "pairs": {"pair_id": "p", "prompt": "q", "chosen": "a", "rejected": "b", "meta": {"m": "v"}},
    "summary": {"summary": "likes cats"},
    "tokens": {"scope": "no_erase", "expires_in_s": 60},
    "score": {"user_id": "USER", "prompt": "p", "responses": ["a", "b"]},
    "chat": {"user": "USER", "messages": [{"role": "system", "content": "terse"},
                                          {"role": "user", "content": "hi"}], "max_tokens": 4, "best_of": 2},
}
# (method, path with {id}, body kind or None)
ENDPOINTS = [
    ("POST", "/v1/users/{id}/feedback", "feedback"),
    ("POST", "/v1/users/{id}/conversations", "conversations"),
    ("POST", "/v1/users/{id}/reactions", "reactions"),
    ("POST", "/v1/users/{id}/pairs", "pairs"),
    ("GET", "/v1/users/{id}/summary", None),
    ("PUT", "/v1/users/{id}/summary", "summary"),
    ("GET", "/v1/users/{id}/summary/history", None),
    ("POST", "/v1/users/{id}/summary:refresh", None),
    ("DELETE", "/v1/users/{id}", None),
    ("POST", "/v1/users/{id}/tokens", "tokens"),
    ("GET", "/v1/users/{id}/tokens", None),
    ("DELETE", "/v1/users/{id}/tokens/tok_0123456789abcdef", None),
    ("POST", "/v1/score", "score"),
    ("POST", "/v1/chat/completions", "chat"),
    ("GET", "/healthz", None),
]
HOSTILE_IDS = [".", "..", "...", "%2e", "%2E%2E", "..%2F..", "a%2Fb", "a/b", "%00", "a%00b", "%ff", "%C0%AE",
               "%ED%A0%80", "%F0%9F%98%80", "x" * 201, "x" * 5000, "%20", "a%20b", "a%0Ab", "%0D%0A", "*", "~",
               "a;b", "a?b=1", "%3F", "%23", "é", "%C3%A9", "con", "-", "_", "a:b@c+d", "'; DROP TABLE users;--",
               "${jndi:x}", "%25", "%%", "%u002e", "\\..", "a\\b", "null", "0", "-1", "1e999", "NaN"]
# Raw JSON fragments spliced in where a value goes (what json.dumps will not write by itself).
RAW_VALUES = ["NaN", "-Infinity", "Infinity", "1e999", "-1e999", "1" * 5000, "-" + "9" * 4400, "1" * 4000,
              "[" * 60 + "]" * 60, "[" * 5000 + "]" * 5000, '{"a":' * 300 + "1" + "}" * 300, '"\\ud800"',
              '"\\udfff tail"', '"\\ud83d\\ude00"', '"\\u0000"', '"a\\u0000b"', '"\\u001b[31m"', '"\\r\\n\\t"',
              '"' + "x" * 150_000 + '"', "true", "false", "null", "[]", "{}", '"1"', '"1.5"', "1", "0", "-0", "1.0",
              "9007199254740993", "-1", '"\\u202e\\u200b"', '["a", NaN]', '{"\\ud800": 1}', '{"": 1}',
              '"%s%n%x"', '"../../etc/passwd"', '"<script>"', "1E400", "0.0000001e-400", '"' + "é" * 1000 + '"']
RAW_BODIES = [b"", b"null", b"[]", b"{}", b"{", b"}", b"\xff\xfe\xfd", b"\xef\xbb\xbf{}", b'{"a": 1} trailing',
              b"{'single': 'quotes'}", b'{"a": 1, "a": 2}', "{}".encode("utf-16"), "{}".encode("utf-32"),
              b"\x00" * 64, b"[" * 200_000, b'{"events": ' + b"[" * 3000 + b"]" * 3000 + b"}",
              b'{"summary": "\xc3\x28"}', b'{"summary": "\xed\xa0\x80"}', b"1" * 6000, b"NaN", b"Infinity",
              b'"just a string"', b"true", b"<xml/>", b"a=1&b=2", b"--boundary\r\n\r\n--boundary--",
              b'{"events": [null, 1, "x", [], {}]}', b'{"summary": {"$ne": null}}']
CONTENT_TYPES = ["application/json", "application/json", "application/json", "text/plain", None,
                 "application/json; charset=latin-1", "application/x-www-form-urlencoded", "multipart/form-data",
                 "application/merge-patch+json", "application/json\x0b"]


def _json_with_raw(value, raw: str) -> bytes:
    return json.dumps(value).replace('"__RAW__"', raw).encode("utf-8", "surrogatepass")


def _mutate(rng: random.Random, body):
    """A copy of a valid body with one place replaced by ``"__RAW__"``, a key added or removed, or a type changed."""
    body = json.loads(json.dumps(body))
    containers = [(None, None, body)]
    stack = [body]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for k, v in items:
            containers.append((node, k, v))
            if isinstance(v, dict | list):
                stack.append(v)
    parent, key, _ = rng.choice(containers[1:] or containers)
    action = rng.random()
    if parent is None:
        return "__RAW__"
    if action < 0.7:
        parent[key] = "__RAW__"
    elif action < 0.8 and isinstance(parent, dict):
        del parent[key]
    elif action < 0.9 and isinstance(parent, dict):
        parent[rng.choice(["extra", "__proto__", "constructor", "type", "x\u0000y", "\u202e"])] = "__RAW__"
    else:
        parent[key] = [parent[key]] * rng.randint(0, 3)
    return body


def build_corpus(seed: int, victim_token: str, mallory_token: str) -> list[dict]:
    """The fixed corpus: each case is a method, a raw path, headers, a body and who sent it."""
    rng = random.Random(seed)
    creds = [("admin", f"Bearer {ADMIN_KEY}"), ("mallory", f"Bearer {mallory_token}"), ("none", None),
             ("bogus", "Bearer plu_not-a-real-token"), ("basic", "Basic YWRtaW46YWRtaW4="),
             ("admin-suffix", f"Bearer {ADMIN_KEY}x"), ("empty", "Bearer "), ("long", "Bearer " + "A" * 20_000),
             ("latin1", "Bearer plu_\xe9\xe8"), ("victim-prefix", f"Bearer {victim_token[:-1]}"),
             ("no-scheme", ADMIN_KEY), ("lower", f"bearer {mallory_token}")]
    cases = []
    for i in range(CORPUS_SIZE):
        method, template, kind = ENDPOINTS[i % len(ENDPOINTS)]
        who, auth = creds[rng.randrange(len(creds))] if i % 3 else creds[i % 2]  # a third: valid credentials
        r = rng.random()
        if who == "admin":  # the admin may change anyone but the victim (and mallory, whose token we keep using)
            uid = rng.choice(HOSTILE_IDS + [f"fuzz-{rng.randrange(20)}"] * 10)
        elif r < 0.4:
            uid = "victim"
        elif r < 0.7:
            uid = "mallory"
        else:
            uid = rng.choice(HOSTILE_IDS + ["victim", "mallory", "%76ictim", "VICTIM", "victim%00"])
        if who == "admin" and unquote(uid).strip().lower() in ("victim", "mallory"):
            uid = "fuzz-0"
        path = template.replace("{id}", uid)
        if rng.random() < 0.05:
            path += rng.choice(["/", "?x=1", "/..", "//", "?user_id=victim", "%00", "#frag"])
        headers = {}
        if auth is not None:
            headers["Authorization"] = auth
        ctype = rng.choice(CONTENT_TYPES)
        body = b""
        if kind is not None or rng.random() < 0.1:
            base = json.loads(json.dumps(VALID_BODIES.get(kind or "pairs")).replace(
                '"USER"', json.dumps(rng.choice(["victim", "mallory", "fuzz-1", "..", "victim\u0000"]))))
            r = rng.random()
            if r < 0.15:
                body = rng.choice(RAW_BODIES)
            elif r < 0.25:
                body = json.dumps(base).encode()
            else:
                body = _json_with_raw(_mutate(rng, base), rng.choice(RAW_VALUES))
        if ctype is not None and (body or rng.random() < 0.5):
            headers["Content-Type"] = ctype
        raw_headers = b""
        if rng.random() < 0.05:
            raw_headers = rng.choice([b"X-Pluralign-User: victim\r\n", b"X-Pluralign-User: ..\r\n",
                                      b"X-Pluralign-User: \xed\xa0\x80\r\n", b"X-Junk: \x01\x02\r\n",
                                      b"Authorization: Bearer second-header\r\n", b"X-Long: " + b"a" * 30_000 +
                                      b"\r\n"])
        cases.append({"i": i, "method": method, "path": path, "headers": headers, "raw_headers": raw_headers,
                      "body": body, "who": who})
    return cases


def _snapshot(db_url: str, user: str) -> dict:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                "events": [tuple(r) for r in conn.execute(sa.text(
                    "SELECT id, kind, item_id, idempotency_key, payload, event_time, received_at FROM feedback_events "
                    "WHERE user_id = :u ORDER BY id"), {"u": user})],
                "summaries": [tuple(r) for r in conn.execute(sa.text(
                    "SELECT id, version, text, source, created_at FROM summaries WHERE user_id = :u ORDER BY id"),
                    {"u": user})],
                "tokens": [tuple(r) for r in conn.execute(sa.text(
                    "SELECT token_hash, token_id, scope, expires_at FROM user_tokens WHERE user_id = :u "
                    "ORDER BY token_id"), {"u": user})],
                "users": conn.execute(sa.text("SELECT count(*) FROM users WHERE user_id = :u"), {"u": user}).scalar(),
                "dot_users": conn.execute(sa.text(
                    "SELECT count(*) FROM users WHERE user_id IN ('.', '..', '...')")).scalar(),
            }
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def upstream():
    """A loopback chat upstream that answers every request with ``n`` short choices."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict:
        body = await request.json()
        n = body.get("n") if isinstance(body.get("n"), int) and 0 < body.get("n") <= 16 else 1
        return {"id": "c", "object": "chat.completion", "model": "echo",
                "choices": [{"index": i, "message": {"role": "assistant", "content": f"answer {i}"},
                             "finish_reason": "stop"} for i in range(n)]}

    with live_server(app) as url:
        yield url


def test_hostile_corpus_gets_no_5xx_and_changes_nothing_of_the_victim(db_url, upstream, model_dirs, tmp_path):
    # The throttles are off here so that invalid credentials do not lock the valid ones out (both are tested in
    # test_hardening.py); SQLite syncs NORMAL (durability is not under test) and torch keeps its threads;
    # everything else is the default configuration, with both models and an upstream, so every path is live.
    rm_dir, love_dir = model_dirs
    cfg = ServiceConfig(db=db_url, rm=str(rm_dir), love=str(love_dir), upstream_url=f"{upstream}/v1",
                        auth_fail_per_s=0, score_rate_per_s=0, score_user_concurrency=0, torch_threads=0,
                        sqlite_synchronous="NORMAL")
    with live_server(create_app(cfg, admin_key=ADMIN_KEY)) as base, admin(base) as c:
        victim_token = c.post("/v1/users/victim/tokens").json()["token"]
        mallory_token = c.post("/v1/users/mallory/tokens", json={"scope": "no_erase"}).json()["token"]
        c.post("/v1/users/victim/pairs", json=VICTIM_PAIR).raise_for_status()
        c.post("/v1/users/victim/conversations", json=VALID_BODIES["conversations"]).raise_for_status()
        c.put("/v1/users/victim/summary", json={"summary": "Likes cats; short answers."}).raise_for_status()
        before = _snapshot(db_url, "victim")
        export_before = export_feedback(db_url, tmp_path / "before")

        corpus = build_corpus(SEED, victim_token, mallory_token)
        assert len(corpus) >= 2000
        if db_url.startswith("postgresql"):  # the same corpus, every third round of endpoints: keeps CI short
            corpus = [c for c in corpus if (c["i"] // len(ENDPOINTS)) % 3 == 0]
        statuses: dict[int, int] = {}
        for case in corpus:
            status, headers, body = raw_request(base, case["method"], case["path"], case["body"], case["headers"],
                                                raw_headers=case["raw_headers"])
            statuses[status] = statuses.get(status, 0) + 1
            text = body.decode("utf-8", "replace")
            where = f"case {case['i']}: {case['method']} {case['path'][:80]!r} as {case['who']}"
            assert status < 500, f"{where} -> {status} {text[:300]}"
            assert not any(s in text for s in FORBIDDEN), f"{where} leaked: {text[:300]}"
            if status >= 400 and headers.get("content-type", "").startswith("application/json"):
                err = json.loads(body).get("error") or {}
                assert err, f"{where} -> {status} {text[:300]}"
                assert isinstance(err["code"], str) and isinstance(err["message"], str), where
            elif status >= 400:  # only the HTTP parser's own refusals of malformed requests are not JSON
                assert status == 400 and "invalid http request" in text.lower(), f"{where} -> {status} {text[:200]}"
        assert c.get("/healthz").json()["database"] == "ok"
        refused = sum(n for s, n in statuses.items() if 400 <= s < 500)
        assert statuses.get(200, 0) > len(corpus) // 20 and refused > len(corpus) // 2, statuses
        print(f"fuzz: {len(corpus)} requests, statuses {dict(sorted(statuses.items()))}")

    after = _snapshot(db_url, "victim")
    assert after == before
    assert after["dot_users"] == 0
    export_after = export_feedback(db_url, tmp_path / "after")
    assert export_after["repaired_texts"] == 0

    def victim_rows(out: Path) -> list[str]:
        return [line for line in (out / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
                if json.loads(line)["user_id"] == "victim"]

    assert victim_rows(tmp_path / "after") == victim_rows(tmp_path / "before")
    assert export_after["users"] >= export_before["users"]
