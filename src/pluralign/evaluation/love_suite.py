"""The P[Love] part of ``pluralign bench rluf`` that the result contract names: ``love`` (the neural classifier)
and ``love-linear`` (the linear baseline), both personalised by summaries that a summarizer wrote from each user's
own earlier reactions, and both on real OpenAssistant reactions (benchmark ``oasst``).

Records per method (split ``chrono``, the honest users' test reactions): ``auroc`` and ``oracle_auroc`` (CIs: a
bootstrap over users), ``auroc_share_of_oracle``, ``ece`` (after the prior correction; ``ece_uncorrected`` before),
``length_r`` and ``oracle_length_r``; split ``chrono-<kind>`` holds the AUROC on each user kind's own reactions
(``normal``, ``random``, ``inverter``, ``spammer``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

from pluralign.data.corpora import shared_data_dir
from pluralign.evaluation.love_oasst import load_oasst_users, run_oasst_love
from pluralign.evaluation.results import Result
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import (
    LoveTrainResult,
    ReactionTable,
    make_summarizer,
    select_C,
    train_love,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoveSuiteSize:
    """What the neural model may spend: epochs on the simulated log, and on OASST the folds and the epochs and
    length-awareness to choose among (on held-out training trees)."""

    epochs: int = 2
    oasst_folds: int = 3
    oasst_epoch_choices: tuple[int, ...] = (2, 4, 8)
    oasst_length_choices: tuple[bool, ...] = (False, True)


QUICK_LOVE = LoveSuiteSize(epochs=2, oasst_folds=3, oasst_epoch_choices=(3, 6))
FULL_LOVE = LoveSuiteSize(epochs=3, oasst_folds=5, oasst_epoch_choices=(2, 4, 8))


def love_records(bench: str, method: str, m: dict[str, float], seconds: float) -> list[Result]:
    """The contract's records of one trained P[Love] (see the module docstring)."""
    n = int(m["n_test"])

    n_users = int(m["n_test_users"]) if "n_test_users" in m else None

    def ci(key: str) -> dict:
        # love_metrics' CIs are a bootstrap over users (all of a user's reactions resampled together).
        lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
        return {"ci_low": lo, "ci_high": hi, "n_users": n_users, "ci_unit": "user" if lo is not None else None}

    out = [Result(bench, method, "chrono", "auroc", m["auroc"], n, seconds=seconds, **ci("auroc")),
           Result(bench, method, "chrono", "oracle_auroc", m["oracle_auroc"], n, **ci("oracle_auroc")),
           Result(bench, method, "chrono", "ece", m["ece"], n, **ci("ece")),
           Result(bench, method, "chrono", "ece_uncorrected", m["ece_raw"], n),
           Result(bench, method, "chrono", "length_r", m["length_r"], n),
           Result(bench, method, "chrono", "oracle_length_r", m["oracle_length_r"], n)]
    if m.get("oracle_auroc"):
        out.append(Result(bench, method, "chrono", "auroc_share_of_oracle", m["auroc"] / m["oracle_auroc"], n))
    for key, value in m.items():
        if key.startswith("auroc_") and not key.startswith("auroc_ci") and key != "auroc_share_of_oracle":
            kind = key[len("auroc_"):]
            out.append(Result(bench, method, f"chrono-{kind}", "auroc", value, int(m.get(f"n_test_{kind}", 0))))
    return out


def summary_love_section(table: ReactionTable, encoder, *, bench: str, seed: int, quick: bool, rounds: int,
                         c_grid, details: dict, methods=("love-linear", "love"), on_result=None,
                         summarizer=None) -> tuple[list[Result], dict[str, LoveTrainResult]]:
    """Train ``love-linear`` and ``love`` on ``table`` (the main condition: 10% adversaries), both personalised by
    the CPU summarizer's summaries of each user's earlier reactions; the defence weights users in both.
    ``on_result(records)`` is called after each method (a long run keeps what it finished)."""
    size = QUICK_LOVE if quick else FULL_LOVE
    summarizer = summarizer if summarizer is not None else make_summarizer("cpu", seed)
    base = LoveConfig(personalised=True, defence_rounds=rounds, seed=seed)
    C, scores = select_C(table, base, grid=c_grid, encoder=encoder, summarizer=summarizer)
    details["C_selection_love_linear"] = {"chosen": C, "validation_auroc": scores}
    configs = {"love-linear": replace(base, C=C), "love": replace(base, C=C, model="neural", epochs=size.epochs)}
    trained: dict[str, LoveTrainResult] = {}
    results: list[Result] = []
    for method in methods:
        res = trained[method] = train_love(table, configs[method], encoder=encoder, summarizer=summarizer, ci=True)
        results += love_records(bench, method, res.metrics, res.seconds)
        if on_result is not None:
            on_result(list(results))
        details[method] = res.metrics | {"seconds": res.seconds}
        log.info("rluf %s: AUROC %.3f of oracle %.3f, ECE %.4f, length r %+.3f (%.0fs)", method, res.metrics["auroc"],
                 res.metrics["oracle_auroc"], res.metrics["ece"], res.metrics["length_r"], res.seconds)
    last = trained[methods[-1]]
    summaries = last.table.summaries if last.table is not None else []
    test = set(last.test_idx.tolist())
    written = [z for i, z in enumerate(summaries) if i in test and z]
    details["summaries"] = {"test_rows_with_summary": len(written) / max(1, len(test)),
                            "mean_words": sum(len(z.split()) for z in written) / max(1, len(written)),
                            "examples": sorted(set(written))[:3]}
    return results, trained


def oasst_section(*, seed: int, quick: bool, details: dict, data_dir: str | Path | None = None,
                  methods=("length", "love-linear", "love")) -> list[Result]:
    """The length floor and linear and neural P[Love] on the OpenAssistant reactions (split by tree); nothing when
    the data is absent (logged, and recorded in ``details``)."""
    size = QUICK_LOVE if quick else FULL_LOVE
    path = Path(data_dir) if data_dir is not None else shared_data_dir() / "oasst2-subset"
    if not path.exists():
        log.warning("oasst P[Love] skipped: %s not found", path)
        details["oasst"] = {"skipped": f"{path} not found"}
        return []
    cfg = LoveConfig(model="neural", seed=seed)
    results, info = run_oasst_love(load_oasst_users(path), folds=size.oasst_folds, seed=seed, neural=cfg,
                                   methods=methods, epoch_choices=size.oasst_epoch_choices,
                                   length_choices=size.oasst_length_choices)
    details["oasst"] = info
    return results


def targets(results: list[Result]) -> dict:
    """The P[Love] targets of the issue, read from the contract's records of ``love`` (and ``love-linear``)."""
    get = {(r.method, r.split, r.metric): r.value for r in results}
    out = {}
    for method in ("love", "love-linear"):
        a = get.get((method, "chrono", "auroc"), math.nan)
        o = get.get((method, "chrono", "oracle_auroc"), math.nan)
        out[method] = {"auroc_vs_oracle": a / o if o else None, "auroc_target_met": a >= 0.95 * o,
                       "ece_target_met": get.get((method, "chrono", "ece"), math.nan) <= 0.02,
                       "length_target_met": abs(get.get((method, "chrono", "length_r"), math.nan)) <= 0.10}
    return out
