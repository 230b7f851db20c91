"""A tiny OpenAI-compatible chat server over ``tiny_causal_lm()`` for the api summarizer's tests.

``fail_first`` makes the first N requests answer 503 (to exercise retries); requests are counted in ``app.state``.
"""

from __future__ import annotations

import socket
import threading
import time

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from pluralign.models.tiny import tiny_causal_lm


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage]
    max_tokens: int = 16
    temperature: float = 1.0


def make_app(fail_first: int = 0) -> FastAPI:
    model, tok = tiny_causal_lm(seed=0)
    app = FastAPI()
    app.state.requests = 0
    lock = threading.Lock()

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict:
        with lock:
            app.state.requests += 1
            n = app.state.requests
        if n <= fail_first:
            raise HTTPException(503, "warming up")
        if req.model != "tiny":
            raise HTTPException(404, f"model {req.model} not found")
        text = tok.apply_chat_template([m.model_dump() for m in req.messages], tokenize=False,
                                       add_generation_prompt=True)
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        with lock, torch.no_grad():
            out = model.generate(**ids, max_new_tokens=req.max_tokens, do_sample=req.temperature > 0,
                                 pad_token_id=tok.pad_token_id)
        content = "##Summary " + tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        return {"id": f"c{n}", "object": "chat.completion", "model": req.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "length"}]}

    return app


def serve(app: FastAPI):
    """Start uvicorn on a free loopback port in a thread; return (base_url, server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1", server
