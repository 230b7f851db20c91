"""Sentence embeddings: one encoder for every frozen-embedding feature in pluralign (the P[Love] head, the
preference RMs, the latent method, the CPU summarizer's statement scorer).

Built on ``sentence-transformers`` (installed with the MiniLM package): mean pooling over real tokens and L2
normalisation, how all-MiniLM-L6-v2 was trained; any other HF encoder gets the same pooling. The model is resolved
offline (:func:`pluralign.models.backbone.resolve_backbone`) and loaded on first use. Embeddings are cached per
unique text, because reaction logs and statement pools repeat the same texts many times; ``cache_path`` keeps the
cache on disk between runs. Symbols the tokenizer reads as unknown (emojis, for MiniLM) are spelled out by their
Unicode names before encoding (:mod:`pluralign.models.symbol_names`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pluralign.models.backbone import DEFAULT_BACKBONE, resolve_backbone
from pluralign.models.symbol_names import SymbolSpeller

# Bumped whenever what reaches the encoder for the same text changes, so a disk cache from before is not reused.
INPUT_VERSION = 2  # 2: unknown symbols spelled out by name


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings (float32, ``(n, dim)``), cached per unique text."""

    def __init__(self, backbone: str = DEFAULT_BACKBONE, max_length: int = 128, batch_size: int = 64,
                 device: str = "cpu", progress: bool = False, cache_path: str | os.PathLike | None = None):
        self.backbone = backbone
        self.cache_path = Path(cache_path) if cache_path else None
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self._model = None
        self._speller: SymbolSpeller | None = None
        self._cache: dict[str, np.ndarray] = {}
        if self.cache_path is not None and self.cache_path.exists():
            with np.load(self.cache_path) as z:
                version = int(z["input_version"]) if "input_version" in z else 1
                if str(z["backbone"]) == backbone and int(z["max_length"]) == max_length and version == INPUT_VERSION:
                    self._cache = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))

    def save_cache(self) -> None:
        """Persist the embeddings computed so far to ``cache_path`` (atomic), so later runs skip the encoder."""
        if self.cache_path is None or not self._cache:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_name(self.cache_path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())),
                 backbone=self.backbone, max_length=self.max_length, input_version=INPUT_VERSION)
        os.replace(tmp, self.cache_path)

    @property
    def model(self):
        """The ``SentenceTransformer`` (loaded on first use, inputs truncated to ``max_length`` tokens)."""
        if self._model is None:
            # imported on first use: sentence-transformers brings torch and transformers, which code that only
            # holds an encoder (the linear P[Love], configs) does not need
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_backbone(self.backbone), device=self.device)
            self._model.max_seq_length = self.max_length
        return self._model

    @property
    def tokenizer(self):
        """The encoder's tokenizer (what token counts of its inputs are measured with)."""
        return self.model.tokenizer

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` (n, dim); each unique text goes through the encoder once per process."""
        keys = [self._key(t) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._cache and k not in todo:
                todo[k] = t
        if todo:
            if self._speller is None:
                self._speller = SymbolSpeller(self.tokenizer)
            vectors = self.model.encode([self._speller.spell(t) for t in todo.values()], batch_size=self.batch_size,
                                        convert_to_numpy=True, normalize_embeddings=True,
                                        show_progress_bar=self.progress and len(todo) >= 512)
            for k, v in zip(todo, vectors.astype(np.float32), strict=True):
                self._cache[k] = v
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])
