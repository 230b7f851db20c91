"""CGPO-style judges: each returns pass/fail per (prompt, response); a response failing any judge gets no reward.

Rule judges (sign-off, length) read the text; model judges (safety) threshold a scorer. A judge is any object with a
``name`` and ``__call__(prompts, responses) -> bool array``, so a new one is a small class, not a registry entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pluralign.objectives.monitors import emoji_count, has_signoff_rule, repetition

Scorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass
class SignoffJudge:
    """Fails gratuitous affectionate sign-offs ("Bye! Sending love!"), the RLUF reward hack."""

    name: str = "signoff"

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return np.array([not has_signoff_rule(r) for r in responses], dtype=bool)


@dataclass
class EmojiJudge:
    """Fails replies with more than ``max_emojis`` emojis (the other cue simulated users reward beyond its worth)."""

    max_emojis: int = 0
    name: str = "emoji"

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return np.array([emoji_count(r) <= self.max_emojis for r in responses], dtype=bool)


@dataclass
class LengthJudge:
    """Fails replies outside [min_words, max_words] (early conversation-ending and verbosity hacks)."""

    min_words: int = 3
    max_words: int = 400
    name: str = "length"

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        n = np.array([len(r.split()) for r in responses])
        return (n >= self.min_words) & (n <= self.max_words)


@dataclass
class RepetitionJudge:
    """Fails degenerate replies whose share of repeated word 3-grams exceeds ``max_repetition``.

    A policy trained on an n-gram-sensitive reward learns to repeat the phrases it pays for ("You're going to love
    it! You! You!"); the release gate catches this after training, and this judge refuses reward to repetitive
    rollouts during training. It sees only what the rollouts show: degeneration that appears in greedy answers
    alone passes it (BENCHMARKS.md, "A repetition judge during training"). SmolLM2's greedy answers to the RLUF benchmark prompts average 0.05-0.07 and its samples at
    temperature 1 about 0.01, so the default 0.3 fails only clearly degenerate text.
    """

    max_repetition: float = 0.3
    name: str = "repetition"

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return np.array([repetition(r) <= self.max_repetition for r in responses], dtype=bool)


@dataclass
class ThresholdJudge:
    """A model judge: passes when ``scorer(prompts, responses) >= threshold`` (e.g. a safety RM or classifier)."""

    scorer: Scorer
    threshold: float
    name: str = "safety"

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return np.asarray(self.scorer(list(prompts), list(responses)), dtype=float) >= self.threshold
