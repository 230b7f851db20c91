"""Train and evaluate P[Love] on a reaction log: chronological split, positive upsampling, prior-shift correction,
optional adversarial-user defence and personalisation.

Reads :class:`~pluralign.data.schema.UserRecord` reactions of one kind (``love``, value 1/0). The test split is the
latest ``test_fraction`` of reactions by timestamp, as in the paper ("held-out conversations taken after the
training period"). Metrics are computed on honest users' test reactions (adversaries' reactions are noise by
construction); the oracle AUROC scores those same reactions by their true probability ``p_true``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pluralign.data.schema import UserRecord
from pluralign.evaluation.metrics import auroc, ece, pearson_r
from pluralign.models.love import (
    LoveModel,
    NgramEncoder,
    TextEncoder,
    debias_method,
    make_encoder,
    prompt_view,
    response_view,
    word_count,
)
from pluralign.training.adversarial import DefenceReport, defence_weights
from pluralign.training.love_config import LoveConfig

log = logging.getLogger(__name__)
HONEST = "normal"


@dataclass
class ReactionTable:
    """Reactions flattened into columns (one row per reaction)."""

    user_ids: list[str]
    prompts: list[str]
    responses: list[str]
    labels: np.ndarray
    timestamps: list[float | None]
    p_true: np.ndarray  # NaN where unknown (real data)
    user_kinds: list[str]  # "normal" unless the record marks an adversary (simulated logs)
    segments: list[str | None]
    summaries: list[str | None]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: Sequence[int] | np.ndarray) -> ReactionTable:
        ix = np.asarray(idx, dtype=int)
        pick = [*ix.tolist()]
        return ReactionTable([self.user_ids[i] for i in pick], [self.prompts[i] for i in pick],
                             [self.responses[i] for i in pick], self.labels[ix], [self.timestamps[i] for i in pick],
                             self.p_true[ix], [self.user_kinds[i] for i in pick], [self.segments[i] for i in pick],
                             [self.summaries[i] for i in pick])


def user_summary(u: UserRecord) -> str | None:
    """The text a personalised P[Love] conditions on: a PLUS summary if stored, else the profile or sim persona."""
    s = u.meta.get("summary")
    return str(s) if s else (u.profile or u.persona)


def reaction_table(users: Sequence[UserRecord], kind: str = "love", source: str = "<records>") -> ReactionTable:
    """Flatten reactions of ``kind``; a value other than 0/1 is an error naming the record line and field."""
    cols: dict[str, list] = {k: [] for k in ("u", "p", "r", "y", "t", "pt", "k", "s", "z")}
    for line, u in enumerate(users, start=1):
        ukind = str(u.meta.get("kind", HONEST))
        summ = user_summary(u)
        for j, rx in enumerate(u.reactions):
            if rx.kind != kind:
                continue
            if rx.value not in (0.0, 1.0):
                raise ValueError(f"{source}:{line}: field 'reactions.{j}.value': {kind} reactions must be 0 or 1, "
                                 f"got {rx.value} (user {u.user_id!r}, reaction {rx.reaction_id!r})")
            cols["u"].append(u.user_id)
            cols["p"].append(rx.prompt)
            cols["r"].append(rx.response)
            cols["y"].append(rx.value)
            cols["t"].append(rx.timestamp)
            cols["pt"].append(math.nan if rx.p_true is None else rx.p_true)
            cols["k"].append(str(rx.meta.get("kind", ukind)))
            seg = rx.meta.get("segment")
            cols["s"].append(None if seg is None else str(seg))
            cols["z"].append(summ)
    if not cols["y"]:
        raise ValueError(f"{source}: no reactions of kind {kind!r} found (field 'reactions.kind')")
    return ReactionTable(cols["u"], cols["p"], cols["r"], np.asarray(cols["y"], dtype=float), cols["t"],
                         np.asarray(cols["pt"], dtype=float), cols["k"], cols["s"], cols["z"])


def chrono_split(table: ReactionTable, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train = earliest reactions, test = the latest ``test_fraction`` (ties and missing timestamps keep row order)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    t = np.array([math.inf if x is None else x for x in table.timestamps], dtype=float)
    order = np.argsort(t, kind="stable")
    n_test = max(1, int(round(len(order) * test_fraction)))
    return np.sort(order[:-n_test]), np.sort(order[-n_test:])


def _debias(cfg: LoveConfig) -> str:
    """The model's ``length_debias`` setting from the config's switch and method."""
    return debias_method(cfg.debias_method) if cfg.length_debias else "none"


def auroc_se(a: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC estimate (Hanley & McNeil 1982)."""
    if n_pos < 1 or n_neg < 1 or not 0.0 < a < 1.0:
        return 0.0
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def love_metrics(model: LoveModel, table: ReactionTable, idx: np.ndarray) -> dict[str, float]:
    """AUROC (model and oracle), ECE before/after the prior correction and length correlation (model and oracle)
    on rows ``idx``."""
    sub = table.take(idx)
    honest = np.array([k == HONEST for k in sub.user_kinds])
    h = sub.take(np.flatnonzero(honest)) if honest.any() else sub
    raw = model.predict_proba(h.prompts, h.responses, h.summaries, corrected=False)
    cor = model.predict_proba(h.prompts, h.responses, h.summaries, corrected=True)
    lengths = np.array([word_count(r) for r in h.responses], dtype=float)
    has_truth = ~np.isnan(h.p_true)
    return {
        "auroc": auroc(h.labels, cor),
        "oracle_auroc": auroc(h.labels[has_truth], h.p_true[has_truth]) if has_truth.any() else math.nan,
        "ece_raw": ece(h.labels, raw),
        "ece": ece(h.labels, cor),
        "length_r": pearson_r(cor, lengths),
        # The truth's own length correlation on the same rows: how much length effect an accurate model must carry.
        "oracle_length_r": pearson_r(h.p_true[has_truth], lengths[has_truth]) if has_truth.sum() > 2 else math.nan,
        "base_rate": float(h.labels.mean()),
        "mean_pred": float(cor.mean()),
        "n_test": float(len(h)),
    }


