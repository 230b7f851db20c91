"""Hostile input never gets a 500, erasure races nothing, tokens can be listed, revoked and expire, and the smaller
hardening rules (admin key strength, path ids, no Host-reflecting redirect, ids never reused, strict types).
Against the real app under uvicorn on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from svc_helpers import ADMIN_KEY, admin, as_user, live_server, raw_request

from pluralign.cli import main as cli_main
from pluralign.data.io import read_users
from pluralign.service.app import create_app
from pluralign.service.config import ServiceConfig
from pluralign.service.export import export_feedback

JSON = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"}
PAIR = {"pair_id": "p1", "prompt": "q", "chosen": "a", "rejected": "b"}


def _count(db_url: str, sql: str, **params) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def _err(r: httpx.Response) -> dict:
    assert "Traceback" not in r.text
    return r.json()["error"]


def test_lone_surrogates_are_refused_naming_the_field_and_export_still_works(db_url, tmp_path):
    with live_server(create_app(ServiceConfig(db=db_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        c.post("/v1/users/u0/pairs", json=PAIR).raise_for_status()
        cases = [
            ("/v1/users/u1/pairs", b'{"pair_id":"s1","prompt":"q","chosen":"a","rejected":"b","meta":{"x":"\\ud800"}}',
             "body.meta.x"),
            ("/v1/users/u1/pairs", b'{"pair_id":"s1","prompt":"q","chosen":"a","rejected":"b","meta":{"\\udc00":1}}',
             "body.meta.\\udc00"),
            ("/v1/users/u1/conversations", b'{"conversation_id":"c","turns":[{"turn_id":"t","role":"user",'
             b'"content":"hi \\udfff"}]}', "body.turns.0.content"),
            ("/v1/users/u1/feedback", b'{"events":[{"type":"pair","pair_id":"a","prompt":"q","chosen":"a",'
             b'"rejected":"b"},{"type":"reaction","reaction_id":"r","prompt":"\\ud83d","response":"x"}]}',
             "body.events.1.reaction.prompt"),
        ]
        for path, body, field in cases:
            r = c.post(path, content=body, headers=JSON)
            err = _err(r)
            assert r.status_code == 422 and err["field"] == field, r.text
            assert "surrogate" in err["message"]
        r = c.put("/v1/users/u1/summary", content=b'{"summary": "x\\ud800"}', headers=JSON)
        assert r.status_code == 422 and _err(r)["field"] == "body.summary"
        # A valid surrogate pair is an ordinary character (an emoji) and is stored.
        r = c.post("/v1/users/u1/pairs", content=b'{"pair_id":"ok","prompt":"q","chosen":"\\ud83d\\ude00",'
                   b'"rejected":"b"}', headers=JSON)
        assert r.status_code == 200, r.text
    assert _count(db_url, "SELECT count(*) FROM feedback_events WHERE user_id = 'u1'") == 1
    counts = export_feedback(db_url, tmp_path / "out")
    assert counts["users"] == 2 and counts["repaired_texts"] == 0
    assert {u.user_id for u in read_users(tmp_path / "out" / "feedback.jsonl")} == {"u0", "u1"}


def test_export_repairs_surrogates_stored_before_they_were_refused(sqlite_url, tmp_path, capsys):
    """A database written by an older server may hold lone surrogates: the export writes U+FFFD and says where,
    instead of failing for everyone."""
    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        c.post("/v1/users/good/pairs", json=PAIR).raise_for_status()
        c.post("/v1/users/bad/pairs", json=PAIR).raise_for_status()
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # what an older server stored
        conn.execute(sa.text("UPDATE feedback_events SET payload = :p WHERE user_id = 'bad'"),
                     {"p": '{"pair_id": "p1", "prompt": "q\\ud800", "chosen": "a", "rejected": "b", '
                           '"meta": {"x": "\\udc00"}}'})
    engine.dispose()
    assert cli_main(["data", "export", "--db", sqlite_url, "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["users"] == 2 and summary["repaired_texts"] == 2 and len(summary["repaired_event_ids"]) == 1
    assert "U+FFFD" in captured.err
    users = {u.user_id: u for u in read_users(tmp_path / "out" / "feedback.jsonl")}
    assert users["bad"].pairs[0].prompt == "q\ufffd" and users["good"].pairs[0].prompt == "q"


def test_body_parser_errors_are_clear_400s_without_a_field(server):
    cases = {
        b'{"summary": "\xff\xfe"}': "not valid UTF-8: byte 0xff at line 1 column 14",
        b'{"summary": ' + b"1" * 5000 + b"}": "too many digits",
        b"[" * 100_000 + b"]" * 100_000: "nested too deeply",
        b'{"summary": "a",\n "x": }': "not valid JSON: Expecting value at line 2 column 7",
    }
    with httpx.Client(base_url=server, timeout=30) as c:
        for body, needle in cases.items():
            r = c.put("/v1/users/u1/summary", content=body, headers=JSON)
            err = _err(r)
            assert r.status_code == 400 and err["code"] == "invalid_json", r.text
            assert needle in err["message"] and "field" not in err, err


def test_proxy_refuses_non_finite_numbers_and_surrogates_naming_the_field(server):
    msgs = b'"messages":[{"role":"user","content":"hi"}]'
    cases = [
        (b'{"user":"u1","temperature":NaN,' + msgs + b"}", "body.temperature", "finite"),
        (b'{"user":"u1","temperature":Infinity,' + msgs + b"}", "body.temperature", "finite"),
        (b'{"user":"u1","temperature":1e999,' + msgs + b"}", "body.temperature", "finite"),
        (b'{"user":"u1","messages":[{"role":"user","content":"x\\ud800"}]}', "body.messages.0.content", "surrogate"),
        (b'{"user":"u1","messages":[{"role":"user","content":[{"type":"text","text":"\\udfff"}]}]}',
         "body.messages.0.content.0.text", "surrogate"),
        (b'{"user":"u1","n":"1",' + msgs + b"}", "body.n", "integer"),
        (b'{"user":"..",' + msgs + b"}", "body.user", "pattern"),
    ]
    with httpx.Client(base_url=server, timeout=30) as c:
        for body, field, needle in cases:
            r = c.post("/v1/chat/completions", content=body, headers=JSON)
            err = _err(r)
            assert r.status_code == 422 and err["field"] == field and needle in err["message"], r.text


def test_strict_types_and_path_ids(server):
    with admin(server) as c:
        r = c.post("/v1/users/u1/reactions", json={"reaction_id": "r", "prompt": "p", "response": "x", "value": "1"})
        assert r.status_code == 422 and _err(r)["field"] == "body.value"
        r = c.post("/v1/users/u1/reactions", json={"reaction_id": 1, "prompt": "p", "response": "x"})
        assert r.status_code == 422 and _err(r)["field"] == "body.reaction_id"
        r = c.post("/v1/users/u1/reactions", json={"reaction_id": "r", "prompt": "p", "response": "x", "value": 1})
        assert r.status_code == 200  # an integer is still a number
        r = c.post("/v1/score", json={"user_id": "..", "prompt": "p", "responses": ["x"]})
        assert r.status_code == 422 and _err(r)["field"] == "body.user_id"
    for uid in (".", "..", "...", "%2E%2E", "%2e"):
        status, _, body = raw_request(server, "POST", f"/v1/users/{uid}/pairs", json.dumps(PAIR).encode(), JSON)
        assert status in (404, 422), (uid, status, body)
        if status == 422:
            assert json.loads(body)["error"]["field"] == "path.user_id"
    with admin(server) as c:  # dots inside an id are fine
        assert c.post("/v1/users/a.b/pairs", json=PAIR).status_code == 200


def test_trailing_slash_never_redirects_to_the_host_header(server):
    status, headers, body = raw_request(server, "GET", "/v1/users/u1/summary/", headers={
        "Authorization": f"Bearer {ADMIN_KEY}", "X-Forwarded-Host": "evil.example"},
        raw_headers=b"")
    assert status == 404 and "location" not in headers
    assert "trailing slash" in json.loads(body)["error"]["message"]
    with httpx.Client(base_url=server, headers={"Host": "evil.example"}) as c:
        r = c.get("/v1/users/u1/summary/", follow_redirects=False)
        assert r.status_code == 404 and "evil" not in r.headers.get("location", "")


def test_admin_key_strength_is_checked_at_start_up(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    for weak in ("aaaaaaaaaaaaaaaa", "abcabcabcabcabcabcab", "0123456789abcdefghij", "short"):
        with pytest.raises(ValueError, match="admin key"):
            create_app(ServiceConfig(db=url), admin_key=weak)
    monkeypatch.setenv("PLURALIGN_ADMIN_KEY", "aaaaaaaaaaaaaaaa")
    assert cli_main(["serve", "--db", url, "--port", "1"]) != 0
    assert "looks guessable" in capsys.readouterr().err
    create_app(ServiceConfig(db=url), admin_key="Zt3-q9Lx_V1mP0aR7wKc")  # random-looking: accepted


def test_erased_event_ids_are_never_reused(db_url):
    with live_server(create_app(ServiceConfig(db=db_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        ids = [e["id"] for e in c.post("/v1/users/a/feedback", json={"events": [
            {"type": "pair", **PAIR, "pair_id": f"p{i}"} for i in range(3)]}).json()["events"]]
        c.put("/v1/users/a/summary", json={"summary": "s"}).raise_for_status()
        assert c.delete("/v1/users/a").json()["deleted"]["events"] == 3
        new = c.post("/v1/users/b/pairs", json=PAIR).json()["events"][0]["id"]
        assert new > max(ids)


def test_migration_from_0001_keeps_tokens_and_stops_id_reuse(sqlite_url):
    from alembic import command
    from alembic.config import Config

    from pluralign.service.auth import hash_token
    from pluralign.service.db import MIGRATIONS_DIR, make_engine

    engine = make_engine(sqlite_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    old_token = "plu_an-old-token-issued-by-revision-0001"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_tokens VALUES (:h, 'old', 1.0)"), {"h": hash_token(old_token)})
        for i in (1, 2, 3):
            conn.execute(sa.text("INSERT INTO feedback_events (id, user_id, kind, item_id, idempotency_key, payload, "
                                 "received_at) VALUES (:i, 'old', 'pair', :k, :k, :p, 1.0)"),
                         {"i": i, "k": f"pair:p{i}", "p": json.dumps({**PAIR, "pair_id": f"p{i}"})})
    engine.dispose()
    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as base:
        with as_user(base, old_token) as u:  # the old token still works and now has an id
            r = u.post("/v1/users/old/pairs", json={**PAIR, "pair_id": "p9"})
            assert r.status_code == 200 and r.json()["events"][0]["id"] == 4
        with admin(base) as c:
            (tok,) = c.get("/v1/users/old/tokens").json()["tokens"]
            assert tok["token_id"] == "tok_" + hash_token(old_token)[:16] and tok["scope"] == "full"
            c.delete("/v1/users/old").raise_for_status()
            assert c.post("/v1/users/new/pairs", json=PAIR).json()["events"][0]["id"] == 5
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'feedback_events'")).scalar()
    engine.dispose()
    assert "AUTOINCREMENT" in sql


def test_tokens_list_revoke_expire_and_scope(db_url):
    with live_server(create_app(ServiceConfig(db=db_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        full = c.post("/v1/users/ann/tokens").json()
        limited = c.post("/v1/users/ann/tokens", json={"scope": "no_erase"}).json()
        short = c.post("/v1/users/ann/tokens", json={"expires_in_s": 0.2}).json()
        assert full["scope"] == "full" and full["expires_at"] is None and limited["scope"] == "no_erase"
        assert short["expires_at"] is not None
        r = c.post("/v1/users/ann/tokens", json={"scope": "root"})
        assert r.status_code == 422 and _err(r)["field"] == "body.scope"
        r = c.post("/v1/users/ann/tokens", json={"expires_in_s": "60"})
        assert r.status_code == 422 and _err(r)["field"] == "body.expires_in_s"
        listed = c.get("/v1/users/ann/tokens").json()["tokens"]
        assert {t["token_id"] for t in listed} == {full["token_id"], limited["token_id"], short["token_id"]}
        assert all("token" not in t for t in listed)

        with as_user(base, limited["token"]) as u:
            assert u.post("/v1/users/ann/pairs", json=PAIR).status_code == 200
            r = u.delete("/v1/users/ann")
            assert r.status_code == 403 and "no_erase" in _err(r)["message"]
            assert u.get("/v1/users/ann/tokens").status_code == 403  # listing is admin-only
        with as_user(base, full["token"]) as u:
            assert u.get("/v1/users/ann/summary/history").status_code == 200  # now cached
            r = c.delete(f"/v1/users/ann/tokens/{full['token_id']}")
            assert r.status_code == 200 and r.json()["revoked"] is True
            assert u.get("/v1/users/ann/summary/history").status_code == 401  # at once, despite the cache
            assert u.post("/v1/users/ann/pairs", json={**PAIR, "pair_id": "p2"}).status_code == 401
        assert c.delete(f"/v1/users/ann/tokens/{full['token_id']}").status_code == 404
        assert c.delete("/v1/users/bob/tokens/" + limited["token_id"]).status_code == 404  # another user's id
        assert c.delete("/v1/users/ann/tokens/not-an-id").status_code == 422
        time.sleep(0.3)
        with as_user(base, short["token"]) as u:
            r = u.get("/v1/users/ann/summary/history")
            assert r.status_code == 401 and "expired" in _err(r)["message"]
        assert [t["expired"] for t in c.get("/v1/users/ann/tokens").json()["tokens"]
                if t["token_id"] == short["token_id"]] == [True]


def test_failed_authentication_is_throttled(sqlite_url):
    cfg = ServiceConfig(db=sqlite_url, auth_fail_burst=5, auth_fail_per_s=0.01)
    with live_server(create_app(cfg, admin_key=ADMIN_KEY)) as base, httpx.Client(base_url=base) as c:
        codes = [c.get("/v1/users/u/summary", headers={"Authorization": f"Bearer guess-{i}"}).status_code
                 for i in range(8)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
        r = c.get("/v1/users/u/summary", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # guessing no longer pays
        assert c.get("/healthz").status_code == 200
        # A missing header is not a guess and is not counted (a fresh server: no failures yet).
    with live_server(create_app(cfg, admin_key=ADMIN_KEY)) as base, httpx.Client(base_url=base) as c:
        assert {c.get("/v1/users/u/summary").status_code for _ in range(10)} == {401}
        assert c.get("/v1/users/u/summary", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 404


def test_score_rate_limit_is_per_user(sqlite_url):
    from pluralign.models.love import LoveModel

    love_dir = Path(sqlite_url.removeprefix("sqlite:///")).parent / "love"
    LoveModel().fit(["q"] * 4, ["Great, thanks!", "no", "Happy to help :)", "whatever"], [1, 0, 1, 0]
                    ).save_pretrained(love_dir)
    cfg = ServiceConfig(db=sqlite_url, love=str(love_dir), score_rate_per_s=0.01, score_burst=4)
    with live_server(create_app(cfg, admin_key=ADMIN_KEY)) as base, admin(base) as c:
        body = {"user_id": "flood", "prompt": "p", "responses": ["a", "b"]}
        assert [c.post("/v1/score", json=body).status_code for _ in range(3)] == [200, 200, 429]
        r = c.post("/v1/score", json=body)
        assert r.status_code == 429 and _err(r)["code"] == "too_many_requests" and "retry-after" in r.headers
        r = c.post("/v1/score", json={**body, "user_id": "victim"})
        assert r.status_code == 200 and len(r.json()["p_love"]) == 2


# --- erasure under concurrent writes ---------------------------------------------------------------------------


def _residue(db_url: str, user: str) -> dict[str, int]:
    return {t: _count(db_url, f"SELECT count(*) FROM {t} WHERE user_id = :u", u=user)
            for t in ("feedback_events", "summaries", "user_tokens", "users")}


@pytest.mark.parametrize("run", range(2))
def test_erasure_under_concurrent_token_writes_leaves_nothing(db_url, run):
    """Eight clients keep writing events and summaries with the user's token while the user is erased: whatever
    was authenticated before the erasure and reached the database after it is refused; nothing survives."""
    with live_server(create_app(ServiceConfig(db=db_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        user = f"racer{run}"
        token = c.post(f"/v1/users/{user}/tokens").json()["token"]
        stop = threading.Event()
        codes: list[int] = []
        writing = threading.Barrier(9)  # every writer has stored something before the erasure

        def write(k: int) -> None:
            with as_user(base, token) as u:
                i = 0
                while not stop.is_set():
                    if i % 5 == 4:
                        r = u.put(f"/v1/users/{user}/summary", json={"summary": f"v{k}.{i}"})
                    else:
                        r = u.post(f"/v1/users/{user}/pairs", json={**PAIR, "pair_id": f"{k}-{i}"})
                    codes.append(r.status_code)
                    if i == 0:
                        assert r.status_code == 200, r.text
                        writing.wait(30)
                    if r.status_code == 401:
                        return
                    i += 1

        with cf.ThreadPoolExecutor(8) as pool:
            futs = [pool.submit(write, k) for k in range(8)]
            writing.wait(30)
            time.sleep(0.2)
            assert c.delete(f"/v1/users/{user}").status_code == 200
            time.sleep(0.3)
            stop.set()
            for f in futs:
                f.result()
        assert set(codes) <= {200, 401, 409} and codes.count(200) > 0
        assert _residue(db_url, user) == {"feedback_events": 0, "summaries": 0, "user_tokens": 0, "users": 0}
        assert c.get(f"/v1/users/{user}/summary/history").json()["versions"] == []


def test_a_write_authenticated_before_an_erasure_is_refused_after_it(db_url):
    """The exact interleaving, driven through the server's own writer: authenticate (admin key and a token),
    erase, then let the writes reach the database."""
    import asyncio

    from pluralign.service.erasure import guard_write
    from pluralign.service.ingest import prepare
    from pluralign.service.schemas import PairIn
    from pluralign.service.summaries import add_version

    app = create_app(ServiceConfig(db=db_url), admin_key=ADMIN_KEY)
    with live_server(app) as base, admin(base) as c:
        svc = app.state.svc
        token = c.post("/v1/users/ed/tokens").json()["token"]
        c.post("/v1/users/ed/pairs", json=PAIR).raise_for_status()
        as_admin = svc.auth.authenticate(f"Bearer {ADMIN_KEY}")
        as_token = svc.auth.authenticate(f"Bearer {token}")
        assert c.delete("/v1/users/ed").json()["deleted"]["events"] == 1
        loop = asyncio.new_event_loop()
        try:
            for who, status in ((as_admin, 409), (as_token, 401)):
                event = prepare("ed", PairIn(**{**PAIR, "pair_id": "late"}))
                with pytest.raises(Exception) as exc:
                    loop.run_until_complete(svc.writer.add_events([event], who))
                assert getattr(exc.value, "status", None) == status

                def late_summary(s, who=who):
                    guard_write(s, "ed", who)
                    return add_version(s, "ed", "late", "admin")

                with pytest.raises(Exception) as exc:
                    loop.run_until_complete(svc.writer.run(late_summary))
                assert getattr(exc.value, "status", None) == status
        finally:
            loop.close()
        assert _residue(db_url, "ed") == {"feedback_events": 0, "summaries": 0, "user_tokens": 0, "users": 0}
        # The admin, authenticated after the erasure, may start the user afresh.
        assert c.post("/v1/users/ed/pairs", json=PAIR).json()["stored"] == 1


def test_erased_text_does_not_linger_in_the_sqlite_files(sqlite_url):
    marker = f"ERASE-ME-{uuid.uuid4().hex}"
    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        c.post("/v1/users/keep/pairs", json=PAIR).raise_for_status()
        for i in range(20):
            c.post("/v1/users/gone/pairs", json={**PAIR, "pair_id": f"p{i}", "chosen": f"{marker} {i}"}
                   ).raise_for_status()
        c.put("/v1/users/gone/summary", json={"summary": marker}).raise_for_status()
        path = Path(sqlite_url.removeprefix("sqlite:///"))
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert any(marker.encode() in p.read_bytes() for p in files)  # the text is on disk before
        c.delete("/v1/users/gone").raise_for_status()
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        leftovers = [p.name for p in files if marker.encode() in p.read_bytes()]
        assert leftovers == []
        assert c.get("/v1/users/keep/summary/history").status_code == 200
