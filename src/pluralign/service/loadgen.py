"""Bounded load generation against a service on loopback: ingestion throughput/latency, kill -9 durability,
scoring throughput. Used by ``benchmarks/service_load.py`` and the slow tests; refuses non-loopback targets.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import sqlalchemy as sa

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_loopback(base: str) -> None:
    if urlparse(base).hostname not in LOOPBACK:
        raise ValueError(f"{base}: the load generator only targets loopback servers")


def free_port() -> int:
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
    client_cpu_s: float = 0.0

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([np.nan])
        return {"clients": self.clients, "requests": self.requests, "events": self.events, "errors": self.errors,
                "seconds": round(self.seconds, 2), "events_per_s": round(self.events / max(self.seconds, 1e-9), 1),
                "requests_per_s": round(self.requests / max(self.seconds, 1e-9), 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
                "client_cpu_s": round(self.client_cpu_s, 2)}


def _event(i: int, client: str) -> dict:
    return {"type": "reaction", "reaction_id": f"{client}-r{i}", "kind": "love", "value": float(i % 2),
            "prompt": f"prompt {i % 50}", "response": f"response {i} of client {client}", "timestamp": time.time()}


def _ingest_request(user: str, i: int, epr: int) -> tuple[str, dict, int]:
    return f"/v1/users/{user}/feedback", {"events": [_event(i + j, user) for j in range(epr)]}, epr


def _score_request(user: str, i: int, epr: int) -> tuple[str, dict, int]:
    return "/v1/score", {"user_id": user, "prompt": f"question {user} {i}",
                         "responses": [f"answer {j} to {user} {i}" for j in range(epr)]}, epr


_REQUESTS = {"ingest": _ingest_request, "score": _score_request}


def _client_process(port: int, admin_key: str, kind: str, users: list[str], max_requests: int, deadline: float,
                    per_request: int, stop_on_error: bool) -> dict:
    """One load process: a thread per user, each a keep-alive stdlib HTTP connection sending requests in a loop.

    Stdlib ``http.client`` in threads costs the load generator several times less CPU per request than an async
    client here, which matters when generator and server share two cores.
    """
    make = _REQUESTS[kind]
    lock = threading.Lock()
    out = {"requests": 0, "events": 0, "errors": 0, "latencies_ms": [], "acked": []}
    budget = [max_requests]

    def worker(user: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
        i = 0
        while time.time() < deadline:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            path, body, n = make(user, i, per_request)
            i += per_request
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, json.dumps(body), headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    out["errors"] += 1
                if stop_on_error:
                    return
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                if resp.status != 200:
                    out["errors"] += 1
                    continue
                out["requests"] += 1
                out["events"] += n
                out["latencies_ms"].append(ms)
                if kind == "ingest":
                    out["acked"].extend((user, e["idempotency_key"]) for e in json.loads(data)["events"])

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=worker, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return out


def run_load(base: str, admin_key: str, kind: str, *, clients: int, max_requests: int, max_seconds: float,
             per_request: int = 1, stop_on_error: bool = False, threads_per_process: int = 16,
             run_id: str | None = None) -> LoadResult:
    """``clients`` concurrent clients (one user each) until ``max_requests`` in all or ``max_seconds`` pass.

    ``kind`` is ``ingest`` (``per_request`` events per POST .../feedback) or ``score`` (``per_request`` candidates
    per POST /v1/score). Latency is per request, send to answer (for ingestion: after the commit). Clients are
    spread over processes of at most ``threads_per_process`` threads.
    """
    _check_loopback(base)
    port = urlparse(base).port
    run_id = run_id or uuid.uuid4().hex[:8]
    users = [f"{kind}-{run_id}-{k}" for k in range(clients)]
    groups = [users[i:i + threads_per_process] for i in range(0, clients, threads_per_process)]
    res = LoadResult(clients)
    t0 = time.perf_counter()
    deadline = time.time() + max_seconds
    with ProcessPoolExecutor(len(groups)) as pool:
        futs = [pool.submit(_client_process, port, admin_key, kind, g, -(-max_requests * len(g) // clients),
                            deadline, per_request, stop_on_error) for g in groups]
        for f in futs:
            out = f.result()
            res.requests += out["requests"]
            res.events += out["events"]
            res.errors += out["errors"]
            res.latencies_ms.extend(out["latencies_ms"])
            res.acked_keys.extend(tuple(k) for k in out["acked"])
            res.client_cpu_s += out["cpu_s"]
    res.seconds = time.perf_counter() - t0
    return res


def crash_test(db_url: str, admin_key: str, *, clients: int = 8, kill_after_s: float = 2.0,
               events_per_request: int = 1) -> dict:
    """Kill -9 the server during a burst of writes; count acknowledged events missing from the database."""
    proc, base = start_server(db_url, admin_key)
    timer = threading.Timer(kill_after_s, lambda: os.kill(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        res = run_load(base, admin_key, "ingest", clients=clients, max_requests=10**9, max_seconds=kill_after_s + 10,
                       per_request=events_per_request, stop_on_error=True)
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
    engine = sa.create_engine(db_url)
    with engine.connect() as c:
        stored = set(map(tuple, c.execute(sa.text("SELECT user_id, idempotency_key FROM feedback_events")).all()))
    engine.dispose()
    acked = set(res.acked_keys)
    return {"acknowledged": len(acked), "stored": len(stored), "lost": len(acked - stored),
            "stored_but_unacknowledged": len(stored - acked), "kill_after_s": kill_after_s, "clients": clients}


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``), to show who used the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
