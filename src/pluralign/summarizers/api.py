"""The ``api`` summarizer: zero-shot summaries from any OpenAI-compatible chat endpoint (vLLM, llama.cpp, hosted).

Used for the PLUS-untrained and "GPT-4o as summarizer" baselines. Plain ``/chat/completions`` over httpx: a bounded
number of requests in flight, retries with exponential backoff on 429 / 5xx / connection errors (honouring
``Retry-After``), and a clear error naming the endpoint and status otherwise. Not trainable: RL needs log-probs of
our own weights.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx

from pluralign.data.schema import UserRecord
from pluralign.summarizers.base import build_summarizer_prompt, extract_summary

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class ApiSummarizerError(RuntimeError):
    pass


class ApiSummarizer:
    """``summarize`` sends one chat request per context; ``sample=False`` uses temperature 0."""

    backend = "api"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, max_tokens: int = 256,
                 temperature: float = 1.0, words: int = 50, concurrency: int = 4, retries: int = 4,
                 backoff: float = 0.5, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key or os.environ.get("PLURALIGN_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.max_tokens, self.temperature, self.words = max_tokens, temperature, words
        self.concurrency, self.retries, self.backoff = max(1, concurrency), retries, backoff
        self.timeout = timeout

    @property
    def version(self) -> str:
        return f"api:{self.model}@{urlparse(self.base_url).netloc}"

    def _request(self, client: httpx.Client, prompt: str, temperature: float) -> str:
        url = f"{self.base_url}/chat/completions"
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_tokens, "temperature": temperature}
        last = ""
        for attempt in range(self.retries + 1):
            try:
                resp = client.post(url, json=body)
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()["choices"][0]["message"]["content"] or ""
                    except (ValueError, KeyError, IndexError, TypeError):
                        raise ApiSummarizerError(f"{url}: response is not an OpenAI chat completion: "
                                                 f"{resp.text[:200]!r}") from None
                if resp.status_code not in RETRY_STATUS:
                    raise ApiSummarizerError(f"{url}: HTTP {resp.status_code}: {resp.text[:300]}")
                last = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit() and attempt < self.retries:
                    time.sleep(min(float(retry_after), 30.0))
                    continue
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise ApiSummarizerError(f"{url}: gave up after {self.retries + 1} attempts ({last})")

    def summarize(self, contexts: Sequence[UserRecord], *, sample: bool = False) -> list[str]:
        prompts = [build_summarizer_prompt(u, words=self.words) for u in contexts]
        temperature = self.temperature if sample else 0.0
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with httpx.Client(timeout=self.timeout, headers=headers) as client, \
                ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            texts = list(pool.map(lambda p: self._request(client, p, temperature), prompts))
        return [extract_summary(t) for t in texts]
