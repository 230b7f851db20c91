"""User summarizers: one interface, three backends (hf, api, cpu), and a summary store with provenance.

``load_summarizer(path)`` opens a saved summarizer directory (``pluralign train plus`` writes ``OUT/summarizer``).
Backends import torch / transformers lazily, so importing this package is cheap.
"""

from __future__ import annotations

from pathlib import Path

from pluralign.summarizers.base import (
    SUMMARY_MARKER,
    Summarizer,
    build_summarizer_prompt,
    extract_summary,
    render_context,
)


def load_summarizer(path: str | Path):
    """A saved ``cpu`` summarizer (has ``summarizer.json``) or an ``hf`` model directory."""
    p = Path(path)
    # Function-level imports: both backends import torch; the package's prompt helpers must not.
    if (p / "summarizer.json").exists():
        from pluralign.summarizers.cpu import CpuSummarizer

        return CpuSummarizer.from_pretrained(p)
    if (p / "config.json").exists() or (p / "adapter_config.json").exists():
        from pluralign.summarizers.hf import HFSummarizer

        return HFSummarizer.from_pretrained(str(p))
    raise FileNotFoundError(f"{p}: not a summarizer directory (expected summarizer.json or an HF model)")


__all__ = ["SUMMARY_MARKER", "Summarizer", "build_summarizer_prompt", "extract_summary", "load_summarizer",
           "render_context"]
