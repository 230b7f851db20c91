"""Converters from public feedback formats to pluralign feedback files (one module per source format).

Each module exposes ``convert(source: Path, **opts) -> list[UserRecord]``, an ``Options`` dataclass (the
``**opts`` it accepts, each field with help text; loadable with :func:`pluralign.config.load_config`) and a
one-line ``SUMMARY``. A converter reads everything first and raises one
:class:`~pluralign.data.io.FeedbackFileError` listing every bad row (file, line, field) before returning, so a
failed conversion never writes anything.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep `pluralign --help` from importing pydantic models
    from pluralign.data.schema import UserRecord

#: format name (as typed on the command line) -> module in this package
FORMATS: dict[str, str] = {
    "plus": "plus",
    "trl": "trl",
    "polis": "polis",
    "hh-rlhf": "hh_rlhf",
    "arena": "arena",
    "oasst": "oasst",
    "ratings": "ratings",
}


def get_converter(fmt: str) -> ModuleType:
    """The converter module for ``fmt``; ``ValueError`` naming the known formats otherwise."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return importlib.import_module(f"{__name__}.{FORMATS[fmt]}")


def convert(fmt: str, source: str | Path, **opts) -> list[UserRecord]:
    """Convert ``source`` (a file or folder) in format ``fmt`` into user records."""
    return get_converter(fmt).convert(Path(source), **opts)


__all__ = ["FORMATS", "convert", "get_converter"]
