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

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.metrics import auroc, ece, pearson_r
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
from pluralign.models.love_neural import NeuralLoveModel, freeze_below, init_head_bias
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
    """A summary stored with the record (``meta.summary``, e.g. exported by the service), else the user's own
    self-description. Never the simulator's hidden ``persona``: that is ground truth, which only oracles may read."""
    s = u.meta.get("summary")
    return str(s) if s else u.profile


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


def with_summaries(table: ReactionTable, summaries: Sequence[str | None]) -> ReactionTable:
    """The same rows with other summaries."""
    if len(summaries) != len(table):
        raise ValueError(f"summaries ({len(summaries)}) and reactions ({len(table)}) differ in length")
    return dataclasses.replace(table, summaries=list(summaries))


def history_context(user_id: str, table: ReactionTable, rows: Sequence[int], negatives_per_love: int = 1,
                    max_loves: int = 4) -> UserRecord:
    """What a summarizer reads of one user: their own reactions in ``rows`` as preference pairs (each of their latest
    ``max_loves`` loved responses over up to ``negatives_per_love`` responses they saw nearest in time and did not
    love). A user without a love in ``rows`` has an empty history (and gets an empty summary)."""
    rows = sorted(rows, key=lambda i: (table.timestamps[i] is None, table.timestamps[i] or 0.0, i))
    loved = [i for i in rows if table.labels[i] == 1.0][-max_loves:] if max_loves > 0 else []
    others = [i for i in rows if table.labels[i] == 0.0]
    pairs = []
    for i in loved:
        ti = table.timestamps[i] or 0.0
        near = sorted(others, key=lambda j: (abs((table.timestamps[j] or 0.0) - ti), j))[:negatives_per_love]
        for j in near:
            pairs.append(PreferencePair(pair_id=f"{user_id}:{i}>{j}", prompt=table.prompts[i],
                                        chosen=table.responses[i], rejected=table.responses[j],
                                        timestamp=table.timestamps[i]))
    return UserRecord(user_id=user_id, pairs=pairs)


def make_summarizer(spec: str, seed: int = 0):
    """The summarizer named by ``LoveConfig.summarizer`` (``"stored"`` gives None: use the records' own text)."""
    if spec == "stored":
        return None
    if spec == "cpu":
        from pluralign.summarizers.cpu import CpuSummarizer

        return CpuSummarizer(seed=seed)
    if spec.startswith("hf:"):
        from pluralign.summarizers.hf import HFSummarizer

        return HFSummarizer.from_pretrained(spec[3:], max_new_tokens=64, seed=seed)
    from pluralign.summarizers import load_summarizer

    return load_summarizer(spec)


def attach_summaries(table: ReactionTable, train_idx: np.ndarray, summarizer, *, blocks: int = 4,
                     negatives_per_love: int = 1, max_loves: int = 4) -> ReactionTable:
    """Summaries written by ``summarizer`` from each user's *earlier* reactions, never from the one being predicted.

    The training reactions are cut into ``blocks`` time blocks (equal counts); a training reaction in block b gets
    the summary of the user's reactions in blocks < b (block 0: none), every other row (the test split) the
    summary of all the user's training reactions. A model trained on summaries that contain the very reaction it
    predicts would learn to look its answer up, and fail on the test split where it cannot.
    """
    from tqdm.auto import tqdm

    if summarizer is None:  # "stored": keep the text the records carry
        return table
    train_idx = np.sort(np.asarray(train_idx, dtype=int))
    t = np.array([math.inf if table.timestamps[i] is None else table.timestamps[i] for i in train_idx])
    order = train_idx[np.argsort(t, kind="stable")]
    block_of = np.full(len(table), blocks, dtype=int)  # rows outside training see every training block
    for b, part in enumerate(np.array_split(order, blocks)):
        block_of[part] = b
    by_user: dict[str, list[int]] = {}
    for i in train_idx:
        by_user.setdefault(table.user_ids[i], []).append(int(i))
    needed = sorted({(table.user_ids[i], int(block_of[i])) for i in range(len(table)) if block_of[i] > 0})
    contexts = [history_context(u, table, [i for i in by_user.get(u, []) if block_of[i] < b], negatives_per_love,
                                max_loves) for u, b in needed]
    text: dict[tuple[str, int], str] = {}
    has_history = [k for k, c in zip(needed, contexts, strict=True) if c.pairs]
    todo = [c for c in contexts if c.pairs]
    if hasattr(summarizer, "precompute"):
        summarizer.precompute(todo)
    step = 64
    for i in tqdm(range(0, len(todo), step), desc=f"summaries of {len(todo)} histories", disable=len(todo) < 2 * step):
        for k, z in zip(has_history[i:i + step], summarizer.summarize(todo[i:i + step]), strict=True):
            text[k] = z
    return with_summaries(table, [text.get((u, int(block_of[i])), "") or None
                                  for i, u in enumerate(table.user_ids)])


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


