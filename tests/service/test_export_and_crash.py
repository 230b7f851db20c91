"""Closing the loop (export → files the trainers read), durability under kill -9, and no stack traces on 500s."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from svc_helpers import ADMIN_KEY, admin, live_server

from pluralign.cli import main as cli_main
from pluralign.data.io import read_users
from pluralign.service.app import create_app
from pluralign.service.config import ServiceConfig
from pluralign.service.export import export_feedback
from pluralign.service.loadgen import crash_test


def test_export_writes_trainer_files(sqlite_url, tmp_path, capsys):
    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        c.post("/v1/users/u1/feedback", json={"events": [
            {"type": "conversation", "conversation_id": "c1", "timestamp": 5.0, "turns": [
                {"turn_id": "t1", "role": "user", "content": "Name a calm pet"},
                {"turn_id": "t2", "role": "assistant", "content": "A tortoise."}]},
            {"type": "reaction", "reaction_id": "r1", "conversation_id": "c1", "turn_id": "t2", "value": 1},
            {"type": "reaction", "reaction_id": "r2", "conversation_id": "gone", "turn_id": "t9", "value": 1},
            {"type": "pair", "pair_id": "p1", "prompt": "Pet?", "chosen": "Cat", "rejected": "Dog", "topic": "pets"},
        ]}).raise_for_status()
        c.post("/v1/users/u2/reactions", json={"reaction_id": "r", "prompt": "hi", "response": "Hello!",
                                                "value": 0}).raise_for_status()
        c.put("/v1/users/u1/summary", json={"summary": "Prefers cats."}).raise_for_status()
    counts = export_feedback(sqlite_url, tmp_path / "out")
    assert {k: counts[k] for k in ("users", "pairs", "conversations", "reactions", "unresolved_reactions",
                                   "trl_rows")} == {"users": 2, "pairs": 1, "conversations": 1, "reactions": 2,
                                                    "unresolved_reactions": 1, "trl_rows": 1}
    users = {u.user_id: u for u in read_users(tmp_path / "out" / "feedback.jsonl")}  # the trainers' reader
    u1 = users["u1"]
    assert u1.meta["summary"] == "Prefers cats."
    assert (u1.reactions[0].prompt, u1.reactions[0].response, u1.reactions[0].value) == ("Name a calm pet",
                                                                                         "A tortoise.", 1.0)
    assert [m.content for m in u1.conversations[0].messages] == ["Name a calm pet", "A tortoise."]
    assert users["u2"].reactions[0].value == 0.0
    rows = [json.loads(line) for line in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()]
    assert rows == [{"user_id": "u1", "pair_id": "p1", "prompt": "Pet?", "chosen": "Cat", "rejected": "Dog",
                     "topic": "pets"}]
    # The same through the CLI command wired by the data engineer.
    assert cli_main(["data", "export", "--db", sqlite_url, "--out", str(tmp_path / "cli")]) == 0
    assert json.loads(capsys.readouterr().out)["users"] == 2


def test_export_of_a_non_service_db_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(ValueError, match="no pluralign feedback tables"):
        export_feedback(url, tmp_path / "out")
    assert not (tmp_path / "out" / "feedback.jsonl").exists()


def test_internal_errors_are_json_without_traceback(sqlite_url):
    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as base, admin(base) as c:
        engine = sa.create_engine(sqlite_url)
        with engine.begin() as conn:  # the database breaks under the running server
            conn.execute(sa.text("DROP TABLE summaries"))
        engine.dispose()
        r = c.get("/v1/users/x/summary")
        assert r.status_code == 500
        assert r.json() == {"error": {"code": "internal_error",
                                      "message": "internal server error (details are in the server log)"}}
        r = c.put("/v1/users/x/summary", json={"summary": "s"})
        assert r.status_code == 500 and "Traceback" not in r.text and "sqlite" not in r.text.lower()


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_event(db_url):
    """``pluralign serve`` in a subprocess, 8 clients writing, SIGKILL mid-burst: every ack is in the database."""
    out = crash_test(db_url, ADMIN_KEY, clients=8, kill_after_s=1.5)
    assert out["acknowledged"] > 20, out
    assert out["lost"] == 0, out
