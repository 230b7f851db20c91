"""The benchmark result record, its CIs (from the one bootstrap, :func:`pluralign.metrics.bootstrap_ci`), and the
files a bench run writes (``results.json``, ``report.md``).

Field names are a contract: ``{"benchmark", "method", "split", "metric", "value", "n", "ci_low", "ci_high",
"seconds", "ci_unit", "n_users"}`` on every record. ``ci_unit`` says what the 95% CI resampled: ``"user"`` (a
cluster bootstrap over users: all of a user's pairs go in or out together, so a user with many pairs cannot make
the interval look tighter than the number of people allows) or ``"pair"`` (items, where the data has no users);
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


# --- report.md ---------------------------------------------------------------------------------------------------

FLOOR_METHOD = "keyword"
NOT_LEARNED = ("keyword", "bayes")
_PERCENT = ("accuracy", "accuracy_diff", "expected_accuracy", "truncated_share", "win_rate")


def _is_pct(metric: str) -> bool:
    return metric in _PERCENT or metric.endswith("_rate")


def _fmt(v, metric: str, signed: bool = False) -> str:
    if v is None:
        return "–"
    if _is_pct(metric):
        return f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3f}"


def _split_order(s: str) -> int:
    order = (*SPLITS, "validation", "all")
    return order.index(s) if s in order else 99


def _aggregated(rows: list[dict]) -> list[dict]:
    """The rows a table shows: the across-seed aggregates when the run had several seeds, else the rows as they are."""
    agg = [r for r in rows if r.get("seeds")]
    return agg if agg else rows


def floor_misses(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """(method, split) → its ``<method>-vs-keyword`` record, for every learned method that does not beat the floor
    (the paired 95% CI of its accuracy minus ``keyword``'s does not lie above 0)."""
    out = {}
    for r in _aggregated([r for r in rows if r["metric"] == "accuracy_diff"]):
        if not r["method"].endswith(f"-vs-{FLOOR_METHOD}") or r.get("context_votes") is not None:
            continue
        if r.get("ci_low") is None or r["ci_low"] <= 0:
            out[(r["method"][: -len(f"-vs-{FLOOR_METHOD}")], r["split"])] = r
    return out


def render_markdown(rows: list[dict], title: str = "pluralign benchmark", notes: Sequence[str] = ()) -> str:
    """One table per (benchmark, metric): methods as rows, splits as columns, value [95% CI].

    With several seeds the tables show the across-seed records (mean ± SD across seeds [pooled CI]) and a per-seed
    accuracy table follows. Accuracy cells of learned methods that do not beat the ``keyword`` floor carry a †.
    """
    lines = [f"# {title}", ""]
    for note in notes:
        lines += [note, ""]
    units = {r.get("ci_unit") for r in rows if r.get("ci_low") is not None}
    if units:
        unit_text = {"user": "a cluster bootstrap over users (all of a user's pairs resampled together)",
                     "pair": "a bootstrap over items (no users in these data)"}
        lines += ["95% CIs: " + "; ".join(unit_text.get(u, str(u)) for u in sorted(u for u in units if u)) + ". "
                  "Comparisons (`accuracy_diff`, `<method>-vs-<other>` = method minus other) are paired: both "
                  "methods scored on the same users and pairs, CI of the difference.", ""]
    misses = floor_misses(rows)
    floor = [r for r in _aggregated([r for r in rows if r["metric"] == "accuracy"]) if r["method"] == FLOOR_METHOD
             and r.get("context_votes") is None]
    if floor:
        lines += ["## The floor: `keyword`", "",
                  "`keyword` is a transparent rule that reads only the user's visible context (word overlap of each "
                  "response with what the user chose vs rejected, length and emoji cues, profile words); nothing is "
                  "learned. A learned method that does not beat it (paired CI of the difference not above 0) shows "
                  "nothing about learning on this split: such cells carry a †.", "",
                  "| split | keyword accuracy (%) | learned methods not above the floor |", "|---|---|---|"]
        for r in sorted(floor, key=lambda r: _split_order(r["split"])):
            who = [f"{m} ({_fmt(d['value'], 'accuracy_diff', True)} [{_fmt(d['ci_low'], 'accuracy_diff', True)}, "
                   f"{_fmt(d['ci_high'], 'accuracy_diff', True)}])" for (m, s), d in misses.items() if s == r["split"]]
            cell = _fmt(r["value"], "accuracy")
            if r.get("ci_low") is not None:
                cell += f" [{_fmt(r['ci_low'], 'accuracy')}, {_fmt(r['ci_high'], 'accuracy')}]"
            lines.append(f"| {r['split']} | {cell} | {', '.join(who) if who else 'none'} |")
        lines.append("")
    multi = any(r.get("seeds") for r in rows)
    shown = _aggregated(rows)
    groups: dict[tuple, list[dict]] = {}
    for r in shown:
        groups.setdefault((r["benchmark"], r["metric"], r.get("context_votes")), []).append(r)
    for (bench, metric, k), rs in groups.items():
        splits = sorted({r["split"] for r in rs}, key=_split_order)
        methods = list(dict.fromkeys(r["method"] for r in rs))
        unit = " (points)" if metric == "accuracy_diff" else " (%)" if _is_pct(metric) else ""
        head = f"## {bench} — {metric}{unit}" + (f", {k} context votes" if k is not None else "")
        if multi:
            head += f" — mean ± SD over seeds {', '.join(map(str, rs[0].get('seeds') or []))}"
        lines += [head, "", "| method | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
        for m in methods:
            cells = []
            for s in splits:
                hit = [r for r in rs if r["method"] == m and r["split"] == s]
                if not hit:
                    cells.append("")
                    continue
                r = hit[0]
                signed = metric == "accuracy_diff"
                cell = _fmt(r["value"], metric, signed)
                if multi and r.get("seed_sd") is not None:
                    cell += f" ± {_fmt(r['seed_sd'], metric)}"
                if r.get("ci_low") is not None and r.get("ci_high") is not None:
                    cell += f" [{_fmt(r['ci_low'], metric, signed)}, {_fmt(r['ci_high'], metric, signed)}]"
                if metric == "accuracy" and k is None and (m, s) in misses:
                    cell += " †"
                cells.append(cell)
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    if multi:
        per_seed = [r for r in rows if r["metric"] == "accuracy" and r.get("seed") is not None
                    and not r.get("seeds") and r.get("context_votes") is None]
        splits = sorted({r["split"] for r in per_seed}, key=_split_order)
        if per_seed:
            lines += ["## accuracy (%) per seed", "", "| method | seed | " + " | ".join(splits) + " |",
                      "|---|---|" + "---|" * len(splits)]
            for m in dict.fromkeys(r["method"] for r in per_seed):
                for sd in sorted({r["seed"] for r in per_seed if r["method"] == m}):
                    cells = []
                    for s in splits:
                        hit = [r for r in per_seed if r["method"] == m and r["seed"] == sd and r["split"] == s]
                        cells.append("" if not hit else _fmt(hit[0]["value"], "accuracy")
                                     + (f" [{_fmt(hit[0]['ci_low'], 'accuracy')}, {_fmt(hit[0]['ci_high'], 'accuracy')}]"
                                        if hit[0].get("ci_low") is not None else ""))
                    lines.append(f"| {m} | {sd} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)