def select_C(users: Sequence[UserRecord] | ReactionTable, cfg: LoveConfig, grid: Sequence[float] = (0.3, 1.0, 3.0, 10.0),
             *, encoder: TextEncoder | NgramEncoder | None = None) -> tuple[float, dict[float, float]]:
    """Pick the head's ``C`` by AUROC on a chronological validation split *inside* the training split (the latest
    ``cfg.test_fraction`` of it), so the test split is never used for tuning; among C values within one standard
    error of the best validation AUROC the smallest (most regularised) wins. Returns (chosen C, {C: val AUROC}).

    Validation reactions of all users count (real logs do not say who is adversarial); no defence weights, for
    speed: adversaries add the same noise to every candidate ``C``.
    """
    table = users if isinstance(users, ReactionTable) else reaction_table(users, cfg.reaction_kind)
    train_idx, _ = chrono_split(table, cfg.test_fraction)
    tr = table.take(train_idx)
    fit_ix, val_ix = chrono_split(tr, cfg.test_fraction)
    if tr.labels[fit_ix].sum() == 0 or tr.labels[val_ix].sum() == 0 or tr.labels[val_ix].sum() == len(val_ix):
        return cfg.C, {}
    encoder = encoder or make_encoder(cfg.backbone, cfg.max_length, cfg.batch_size, cfg.device, cfg.embedding_cache)
    fit_tab, val_tab = tr.take(fit_ix), tr.take(val_ix)
    base = LoveModel(encoder, personalised=cfg.personalised, length_debias=_debias(cfg), views=cfg.views)
    base.set_length_stats(fit_tab.responses)
    X_fit = base.features(fit_tab.prompts, fit_tab.responses, fit_tab.summaries)
    X_val = base.features(val_tab.prompts, val_tab.responses, val_tab.summaries, neutral_length=True)
    scores: dict[float, float] = {}
    for c in grid:
        m = LoveModel(encoder, personalised=cfg.personalised, length_debias=_debias(cfg), C=c, views=cfg.views)
        m.length_mean, m.length_std = base.length_mean, base.length_std
        m.fit(fit_tab.prompts, fit_tab.responses, fit_tab.labels, target_pos_share=cfg.target_pos_share,
              seed=cfg.seed, features=X_fit)
        scores[float(c)] = auroc(val_tab.labels, m.predict_proba(val_tab.prompts, val_tab.responses, features=X_val))
    top = max(scores.values())
    # One-standard-error rule: the most regularised C whose validation AUROC is within one SE of the best. With a
    # few dozen validation loves the differences between C values are mostly noise, and a noisy argmax picked an
    # almost unregularised head on the full-size log.
    se = auroc_se(top, int(val_tab.labels.sum()), int(len(val_tab) - val_tab.labels.sum()))
    best = min(c for c in scores if scores[c] >= top - se)
    log.info("P[Love] C by chronological validation: %s -> %s", scores, best)
    return best, scores


