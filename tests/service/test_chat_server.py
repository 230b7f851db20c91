"""``pluralign serve-chat``'s server end to end on loopback: batching of concurrent requests, n / seed /
max_tokens / EOS (tiny model, plumbing), and the real default LLM behind the feedback service's chat proxy and
behind the ``api`` summarizer."""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import pytest
from svc_helpers import ADMIN_KEY, as_user, live_server, token_for

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.service.app import create_app
from pluralign.service.chat_server import create_chat_app, load_chat_model
from pluralign.service.config import ServiceConfig
from pluralign.summarizers.api import ApiSummarizer

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _ask(base: str, **body) -> dict:
    r = httpx.post(f"{base}/v1/chat/completions", json={"messages": QUESTION, **body}, timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


def test_concurrent_requests_share_batches_and_keep_their_seeds():
    model, tok = load_chat_model("tiny")
    app = create_chat_app(model, tok, model_id="tiny", max_wait_ms=500)
    with live_server(app) as base:
        alone = _ask(base, seed=5, n=2, max_tokens=6)
        assert [c["index"] for c in alone["choices"]] == [0, 1]
        assert alone["usage"]["completion_tokens"] <= 12 and alone["usage"]["prompt_tokens"] > 5
        assert {c["finish_reason"] for c in alone["choices"]} <= {"stop", "length"}
        bodies = [dict(seed=5, n=2, max_tokens=6), dict(seed=9, max_tokens=3, temperature=0.0),
                  dict(seed=1, top_p=0.5, max_tokens=4), dict(n=3, max_tokens=2)]
        with cf.ThreadPoolExecutor(len(bodies)) as pool:
            together = list(pool.map(lambda b: _ask(base, **b), bodies))
        assert app.state.generator.largest_batch >= 2  # concurrent requests were sampled together
        assert together[0]["choices"] == alone["choices"]  # a seeded answer does not depend on its batch-mates
        assert [len(r["choices"]) for r in together] == [2, 1, 1, 3]
        assert together[3]["usage"]["completion_tokens"] <= 6
        assert httpx.post(f"{base}/v1/chat/completions", json={"messages": QUESTION, "stream": True}).status_code == 400
        assert httpx.post(f"{base}/v1/chat/completions", json={"messages": []}).status_code in (400, 422)


@pytest.fixture(scope="module")
def real_upstream():
    """The real SmolLM2-135M-Instruct behind serve-chat's app, as ``pluralign serve-chat`` starts it."""
    model, tok = load_chat_model(None)
    app = create_chat_app(model, tok, model_id="smollm2-135m", api_key="upstream-secret")
    with live_server(app) as base:
        yield base, app


@pytest.mark.slow  # loads the real SmolLM2
def test_proxy_forwards_to_the_real_model(real_upstream, sqlite_url, monkeypatch):
    upstream, chat_app = real_upstream
    monkeypatch.setenv("PLURALIGN_UPSTREAM_KEY", "upstream-secret")
    cfg = ServiceConfig(db=sqlite_url, upstream_url=f"{upstream}/v1")
    with live_server(create_app(cfg, admin_key=ADMIN_KEY)) as base:
        token = token_for(base, "ann")
        with as_user(base, token) as c:
            c.timeout = httpx.Timeout(300)  # a shared CI machine can be slow; the proxy's own timeout is 120 s
            assert c.put("/v1/users/ann/summary", json={"summary": "Wants one-word answers."}).status_code == 200
            r = c.post("/v1/chat/completions", json={"model": "smollm2-135m", "messages": QUESTION,
                                                     "max_tokens": 12, "temperature": 0.0})
    assert r.status_code == 200, r.text
    answer = r.json()["choices"][0]["message"]["content"]
    assert "Paris" in answer, answer
    sent = chat_app.state.received[-1]["messages"]
    assert sent[0]["role"] == "system" and "Wants one-word answers." in sent[0]["content"]


@pytest.mark.slow  # loads the real SmolLM2
def test_api_summarizer_against_the_real_model(real_upstream):
    upstream, _ = real_upstream
    users = [UserRecord(user_id=f"u{i}", pairs=[PreferencePair(
        pair_id=f"p{i}", prompt="Which pet should I get?", chosen=good, rejected=bad)])
        for i, (good, bad) in enumerate([("Dogs are loyal and love long walks.", "Cats are calm."),
                                         ("A kitten purrs quietly on your lap.", "A puppy needs walks.")])]
    s = ApiSummarizer(f"{upstream}/v1", "smollm2-135m", api_key="upstream-secret", max_tokens=20, retries=0,
                      timeout=600)  # a loaded shared machine can take minutes; an idle one takes seconds
    summaries = s.summarize(users)
    assert len(summaries) == 2
    for z in summaries:
        assert len(z.split()) >= 3 and "##Summary" not in z, summaries
    with pytest.raises(Exception, match="401"):
        ApiSummarizer(f"{upstream}/v1", "smollm2-135m", api_key="wrong", retries=0).summarize(users[:1])
