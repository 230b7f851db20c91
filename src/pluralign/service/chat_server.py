"""An OpenAI-compatible Chat Completions server for a local causal LM (``pluralign serve-chat``).

It is the personalisation proxy's upstream and the ``api`` summarizer's endpoint when no hosted model is used; its
default model is the embedded SmolLM2-135M-Instruct. ``POST /v1/chat/completions`` renders the messages with the
tokenizer's chat template and samples with :mod:`pluralign.models.generation`: concurrent requests are batched
(a worker thread takes whatever is waiting, up to ``max_batch`` sequences, and samples it in one batch; the ``n``
answers of a request share its pre-fill), each answer stops at EOS or ``max_tokens``, and ``seed`` makes a request's
answers repeatable whatever else shares its batch. Optional bearer key. No streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from pluralign.models.generation import Row, encode_prompts, eos_ids, pad_id, row_seed, sample_rows
from pluralign.models.llm import load_causal_lm
from pluralign.models.tiny import tiny_causal_lm
from pluralign.service.errors import ApiError, install_error_handlers
from pluralign.service.proxy import ChatMessageIn, message_text

log = logging.getLogger(__name__)


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields this server ignores (user, ...)

    messages: list[ChatMessageIn] = Field(min_length=1)
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1, le=1024)
    max_completion_tokens: int | None = Field(None, ge=1, le=1024)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=16)
    seed: int | None = None
    stream: bool = False


@dataclass
class _Job:
    prompt_ids: list[int]
    n: int
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    future: Future = field(default_factory=Future)


class BatchedGenerator:
    """Collects concurrent generation jobs and samples them together on one worker thread.

    The worker waits for a first job, then up to ``max_wait_s`` for more, until ``max_batch`` sequences are
    gathered (a job asking for more than that goes alone); every job's answers come back through its future.
    ``batches`` counts the sampling calls and ``largest_batch`` is the most jobs one call served (for tests and
    monitoring)."""

    def __init__(self, model, tokenizer, *, max_batch: int = 16, max_wait_s: float = 0.01):
        self.model, self.tokenizer = model, tokenizer
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.eos, self.pad = eos_ids(model, tokenizer), pad_id(tokenizer)
        self.batches = 0
        self.largest_batch = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="chat-generation", daemon=True)
        self._thread.start()

    def submit(self, prompt_ids: list[int], *, n: int, max_new_tokens: int, temperature: float, top_p: float,
               seed: int) -> Future:
        job = _Job(list(prompt_ids), n, max_new_tokens, temperature, top_p, seed)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, rows, stop = [first], first.n, False
        deadline = time.monotonic() + self.max_wait_s
        while rows < self.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            if rows + job.n > self.max_batch:
                self._queue.put(job)  # next batch
                break
            jobs.append(job)
            rows += job.n
        return jobs, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            jobs, stop = self._gather(first)
            rows = [Row(k, row_seed(job.seed, 0, j), job.max_new_tokens, job.temperature, job.top_p)
                    for k, job in enumerate(jobs) for j in range(job.n)]
            try:
                tokens = sample_rows(self.model, [job.prompt_ids for job in jobs], rows, eos_token_id=self.eos,
                                     pad_token_id=self.pad)
            except Exception as e:  # noqa: BLE001 - handed to every waiting request, which reports it
                log.exception("generation failed")
                for job in jobs:
                    job.future.set_exception(e)
                continue
            self.batches += 1
            self.largest_batch = max(self.largest_batch, len(jobs))
            start = 0
            for job in jobs:
                job.future.set_result(tokens[start:start + job.n])
                start += job.n


def create_chat_app(model, tokenizer, *, model_id: str = "local", api_key: str | None = None,
                    default_max_tokens: int = 64, max_batch: int = 16, max_wait_ms: float = 10.0) -> FastAPI:
    """The app; ``app.state.received`` keeps the last 100 request bodies (what the upstream was really sent) and
    ``app.state.generator`` is the :class:`BatchedGenerator`."""
    generator = BatchedGenerator(model, tokenizer, max_batch=max_batch, max_wait_s=max_wait_ms / 1000)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        generator.close()

    app = FastAPI(title="pluralign chat server", description=__doc__, lifespan=lifespan)
    install_error_handlers(app)
    app.state.received = deque(maxlen=100)
    app.state.generator = generator
    model.eval()
    eos = set(generator.eos)

    def _check_key(request: Request) -> None:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            raise ApiError(401, "unauthorized", "invalid API key")

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _check_key(request)
        return {"object": "list", "data": [{"id": model_id, "object": "model", "owned_by": "pluralign"}]}

    @app.post("/v1/chat/completions")
    async def chat(req: CompletionRequest, request: Request) -> dict[str, Any]:
        _check_key(request)
        if req.stream:
            raise ApiError(400, "unsupported", "streaming is not supported by this server", field="body.stream")
        app.state.received.append(req.model_dump())
        messages = [{"role": m.role, "content": message_text(m.content)} for m in req.messages]

        prompt_ids = encode_prompts(tokenizer, [messages])[0]
        seed = req.seed if req.seed is not None else int(torch.randint(0, 1 << 62, (1,)).item())
        future = generator.submit(prompt_ids, n=req.n, max_new_tokens=req.max_completion_tokens or req.max_tokens
                                  or default_max_tokens, temperature=req.temperature, top_p=req.top_p, seed=seed)
        answers = await asyncio.wrap_future(future)
        choices, completion_tokens = [], 0
        for i, tokens in enumerate(answers):
            stopped = bool(tokens) and tokens[-1] in eos
            completion_tokens += len(tokens) - stopped
            choices.append({"index": i, "finish_reason": "stop" if stopped else "length",
                            "message": {"role": "assistant",
                                        "content": tokenizer.decode(tokens, skip_special_tokens=True)}})
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model or model_id,
            "choices": choices,
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": completion_tokens,
                      "total_tokens": len(prompt_ids) + completion_tokens},
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "model": model_id}

    return app


def load_chat_model(spec: str | None = None, *, seed: int = 0, dtype: str = "auto"):
    """``tiny`` (a random tiny Qwen2 from ``pluralign.models.tiny``, for plumbing), or any name
    :func:`pluralign.models.llm.load_causal_lm` takes: ``None`` = the embedded SmolLM2-135M-Instruct, a local HF
    directory or a ``.gguf`` file."""
    if spec == "tiny":
        return tiny_causal_lm(seed=seed)

    return load_causal_lm(spec, dtype=dtype)
