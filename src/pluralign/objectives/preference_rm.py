"""CPU helpfulness / safety objectives: a Bradley-Terry reward head over frozen text features (hashed n-grams
or HF encoder embeddings, the same encoders as P[Love]).

The full-size alternative is :class:`pluralign.models.reward_model.SummaryConditionedRM` (fine-tuned end to end by
``pluralign train rm``); any object with ``score(prompts, responses)`` plugs into
:class:`~pluralign.objectives.rewards.Objective` the same way. This head exists because the RLUF suite must train
two RMs and score thousands of candidates in minutes on two CPU cores: the encoder runs once per unique text and
only a logistic model on ``f(chosen) - f(rejected)`` is fitted (P(chosen > rejected) = sigmoid(w . delta), i.e. BT).

That speed has a price a policy finds: a hashed n-gram head is a sum over the response's n-grams, so repeating
a sentence the head likes raises its score (``benchmarks/objective_rms.py``).
:func:`pluralign.training.objective_rm.finetune_hh_objective` trains a transformer reward model end to end on the
same pairs (:func:`hh_objective_split`) instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.sparse import vstack as sparse_vstack
from sklearn.linear_model import LogisticRegression

from pluralign.data.corpora import HH_SUBSETS, load_hh_pairs
from pluralign.models.love import NgramEncoder, SentenceEncoder, make_encoder, prompt_view, response_view
from pluralign.models.saved_state import read_state, write_state

HEAD_FILE = "pairwise_rm.json"
COEF_FILE = "pairwise_rm_coef.npy"


class EmbeddingPairwiseRM:
    """r(prompt, response) = w . [e_r, e_p * e_r], fitted with the Bradley-Terry loss on preference pairs."""

    def __init__(self, encoder: SentenceEncoder | NgramEncoder | None = None, C: float = 1.0, name: str = "rm"):
        self.encoder = encoder or NgramEncoder()
        self.C = C
        self.name = name
        self.coef: np.ndarray | None = None

    def features(self, prompts: Sequence[str], responses: Sequence[str]):
        if isinstance(self.encoder, NgramEncoder):
            n = np.log1p([len(r.split()) for r in responses])[:, None]
            return sparse.hstack([self.encoder.transform(responses), sparse.csr_matrix(n)], format="csr")
        e_p = self.encoder.encode([prompt_view(p) for p in prompts])
        e_r = self.encoder.encode([response_view(r) for r in responses])
        return np.concatenate([e_r, e_p * e_r], axis=1).astype(np.float64)

    def fit(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], seed: int = 0
            ) -> EmbeddingPairwiseRM:
        if not (len(prompts) == len(chosen) == len(rejected)) or not prompts:
            raise ValueError("prompts, chosen and rejected must be non-empty and equally long")
        delta = self.features(prompts, chosen) - self.features(prompts, rejected)
        # Both orientations, no intercept: the BT likelihood is symmetric, and this removes the "chosen first" bias.
        X = sparse_vstack([delta, -delta]) if hasattr(delta, "tocsr") else np.concatenate([delta, -delta])
        y = np.concatenate([np.ones(delta.shape[0]), np.zeros(delta.shape[0])])
        head = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000, random_state=seed)
        head.fit(X, y)
        self.coef = head.coef_[0]
        return self

    def score(self, prompts: Sequence[str], responses: Sequence[str], summaries=None) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError(f"{self.name}: reward model is not fitted")
        return self.features(prompts, responses) @ self.coef

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.score(prompts, responses)

    def pairwise_accuracy(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]) -> float:
        return float(np.mean(self.score(prompts, chosen) > self.score(prompts, rejected)))

    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {"name": self.name, "C": self.C, "backbone": self.encoder.backbone}
        np.save(out / COEF_FILE, self.coef)
        write_state(out / HEAD_FILE, state)
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, encoder: SentenceEncoder | None = None) -> EmbeddingPairwiseRM:
        s = read_state(Path(path) / HEAD_FILE, "pairwise reward model")
        m = cls(encoder or make_encoder(s["backbone"]), C=s["C"], name=s["name"])
        m.coef = np.load(Path(path) / COEF_FILE)
        return m


def hh_objective_split(kind: str, n_train: int | None, n_eval: int, seed: int) -> tuple[list, list]:
    """(train, held-out) HH-RLHF test pairs of a helpfulness (``helpful``: helpful-* subsets) or safety
    (``harmless``: harmless-base) objective: ``n_eval`` random pairs held out first, then up to ``n_train`` of the
    others (``None`` = all of them)."""
    if kind not in ("helpful", "harmless"):
        raise ValueError(f"kind must be 'helpful' or 'harmless', got {kind!r}")
    subsets = tuple(s for s in HH_SUBSETS if s.startswith("helpful")) if kind == "helpful" else ("harmless-base",)
    pairs = list(load_hh_pairs(subsets=subsets))
    if n_eval >= len(pairs):
        raise ValueError(f"n_eval={n_eval} leaves no training pairs ({len(pairs)} {kind} pairs in the shared data)")
    pick = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[i] for i in pick[n_eval:][:n_train]], [pairs[i] for i in pick[:n_eval]]


def train_hh_objective(kind: str, encoder: SentenceEncoder | NgramEncoder, *, n_train: int | None = 600, n_eval: int = 200,
                       seed: int = 0) -> tuple[EmbeddingPairwiseRM, float]:
    """Fit a helpfulness (``helpful``) or safety (``harmless``) head on HH-RLHF test pairs from the shared data
    (:func:`hh_objective_split`); return it with its held-out pairwise accuracy.

    ``n_train=None`` trains on all pairs but the held-out ones (hashed n-gram heads are cheap, and a few hundred
    pairs leave them at chance)."""
    tr, ev = hh_objective_split(kind, n_train, n_eval, seed)
    rm = EmbeddingPairwiseRM(encoder, name=kind).fit([p.prompt for p in tr], [p.chosen for p in tr],
                                                     [p.rejected for p in tr], seed=seed)
    acc = rm.pairwise_accuracy([p.prompt for p in ev], [p.chosen for p in ev], [p.rejected for p in ev])
    return rm, acc
