"""``pluralign summaries generate`` with the embedded default LLM: real abstractive summaries for every user of a
feedback file, stored with provenance and readable with ``summaries export``."""

from __future__ import annotations

import json

import pytest

from pet_users import make_users
from pluralign.cli import main
from pluralign.data.io import write_users
from pluralign.summarizers.store import SummaryStore

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # generates with the real SmolLM2


def test_summaries_generate_with_the_default_llm(tmp_path, capsys):
    data, store, out = tmp_path / "users.jsonl", tmp_path / "summaries.jsonl", tmp_path / "export.jsonl"
    write_users(data, make_users(n=2, pairs_per_user=2))
    assert main(["summaries", "generate", "--data", str(data), "--store", str(store), "--max-new-tokens", "24"]) == 0
    entries = SummaryStore(store).latest()
    assert set(entries) == {"user00", "user01"}
    for e in entries.values():
        assert e.summarizer_version.startswith("hf:SmolLM2-135M-Instruct@step0") and e.step == 0
        assert e.source == "model" and len(e.summary.split()) >= 3 and "##Summary" not in e.summary
    assert "summarised 2 users" in capsys.readouterr().out
    assert main(["summaries", "export", "--store", str(store), "--out", str(out)]) == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["user_id"]: r["summary"] for r in exported} == {u: e.summary for u, e in entries.items()}
