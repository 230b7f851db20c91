"""Train and evaluate P[Love] on a reaction log: chronological split, positive upsampling, prior-shift correction,
optional adversarial-user defence and personalisation by the user's PLUS summary.

Reads :class:`~pluralign.data.schema.UserRecord` reactions of one kind (``love``, value 1/0). The test split is the
latest ``test_fraction`` of reactions by timestamp, as in the paper ("held-out conversations taken after the
training period"). Metrics are computed on honest users' test reactions (adversaries' reactions are noise by
construction); the oracle AUROC scores those same reactions by their true probability ``p_true``; per user kind
(``normal`` and each adversary kind of a simulated log) the AUROC is reported too.

Two models: ``model="linear"`` (:class:`~pluralign.models.love.LoveModel`, hashed n-grams or frozen embeddings and a
logistic head, the ``love-linear`` baseline) and ``model="neural"``
(:class:`~pluralign.models.love_neural.NeuralLoveModel`, a fine-tuned transformer classifier).

Personalisation never reads the simulator's persona: a summarizer (the project's
:class:`~pluralign.summarizers.Summarizer` interface) writes each user's summary from their own reaction history,
and a reaction only ever sees a summary written from reactions *before* it (see :func:`attach_summaries`).
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
import torch
from tqdm.auto import tqdm

from pluralign.data.schema import UserRecord
from pluralign.metrics import auroc
from pluralign.models.love import (
    LoveModel,
    NgramEncoder,
    SentenceEncoder,
    debias_method,
    fit_logistic,
    make_encoder,
    prompt_view,
    response_view,
)
from pluralign.models.love_neural import NeuralLoveModel, freeze_below, init_head_bias
from pluralign.training.adversarial import DefenceReport, defence_weights
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_metrics import auroc_se, love_metrics, user_bootstrap_ci
from pluralign.training.love_summaries import attach_summaries, history_context, make_summarizer
from pluralign.training.precision import use_bf16
from pluralign.training.reaction_table import (
    HONEST,
    ReactionTable,
    chrono_split,
    reaction_table,
    user_summary,
    with_summaries,
)

# The reaction table, summaries and metrics have their own modules; importers of these names from here keep working.
__all__ = ["HONEST", "LoveTrainResult", "ReactionTable", "attach_summaries", "auroc_se", "chrono_split",
           "epoch_plan", "fit_neural_love", "history_context", "love_metrics", "make_summarizer", "reaction_table",
           "select_C", "train_love", "user_bootstrap_ci", "user_summary", "with_summaries"]

log = logging.getLogger(__name__)


def _debias(cfg: LoveConfig) -> str:
    """The model's ``length_debias`` setting from the config's switch and method."""
    return debias_method(cfg.debias_method) if cfg.length_debias else "none"


def select_C(users: Sequence[UserRecord] | ReactionTable, cfg: LoveConfig, grid: Sequence[float] = (0.3, 1.0, 3.0, 10.0),
             *, encoder: SentenceEncoder | NgramEncoder | None = None,
             summarizer=None) -> tuple[float, dict[float, float]]:
    """Pick the head's ``C`` by AUROC on a chronological validation split *inside* the training split (the latest
    ``cfg.test_fraction`` of it), so the test split is never used for tuning; among C values within one standard
    error of the best validation AUROC the smallest (most regularised) wins. Returns (chosen C, {C: val AUROC}).

    Validation reactions of all users count (real logs do not say who is adversarial); no defence weights, for
    speed: adversaries add the same noise to every candidate ``C``.
    """
    table = users if isinstance(users, ReactionTable) else reaction_table(users, cfg.reaction_kind)
    train_idx, _ = chrono_split(table, cfg.test_fraction)
    if cfg.personalised:
        summarizer = summarizer if summarizer is not None else make_summarizer(cfg.summarizer, cfg.seed)
        table = attach_summaries(table, train_idx, summarizer, blocks=cfg.summary_blocks,
                                 negatives_per_love=cfg.negatives_per_love, max_loves=cfg.history_loves)
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
    table: ReactionTable | None = None  # the rows as scored (with the summaries the model saw)


def epoch_plan(labels: np.ndarray, weights: np.ndarray, target_pos_share: float | None, row_pos_share: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows and loss weights of one neural epoch, and the training prior they encode.

    Every positive, plus fresh negatives drawn so that positives are ``row_pos_share`` of the rows (cheap: a
    transformer step costs per row); the positives' loss weight is then set so that their *weighted* share is
    ``target_pos_share`` in expectation, i.e. the paper's upsampling to 10%, which the prior correction undoes."""
    pos = np.flatnonzero(labels == 1.0)
    neg = np.flatnonzero(labels == 0.0)
    w_pos, w_neg = float(weights[pos].sum()), float(weights[neg].sum())
    natural = w_pos / (w_pos + w_neg)
    share = natural if target_pos_share is None or target_pos_share <= natural else float(target_pos_share)
    k = min(len(neg), max(1, round(len(pos) * (1 - row_pos_share) / row_pos_share)))
    picked = rng.choice(neg, size=k, replace=False)
    # expected weighted share: m * w_pos / (m * w_pos + (k / n_neg) * w_neg) == share
    m = share * (k / len(neg)) * w_neg / ((1 - share) * w_pos)
    rows = rng.permutation(np.concatenate([pos, picked]))
    w = weights[rows] * np.where(labels[rows] == 1.0, m, 1.0)
    return rows, w, share


