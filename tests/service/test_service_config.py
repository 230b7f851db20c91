"""Settings and pluggable summarizers load from YAML / specs with clear errors; the CLI help explains itself."""

from __future__ import annotations

import pytest

from pluralign.cli import build_parser
from pluralign.config import ConfigError, load_config
from pluralign.data.schema import PreferencePair, Reaction, UserRecord
from pluralign.service.config import ServiceConfig
from pluralign.service.summaries import ExtractiveSummarizer, load_summarizer


def test_service_config_from_yaml_and_overrides(tmp_path):
    y = tmp_path / "svc.yaml"
    y.write_text("db: postgresql+psycopg://postgres@127.0.0.1:5432/test\nbest_of: 4\n")
    cfg = load_config(ServiceConfig, y, ["score_batching=false", "refresh_interval_s=30"])
    assert (cfg.db, cfg.best_of, cfg.score_batching, cfg.refresh_interval_s) == (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test", 4, False, 30.0)
    y.write_text("best_off: 4\n")
    with pytest.raises(ConfigError, match="unknown key 'best_off'"):
        load_config(ServiceConfig, y)


def test_summarizer_specs():
    assert isinstance(load_summarizer("extractive"), ExtractiveSummarizer)
    assert isinstance(load_summarizer("pluralign.service.summaries:ExtractiveSummarizer"), ExtractiveSummarizer)
    with pytest.raises(ValueError, match="cannot load"):
        load_summarizer("pluralign.nowhere:Thing")
    with pytest.raises(ValueError, match="expected 'extractive'"):
        load_summarizer("nonsense")


def test_extractive_summary_quotes_newest_feedback_only():
    rec = UserRecord(user_id="u", pairs=[
        PreferencePair(pair_id=str(i), prompt="q", chosen=f"chosen {i}", rejected=f"rejected {i}") for i in range(5)],
        reactions=[Reaction(reaction_id="r", prompt="p", response="Bye! Sending love!", kind="love", value=1)])
    (text,) = ExtractiveSummarizer(items=2).summarize([rec])
    assert text.startswith('Preferred "chosen 4" over "rejected 4"; "chosen 3" over "rejected 3".')
    assert "chosen 2" not in text and 'Reacted well to "Bye! Sending love!"' in text
    assert ExtractiveSummarizer().summarize([UserRecord(user_id="empty")]) == ["No feedback yet."]


def test_cli_help_documents_serve():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    serve_help = sub.choices["serve"].format_help()
    for flag in ("--host", "--port", "--db", "--rm", "--love", "--upstream-url", "--best-of", "--refresh-interval"):
        assert flag in serve_help
    assert "PLURALIGN_ADMIN_KEY" in serve_help
    assert "--model" in sub.choices["serve-chat"].format_help()
