"""P[Love] on real reactions: OpenAssistant users' emoji reactions to assistant replies.

The one place where P[Love] meets feedback no simulator wrote. The OpenAssistant export (converted by
:mod:`pluralign.data.converters.oasst`) keeps, per assistant reply, how many people reacted ``+1``, ``-1`` or
``red_flag``; who reacted is not exported, so the model is a population P[Love] (no summaries). The label: a reply
that drew at least one ``+1`` is a positive reaction; a reply whose reactions were only ``-1`` / ``red_flag`` is
not. Replies without any reaction are not in the converted data (nobody reacted: no evidence either way).

Replies of one conversation tree share a prompt and often an author, so the split is by tree: K folds of trees,
each reply scored by models that never saw its tree; AUROC is pooled over all replies, with a 95% CI from a
bootstrap over trees. The neural model's settings (epochs; whether its score is length-aware) are chosen on the
training trees alone (a quarter of the first fold's training trees held out, see :func:`choose_neural`), never on a
scored reply. Method ``length`` is the floor: a logistic fit on the response's log word count alone (cross-fitted
like the others), which says how much of a model's AUROC is only "longer answers get the thumbs up".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from pluralign.data.converters import oasst
from pluralign.data.schema import UserRecord
from pluralign.evaluation.metrics import auroc
from pluralign.evaluation.results import Result
from pluralign.metrics import bootstrap_ci
from pluralign.models.logistic import fit_logistic
from pluralign.models.love import LoveModel, NgramEncoder
from pluralign.models.love_neural import NeuralLoveModel
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import HONEST, ReactionTable, fit_neural_love, user_bootstrap_ci

log = logging.getLogger(__name__)
BENCH = "oasst"
POSITIVE, NEGATIVE = ("+1",), ("-1", "red_flag")


def oasst_reaction_table(users: Sequence[UserRecord]) -> ReactionTable:
    """One row per assistant reply that drew a reaction: label 1 if any ``+1``, 0 if only ``-1`` / ``red_flag``;
    ``user_ids`` hold the conversation tree (the unit of the split and of the CIs)."""
    items: dict[str, dict] = {}
    for u in users:
        for rx in u.reactions:
            if rx.kind not in POSITIVE + NEGATIVE or rx.value <= 0:
                continue
            key = rx.item_id or rx.reaction_id
            it = items.setdefault(key, {"prompt": rx.prompt, "response": rx.response, "tree": rx.topic or key,
                                        "t": rx.timestamp, "pos": 0.0})
            if rx.kind in POSITIVE:
                it["pos"] += rx.value
    if not items:
        raise ValueError("no +1 / -1 / red_flag reactions found: is this an OpenAssistant export converted with "
                         "`pluralign data convert oasst`?")
    rows = list(items.values())
    n = len(rows)
    return ReactionTable([r["tree"] for r in rows], [r["prompt"] for r in rows], [r["response"] for r in rows],
                         np.array([1.0 if r["pos"] > 0 else 0.0 for r in rows]), [r["t"] for r in rows],
                         np.full(n, math.nan), [HONEST] * n, [None] * n, [None] * n)


def tree_folds(trees: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``k`` folds, whole trees per fold (a seeded shuffle of the tree ids)."""
    uniq = sorted(set(trees))
    if len(uniq) < k:
        raise ValueError(f"{len(uniq)} trees cannot make {k} folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    fold_of = {uniq[j]: f % k for f, j in enumerate(order)}
    return [np.flatnonzero([fold_of[t] == f for t in trees]) for f in range(k)]


def _fit_score(kind: str, table: ReactionTable, train_ix: np.ndarray, test_ix: np.ndarray,
               cfg: LoveConfig) -> np.ndarray:
    tr, te = table.take(train_ix), table.take(test_ix)
    if kind == "length":
        basis = NeuralLoveModel.length_features
        mean, std = NeuralLoveModel.length_stats(tr.responses)
        coef, b = fit_logistic(basis(tr.responses, mean, std), tr.labels, np.ones(len(tr)), C=100.0)
        return 1.0 / (1.0 + np.exp(-(basis(te.responses, mean, std) @ coef + b)))
    if kind == "love-linear":
        m = LoveModel(NgramEncoder(), C=cfg.C).set_length_stats(tr.responses)
        m.fit(tr.prompts, tr.responses, tr.labels, target_pos_share=None, seed=cfg.seed)
        return m.predict_proba(te.prompts, te.responses)
    m = fit_neural_love(tr, np.ones(len(tr)), cfg)
    return m.predict_proba(te.prompts, te.responses, progress=True)


def choose_neural(table: ReactionTable, train_ix: np.ndarray, cfg: LoveConfig, epoch_choices: Sequence[int],
                  seed: int, length_choices: Sequence[bool] = (False,)) -> tuple[LoveConfig, dict[str, float]]:
    """The neural model's epochs and length-awareness, read from training trees only: a quarter of them (whole trees)
    held out, one model per combination fitted on the rest, the one with the highest held-out AUROC kept (a tie
    keeps fewer epochs, then no length expert). Returns the config with the choice and the held-out AUROC of each.

    Why: at a few hundred replies one epoch is a handful of optimizer steps and leaves the classifier at chance,
    while a fixed larger budget would be a number picked by looking at the scored folds; likewise whether a length
    expert helps is a question for held-out training trees, not for the scored ones."""
    inner = tree_folds([table.user_ids[i] for i in train_ix], 4, seed)
    held = train_ix[inner[0]]
    fit_ix = np.setdiff1d(train_ix, held)
    scores: dict[tuple[int, bool], float] = {}
    for e in sorted(set(epoch_choices)):
        for aware in sorted(set(length_choices)):
            c = replace(cfg, epochs=e, length_aware=aware)
            scores[e, aware] = auroc(table.labels[held], _fit_score("love", table, fit_ix, held, c))
            log.info("oasst P[Love] epochs=%d length_aware=%s: AUROC %.3f on %d held-out training replies", e, aware,
                     scores[e, aware], len(held))
    e, aware = max(scores, key=lambda k: (scores[k], -k[0], not k[1]))
    return replace(cfg, epochs=e, length_aware=aware), {_label(k): v for k, v in scores.items()}


def _label(choice: tuple[int, bool]) -> str:
    return f"epochs={choice[0]},length_aware={str(choice[1]).lower()}"


def run_oasst_love(users: Sequence[UserRecord], *, folds: int = 3, seed: int = 0,
                   neural: LoveConfig | None = None, methods: Sequence[str] = ("length", "love-linear", "love"),
                   epoch_choices: Sequence[int] = (), length_choices: Sequence[bool] = (False,)
                   ) -> tuple[list[Result], dict]:
    """Cross-fitted AUROC of the length floor and the linear and neural P[Love] on real reactions (split by tree).

    ``epoch_choices`` (e.g. ``(3, 6)``) and ``length_choices`` (e.g. ``(False, True)``): the neural model's epochs
    and length-awareness are chosen among them once, on the first fold's training trees (:func:`choose_neural`), and
    every fold trains with that choice; no epoch choices = ``neural`` as given. Returns the Results (benchmark
    ``oasst``, metrics ``auroc`` with a tree-level CI, and ``base_rate``) and a details dict (counts, per-fold
    AUROCs, the neural choice)."""
    table = oasst_reaction_table(users)
    parts = tree_folds(table.user_ids, folds, seed)
    cfg = neural or LoveConfig(model="neural", seed=seed)
    details: dict = {"replies": len(table), "positives": int(table.labels.sum()), "trees": len(set(table.user_ids)),
                     "folds": folds, "label": "any +1 (vs only -1 / red_flag)"}
    results: list[Result] = []
    scored: dict[str, np.ndarray] = {}
    for method in methods:
        t0 = time.time()
        if method == "love" and epoch_choices:
            first_train = np.sort(np.concatenate(parts[1:]))
            cfg, held_out = choose_neural(table, first_train, cfg, epoch_choices, seed, length_choices)
            details["neural_choice"] = {"chosen": _label((cfg.epochs, cfg.length_aware)),
                                        "held_out_training_auroc": held_out}
        scores = np.full(len(table), np.nan)
        per_fold = []
        for f, test_ix in enumerate(parts):
            train_ix = np.sort(np.concatenate([p for g, p in enumerate(parts) if g != f]))
            scores[test_ix] = _fit_score(method, table, train_ix, test_ix, cfg)
            per_fold.append(auroc(table.labels[test_ix], scores[test_ix]))
        value = auroc(table.labels, scores)
        lo, hi = user_bootstrap_ci(table.labels, scores, table.user_ids, seed=seed)
        secs = time.time() - t0
        # The CI resamples whole conversation trees (reactors are anonymous in the export).
        results.append(Result(BENCH, method, "trees", "auroc", value, len(table), lo, hi, seconds=secs, ci_unit="tree",
                              n_users=len(set(table.user_ids))))
        details[method] = {"auroc": value, "ci": [lo, hi], "per_fold_auroc": per_fold, "seconds": secs}
        scored[method] = scores
        log.info("oasst P[Love] %s: AUROC %.3f [%.3f, %.3f] over %d replies (%.0fs)", method, value, lo, hi,
                 len(table), secs)
    results += floor_differences(table, scored, seed)
    results.append(Result(BENCH, "data", "trees", "base_rate", float(table.labels.mean()), len(table)))
    return results, details


def floor_differences(table: ReactionTable, scored: dict[str, np.ndarray], seed: int) -> list[Result]:
    """Each model's AUROC minus the length floor's on the same replies (``auroc_diff``, method ``<m>-vs-length``),
    with a paired 95% CI that resamples whole trees: does the model know more than "longer is better"?"""
    if "length" not in scored:
        return []
    out = []
    for method, scores in scored.items():
        if method == "length":
            continue
        rows = np.column_stack([table.labels, scores, scored["length"]])
        diff = lambda r: auroc(r[:, 0], r[:, 1]) - auroc(r[:, 0], r[:, 2])  # noqa: E731
        lo, hi = bootstrap_ci(rows, diff, clusters=table.user_ids, seed=seed)
        out.append(Result(BENCH, f"{method}-vs-length", "trees", "auroc_diff", diff(rows), len(table), lo, hi,
                          ci_unit="tree", n_users=len(set(table.user_ids))))
        log.info("oasst P[Love] %s - length: AUROC %+.3f [%+.3f, %+.3f]", method, out[-1].value, lo, hi)
    return out


def load_oasst_users(data_dir: str | Path) -> list[UserRecord]:
    """Convert the OpenAssistant export folder (e.g. ``../shared/data/oasst2-subset``)."""
    p = Path(data_dir)
    if not p.exists():
        raise FileNotFoundError(f"{p}: OpenAssistant data folder not found (expected oasst2 JSONL trees)")
    return oasst.convert(p)
