"""P[Love] on real reactions: OpenAssistant users' emoji reactions to assistant replies.

The one place where P[Love] meets feedback no simulator wrote. The OpenAssistant export (converted by
:mod:`pluralign.data.converters.oasst`) keeps, per assistant reply, how many people reacted ``+1``, ``-1`` or
``red_flag``; who reacted is not exported, so the model is a population P[Love] (no summaries). The label: a reply
that drew at least one ``+1`` is a positive reaction; a reply whose reactions were only ``-1`` / ``red_flag`` is
not. Replies without any reaction are not in the converted data (nobody reacted: no evidence either way).

Replies of one conversation tree share a prompt and often an author, so the split is by tree: K folds of trees,
each reply scored by models that never saw its tree; AUROC is pooled over all replies, with a 95% CI from a
bootstrap over trees. The neural model's number of epochs is chosen on the training trees alone (a quarter of the
first fold's training trees held out, see :func:`choose_epochs`), never on a scored reply.
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
from pluralign.models.love import LoveModel, NgramEncoder
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
    if kind == "love-linear":
        m = LoveModel(NgramEncoder(), C=cfg.C).set_length_stats(tr.responses)
        m.fit(tr.prompts, tr.responses, tr.labels, target_pos_share=None, seed=cfg.seed)
        return m.predict_proba(te.prompts, te.responses)
    m = fit_neural_love(tr, np.ones(len(tr)), cfg)
    return m.predict_proba(te.prompts, te.responses, progress=True)


def choose_epochs(table: ReactionTable, train_ix: np.ndarray, cfg: LoveConfig, choices: Sequence[int],
                  seed: int) -> tuple[int, dict[int, float]]:
    """The neural model's epochs, read from training trees only: a quarter of them (whole trees) held out, one model
    per choice fitted on the rest, the choice with the highest held-out AUROC kept (a tie keeps fewer epochs).

    Why: at a few hundred replies one epoch is a handful of optimizer steps and leaves the classifier at chance,
    while a fixed larger budget would be a number picked by looking at the scored folds."""
    inner = tree_folds([table.user_ids[i] for i in train_ix], 4, seed)
    held = train_ix[inner[0]]
    fit_ix = np.setdiff1d(train_ix, held)
    scores = {}
    for e in sorted(set(choices)):
        scores[e] = auroc(table.labels[held], _fit_score("love", table, fit_ix, held, replace(cfg, epochs=e)))
        log.info("oasst P[Love] epochs=%d: AUROC %.3f on %d held-out training replies", e, scores[e], len(held))
    best = max(scores, key=lambda e: (scores[e], -e))
    return best, scores


def run_oasst_love(users: Sequence[UserRecord], *, folds: int = 3, seed: int = 0,
                   neural: LoveConfig | None = None, methods: Sequence[str] = ("love-linear", "love"),
                   epoch_choices: Sequence[int] = ()) -> tuple[list[Result], dict]:
    """Cross-fitted AUROC of the linear and the neural P[Love] on real reactions (split by tree).

    ``epoch_choices`` (e.g. ``(3, 6)``): the neural model's epochs are chosen among them once, on the first fold's
    training trees (:func:`choose_epochs`), and every fold trains with that choice; empty = ``neural.epochs``.
    Returns the Results (benchmark ``oasst``, metrics ``auroc`` with a tree-level CI, and ``base_rate``) and a
    details dict (counts, per-fold AUROCs, the epoch choice)."""
    table = oasst_reaction_table(users)
    parts = tree_folds(table.user_ids, folds, seed)
    cfg = neural or LoveConfig(model="neural", seed=seed)
    details: dict = {"replies": len(table), "positives": int(table.labels.sum()), "trees": len(set(table.user_ids)),
                     "folds": folds, "label": "any +1 (vs only -1 / red_flag)"}
    results: list[Result] = []
    for method in methods:
        t0 = time.time()
        if method == "love" and epoch_choices:
            first_train = np.sort(np.concatenate(parts[1:]))
            epochs, held_out = choose_epochs(table, first_train, cfg, epoch_choices, seed)
            cfg = replace(cfg, epochs=epochs)
            details["epoch_choice"] = {"chosen": epochs, "held_out_training_auroc": held_out}
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
        log.info("oasst P[Love] %s: AUROC %.3f [%.3f, %.3f] over %d replies (%.0fs)", method, value, lo, hi,
                 len(table), secs)
    results.append(Result(BENCH, "data", "trees", "base_rate", float(table.labels.mean()), len(table)))
    return results, details


def load_oasst_users(data_dir: str | Path) -> list[UserRecord]:
    """Convert the OpenAssistant export folder (e.g. ``../shared/data/oasst2-subset``)."""
    p = Path(data_dir)
    if not p.exists():
        raise FileNotFoundError(f"{p}: OpenAssistant data folder not found (expected oasst2 JSONL trees)")
    return oasst.convert(p)
