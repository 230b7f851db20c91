"""``summary``: the RM conditioned on a per-user text summary, read from a file or written by a summarizer.

A summaries file is either JSON (``{"user_id": "summary", ...}``) or JSONL, one object per line with ``user_id`` and
``summary`` (the :class:`~pluralign.summarizers.store.SummaryStore` format; its other fields are ignored and the
latest line for a user wins). Summaries from a file must have been written from the users' *context* only; the
bench cannot check that. A summarizer is anything with ``summarize(contexts) -> list[str]`` (the
:class:`~pluralign.summarizers.base.Summarizer` protocol) or a plain callable ``UserRecord -> str``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pluralign.data.io import FeedbackFileError, RecordIssue, iter_jsonl_objects
from pluralign.data.splits import Example
from pluralign.evaluation.methods.base import ConditionedRMMethod
from pluralign.evaluation.methods.plus import summary_metrics


def load_summaries(path: str | os.PathLike) -> dict[str, str]:
    """Read a summaries file (JSON mapping or JSONL); errors name the file, line and field."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: summaries file does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # not one JSON document: read it as JSONL below
    if isinstance(whole, dict) and "user_id" not in whole:
        bad = [k for k, v in whole.items() if not isinstance(v, str)]
        if bad:
            raise FeedbackFileError([RecordIssue(str(p), 1, bad[0], "summary must be a string")])
        if not whole:
            raise FeedbackFileError([RecordIssue(str(p), 0, "", "no summaries in file")])
        return dict(whole)
    out: dict[str, str] = {}
    issues: list[RecordIssue] = []
    for lineno, row in iter_jsonl_objects(p, "summaries", issues=issues):
        for key in ("user_id", "summary"):
            if not isinstance(row.get(key), str):
                issues.append(RecordIssue(str(p), lineno, key, "required string field is missing"))
        if isinstance(row.get("user_id"), str) and isinstance(row.get("summary"), str):
            out[row["user_id"]] = row["summary"]
    if issues:
        raise FeedbackFileError(issues)
    if not out:
        raise FeedbackFileError([RecordIssue(str(p), 0, "", "no summaries in file")])
    return out


class SummaryMethod(ConditionedRMMethod):
    """Summaries come from ``summaries`` (a mapping or a file path) or from ``summarizer``; one is required."""

    name = "summary"

    def __init__(self, summaries: Mapping[str, str] | str | os.PathLike | None = None,
                 summarizer: Any | Callable | None = None, **kw: Any):
        super().__init__(**kw)
        if summaries is None and summarizer is None:
            raise ValueError("summary: pass --summaries FILE (or a summarizer); there is nothing to condition on")
        self.source = str(summaries) if isinstance(summaries, str | os.PathLike) else "mapping"
        self.summaries = load_summaries(summaries) if isinstance(summaries, str | os.PathLike) else summaries
        self.summarizer = summarizer

    def _conditionings(self, examples: Sequence[Example]) -> list[str | None]:
        if self.summaries is not None:
            missing = sorted({e.user_id for e in examples} - set(self.summaries))
            if missing:
                raise ValueError(f"summary: {self.source} has no summary for {len(missing)} user(s), e.g. "
                                 f"{', '.join(missing[:5])}")
            return [self.summaries[e.user_id] for e in examples]
        # One summarizer call for all distinct contexts (batched generation is much faster than one by one).
        unique: dict[int, Any] = {}
        for e in examples:
            unique.setdefault(id(e.context), e.context)
        contexts = list(unique.values())
        if hasattr(self.summarizer, "summarize"):
            texts = self.summarizer.summarize(contexts)
        else:
            texts = [self.summarizer(c) for c in contexts]
        by_ctx = dict(zip(unique, texts, strict=True))
        return [by_ctx[id(e.context)] for e in examples]

    def extra_metrics(self, examples: Sequence[Example]) -> dict[str, float]:
        """``copy_rate``, ``summary_words`` and compression, as for the plus methods."""
        if not examples or self.model is None:
            return {}
        return {**super().extra_metrics(examples),
                **summary_metrics(examples, self._conditionings(examples), self.model.tokenizer)}
