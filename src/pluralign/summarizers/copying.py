"""How much of a summary is copied out of the user's history: ``copy_rate``.

Why: a summarizer rewarded by a reward model can learn to paste a telling sentence of the history verbatim (the
shortcut seen when SmolLM2 was first trained by RL on CPU). Such a "summary" is an extract: it helps the RM only when
the same wording comes back. ``copy_rate`` is the share of a summary's word 8-grams that appear verbatim (case and
punctuation ignored) in the user's rendered context; 0 for a summary of fewer than ``n`` words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pluralign.data.schema import UserRecord
from pluralign.summarizers.base import render_context

_WORD = re.compile(r"[a-z0-9']+")
_NO_LIMIT = 10**9


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def context_text(user: UserRecord) -> str:
    """Everything the summarizer could have copied from: the whole history, uncut."""
    return render_context(user, max_pairs=_NO_LIMIT, max_conversations=_NO_LIMIT, max_chars=_NO_LIMIT)


def copy_rate(summary: str, context: str | UserRecord, n: int = 8) -> float:
    """Share of the summary's word ``n``-grams found verbatim in ``context`` (a text or the user's record)."""
    grams = ngrams(words(summary), n)
    if not grams:
        return 0.0
    source = ngrams(words(context if isinstance(context, str) else context_text(context)), n)
    return len(grams & source) / len(grams)


def mean_copy_rate(summaries: Sequence[str], contexts: Sequence[UserRecord], n: int = 8) -> float:
    if not summaries:
        return 0.0
    return sum(copy_rate(z, c, n) for z, c in zip(summaries, contexts, strict=True)) / len(summaries)
