"""P[Love]: Pr(love | conversation, response), a classifier over a frozen HF encoder.

Why frozen: on CPU the encoder forward pass dominates, and reaction logs repeat the same prompts and responses many
times, so embeddings are computed once per unique text (cached) and only a logistic head is fitted. The head sees
``[e_r, e_p * e_r]`` (response, prompt-response interaction) and, when personalised, ``e_s * e_r`` (summary-response
interaction), so it can learn "this user likes this kind of answer" without any per-user parameters.

Positives are upsampled to a target share (done exactly, with sample weights), so raw outputs are calibrated to the
training prior; :meth:`LoveModel.predict_proba` shifts the logit back to the live base rate
(``logit += logit(pi_live) - logit(pi_train)``), the analytic prior-shift correction.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pluralign.models.backbone import DEFAULT_BACKBONE, resolve_backbone

HEAD_FILE = "love_head.json"
COEF_FILE = "love_coef.npy"


def logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def word_count(text: str) -> int:
    return len(text.split())


def clip_words(text: str, head: int, tail: int) -> str:
    """The first ``head`` and last ``tail`` words of ``text``: closings (sign-offs) survive a short encoder window."""
    w = text.split()
    if len(w) <= head + tail:
        return text
    return " ".join(w[:head]) + " ... " + " ".join(w[-tail:]) if tail else " ".join(w[:head])


def last_user_turn(prompt: str) -> str:
    """The final human turn of an HH-style dialogue ("Human: ... Assistant: ..."), else the prompt itself."""
    i = prompt.rfind("Human:")
    return prompt[i + len("Human:"):].strip() if i >= 0 else prompt


def prompt_view(prompt: str) -> str:
    """What the encoder sees of a prompt: the last user turn, clipped (the request, not the whole history)."""
    return clip_words(last_user_turn(prompt), 40, 0)


def response_view(response: str) -> str:
    """What the encoder sees of a response: its opening and its closing."""
    return clip_words(response, 48, 16)


class TextEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from any HF encoder, cached per unique text."""

    def __init__(self, backbone: str = DEFAULT_BACKBONE, max_length: int = 128, batch_size: int = 64,
                 device: str = "cpu", progress: bool = False, cache_path: str | os.PathLike | None = None):
        self.backbone = backbone
        self.cache_path = Path(cache_path) if cache_path else None
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self._model = None
        self._tok = None
        self._cache: dict[str, np.ndarray] = {}
        if self.cache_path is not None and self.cache_path.exists():
            with np.load(self.cache_path) as z:
                if str(z["backbone"]) == backbone and int(z["max_length"]) == max_length:
                    self._cache = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))

    def save_cache(self) -> None:
        """Persist the embeddings computed so far to ``cache_path`` (atomic), so later runs skip the encoder."""
        if self.cache_path is None or not self._cache:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_name(self.cache_path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())),
                 backbone=self.backbone, max_length=self.max_length)
        os.replace(tmp, self.cache_path)

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            path = resolve_backbone(self.backbone)
            self._tok = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path).to(self.device).eval()

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` (n, dim); each unique text goes through the encoder once per process."""
        import torch
        from tqdm.auto import tqdm

        keys = [self._key(t) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._cache and k not in todo:
                todo[k] = t
        if todo:
            self._load()
            # Similar lengths in one batch waste far less compute on padding.
            items = sorted(todo.items(), key=lambda kv: len(kv[1]))
            batches = range(0, len(items), self.batch_size)
            for i in tqdm(batches, desc=f"embedding {len(items)} texts", disable=not self.progress or len(items) < 512):
                chunk = items[i : i + self.batch_size]
                enc = self._tok([t for _, t in chunk], padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device)
                with torch.no_grad():
                    hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy().astype(np.float32)
                for (k, _), v in zip(chunk, pooled, strict=True):
                    self._cache[k] = v
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])


TOKEN_PATTERN = r"(?u)\w+|[^\w\s]"


class NgramEncoder:
    """Hashed word uni/bigrams plus single punctuation and emoji tokens (sklearn ``HashingVectorizer``), L2-normed.

    The CPU-first alternative to :class:`TextEncoder`: about a thousand times cheaper, stateless (nothing to fit or
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
        from sklearn.feature_extraction.text import HashingVectorizer

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
        from scipy import sparse

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
        import zlib

        from scipy import sparse

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


def make_encoder(backbone: str, max_length: int = 128, batch_size: int = 64, device: str = "cpu",
                 cache_path: str | os.PathLike | None = None) -> TextEncoder | NgramEncoder:
    """``"ngram"`` gives the hashed n-gram encoder; anything else is a HF encoder id or local dir."""
    if backbone == "ngram":
        return NgramEncoder()
    return TextEncoder(backbone, max_length, batch_size, device, progress=True, cache_path=cache_path)


DEBIAS_METHODS = ("none", "joint", "poe")


def debias_method(value: bool | str | None) -> str:
    """Normalise a ``length_debias`` setting: ``False``/``None`` -> "none", ``True`` -> "joint", or a method name."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "joint"
    if value not in DEBIAS_METHODS:
        raise ValueError(f"length_debias must be a bool or one of {', '.join(DEBIAS_METHODS)}, got {value!r}")
    return str(value)


def fit_logistic(X, y: np.ndarray, w: np.ndarray, C: float, *, offset: np.ndarray | None = None,
                 max_iter: int = 2000, tol: float = 1e-4) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression (sklearn's objective, unpenalised intercept) with an optional fixed
    per-row ``offset`` in the logit: the offset is what a product-of-experts debias needs and sklearn lacks."""
    from scipy.optimize import minimize

    n, d = X.shape
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=np.float64)

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, b = theta[:d], theta[d]
        eta = X @ beta + b + off
        # log(1 + e^eta) - y * eta, computed stably
        loss = float(C * np.sum(w * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * beta @ beta)
        r = C * w * (0.5 * (1.0 + np.tanh(0.5 * eta)) - y)
        return loss, np.concatenate([X.T @ r + beta, [r.sum()]])

    res = minimize(loss_grad, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps})
    return np.asarray(res.x[:d], dtype=np.float64), float(res.x[d])


class LoveModel:
    """P[Love] classifier: frozen encoder + logistic head, with prior-shift correction to the live base rate.

    With a :class:`TextEncoder` the head sees ``[e_r, e_p * e_r]`` (+ ``e_s * e_r`` personalised); with an
    :class:`NgramEncoder` it sees a length basis (standardised log length and its square, so that a U-shaped
    length effect is expressible), response n-grams, opening/closing windows and symbol counts (``views``), and
    last-user-turn n-grams (+ personalised: summary word x response token crosses, and summary word x length basis /
    symbol count crosses, see :meth:`NgramEncoder.cross_descriptors`).

    ``length_debias``: ``"none"`` (False) uses the length basis like any feature; ``"joint"`` (True) fits it with
    the rest and holds it at its training mean at prediction time; ``"poe"`` (product of experts) first fits a
    length-only expert, then fits the main model with that expert's logit as a fixed offset and the length basis
    held at its mean, and drops the expert at prediction time, so the main model only explains what length does
    not.
    """

    def __init__(self, encoder: TextEncoder | NgramEncoder | None = None, *, personalised: bool = False,
                 length_debias: bool | str = False, C: float = 1.0, views: bool = True):
        self.encoder = encoder or NgramEncoder()
        self.personalised = personalised
        self.debias = debias_method(length_debias)
        self.C = C
        self.views = views
        self.coef: np.ndarray | None = None
        self.intercept: float = 0.0
        self.train_prior: float = 0.5
        self.live_prior: float = 0.5
        self.length_mean: float = 0.0
        self.length_std: float = 1.0
        self.length_expert: np.ndarray | None = None  # PoE: [intercept, coef...] of the length-only expert

    @property
    def length_debias(self) -> bool:
        return self.debias != "none"

    @property
    def _ngram_views(self) -> bool:
        return self.views and isinstance(self.encoder, NgramEncoder)

    # --- features ------------------------------------------------------------------------------------------------
    def _length(self, responses: Sequence[str]) -> np.ndarray:
        return np.log1p(np.array([word_count(r) for r in responses], dtype=np.float64))

    def length_basis(self, responses: Sequence[str]) -> np.ndarray:
        """Centred length columns (mean 0 on the training responses): z, and z^2 - 1 with the n-gram views."""
        z = (self._length(responses) - self.length_mean) / self.length_std
        cols = [z, z * z - 1.0] if self._ngram_views else [z]
        return np.stack(cols, axis=1)

    def length_columns(self, n_cols: int) -> np.ndarray:
        """Indices of the length columns in a feature matrix of ``n_cols`` columns."""
        if self._ngram_views:
            return np.arange(2)
        if isinstance(self.encoder, NgramEncoder):
            return np.array([2 * self.encoder.n_features])
        return np.array([n_cols - 1]) if self.length_debias else np.array([], dtype=int)

    def prompt_columns(self, n_cols: int) -> np.ndarray:
        """Indices of the prompt-only columns (none for a dense encoder, whose features all involve the response)."""
        if not isinstance(self.encoder, NgramEncoder):
            return np.array([], dtype=int)
        nf = self.encoder.n_features
        start = 2 + nf + self.encoder.views_dim if self._ngram_views else nf
        return np.arange(start, start + nf)

    def content_logits(self, X) -> np.ndarray:
        """The part of the logit that the response contributes: everything but the intercept and prompt-only
        columns (the adversarial defence reverses this part to describe an inverter)."""
        self._check_fitted()
        pc = self.prompt_columns(X.shape[1])
        total = np.asarray(X @ self.coef).ravel()
        if not len(pc):
            return total
        return total - np.asarray(X[:, pc] @ self.coef[pc]).ravel()

    def neutralise(self, X):
        """``X`` with the length columns at their training mean (0): what a debiased model sees at inference."""
        cols = self.length_columns(X.shape[1])
        if not self.length_debias or not len(cols):
            return X
        if hasattr(X, "tocsr"):
            from scipy import sparse

            keep = np.ones(X.shape[1])
            keep[cols] = 0.0
            return (X @ sparse.diags(keep)).tocsr()
        X = np.array(X, copy=True)
        X[:, cols] = 0.0
        return X

    def features(self, prompts: Sequence[str], responses: Sequence[str], summaries: Sequence[str | None] | None = None,
                 *, neutral_length: bool = False) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"prompts ({len(prompts)}) and responses ({len(responses)}) differ in length")
        if summaries is not None and len(summaries) != len(prompts):
            raise ValueError(f"summaries ({len(summaries)}) and prompts ({len(prompts)}) differ in length")
        if isinstance(self.encoder, NgramEncoder):
            X = self._ngram_features(prompts, responses, summaries)
        else:
            X = self._dense_features(prompts, responses, summaries)
        return self.neutralise(X) if neutral_length else X

    def _dense_features(self, prompts, responses, summaries) -> np.ndarray:
        e_p = self.encoder.encode([prompt_view(p) for p in prompts])
        e_r = self.encoder.encode([response_view(r) for r in responses])
        parts = [e_r, e_p * e_r]
        if self.personalised:
            if summaries is None:
                summaries = [None] * len(prompts)
            e_s = self.encoder.encode([s or "" for s in summaries])
            has = np.array([bool(s) for s in summaries], dtype=np.float32)[:, None]
            parts.append(e_s * e_r * has)
        if self.length_debias:
            # Length as a nuisance covariate: fitted in training, held at its mean at prediction time, so the
            # embedding weights do not have to carry length effects.
            parts.append(self.length_basis(responses).astype(np.float32))
        return np.concatenate(parts, axis=1).astype(np.float64)

    def _ngram_features(self, prompts, responses, summaries):
        from scipy import sparse

        length = sparse.csr_matrix(self.length_basis(responses))
        body = self.encoder.transform(responses)
        prompt = self.encoder.transform([last_user_turn(p) for p in prompts])
        parts = [length, body, self.encoder.views(responses), prompt] if self._ngram_views else [body, prompt, length]
        if self.personalised:
            if summaries is None:
                summaries = [None] * len(prompts)
            parts.append(self.encoder.cross(summaries, responses))
            if self._ngram_views:
                sym = parts[2][:, self.encoder.n_features:]
                parts.append(self.encoder.cross_descriptors(summaries, sparse.hstack([length, sym], format="csr")))
        return sparse.hstack(parts, format="csr")

    # --- training ------------------------------------------------------------------------------------------------
    def set_length_stats(self, responses: Sequence[str]) -> LoveModel:
        """Standardise the log-length feature on these (training) responses."""
        if self.length_debias or isinstance(self.encoder, NgramEncoder):
            lengths = self._length(responses)
            self.length_mean, self.length_std = float(lengths.mean()), float(lengths.std() or 1.0)
        return self

    def fit(self, prompts: Sequence[str], responses: Sequence[str], labels: Sequence[float], *,
            summaries: Sequence[str | None] | None = None, sample_weight: Sequence[float] | None = None,
            target_pos_share: float | None = 0.1, live_base_rate: float | None = None, seed: int = 0,
            features: np.ndarray | None = None) -> LoveModel:
        """Fit the head with BCE. Positives are re-weighted to ``target_pos_share`` of the (weighted) data.

        ``live_base_rate`` defaults to the weighted positive rate of the training data.
        """
        y = np.asarray(labels, dtype=np.float64)
        if y.ndim != 1 or len(y) != len(prompts):
            raise ValueError("labels must be a flat sequence as long as prompts")
        if not ((y == 0) | (y == 1)).all():
            raise ValueError("labels must be 0/1 (love / no love)")
        if y.sum() == 0 or y.sum() == len(y):
            raise ValueError("P[Love] needs both loved and not-loved responses in the training data")
        w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).copy()
        if features is None:
            # Precomputed ``features`` were built with the caller's length statistics (see set_length_stats).
            self.set_length_stats(responses)
        X = features if features is not None else self.features(prompts, responses, summaries)
        pos_w, neg_w = float(w[y == 1].sum()), float(w[y == 0].sum())
        natural = pos_w / (pos_w + neg_w)
        self.live_prior = float(live_base_rate) if live_base_rate is not None else natural
        if target_pos_share is not None and target_pos_share > natural:
            # Upsampling positives by a factor k is, in expectation, a weight k on each positive.
            k = target_pos_share * neg_w / ((1 - target_pos_share) * pos_w)
            w = np.where(y == 1, w * k, w)
            self.train_prior = float(target_pos_share)
        else:
            self.train_prior = natural
        w = w * (len(y) / w.sum())
        offset = None
        if self.debias == "poe":
            offset = self._fit_length_expert(X, y, w)
            X = self.neutralise(X)
        if offset is None:
            from sklearn.linear_model import LogisticRegression

            head = LogisticRegression(C=self.C, max_iter=2000, random_state=seed).fit(X, y, sample_weight=w)
            self.coef, self.intercept = head.coef_[0].astype(np.float64), float(head.intercept_[0])
        else:  # sklearn has no per-row offset
            self.coef, self.intercept = fit_logistic(X, y, w, self.C, offset=offset)
        return self

    def _fit_length_expert(self, X, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The PoE bias expert: a logistic model on the length columns alone (lightly penalised). Returns its
        logit per row, centred to weighted mean 0 so the main model's intercept keeps the base rate."""
        cols = self.length_columns(X.shape[1])
        L = X[:, cols]
        L = np.asarray(L.todense() if hasattr(L, "todense") else L, dtype=np.float64)
        coef, b = fit_logistic(L, y, w, C=100.0)
        eta = L @ coef
        self.length_expert = np.concatenate([[b], coef])
        return eta - float(np.average(eta, weights=w))

    # --- inference -----------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.coef is None:
            raise RuntimeError("LoveModel is not fitted: call fit() or from_pretrained()")

    def raw_logits(self, prompts: Sequence[str], responses: Sequence[str],
                   summaries: Sequence[str | None] | None = None, *, features: np.ndarray | None = None) -> np.ndarray:
        """Logits calibrated to the *training* prior (the upsampled share)."""
        self._check_fitted()
        X = features if features is not None else self.features(prompts, responses, summaries, neutral_length=True)
        return X @ self.coef + self.intercept

    @property
    def prior_shift(self) -> float:
        return logit(self.live_prior) - logit(self.train_prior)

    def predict_proba(self, prompts: Sequence[str], responses: Sequence[str],
                      summaries: Sequence[str | None] | None = None, *, corrected: bool = True,
                      features: np.ndarray | None = None) -> np.ndarray:
        """P[Love] per (prompt, response); ``corrected`` maps it to the live base rate (the default)."""
        z = self.raw_logits(prompts, responses, summaries, features=features)
        if corrected:
            z = z + self.prior_shift
        return 1.0 / (1.0 + np.exp(-z))

    # --- persistence ---------------------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        self._check_fitted()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {
            "backbone": self.encoder.backbone, "max_length": self.encoder.max_length,
            "personalised": self.personalised, "length_debias": self.debias, "C": self.C, "views": self.views,
            "edge_tokens": getattr(self.encoder, "edge_tokens", None),
            "intercept": self.intercept, "train_prior": self.train_prior,
            "live_prior": self.live_prior, "length_mean": self.length_mean, "length_std": self.length_std,
        }
        np.save(out / COEF_FILE, self.coef)
        tmp = out / f".{HEAD_FILE}.tmp"
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, out / HEAD_FILE)
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, encoder: TextEncoder | None = None) -> LoveModel:
        """Load a saved P[Love]; a directory holding the neural model gives a
        :class:`~pluralign.models.love_neural.NeuralLoveModel` (same ``predict_proba``), so every caller (gate,
        service, policy training) takes either kind."""
        p = Path(path)
        from pluralign.models.love_neural import NeuralLoveModel, is_neural_love_dir

        if p.is_dir() and is_neural_love_dir(p):
            return NeuralLoveModel.from_pretrained(p)
        f = p / HEAD_FILE if p.is_dir() else p
        if not f.exists():
            raise FileNotFoundError(f"{f}: no P[Love] model here (expected {HEAD_FILE} written by save_pretrained)")
        try:
            s = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{f}: not valid JSON ({e.msg} at line {e.lineno})") from None
        enc = encoder or (NgramEncoder(edge_tokens=s.get("edge_tokens") or 12) if s["backbone"] == "ngram"
                          else TextEncoder(s["backbone"], max_length=s.get("max_length", 128)))
        # Models saved before the n-gram views existed have the legacy column layout.
        m = cls(enc, personalised=s["personalised"], length_debias=s["length_debias"], C=s["C"],
                views=bool(s.get("views", False)))
        m.coef = np.load(f.parent / COEF_FILE)
        m.intercept = float(s["intercept"])
        m.train_prior, m.live_prior = float(s["train_prior"]), float(s["live_prior"])
        m.length_mean, m.length_std = float(s["length_mean"]), float(s["length_std"])
        return m
