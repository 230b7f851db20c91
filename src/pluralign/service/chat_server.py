"""A small OpenAI-compatible Chat Completions server for a local HF causal LM.

It is the proxy's upstream in tests and demos (``pluralign serve-chat``): ``POST /v1/chat/completions`` renders the
messages with the tokenizer's chat template and samples with ``model.generate``; ``n`` answers per request,
``seed`` for repeatable sampling, optional bearer key. Not for production traffic: one generation at a time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from pluralign.service.errors import ApiError, install_error_handlers
from pluralign.service.proxy import ChatMessageIn, message_text


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


def create_chat_app(model, tokenizer, *, model_id: str = "local", api_key: str | None = None,
                    default_max_tokens: int = 32) -> FastAPI:
    """The app; ``app.state.received`` keeps the last 100 request bodies (what the upstream was really sent)."""
    app = FastAPI(title="pluralign chat server", description=__doc__)
    install_error_handlers(app)
    lock = threading.Lock()
    app.state.received = deque(maxlen=100)
    model.eval()

    def _check_key(request: Request) -> None:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            raise ApiError(401, "unauthorized", "invalid API key")

    def _generate(req: CompletionRequest) -> tuple[list[tuple[str, str]], int, int]:
        import torch

        messages = [{"role": m.role, "content": message_text(m.content)} for m in req.messages]
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        max_new = req.max_completion_tokens or req.max_tokens or default_max_tokens
        with lock, torch.no_grad():
            if req.seed is not None:
                torch.manual_seed(req.seed)
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=req.temperature > 0,
                                 temperature=req.temperature if req.temperature > 0 else None,
                                 top_p=req.top_p if req.temperature > 0 else None,
                                 num_return_sequences=req.n, pad_token_id=tokenizer.pad_token_id)
        prompt_len = enc["input_ids"].shape[1]
        answers, completion_tokens = [], 0
        for seq in out:
            new = seq[prompt_len:].tolist()
            stop = tokenizer.eos_token_id in new
            if stop:
                new = new[: new.index(tokenizer.eos_token_id)]
            completion_tokens += len(new)
            answers.append((tokenizer.decode(new, skip_special_tokens=True), "stop" if stop else "length"))
        return answers, prompt_len, completion_tokens

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
        answers, prompt_tokens, completion_tokens = await run_in_threadpool(_generate, req)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model or model_id,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason}
                        for i, (text, reason) in enumerate(answers)],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "model": model_id}

    return app


def load_chat_model(spec: str, *, seed: int = 0):
    """``tiny`` (a random tiny Qwen2 from ``pluralign.models.tiny``) or a local HF model directory."""
    if spec == "tiny":
        from pluralign.models.tiny import tiny_causal_lm

        return tiny_causal_lm(seed=seed)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pluralign.models.backbone import resolve_backbone

    path = resolve_backbone(spec)
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