def fit_neural_love(tr: ReactionTable, weights: np.ndarray, cfg: LoveConfig, *,
                    live_base_rate: float | None = None) -> NeuralLoveModel:
    """Fine-tune a :class:`NeuralLoveModel` on the training reactions with weighted binary cross-entropy."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    bf16 = use_bf16(cfg.bf16, cfg.device)
    model = NeuralLoveModel(cfg.neural_backbone, max_length=cfg.neural_max_length, personalised=cfg.personalised,
                            bf16=bf16, seed=cfg.seed).to(cfg.device)
    n_trainable = freeze_below(model, cfg.train_layers)
    y = tr.labels
    w_all = np.asarray(weights, dtype=np.float64)
    natural = float((w_all * y).sum() / w_all.sum())
    model.live_prior = float(live_base_rate) if live_base_rate is not None else natural
    model.length_mean, model.length_std = model.length_stats(tr.responses)
    offset_all = np.zeros(len(tr))
    if cfg.length_debias or cfg.length_aware:
        # A length-only logistic expert, fitted first, is added to the logit while training, so the network is not
        # rewarded for carrying what length already explains; a debias drops it at inference, length-aware keeps it.
        L = model.length_basis(tr.responses)
        coef, b = fit_logistic(L, y, w_all, C=100.0)
        model.length_expert = [b, *coef.tolist()]
        model.length_centre = float(np.average(L @ coef, weights=w_all))
        model.length_kept = cfg.length_aware
        offset_all = model.length_offset(tr.responses)
    pairs = model.inputs(tr.prompts, tr.responses, tr.summaries)
    plans = [epoch_plan(y, w_all, cfg.target_pos_share, cfg.neural_row_pos_share, rng) for _ in range(cfg.epochs)]
    model.train_prior = plans[0][2]
    init_head_bias(model, model.train_prior)
    body = [p for p in model.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": body, "lr": cfg.lr}, {"params": model.head.parameters(), "lr": cfg.head_lr}],
                            weight_decay=0.01)
    bs = cfg.train_batch_size
    total = sum(math.ceil(len(rows) / bs) for rows, _, _ in plans)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / max(1, total // 10)) * max(0.0, 1.0 - step / total))
    log.info("neural P[Love] (%s): %d trainable parameters, %d steps, bf16=%s", cfg.neural_backbone, n_trainable,
             total, bf16)
    model.train()
    bar = tqdm(total=total, desc="P[Love] fine-tuning", disable=total < 20)
    for rows, w, _ in plans:
        for i in range(0, len(rows), bs):
            ix = rows[i:i + bs]
            batch = model.tokenize([pairs[j] for j in ix])
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(**batch).float()
            target = torch.tensor(y[ix], dtype=torch.float32, device=model.device)
            off = torch.tensor(offset_all[ix], dtype=torch.float32, device=model.device)
            wt = torch.tensor(w[i:i + bs], dtype=torch.float32, device=model.device)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits + off, target, reduction="none")
                    * wt).sum() / wt.sum().clamp(min=1e-12)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    model.clear_cache()
    return model


def train_love(users: Sequence[UserRecord] | ReactionTable, cfg: LoveConfig | None = None, *,
               out_dir: str | Path | None = None, encoder: SentenceEncoder | NgramEncoder | None = None,
               source: str = "<records>", summarizer=None, ci: bool = False) -> LoveTrainResult:
    """Fit P[Love] on the chrono train split and evaluate on the chrono test split; save to ``out_dir`` if given.

    ``cfg.model`` picks the linear or the neural model. With ``cfg.personalised`` every reaction is paired with
    its user's summary written from earlier reactions (:func:`attach_summaries`) by ``summarizer`` (default: the
    one ``cfg.summarizer`` names). The adversarial defence's user weights come from cross-fitted linear models
    (cheap) and weight the neural model's loss as well. ``ci`` adds user-level bootstrap CIs to the metrics.
    """
    cfg = cfg or LoveConfig()
    t0 = time.time()
    table = users if isinstance(users, ReactionTable) else reaction_table(users, cfg.reaction_kind, source)
    train_idx, test_idx = chrono_split(table, cfg.test_fraction)
    if cfg.personalised:
        if summarizer is None:
            summarizer = make_summarizer(cfg.summarizer, cfg.seed)
        table = attach_summaries(table, train_idx, summarizer, blocks=cfg.summary_blocks,
                                 negatives_per_love=cfg.negatives_per_love, max_loves=cfg.history_loves)
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
    if isinstance(encoder, SentenceEncoder):
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
    if cfg.model == "neural":
        model = fit_neural_love(tr, weights, cfg, live_base_rate=cfg.live_base_rate)
    else:
        model = new_model().fit(tr.prompts, tr.responses, tr.labels, summaries=tr.summaries, sample_weight=weights,
                                target_pos_share=cfg.target_pos_share, live_base_rate=cfg.live_base_rate,
                                seed=cfg.seed, features=X_tr)
    metrics = love_metrics(model, table, test_idx, ci=ci, seed=cfg.seed)
    metrics["n_train"] = float(len(tr))
    result = LoveTrainResult(model, metrics, train_idx, test_idx, defence, time.time() - t0, asdict(cfg), table)
    if out_dir is not None:
        out = Path(out_dir)
        model.save_pretrained(out)
        (out / "metrics.json").write_text(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                                                      for k, v in metrics.items()}, indent=1), encoding="utf-8")
        (out / "love_config.json").write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    return result
