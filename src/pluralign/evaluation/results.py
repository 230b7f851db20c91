"""The benchmark result record and the files every bench run writes (``results.json``, ``report.md``).

Field names are a contract: ``{"benchmark", "method", "split", "metric", "value", "n", "ci_low", "ci_high",
"seconds"}``. Split names: ``seen-users``, ``new-users``, ``new-topics``, ``chrono`` (or ``all`` where a metric is
not per split).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SPLITS = ("seen-users", "new-users", "new-topics", "chrono")


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


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` over the rows of ``values`` (95% by default)."""
    arr = np.asarray(values)
    if len(arr) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(arr), size=(n_boot, len(arr)))
    stats = np.array([stat(arr[i]) for i in idx])
    stats = stats[~np.isnan(stats)]
    if len(stats) == 0:
        return (math.nan, math.nan)
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))


def mean_result(benchmark: str, method: str, split: str, metric: str, values: Sequence[float],
                seconds: float | None = None, seed: int = 0) -> Result:
    """A Result whose value is the mean of per-item ``values`` (e.g. 0/1 correctness), with a bootstrap CI."""
    arr = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(arr, seed=seed)
    return Result(benchmark, method, split, metric, float(arr.mean()) if len(arr) else math.nan, len(arr), lo, hi,
                  seconds)


def _clean(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def write_results(out_dir: str | Path, results: Iterable[Result], title: str = "pluralign benchmark") -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{k: _clean(v) for k, v in asdict(r).items()} for r in results]
    (out / "results.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(rows, title), encoding="utf-8")
    return out / "results.json"


def load_results(path: str | Path) -> list[dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    return json.loads(p.read_text(encoding="utf-8"))


def _fmt(v, metric: str) -> str:
    if v is None:
        return "–"
    if metric in ("accuracy",) or metric.endswith("_rate") or metric in ("win_rate",):
        return f"{100 * v:.1f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3f}"


def render_markdown(rows: list[dict], title: str = "pluralign benchmark") -> str:
    """One table per (benchmark, metric): methods as rows, splits as columns, value [CI]."""
    lines = [f"# {title}", ""]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["benchmark"], r["metric"]), []).append(r)
    for (bench, metric), rs in groups.items():
        splits = sorted({r["split"] for r in rs}, key=lambda s: (SPLITS + ("all",)).index(s)
                        if s in SPLITS + ("all",) else 99)
        methods = list(dict.fromkeys(r["method"] for r in rs))
        pct = " (%)" if metric == "accuracy" or metric.endswith("_rate") else ""
        lines += [f"## {bench} — {metric}{pct}", "", "| method | " + " | ".join(splits) + " |",
                  "|---|" + "---|" * len(splits)]
        for m in methods:
            cells = []
            for s in splits:
                hit = [r for r in rs if r["method"] == m and r["split"] == s]
                if not hit:
                    cells.append("")
                    continue
                r = hit[0]
                cell = _fmt(r["value"], metric)
                if r.get("ci_low") is not None and r.get("ci_high") is not None:
                    cell += f" [{_fmt(r['ci_low'], metric)}, {_fmt(r['ci_high'], metric)}]"
                cells.append(cell)
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
