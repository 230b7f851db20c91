"""Bounded load generation against a service on loopback: ingestion throughput/latency, kill -9 durability,
scoring throughput. Used by ``benchmarks/service_load.py`` and the slow tests; refuses non-loopback targets.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx
import numpy as np

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_loopback(base: str) -> None:
    if urlparse(base).hostname not in LOOPBACK:
        raise ValueError(f"{base}: the load generator only targets loopback servers")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db_url: str, admin_key: str, *, extra_args: list[str] | None = None, timeout_s: float = 120.0
                 ) -> tuple[subprocess.Popen, str]:
    """``pluralign serve`` in a subprocess on a free loopback port; return it and its base URL once healthy."""
    port = free_port()
    env = {**os.environ, "PLURALIGN_ADMIN_KEY": admin_key, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "pluralign", "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db_url,
           "--log-level", "warning", *(extra_args or [])]
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}: {' '.join(cmd)}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not become healthy within {timeout_s:.0f} s")


@dataclass
class LoadResult:
    clients: int
    requests: int = 0
    events: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    acked_keys: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([np.nan])
        return {"clients": self.clients, "requests": self.requests, "events": self.events, "errors": self.errors,
                "seconds": round(self.seconds, 2), "events_per_s": round(self.events / max(self.seconds, 1e-9), 1),
                "requests_per_s": round(self.requests / max(self.seconds, 1e-9), 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2)}


def _event(i: int, client: int) -> dict:
    return {"type": "reaction", "reaction_id": f"c{client}-r{i}", "kind": "love", "value": float(i % 2),
            "prompt": f"prompt {i % 50}", "response": f"response {i} of client {client}", "timestamp": time.time()}


async def ingest_load(base: str, admin_key: str, *, clients: int, max_events: int, max_seconds: float,
                      events_per_request: int = 1, stop_on_error: bool = False, run_id: str | None = None
                      ) -> LoadResult:
    """``clients`` concurrent clients each posting events (one user per client) until ``max_events`` in all or
    ``max_seconds`` pass. Latency is per request, from send to acknowledgement (i.e. after the commit)."""
    _check_loopback(base)
    run_id = run_id or uuid.uuid4().hex[:8]
    res = LoadResult(clients)
    sent = 0
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {admin_key}"}, limits=limits,
                                 timeout=30) as http:

        async def client(k: int) -> None:
            nonlocal sent
            user = f"load-{run_id}-{k}"
            i = 0
            while time.perf_counter() < deadline and sent < max_events:
                batch = [_event(i + j, k) for j in range(events_per_request)]
                i += events_per_request
                sent += len(batch)
                t0 = time.perf_counter()
                try:
                    r = await http.post(f"/v1/users/{user}/feedback", json={"events": batch})
                except httpx.HTTPError:
                    res.errors += 1
                    if stop_on_error:
                        return
                    continue
                if r.status_code != 200:
                    res.errors += 1
                    continue
                res.latencies_ms.append((time.perf_counter() - t0) * 1000)
                res.requests += 1
                res.events += len(batch)
                res.acked_keys.extend((user, e["idempotency_key"]) for e in r.json()["events"])

        t0 = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        res.seconds = time.perf_counter() - t0
    return res


def crash_test(db_url: str, admin_key: str, *, clients: int = 8, kill_after_s: float = 2.0,
               events_per_request: int = 1) -> dict:
    """Kill -9 the server during a burst of writes; count acknowledged events missing from the database."""
    import sqlalchemy as sa

    proc, base = start_server(db_url, admin_key)

    async def burst() -> LoadResult:
        asyncio.get_running_loop().call_later(kill_after_s, lambda: os.kill(proc.pid, signal.SIGKILL))
        return await ingest_load(base, admin_key, clients=clients, max_events=10**9, max_seconds=kill_after_s + 5,
                                 events_per_request=events_per_request, stop_on_error=True)

    try:
        res = asyncio.run(burst())
    finally:
        proc.kill()
        proc.wait()
    engine = sa.create_engine(db_url)
    with engine.connect() as c:
        stored = set(map(tuple, c.execute(sa.text("SELECT user_id, idempotency_key FROM feedback_events")).all()))
    engine.dispose()
    acked = set(res.acked_keys)
    return {"acknowledged": len(acked), "stored": len(stored), "lost": len(acked - stored),
            "stored_but_unacknowledged": len(stored - acked), "kill_after_s": kill_after_s, "clients": clients}


async def score_load(base: str, admin_key: str, *, clients: int, max_requests: int, max_seconds: float,
                     responses_per_request: int = 2) -> LoadResult:
    """Concurrent /v1/score requests with unique texts (so no encoder cache helps); requests/s and latency."""
    _check_loopback(base)
    res = LoadResult(clients)
    sent = 0
    deadline = time.perf_counter() + max_seconds
    run_id = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {admin_key}"},
                                 timeout=120) as http:

        async def client(k: int) -> None:
            nonlocal sent
            i = 0
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                i += 1
                body = {"user_id": f"score-{k}", "prompt": f"question {run_id} {k} {i}",
                        "responses": [f"answer {j} to {run_id} {k} {i}" for j in range(responses_per_request)]}
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/score", json=body)
                except httpx.HTTPError:
                    res.errors += 1
                    continue
                if r.status_code != 200:
                    res.errors += 1
                    continue
                res.latencies_ms.append((time.perf_counter() - t0) * 1000)
                res.requests += 1
                res.events += responses_per_request

        t0 = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        res.seconds = time.perf_counter() - t0
    return res
