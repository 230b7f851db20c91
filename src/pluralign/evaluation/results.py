"""The benchmark result record, its CIs (from the one bootstrap, :func:`pluralign.metrics.bootstrap_ci`), and the
files a bench run writes (``results.json``, ``report.md``).

Field names are a contract: ``{"benchmark", "method", "split", "metric", "value", "n", "ci_low", "ci_high",
"seconds", "ci_unit", "n_users"}`` on every record. ``ci_unit`` says what the 95% CI resampled: ``"user"`` (a
cluster bootstrap over users: all of a user's pairs go in or out together, so a user with many pairs cannot make
the interval look tighter than the number of people allows), ``"pair"`` (items, where the data has no users) or
``"tree"`` (OpenAssistant reactions: whole conversation trees, ``n_users`` counting trees, as reactors are anonymous);
``n_users`` is the number of distinct users behind ``n``. Optional fields, written only when set:
``seed`` (the run seed of a per-seed record), ``seeds`` / ``seed_sd`` / ``seed_min`` / ``seed_max`` (a record
aggregated over several seeds: ``value`` is the mean of the per-seed values, the CI is pooled), and
``context_votes``. Split names: ``seen-users``, ``new-users``, ``new-topics``, ``chrono``, ``validation`` (or
``all`` where a metric is not per split).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pluralign.evaluation.report import render_markdown
from pluralign.metrics import bootstrap_ci

SPLITS = ("seen-users", "new-users", "new-topics", "chrono")
REQUIRED_FIELDS = ("benchmark", "method", "split", "metric", "value", "n", "ci_low", "ci_high", "seconds", "ci_unit",
                   "n_users")
OPTIONAL_FIELDS = ("seed", "seeds", "seed_sd", "seed_min", "seed_max", "context_votes")


@dataclass
class Result:
    benchmark: str
    method: str
    split: str
    metric: str
    value: float
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    seconds: float | None = None
    ci_unit: str | None = None  # "user" or "pair": what the CI resampled (None: no CI, e.g. a wall time)
    n_users: int | None = None
    seed: int | None = None
    seeds: list[int] | None = None
    seed_sd: float | None = None
    seed_min: float | None = None
    seed_max: float | None = None
    context_votes: int | None = None


def mean_result(benchmark: str, method: str, split: str, metric: str, values: Sequence[float],
                seconds: float | None = None, seed: int = 0, *, user_ids: Sequence[str] | None = None) -> Result:
    """A Result whose value is the mean of per-item ``values`` (e.g. 0/1 correctness), with a 95% CI from a cluster
    bootstrap over ``user_ids`` (one per item), or over items when there are no users."""
    arr = np.asarray(values, dtype=float)
    if user_ids is not None and len(user_ids) != len(arr):
        raise ValueError(f"{method}/{split}: {len(user_ids)} user ids for {len(arr)} values")
    lo, hi = bootstrap_ci(arr, clusters=user_ids, seed=seed)
    return Result(benchmark, method, split, metric, float(arr.mean()) if len(arr) else math.nan, len(arr), lo, hi,
                  seconds, ci_unit="user" if user_ids is not None else "pair",
                  n_users=len(set(user_ids)) if user_ids is not None else None)


def _mean_of_strata(cols: np.ndarray) -> float:
    """Column 0 holds values, column 1 the stratum (seed) index: the mean over strata of the per-stratum means."""
    return float(np.mean([cols[cols[:, 1] == s, 0].mean() for s in np.unique(cols[:, 1])]))


def pooled_mean_result(benchmark: str, method: str, split: str, metric: str,
                       per_seed: Mapping[int, tuple[Sequence[float], Sequence[str] | None]], *,
                       boot_seed: int = 0) -> Result:
    """Aggregate one per-item metric over run seeds: ``value`` = mean of the per-seed means; ``seed_sd`` (sample
    SD), ``seed_min``/``seed_max`` = the spread across seeds; the pooled 95% CI = a bootstrap that redraws users
    within each seed (each seed's suite has its own users) and recomputes the mean of the per-seed means.

    ``per_seed`` maps a seed to (per-item values, per-item user ids or None)."""
    seeds = sorted(per_seed)
    vals, keys, layer = [], [], []
    means = []
    users = True
    for k, s in enumerate(seeds):
        v, u = per_seed[s]
        v = np.asarray(v, dtype=float)
        if len(v) == 0:
            continue
        means.append(float(v.mean()))
        vals.append(v)
        users = users and u is not None
        keys += [f"{s}\x00{x}" for x in (u if u is not None else range(len(v)))]
        layer += [k] * len(v)
    if not vals:
        return Result(benchmark, method, split, metric, math.nan, 0, seeds=seeds)
    cols = np.column_stack([np.concatenate(vals), np.asarray(layer, dtype=float)])
    lo, hi = bootstrap_ci(cols, _mean_of_strata, clusters=keys, strata=layer, seed=boot_seed)
    return Result(benchmark, method, split, metric, float(np.mean(means)), len(cols), lo, hi,
                  ci_unit="user" if users else "pair", n_users=len(set(keys)) if users else None, seeds=seeds,
                  seed_sd=float(np.std(means, ddof=1)) if len(means) > 1 else 0.0, seed_min=min(means),
                  seed_max=max(means))


def seed_mean_result(records: Sequence[Result]) -> Result:
    """Aggregate a metric without per-item values (tokens, seconds, memory) over seeds: mean, SD, min, max."""
    first = records[0]
    vals = [r.value for r in records if r.value is not None and not math.isnan(r.value)]
    mean = float(np.mean(vals)) if vals else math.nan
    return Result(first.benchmark, first.method, first.split, first.metric, mean, int(sum(r.n for r in records)),
                  ci_unit=first.ci_unit, n_users=sum(r.n_users or 0 for r in records) or None,
                  seeds=sorted(r.seed for r in records if r.seed is not None),
                  seed_sd=float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                  seed_min=min(vals) if vals else None, seed_max=max(vals) if vals else None)


def _clean(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def result_row(r: Result) -> dict:
    """The ``results.json`` row: every required field, and the optional ones only when set."""
    d = asdict(r)
    return {k: _clean(v) for k, v in d.items() if k in REQUIRED_FIELDS or v is not None}


def write_results(out_dir: str | Path, results: Iterable[Result], title: str = "pluralign benchmark",
                  notes: Sequence[str] = ()) -> Path:
    """Write ``results.json`` and ``report.md`` (``notes``: paragraphs printed under the title)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [result_row(r) for r in results]
    (out / "results.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(rows, title, notes=notes), encoding="utf-8")
    return out / "results.json"


def load_results(path: str | Path) -> list[dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    return json.loads(p.read_text(encoding="utf-8"))


# Methods that learn nothing (the floor and the simulator's Bayes rule): no paired comparisons against them.
NOT_LEARNED = ("keyword", "bayes")


def json_default(o: object):
    """``json.dumps`` default for what stages and suites write: numpy scalars and arrays, Results, paths."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Result):
        return asdict(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))