def user_bootstrap_ci(labels: np.ndarray, scores: np.ndarray, groups: Sequence[str], stat=None, *,
                      n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% cluster-bootstrap CI of ``stat(labels, scores)`` (AUROC by default) resampling whole users (or trees):
    reactions of one user are not independent, so the user is the unit."""
    stat = stat or auroc
    idx_of: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        idx_of.setdefault(g, []).append(i)
    blocks = [np.asarray(v) for v in idx_of.values()]
    if len(blocks) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        ix = np.concatenate([blocks[j] for j in rng.integers(0, len(blocks), len(blocks))])
        v = stat(labels[ix], scores[ix])
        if not math.isnan(v):
            vals.append(v)
    if not vals:
        return (math.nan, math.nan)
    return float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))


def love_metrics(model, table: ReactionTable, idx: np.ndarray, *, ci: bool = False,
                 seed: int = 0) -> dict[str, float]:
    """AUROC (model and oracle), ECE before/after the prior correction and length correlation (model and oracle)
    on the honest users' rows among ``idx``; ``auroc_<kind>`` per user kind on that kind's rows (an adversary's
    AUROC says how the model ranks what that user did: below 0.5 for an inverter). ``ci`` adds user-level
    bootstrap CIs (``auroc_ci_low`` / ``auroc_ci_high`` and the same for the oracle)."""
    sub = table.take(idx)
    kinds = np.array(sub.user_kinds)
    raw_all = model.predict_proba(sub.prompts, sub.responses, sub.summaries, corrected=False)
    cor_all = model.predict_proba(sub.prompts, sub.responses, sub.summaries, corrected=True)  # cached scores
    honest = kinds == HONEST
    h_ix = np.flatnonzero(honest) if honest.any() else np.arange(len(sub))
    h = sub.take(h_ix)
    raw, cor = raw_all[h_ix], cor_all[h_ix]
    lengths = np.array([word_count(r) for r in h.responses], dtype=float)
    has_truth = ~np.isnan(h.p_true)
    out = {
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
        "n_test_users": float(len(set(h.user_ids))),
    }
    for k in sorted(set(kinds.tolist())):
        m = kinds == k
        out[f"auroc_{k}"] = auroc(sub.labels[m], cor_all[m])
        out[f"n_test_{k}"] = float(m.sum())
    if ci:
        out["auroc_ci_low"], out["auroc_ci_high"] = user_bootstrap_ci(h.labels, cor, h.user_ids, seed=seed)
        if has_truth.all():
            out["oracle_auroc_ci_low"], out["oracle_auroc_ci_high"] = user_bootstrap_ci(h.labels, h.p_true,
                                                                                        h.user_ids, seed=seed)
        out["ece_ci_low"], out["ece_ci_high"] = user_bootstrap_ci(h.labels, cor, h.user_ids, ece, seed=seed)
    return out


def select_C(users: Sequence[UserRecord] | ReactionTable, cfg: LoveConfig, grid: Sequence[float] = (0.3, 1.0, 3.0, 10.0),
             *, encoder: TextEncoder | NgramEncoder | None = None,
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
    import torch
    from tqdm.auto import tqdm

    from pluralign.models.love import fit_logistic
    from pluralign.training.rm_trainer import use_bf16

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
    lengths = np.log1p([word_count(r) for r in tr.responses])
    model.length_mean, model.length_std = float(lengths.mean()), float(lengths.std() or 1.0)
    offset_all = np.zeros(len(tr))
    if cfg.length_debias:
        # Product of experts: a length-only logistic expert, fitted first, is added to the logit while training and
        # dropped at inference, so the network is not rewarded for carrying what length already explains.
        L = model.length_basis(tr.responses)
        coef, b = fit_logistic(L, y, w_all, C=100.0)
        model.length_expert = [b, *coef.tolist()]
        offset_all = L @ coef
        offset_all -= float(np.average(offset_all, weights=w_all))
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
               out_dir: str | Path | None = None, encoder: TextEncoder | NgramEncoder | None = None,
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
