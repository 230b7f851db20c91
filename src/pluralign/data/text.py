"""Text measures every layer counts the same way: words (the simulator's ground truth, the models' length
features, the summaries' word budget) and emojis (the simulator's users, the hacking monitors, the CPU summarizer's
style statements)."""

from __future__ import annotations

import re

EMOJI_PATTERN = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U00002b50\U00002b55\U00002764]"
)


def word_count(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def emoji_count(text: str) -> int:
    """Number of emoji code points (variation selectors are not counted)."""
    return len(EMOJI_PATTERN.findall(text))


def strip_emojis(text: str) -> str:
    """``text`` without emojis (and their variation selectors), runs of spaces folded."""
    return re.sub(r"[ \t]{2,}", " ", EMOJI_PATTERN.sub("", text).replace("\ufe0f", "")).strip()
