"""Spell out the symbols a tokenizer cannot read (emojis, for a WordPiece encoder) as their Unicode names.

all-MiniLM-L6-v2, the default encoder of the reward models and P[Love], maps every emoji to ``[UNK]``: "Great
idea 😊🎉" and "Great idea 👍" reach the network as the same tokens, and a user who loves emojis cannot be told from
one who hates them. Emoji use is a preference users have (the ``attributes`` suite contrasts it; an RLUF reward can
be hacked with "Sending love! ❤️"), so before tokenising, each character that the tokenizer would read as its unknown
token alone is replaced by ``:its name:`` ("😊" -> " :smiling face with smiling eyes: "). Characters the tokenizer
reads (letters, CJK, "™", every byte for a byte-level BPE such as SmolLM2's or Qwen's) are left as they are, so
decoder backbones see exactly the text they were given.
"""

from __future__ import annotations

import unicodedata


class SymbolSpeller:
    """``spell(text)``: ``text`` with every character the tokenizer maps to its unknown token spelled out by name.

    Which characters those are is asked of the tokenizer itself (once per distinct character, cached), so this holds
    for any vocabulary; a tokenizer without an unknown token never changes a text.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.unk = getattr(tokenizer, "unk_token", None)
        self._names: dict[str, str | None] = {}

    def _name(self, char: str) -> str | None:
        """The replacement for ``char`` (" :name: "), or None when the tokenizer reads it."""
        if char not in self._names:
            name = unicodedata.name(char, None)
            unread = self.unk is not None and self.tokenizer.tokenize(char) == [self.unk]
            self._names[char] = f" :{name.lower()}: " if unread and name else None
        return self._names[char]

    def spell(self, text: str) -> str:
        """``text`` with unreadable symbols spelled out; ASCII text (and every text, without an unknown token) as is."""
        if self.unk is None or text.isascii():
            return text
        return "".join(self._name(c) or c for c in text)

    def __call__(self, text: str | None) -> str | None:
        return None if text is None else self.spell(text)
