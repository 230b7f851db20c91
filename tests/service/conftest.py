"""Fixtures of the service tests: SQLite files in tmp, PostgreSQL in a fresh schema, the app under uvicorn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from svc_helpers import ADMIN_KEY, live_server, pg_schema_url

from pluralign.service.app import create_app
from pluralign.service.config import ServiceConfig


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
    else:
        with pg_schema_url() as url:
            yield url


@pytest.fixture
def server(sqlite_url) -> Iterator[str]:
    with live_server(create_app(ServiceConfig(db=sqlite_url), admin_key=ADMIN_KEY)) as url:
        yield url


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """An untrained-head SummaryConditionedRM and a P[Love] model fitted on a few reactions, saved to tmp."""
    from pluralign.models.love import LoveModel
    from pluralign.models.reward_model import SummaryConditionedRM

    root = tmp_path_factory.mktemp("models")
    rm = SummaryConditionedRM.from_backbone("sentence-transformers/all-MiniLM-L6-v2", max_length=64)
    rm.save_pretrained(root / "rm")
    prompts = ["how are you?"] * 8
    responses = ["Great, thanks!", "Fine.", "Bye! Sending love!", "ok", "I love chatting with you!", "no",
                 "Happy to help :)", "whatever"]
    LoveModel().fit(prompts, responses, [1, 0, 1, 0, 1, 0, 1, 0]).save_pretrained(root / "love")
    return root / "rm", root / "love"
