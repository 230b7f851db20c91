"""Summarizer prompt format, the summary store (provenance, edits, bad files) and the `pluralign summaries` CLI."""

from __future__ import annotations

import json

import pytest

from pluralign.cli import main
from pluralign.data.io import FeedbackFileError
from pluralign.data.schema import Conversation, Message, UserRecord
from pluralign.summarizers import build_summarizer_prompt, extract_summary
from pluralign.summarizers.store import SummaryStore, summaries_for

pytestmark = pytest.mark.usefixtures("one_thread")


def test_prompt_renders_every_kind_of_context_and_ends_with_marker(pet_users):
    u = pet_users[0].model_copy(update={
        "profile": "I am a retired teacher.",
        "conversations": [Conversation(conversation_id="c1", messages=[Message(role="user", content="Best hikes?")])]})
    prompt = build_summarizer_prompt(u)
    assert prompt.endswith("Start your response with ##Summary")
    assert u.pairs[0].chosen in prompt and "Preferred response" in prompt
    assert "Best hikes?" in prompt and "retired teacher" in prompt


def test_extract_summary_takes_text_after_last_marker():
    assert extract_summary("blah ##Summary: first ##Summary\n Likes dogs. ") == "Likes dogs."
    assert extract_summary("no marker here") == "no marker here"


def test_store_keeps_provenance_and_edit_wins(tmp_path):
    store = SummaryStore(tmp_path / "s.jsonl")
    store.record({"a": "Prefers: dogs.", "b": "Prefers: cats."}, summarizer_version="cpu@x", step=3)
    store.edit("a", "Prefers: cats.", author="ana")
    again = SummaryStore(tmp_path / "s.jsonl")  # reread from disk
    cur = again.get("a")
    assert cur.summary == "Prefers: cats." and cur.source == "edit" and cur.author == "ana"
    assert [e.source for e in again.history("a")] == ["model", "edit"]
    assert again.history("a")[0].summarizer_version == "cpu@x" and again.history("a")[0].step == 3
    assert again.export(tmp_path / "out.jsonl") == 2
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["summary"] == "Prefers: cats."


def test_stored_summary_is_used_and_new_users_are_inferred(tmp_path):
    class Echo:  # a trivial summarizer: the user's profile
        version = "echo"

        def summarize(self, contexts, *, sample=False):
            return [u.profile or "" for u in contexts]

    store = SummaryStore(tmp_path / "s.jsonl")
    store.record({"old": "stored text"}, summarizer_version="x")
    users = [UserRecord(user_id="old", profile="p-old"), UserRecord(user_id="new", profile="p-new")]
    assert summaries_for(users, Echo(), store) == ["stored text", "p-new"]
    with pytest.raises(KeyError, match="new"):
        summaries_for(users, None, store)


def test_bad_store_line_names_file_line_field_and_nothing_changes(tmp_path):
    path = tmp_path / "s.jsonl"
    good = {"user_id": "a", "summary": "x", "summarizer_version": "v"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"user_id": "b", "summary": 3, "summarizer_version": "v"})
                    + "\n")
    before = path.read_bytes()
    with pytest.raises(FeedbackFileError) as err:
        SummaryStore(path)
    issue = err.value.issues[0]
    assert (issue.line, issue.field) == (2, "summary") and str(path) in str(err.value)
    assert main(["summaries", "edit", "a", "--store", str(path), "--text", "y"]) == 1
    assert path.read_bytes() == before


def test_cli_show_edit_export(tmp_path, capsys):
    path = tmp_path / "s.jsonl"
    SummaryStore(path).record({"u1": "Prefers: dogs."}, summarizer_version="cpu@abc", step=7)
    assert main(["summaries", "show", "u1", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Prefers: dogs." in out and "cpu@abc step 7" in out
    assert main(["summaries", "edit", "u1", "--store", str(path), "--text", "Prefers: cats.", "--author", "me"]) == 0
    assert SummaryStore(path).get("u1").summary == "Prefers: cats."
    assert main(["summaries", "show", "u1", "--store", str(path), "--history"]) == 0
    assert "edited by me" in capsys.readouterr().out
    assert main(["summaries", "export", "--store", str(path), "--out", str(tmp_path / "e.jsonl")]) == 0
    assert main(["summaries", "show", "nobody", "--store", str(path)]) == 1
