"""Across-method and across-seed statistics of a bench run: paired accuracy differences (every learned method
against ``bt`` and the ``keyword`` floor, same users and pairs) and the pooling of per-seed records."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pluralign.evaluation.results import (
    NOT_LEARNED,
    Result,
    mean_result,
    pooled_mean_result,
    seed_mean_result,
)

COMPARE_WITH = ("bt", "keyword")  # every learned method gets a paired accuracy_diff against each of these


def paired_diffs(benchmark: str, items: dict[str, dict[str, dict]], *, seed: int,
                 against: Sequence[str] = COMPARE_WITH) -> list[Result]:
    """``<method>-vs-<other>`` accuracy differences (method minus other) on the same users and pairs, with the
    cluster-bootstrap CI of the difference, for every learned method against each of ``against`` that ran.

    ``items`` maps method → split → {"user_ids", "values"} (per-pair correctness, in the same pair order for
    every method, as :func:`run_method` scores the same eval sets)."""
    out = []
    for other in against:
        if other not in items:
            continue
        for method, splits in items.items():
            if method in NOT_LEARNED or method == other:
                continue
            for split, mine in splits.items():
                theirs = items[other].get(split)
                if theirs is None:
                    continue
                if mine["user_ids"] != theirs["user_ids"]:
                    raise RuntimeError(f"{method} and {other} were scored on different pairs of {split}")
                d = np.asarray(mine["values"], dtype=float) - np.asarray(theirs["values"], dtype=float)
                out.append(mean_result(benchmark, f"{method}-vs-{other}", split, "accuracy_diff", d, seed=seed,
                                       user_ids=mine["user_ids"]))
    return out


def diff_items(items: dict[str, dict[str, dict]], against: Sequence[str] = COMPARE_WITH) -> dict[str, dict]:
    """The per-pair differences behind :func:`paired_diffs`, keyed ``<method>-vs-<other>`` (for seed pooling)."""
    out: dict[str, dict] = {}
    for other in against:
        for method, splits in items.items():
            if other not in items or method in NOT_LEARNED or method == other:
                continue
            for split, mine in splits.items():
                theirs = items[other].get(split)
                if theirs is not None:
                    d = np.asarray(mine["values"], dtype=float) - np.asarray(theirs["values"], dtype=float)
                    out.setdefault(f"{method}-vs-{other}", {})[split] = {"user_ids": mine["user_ids"],
                                                                         "values": d.tolist()}
    return out


def aggregate_seeds(benchmark: str, per_seed: dict[int, list[Result]],
                    per_seed_items: dict[int, dict[str, dict[str, dict[str, dict]]]]) -> list[Result]:
    """Across-seed records: per-pair metrics (accuracy, accuracy_diff, expected_accuracy) pooled with
    :func:`pooled_mean_result`; every other metric as mean / SD / min / max of the per-seed values."""
    out: list[Result] = []
    keys = list(dict.fromkeys((r.method, r.split, r.metric, r.context_votes) for rs in per_seed.values()
                              for r in rs))
    for method, split, metric, k in keys:
        pooled = {}
        for s, by_metric in per_seed_items.items():
            hit = by_metric.get(metric, {}).get(method, {}).get(split)
            if hit is not None:
                pooled[s] = (hit["values"], hit["user_ids"])
        if pooled and k is None:
            out.append(pooled_mean_result(benchmark, method, split, metric, pooled))
            continue
        recs = [r for rs in per_seed.values() for r in rs if (r.method, r.split, r.metric, r.context_votes)
                == (method, split, metric, k)]
        agg = seed_mean_result(recs)
        agg.context_votes = k
        out.append(agg)
    return out


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]`` (a clear error for anything else)."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must list distinct integers, e.g. 0,1,2; got {text!r}")
    return seeds
