"""The small JSON file a saved model keeps beside its weights (settings, priors, statistics): written atomically and
last, so its presence means the save finished; read with errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_state(path: str | os.PathLike, state: dict, *, indent: int | None = None) -> Path:
    """Write ``state`` as JSON to ``path`` through a temporary file and a rename."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(state, indent=indent), encoding="utf-8")
    os.replace(tmp, p)
    return p


def read_state(path: str | os.PathLike, what: str) -> dict:
    """The JSON object at ``path``; a missing file or bad JSON is an error saying that no ``what`` is here."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no {what} here (expected {p.name} written by save_pretrained)")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
