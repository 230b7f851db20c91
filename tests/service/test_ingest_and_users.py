"""Ingestion, idempotency, summaries and erasure against the real app under uvicorn (SQLite and PostgreSQL)."""

from __future__ import annotations

import concurrent.futures as cf

import sqlalchemy as sa
from svc_helpers import ADMIN_KEY, admin, as_user, live_server, token_for

from pluralign.service.app import create_app
from pluralign.service.config import ServiceConfig
from pluralign.service.schemas import FeedbackAck

CONV = {"conversation_id": "c1", "turns": [
    {"turn_id": "t1", "role": "user", "content": "Suggest a pet for a small flat"},
    {"turn_id": "t2", "role": "assistant", "content": "A cat: independent and quiet."}]}


def test_ingest_idempotent_summary_delete(db_url):
    with live_server(create_app(ServiceConfig(db=db_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        assert c.get("/healthz").json()["database"] == "ok"
        r = c.post("/v1/users/alice/conversations", json=CONV)
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == 1
        # A reaction pointing at a stored turn, a text reaction and a pair, in one batch.
        batch = {"events": [
            {"type": "reaction", "reaction_id": "r1", "conversation_id": "c1", "turn_id": "t2", "value": 1},
            {"type": "reaction", "reaction_id": "r2", "prompt": "hi", "response": "Bye! Sending love!", "value": 0},
            {"type": "pair", "pair_id": "p1", "prompt": "Which pet?", "chosen": "A cat", "rejected": "A dog",
             "idempotency_key": "retry-me"},
        ]}
        first = c.post("/v1/users/alice/feedback", json=batch).json()
        assert first["stored"] == 3 and first["duplicates"] == 0
        again = c.post("/v1/users/alice/feedback", json=batch).json()  # a client retry
        assert again["stored"] == 0 and again["duplicates"] == 3
        assert [e["id"] for e in again["events"]] == [e["id"] for e in first["events"]]
        # The same key for another user is another event (keys are unique per user).
        assert c.post("/v1/users/bob/pairs", json=batch["events"][2]).json()["stored"] == 1

        assert c.get("/v1/users/alice/summary").status_code == 404
        ref = c.post("/v1/users/alice/summary:refresh").json()
        assert ref["version"] == 1 and ref["source"] == "refresh"
        assert '"A cat" over "A dog"' in ref["summary"] and "independent and quiet" in ref["summary"]
        put = c.put("/v1/users/alice/summary", json={"summary": "Likes cats. Short answers."}).json()
        assert put["version"] == 2 and put["source"] == "admin"
        assert c.get("/v1/users/alice/summary").json()["summary"] == "Likes cats. Short answers."
        hist = c.get("/v1/users/alice/summary/history").json()["versions"]
        assert [v["version"] for v in hist] == [2, 1]

        tok = c.post("/v1/users/alice/tokens").json()["token"]
        gone = c.delete("/v1/users/alice").json()["deleted"]
        assert gone == {"events": 4, "summaries": 2, "tokens": 1, "users": 1}
        assert c.get("/v1/users/alice/summary").status_code == 404
        assert c.get("/v1/users/alice/summary/history").json()["versions"] == []
        with as_user(base, tok) as u:  # the erased user's token is gone too
            assert u.get("/v1/users/alice/summary").status_code == 401
        # Bob's data is untouched.
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            users = conn.execute(sa.text("SELECT user_id, count(*) FROM feedback_events GROUP BY user_id")).all()
        engine.dispose()
        assert users == [("bob", 1)]


def test_concurrent_retries_store_once(server):
    """Many clients retrying the same events at once: each key is stored exactly once."""
    events = [{"type": "reaction", "reaction_id": f"r{i}", "prompt": "p", "response": f"answer {i}", "value": 1}
              for i in range(20)]

    def send(_):
        with admin(server) as c:
            return c.post("/v1/users/u1/feedback", json={"events": events}).json()

    with cf.ThreadPoolExecutor(8) as pool:
        acks = list(pool.map(send, range(16)))
    assert sum(a["stored"] for a in acks) == 20
    ids = {tuple(e["id"] for e in a["events"]) for a in acks}
    assert len(ids) == 1  # every client got the same stored ids back


def test_feedback_ack_matches_its_schema_and_erasure_resets_the_user(server, sqlite_url):
    """The hand-serialised ack is exactly the documented FeedbackAck; a key repeated inside one request is stored
    once; an erased user who sends feedback again exists again (the writer's known-users cache is dropped)."""
    ev = {"type": "reaction", "reaction_id": "r1", "prompt": "p", "response": "answer", "value": 1}
    with admin(server) as c:
        body = c.post("/v1/users/eve/feedback", json={"events": [ev, ev]}).json()
        assert FeedbackAck.model_validate(body).model_dump() == body
        assert (body["stored"], body["duplicates"]) == (1, 1)
        assert body["events"][0]["id"] == body["events"][1]["id"] and body["events"][1]["duplicate"] is True
        schema = c.get("/openapi.json").json()["paths"]["/v1/users/{user_id}/feedback"]["post"]["responses"]["200"]
        assert schema["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FeedbackAck"}
        assert c.delete("/v1/users/eve").json()["deleted"]["users"] == 1
        again = c.post("/v1/users/eve/feedback", json={"events": [ev]}).json()
        assert (again["stored"], again["duplicates"]) == (1, 0)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users WHERE user_id = 'eve'")).scalar() == 1
    engine.dispose()


def test_scheduled_refresh_never_overwrites_user_edit(sqlite_url):
    import time

    cfg = ServiceConfig(db=sqlite_url, refresh_interval_s=0.2)
    with live_server(create_app(cfg, admin_key=ADMIN_KEY)) as base, admin(base) as c:
        tok = token_for(base, "carol")
        c.post("/v1/users/dave/pairs", json={"pair_id": "p", "prompt": "q", "chosen": "short", "rejected": "long"})
        with as_user(base, tok) as u:
            assert u.put("/v1/users/carol/summary", json={"summary": "My own words"}).status_code == 200
            u.post("/v1/users/carol/pairs", json={"pair_id": "p", "prompt": "q", "chosen": "a", "rejected": "b"})
        deadline = time.time() + 10
        while c.get("/v1/users/dave/summary").status_code == 404 and time.time() < deadline:
            time.sleep(0.1)
        assert c.get("/v1/users/dave/summary").json()["source"] == "refresh"
        time.sleep(0.5)
        assert c.get("/v1/users/carol/summary").json()["summary"] == "My own words"


def test_restart_keeps_data_and_migrations_are_idempotent(sqlite_url):
    from pluralign.service.db import make_engine, migrate

    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        c.post("/v1/users/zed/pairs", json={"pair_id": "p", "prompt": "q", "chosen": "a", "rejected": "b"})
        tok = c.post("/v1/users/zed/tokens").json()["token"]
    engine = make_engine(sqlite_url)
    assert migrate(engine) == "0002"  # already at head: nothing to do
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()
    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as base, as_user(base, tok) as u:
        r = u.post("/v1/users/zed/pairs", json={"pair_id": "p", "prompt": "q", "chosen": "a", "rejected": "b"})
        assert r.json()["duplicates"] == 1  # the token and the idempotency key survived the restart


def test_background_checkpoint_moves_the_wal_out_of_the_commit_path(sqlite_url):
    """With the checkpointer on, SQLite's in-commit checkpoint is only a far backstop and the WAL still gets
    copied into the database file (by the checkpointer's thread, which reports what it did)."""
    import time

    from pluralign.service.db import BACKSTOP_AUTOCHECKPOINT_PAGES

    app = create_app(ServiceConfig(db=sqlite_url, sqlite_checkpoint_s=0.05), admin_key=ADMIN_KEY)
    with live_server(app) as base, admin(base) as c:
        events = [{"type": "reaction", "reaction_id": f"r{i}", "prompt": "p", "response": f"answer {i}"}
                  for i in range(50)]
        assert c.post("/v1/users/u1/feedback", json={"events": events}).json()["stored"] == 50
        with app.state.svc.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_AUTOCHECKPOINT_PAGES
        deadline = time.time() + 10
        while time.time() < deadline:
            last = app.state.checkpointer.last
            if last is not None and last[1] > 0 and last[2] == last[1]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no complete background checkpoint: {app.state.checkpointer.last}")
