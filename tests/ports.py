"""A free loopback TCP port for tests that start servers or multi-process jobs (never a fixed number: parallel runs
on one machine would collide)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the OS reports free right now (bind to port 0, read it back, release it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
