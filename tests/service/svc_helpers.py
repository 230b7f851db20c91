"""Helpers for the service tests. Real servers on loopback: the app under uvicorn in a thread, SQLite files in tmp, PostgreSQL in a fresh schema."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from ports import free_port

ADMIN_KEY = "test-admin-key-0123456789"
PG_URL = os.environ.get("PLURALIGN_TEST_PG_URL")


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield its base URL; shut it down cleanly."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards (tests can rerun)."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need PLURALIGN_TEST_PG_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/"
                    "test); .ci/run sets it")
    schema = f"pluralign_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def admin(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


def as_user(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def token_for(base: str, user_id: str) -> str:
    with admin(base) as c:
        r = c.post(f"/v1/users/{user_id}/tokens")
        r.raise_for_status()
        return r.json()["token"]


def raw_request(base: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                *, raw_headers: bytes = b"", timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with the path, headers and body sent byte for byte as given (no client-side
    normalisation of ``..``, no header validation), for hostile-input tests. Returns (status, headers, body)."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(base)
    head = [f"{method} {path} HTTP/1.1", f"Host: {u.hostname}:{u.port}", "Connection: close",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    data = ("\r\n".join(head) + "\r\n").encode("utf-8", "surrogateescape") + raw_headers + b"\r\n" + body
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as sock:
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
