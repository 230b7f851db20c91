"""The service's settings: one dataclass, loadable from YAML with ``pluralign.config.load_config``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServiceConfig:
    db: str = field(default="sqlite:///./pluralign.db", metadata={
        "help": "database URL: sqlite:///PATH (WAL mode) or postgresql+psycopg://USER@HOST:PORT/DB"})
    admin_key_env: str = field(default="PLURALIGN_ADMIN_KEY", metadata={
        "help": "environment variable holding the admin API key (required; never put the key in a config file)"})
    max_body_bytes: int = field(default=1_000_000, metadata={"help": "requests with a larger body get 413"})
    max_batch_events: int = field(default=1000, metadata={"help": "most events in one POST .../feedback request"})
    write_batch_max: int = field(default=2000, metadata={
        "help": "most events committed in one transaction by the ingestion writer (group commit)"})
    sqlite_synchronous: str = field(default="FULL", metadata={
        "help": "SQLite PRAGMA synchronous: FULL syncs every commit to disk before acknowledging; NORMAL survives "
        "a killed process but not a power cut"})
    sqlite_checkpoint_s: float = field(default=1.0, metadata={
        "help": "SQLite: checkpoint the WAL into the database file every this many seconds on a background thread, "
        "so no acknowledgement waits for it (0 = SQLite's automatic checkpoint inside a commit)"})
    summary_max_chars: int = field(default=2000, metadata={"help": "longest summary a user or a summarizer may store"})
    summary_prompt_chars: int = field(default=1000, metadata={
        "help": "the proxy quotes at most this many characters of a summary into the system prompt"})
    summarizer: str = field(default="extractive", metadata={
        "help": "'extractive' (quotes of the user's newest feedback), 'cpu:DIR' or 'hf:DIR' (a trained pluralign "
        "summarizer), or 'module:attribute' naming a Summarizer (summarize(list[UserRecord]) -> list[str]) or a "
        "zero-argument factory of one"})
    summary_history_items: int = field(default=50, metadata={
        "help": "a refresh reads at most this many of the user's newest events"})
    refresh_interval_s: float = field(default=0.0, metadata={
        "help": "refresh summaries of users with new feedback every this many seconds (0 = only on request); "
        "scheduled refreshes never replace a summary the user wrote"})
    rm: str | None = field(default=None, metadata={"help": "directory of a SummaryConditionedRM (save_pretrained)"})
    love: str | None = field(default=None, metadata={"help": "directory of a LoveModel (P[Love])"})
    score_batching: bool = field(default=True, metadata={
        "help": "batch concurrent /v1/score requests into one model call (off: one call per request)"})
    score_max_batch: int = field(default=64, metadata={"help": "most candidate responses in one batched model call"})
    score_max_wait_ms: float = field(default=5.0, metadata={
        "help": "how long the score batcher waits for more requests before running a batch"})
    score_user_share: int = field(default=1, metadata={
        "help": "fair scoring: one model call takes at most this many candidates of any one user, round robin "
        "across waiting users. Another user waits for at most the call in progress, so 1 keeps their latency "
        "closest to unloaded; larger values give one user's large requests more throughput (BENCHMARKS.md)"})
    score_user_concurrency: int = field(default=4, metadata={
        "help": "most /v1/score requests of one user in flight at once; more get 429 (0 = no limit)"})
    score_rate_per_s: float = field(default=100.0, metadata={
        "help": "per-user rate limit on /v1/score, in candidate responses a second (0 = no limit)"})
    score_burst: float = field(default=256.0, metadata={
        "help": "per-user burst of /v1/score candidates allowed above the rate"})
    auth_fail_per_s: float = field(default=0.5, metadata={
        "help": "failed-authentication throttle: after auth_fail_burst failures a client address may fail this "
        "many times a second; beyond that it gets 429 before its credential is checked (0 = off)"})
    auth_fail_burst: float = field(default=30.0, metadata={
        "help": "failed authentications a client address may make before the throttle applies"})
    token_ttl_s: float = field(default=0.0, metadata={
        "help": "default lifetime of a new end-user token in seconds (0 = no expiry unless the request sets one)"})
    torch_threads: int = field(default=1, metadata={
        "help": "CPU threads for model inference (0 = torch's default). 1 is fastest on a small or shared machine: "
        "concurrency comes from batching requests, and extra intra-op threads only contend for the cores"})
    upstream_url: str | None = field(default=None, metadata={
        "help": "base URL of the OpenAI-compatible server the proxy forwards to (e.g. http://127.0.0.1:8001/v1)"})
    upstream_key_env: str = field(default="PLURALIGN_UPSTREAM_KEY", metadata={
        "help": "environment variable holding the upstream's API key (sent as Bearer; optional)"})
    upstream_timeout_s: float = field(default=120.0, metadata={"help": "timeout of one upstream call"})
    best_of: int = field(default=1, metadata={
        "help": "default best-of-N for the proxy: ask the upstream for N answers, return the one with the highest "
        "personalised reward (needs --rm); a request may set 'best_of' itself"})
