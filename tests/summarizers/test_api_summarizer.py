"""The api summarizer against a real OpenAI-compatible server on loopback (tiny model behind FastAPI)."""

from __future__ import annotations

import pytest
from openai_server import make_app, serve

from pluralign.summarizers.api import ApiSummarizer, ApiSummarizerError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def flaky_server():
    app = make_app(fail_first=2)
    url, server = serve(app)
    yield url, app
    server.should_exit = True


def test_summaries_over_http_with_retries(flaky_server, pet_users):
    url, app = flaky_server
    s = ApiSummarizer(url, "tiny", max_tokens=8, concurrency=2, backoff=0.01)
    out = s.summarize(pet_users[:3])
    assert len(out) == 3 and all(isinstance(z, str) and "##Summary" not in z for z in out)
    assert app.state.requests == 5  # two 503s were retried
    assert s.version.startswith("api:tiny@127.0.0.1")


def test_client_error_is_clear_and_not_retried(flaky_server, pet_users):
    url, app = flaky_server
    before = app.state.requests
    with pytest.raises(ApiSummarizerError, match="HTTP 404"):
        ApiSummarizer(url, "missing-model", backoff=0.01).summarize(pet_users[:1])
    assert app.state.requests == before + 1


def test_unreachable_endpoint_gives_up_with_reason(pet_users):
    s = ApiSummarizer("http://127.0.0.1:9/v1", "tiny", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(ApiSummarizerError, match="gave up after 2 attempts"):
        s.summarize(pet_users[:1])