@dataclass
class LoveTrainResult:
    model: LoveModel
    metrics: dict[str, float]
    train_idx: np.ndarray
    test_idx: np.ndarray
    defence: DefenceReport | None = None
    seconds: float = 0.0
    config: dict = field(default_factory=dict)


def train_love(users: Sequence[UserRecord] | ReactionTable, cfg: LoveConfig | None = None, *,
               out_dir: str | Path | None = None, encoder: TextEncoder | NgramEncoder | None = None,
               source: str = "<records>") -> LoveTrainResult:
    """Fit P[Love] on the chrono train split and evaluate on the chrono test split; save to ``out_dir`` if given."""
    cfg = cfg or LoveConfig()
    t0 = time.time()
    table = users if isinstance(users, ReactionTable) else reaction_table(users, cfg.reaction_kind, source)
    train_idx, test_idx = chrono_split(table, cfg.test_fraction)
    tr = table.take(train_idx)
    if tr.labels.sum() == 0:
        raise ValueError(f"{source}: the chrono train split has no {cfg.reaction_kind} reactions with value 1")
    encoder = encoder or make_encoder(cfg.backbone, cfg.max_length, cfg.batch_size, cfg.device, cfg.embedding_cache)

    def new_model() -> LoveModel:
        m = LoveModel(encoder, personalised=cfg.personalised, length_debias=_debias(cfg), C=cfg.C,
                      views=cfg.views)
        return m.set_length_stats(tr.responses)

    # The training features are built once; the defence's cross-fits and the final fit take rows of them.
    X_tr = new_model().features(tr.prompts, tr.responses, tr.summaries)
    X_tr = X_tr.tocsr() if hasattr(X_tr, "tocsr") else X_tr

    # Embed every unique text once, up front (the expensive part; everything after is cached lookups).
    if isinstance(encoder, TextEncoder):
        encoder.encode(list(dict.fromkeys([prompt_view(p) for p in table.prompts]
                                          + [response_view(r) for r in table.responses]
                                          + ([s or "" for s in table.summaries] if cfg.personalised else []))))
        encoder.save_cache()

    defence = None
    weights = np.ones(len(tr))
    if cfg.defence:
        def fit_predict(fit_ix: np.ndarray, w: np.ndarray, score_ix: np.ndarray) -> np.ndarray:
            m = new_model().fit([tr.prompts[i] for i in fit_ix], [tr.responses[i] for i in fit_ix], tr.labels[fit_ix],
                                summaries=[tr.summaries[i] for i in fit_ix], sample_weight=w,
                                target_pos_share=cfg.target_pos_share, seed=cfg.seed, features=X_tr[fit_ix])
            X_score = m.neutralise(X_tr[score_ix])
            return m.predict_proba([], [], features=X_score), m.content_logits(X_score)

        defence = defence_weights(tr.user_ids, tr.labels, tr.timestamps, fit_predict, folds=cfg.defence_folds,
                                  rounds=cfg.defence_rounds, honest_prior=cfg.honest_prior, cap=cfg.positive_cap,
                                  window_s=cfg.burst_window_s, seed=cfg.seed, inverter_share=cfg.inverter_share)
        weights = defence.weights
        log.info("defence: %d of %d users flagged", len(defence.flagged()), len(defence.users))
    model = new_model().fit(tr.prompts, tr.responses, tr.labels, summaries=tr.summaries, sample_weight=weights,
                            target_pos_share=cfg.target_pos_share, live_base_rate=cfg.live_base_rate, seed=cfg.seed,
                            features=X_tr)
    metrics = love_metrics(model, table, test_idx)
    metrics["n_train"] = float(len(tr))
    result = LoveTrainResult(model, metrics, train_idx, test_idx, defence, time.time() - t0, asdict(cfg))
    if out_dir is not None:
        out = Path(out_dir)
        model.save_pretrained(out)
        (out / "metrics.json").write_text(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                                                      for k, v in metrics.items()}, indent=1), encoding="utf-8")
        (out / "love_config.json").write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    return result
