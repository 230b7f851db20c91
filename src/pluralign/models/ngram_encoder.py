"""Hashed n-gram features: the CPU-first text encoder of P[Love] and the preference RMs (no weights, no cache)."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

TOKEN_PATTERN = r"(?u)\w+|[^\w\s]"


class NgramEncoder:
    """Hashed word uni/bigrams plus single punctuation and emoji tokens (sklearn ``HashingVectorizer``), L2-normed.

    The CPU-first alternative to :class:`~pluralign.models.sentence_encoder.SentenceEncoder`: about a thousand times cheaper, stateless (nothing to fit or
    cache), and it sees what a mean-pooled uncased encoder blurs: emojis (``[UNK]`` to MiniLM's tokenizer),
    exclamation marks, contractions and closing formulas. ``cross`` builds hashed quadratic features (summary word x
    response token, as Vowpal Wabbit's ``-q``) so a linear head can personalise.

    :meth:`views` adds what a whole-text bag blurs: L2 normalisation over a long reply shrinks each n-gram towards 0,
    so a closing formula weighs less the longer the reply is. Fixed windows of the first and last ``edge_tokens``
    tokens keep openings and closings at one scale whatever the length, and sublinear counts of symbol tokens
    (punctuation, emojis) let "how many" matter, not only "which share".
    """

    backbone = "ngram"
    max_length = 0

    def __init__(self, n_features: int = 2**15, edge_tokens: int = 12, view_weight: float = 1.0):
        self.n_features = n_features
        self.edge_tokens = edge_tokens
        self.view_weight = view_weight
        self._vec = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), token_pattern=TOKEN_PATTERN,
                                      alternate_sign=False, norm="l2", lowercase=True)
        self._cross_vec = HashingVectorizer(n_features=n_features, analyzer=lambda pair: pair, alternate_sign=False,
                                            norm="l2")
        self._edge_vec = HashingVectorizer(n_features=n_features, analyzer=self._edge_terms, alternate_sign=False,
                                           norm="l2")
        self._symbol_vec = HashingVectorizer(n_features=2**10, analyzer=_symbol_terms, alternate_sign=False,
                                             norm=None)

    @staticmethod
    def _dedup(vec, texts: Sequence[str]):
        """``vec.transform`` with each unique text hashed once (reaction logs repeat texts many times)."""
        uniq: dict[str, int] = {}
        inverse = np.fromiter((uniq.setdefault(t, len(uniq)) for t in texts), dtype=np.int64, count=len(texts))
        return vec.transform(list(uniq))[inverse]

    def transform(self, texts: Sequence[str]):
        """Hashed features of ``texts``; each unique text is hashed once (reaction logs repeat them many times)."""
        return self._dedup(self._vec, texts)

    def _edge_terms(self, text: str) -> list[str]:
        toks = re.findall(TOKEN_PATTERN, text.lower())
        k = self.edge_tokens
        out = []
        for tag, part in (("^", toks[:k]), ("$", toks[-k:])):
            out += [tag + t for t in part]
            out += [f"{tag}{a} {b}" for a, b in zip(part, part[1:], strict=False)]
        return out

    def views(self, texts: Sequence[str]):
        """Opening/closing window n-grams (L2-normed, hashed) and log1p symbol-token counts, side by side."""
        sym = self._dedup(self._symbol_vec, texts).tocsr().astype(np.float64)
        sym.data = np.log1p(sym.data)
        return sparse.hstack([self._dedup(self._edge_vec, texts), sym], format="csr") * self.view_weight

    @property
    def views_dim(self) -> int:
        return self.n_features + 2**10

    def cross(self, summaries: Sequence[str | None], responses: Sequence[str]):
        word = re.compile(r"[a-z']{4,}")
        tok = re.compile(TOKEN_PATTERN)
        docs = []
        for s, r in zip(summaries, responses, strict=True):
            sw = sorted(set(word.findall((s or "").lower())))
            rw = set(tok.findall(r.lower()))
            docs.append([f"{a}|{b}" for a in sw for b in rw])
        return self._cross_vec.transform(docs)

    def cross_descriptors(self, summaries: Sequence[str | None], descriptors, n_out: int = 2**16):
        """Hashed products of summary words with numeric response descriptors (the length basis, symbol counts):
        "this user x longer replies", "this user x emojis", which a summary-word x response-token bag spreads
        over thousands of weak features. Each row is scaled by 1/sqrt(number of summary words)."""
        word = re.compile(r"[a-z']{4,}")
        D = sparse.csr_matrix(descriptors, dtype=np.float64)
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(summaries):
            groups.setdefault(s or "", []).append(i)
        blocks, order = [], []
        for s, rows in groups.items():
            hashes = [zlib.crc32(w.encode()) for w in sorted(set(word.findall(s.lower())))]
            sub = D[rows]
            out = sparse.csr_matrix((len(rows), n_out))
            for h in hashes:
                cols = (h * 1_000_003 + sub.indices.astype(np.int64)) % n_out
                out = out + sparse.csr_matrix((sub.data / math.sqrt(len(hashes)), cols, sub.indptr),
                                              shape=(len(rows), n_out))
            blocks.append(out)
            order += rows
        stacked = sparse.vstack(blocks, format="csr")
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[np.asarray(order)] = np.arange(len(order))
        return stacked[inverse]

    def save_cache(self) -> None:  # stateless: nothing to persist
        return None


def _symbol_terms(text: str) -> list[str]:
    """Every non-word, non-space character (punctuation, emoji) as a term: its count is the feature."""
    return [c for c in text if not c.isalnum() and not c.isspace() and c != "_"]
