"""``keyword``: the floor every learned method must beat. A transparent rule, nothing learned or tuned.

It reads only what a method is allowed to see of the user (their visible context: labelled pairs, past
conversations, profile) and the two candidate responses. The margin for a target pair (a, b) is the sum of four
cues, each a plain count:

1. **Word overlap with past choices.** Every content word (3+ letters, not a stopword) gets a weight: how often it
   occurs in the responses the user chose minus how often in those they rejected (a word on both sides of a pair
   cancels). A candidate's score is the sum of the weights of its words that the other candidate lacks; the cue is
   score(a) − score(b), divided by the number of context pairs.
2. **Length.** The user's length habit is the share of context pairs where they chose the longer response (by
   words) minus the share where they chose the shorter; words in their own text ("brief", "short" against
   "detailed", "thorough", ...) add ±0.5. The cue is that habit times the sign of len(a) − len(b).
3. **Emoji.** The same with emoji counts; emojis in the user's own text add +0.5, "skip/no/hate ... emojis" −0.5.
4. **The user's own words.** Content words of their profile and of their turns in past conversations: +0.5 for each
   one candidate has and the other lacks.

Why a floor: on a suite where this rule is near the Bayes rate, a learned method's high accuracy shows plumbing,
not that it learned who the user is. ``tokens_per_pair`` counts the words the rule reads (context and both
responses), not model tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from pluralign.data.schema import UserRecord
from pluralign.data.splits import Example
from pluralign.objectives.monitors import emoji_count

_WORD = re.compile(r"[a-z]{3,}")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    "the and for are but not you your yours with this that these those from have has had was were will would can "
    "could should about into onto over under than then them they their there here what when where which who whom "
    "why how all any some each every more most much many very just also too our ours out its it's his her hers him "
    "she one two three been being does did doing done may might must shall yet off own same such only both few "
    "other again once ever well even because while after before between through during without within upon")
SHORT_WORDS = _wordset("brief briefly short shorter concise quick quickly succinct terse")
LONG_WORDS = _wordset("detailed detail details thorough thoroughly depth long longer explain explanation "
                      "explanations comprehensive elaborate background steps")
EMOJI_WORDS = frozenset({"emoji", "emojis"})
NEGATIONS = _wordset("skip no without hate dislike avoid don't dont never stop")


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def _sign(x: float) -> float:
    return float(np.sign(x))


def _own_texts(user: UserRecord) -> list[str]:
    """What the user wrote themselves: the profile and their turns in past conversations."""
    texts = [user.profile] if user.profile else []
    texts += [m.content for c in user.conversations for m in c.messages if m.role == "user"]
    return texts


class UserCues:
    """Everything the rule takes from one user's visible context, computed once per context."""

    def __init__(self, user: UserRecord):
        chosen: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        length_votes, emoji_votes = [], []
        for p in user.pairs:
            chosen.update(content_words(p.chosen))
            rejected.update(content_words(p.rejected))
            d_len = len(p.chosen.split()) - len(p.rejected.split())
            if d_len:
                length_votes.append(_sign(d_len))
            d_emo = emoji_count(p.chosen) - emoji_count(p.rejected)
            if d_emo:
                emoji_votes.append(_sign(d_emo))
        self.n_pairs = len(user.pairs)
        self.weights = {w: chosen[w] - rejected[w] for w in chosen.keys() | rejected.keys() if chosen[w] != rejected[w]}
        own = _own_texts(user)
        own_words = [w for t in own for w in content_words(t)]
        self.own_words = frozenset(own_words) - SHORT_WORDS - LONG_WORDS - EMOJI_WORDS
        self.length = (float(np.sum(length_votes)) / self.n_pairs if self.n_pairs else 0.0)
        self.length += 0.5 * (_sign(sum(w in LONG_WORDS for w in own_words) - sum(w in SHORT_WORDS for w in own_words)))
        self.emoji = float(np.sum(emoji_votes)) / self.n_pairs if self.n_pairs else 0.0
        if any(emoji_count(t) for t in own):
            self.emoji += 0.5
        for t in own:
            toks = re.findall(r"[a-z']+", t.lower())
            if any(w in EMOJI_WORDS for w in toks) and any(w in NEGATIONS for w in toks):
                self.emoji -= 0.5
                break
        self.words_read = sum(len(p.chosen.split()) + len(p.rejected.split()) + len(p.prompt.split())
                              for p in user.pairs) + sum(len(t.split()) for t in own)

    def margin(self, a: str, b: str) -> float:
        wa, wb = set(content_words(a)), set(content_words(b))
        only_a, only_b = wa - wb, wb - wa
        overlap = sum(self.weights.get(w, 0) for w in only_a) - sum(self.weights.get(w, 0) for w in only_b)
        overlap /= max(1, self.n_pairs)
        length = self.length * _sign(len(a.split()) - len(b.split()))
        emoji = self.emoji * _sign(emoji_count(a) - emoji_count(b))
        own = 0.5 * (len(only_a & self.own_words) - len(only_b & self.own_words))
        return float(overlap + length + emoji + own)


class KeywordMethod:
    """The non-learned floor (see the module docstring); ``fit`` only checks that there is something to score."""

    name = "keyword"
    learned = False

    def __init__(self, **_: Any):
        self._cues: dict[int, UserCues] = {}

    def _cues_for(self, example: Example) -> UserCues:
        key = id(example.context)
        if key not in self._cues:
            self._cues[key] = UserCues(example.context)
        return self._cues[key]

    def fit(self, train: list[Example], seed: int = 0, validation: list[Example] | None = None) -> None:
        """Nothing to learn: the rule is fixed, so neither training nor validation pairs change it."""

    def score_pairs(self, examples: Sequence[Example]) -> np.ndarray:
        return np.array([self._cues_for(e).margin(e.target.chosen, e.target.rejected) for e in examples], dtype=float)

    def tokens_per_pair(self, examples: Sequence[Example]) -> float:
        if not examples:
            return 0.0
        return float(np.mean([self._cues_for(e).words_read + len(e.target.chosen.split())
                              + len(e.target.rejected.split()) for e in examples]))
