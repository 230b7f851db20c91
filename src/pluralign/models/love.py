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

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from pluralign.data.text import word_count
from pluralign.models.logistic import fit_logistic, logit
from pluralign.models.ngram_encoder import NgramEncoder
from pluralign.models.saved_state import read_state, write_state
from pluralign.models.sentence_encoder import SentenceEncoder
from pluralign.models.text_views import check_aligned, clip_words, last_user_turn, prompt_view, response_view

# Importers of these names from here predate their own modules.
__all__ = ["COEF_FILE", "DEBIAS_METHODS", "HEAD_FILE", "LoveModel", "NgramEncoder", "SentenceEncoder", "clip_words",
           "debias_method", "fit_logistic", "last_user_turn", "logit", "make_encoder", "prompt_view", "response_view",
           "word_count"]

HEAD_FILE = "love_head.json"
COEF_FILE = "love_coef.npy"


def make_encoder(backbone: str, max_length: int = 128, batch_size: int = 64, device: str = "cpu",
                 cache_path: str | os.PathLike | None = None) -> SentenceEncoder | NgramEncoder:
    """``"ngram"`` gives the hashed n-gram encoder; anything else is a HF encoder id or local dir."""
    if backbone == "ngram":
        return NgramEncoder()
    return SentenceEncoder(backbone, max_length, batch_size, device, progress=True, cache_path=cache_path)


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


class LoveModel:
    """P[Love] classifier: frozen encoder + logistic head, with prior-shift correction to the live base rate.

    With a :class:`SentenceEncoder` the head sees ``[e_r, e_p * e_r]`` (+ ``e_s * e_r`` personalised); with an
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

    def __init__(self, encoder: SentenceEncoder | NgramEncoder | None = None, *, personalised: bool = False,
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
            keep = np.ones(X.shape[1])
            keep[cols] = 0.0
            return (X @ sparse.diags(keep)).tocsr()
        X = np.array(X, copy=True)
        X[:, cols] = 0.0
        return X

    def features(self, prompts: Sequence[str], responses: Sequence[str], summaries: Sequence[str | None] | None = None,
                 *, neutral_length: bool = False) -> np.ndarray:
        check_aligned(prompts, responses, summaries)
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
        write_state(out / HEAD_FILE, state)
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, encoder: SentenceEncoder | None = None) -> LoveModel:
        """Load a saved P[Love]; a directory holding the neural model gives a
        :class:`~pluralign.models.love_neural.NeuralLoveModel` (same ``predict_proba``), so every caller (gate,
        service, policy training) takes either kind."""
        p = Path(path)
        # imported here: the neural model brings torch, which the linear model (and a service scoring with it)
        # does not need
        from pluralign.models.love_neural import NeuralLoveModel, is_neural_love_dir

        if p.is_dir() and is_neural_love_dir(p):
            return NeuralLoveModel.from_pretrained(p)
        f = p / HEAD_FILE if p.is_dir() else p
        s = read_state(f, "P[Love] model")
        enc = encoder or (NgramEncoder(edge_tokens=s.get("edge_tokens") or 12) if s["backbone"] == "ngram"
                          else SentenceEncoder(s["backbone"], max_length=s.get("max_length", 128)))
        # Models saved before the n-gram views existed have the legacy column layout.
        m = cls(enc, personalised=s["personalised"], length_debias=s["length_debias"], C=s["C"],
                views=bool(s.get("views", False)))
        m.coef = np.load(f.parent / COEF_FILE)
        m.intercept = float(s["intercept"])
        m.train_prior, m.live_prior = float(s["train_prior"]), float(s["live_prior"])
        m.length_mean, m.length_std = float(s["length_mean"]), float(s["length_std"])
        return m
