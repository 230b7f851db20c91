"""Human-facing reports, one renderer: a :class:`Report` is a list of blocks (headings, paragraphs, tables, images)
written as ``report.md`` and ``report.html``. Both renderings come from the same blocks, so the numbers in the HTML
and the Markdown can never disagree with each other or with ``results.json``.

:func:`results_report` lays out the records of a bench run (one table per benchmark and metric, the ``keyword``
floor, the per-seed accuracies): every bench's ``report.md`` (:func:`render_markdown`); the demo adds its own
sections (:func:`pluralign.demo.build_report`). Plots (matplotlib) are files the blocks point to.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


@dataclass
class Block:
    kind: str  # "h2" | "p" | "table" | "image"
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    path: str = ""  # image path relative to the report


@dataclass
class Report:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def h2(self, text: str) -> None:
        self.blocks.append(Block("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.blocks.append(Block("table", header=[str(h) for h in header], rows=[[str(c) for c in r] for r in rows]))

    def image(self, path: str, alt: str) -> None:
        self.blocks.append(Block("image", alt, path=path))

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b.kind == "h2":
                out += [f"## {b.text}", ""]
            elif b.kind == "p":
                out += [b.text, ""]
            elif b.kind == "image":
                out += [f"![{b.text}]({b.path})", ""]
            elif b.kind == "table":
                def cell(c: str) -> str:
                    return c.replace("|", "\\|").replace("\n", "<br>")
                out.append("| " + " | ".join(cell(h) for h in b.header) + " |")
                out.append("|" + "---|" * len(b.header))
                out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in b.rows]
                out.append("")
        return "\n".join(out)

    def to_html(self) -> str:
        e = html.escape
        out = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{e(self.title)}</title>",
               "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
               "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;"
               "padding:4px 8px;vertical-align:top;text-align:left}th{background:#f3f3f3}img{max-width:100%}"
               "</style></head><body>", f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            if b.kind == "h2":
                out.append(f"<h2>{e(b.text)}</h2>")
            elif b.kind == "p":
                out.append(f"<p>{e(b.text)}</p>")
            elif b.kind == "image":
                out.append(f"<figure><img src='{e(b.path)}' alt='{e(b.text)}'><figcaption>{e(b.text)}"
                           "</figcaption></figure>")
            elif b.kind == "table":
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in b.header) + "</tr>")
                for r in b.rows:
                    out.append("<tr>" + "".join(f"<td>{e(c)}</td>".replace("\n", "<br>") for c in r) + "</tr>")
                out.append("</table>")
        out.append("</body></html>")
        return "\n".join(out)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        (d / "report.md").write_text(self.to_markdown(), encoding="utf-8")
        (d / "report.html").write_text(self.to_html(), encoding="utf-8")
        return d / "report.md", d / "report.html"


# --- the results tables (report.md of every bench run) ------------------------------------------------------------

FLOOR_METHOD = "keyword"
SPLIT_ORDER = ("seen-users", "new-users", "new-topics", "chrono", "validation", "all")
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
    return SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99


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


def results_report(rows: list[dict], title: str = "pluralign benchmark", notes: Sequence[str] = ()) -> Report:
    """One table per (benchmark, metric): methods as rows, splits as columns, value [95% CI].

    With several seeds the tables show the across-seed records (mean ± SD across seeds [pooled CI]) and a per-seed
    accuracy table follows. Accuracy cells of learned methods that do not beat the ``keyword`` floor carry a †.
    """
    rep = Report(title)
    for note in notes:
        rep.p(note)
    units = {r.get("ci_unit") for r in rows if r.get("ci_low") is not None}
    if units:
        unit_text = {"user": "a cluster bootstrap over users (all of a user's pairs resampled together)",
                     "pair": "a bootstrap over items (no users in these data)"}
        rep.p("95% CIs: " + "; ".join(unit_text.get(u, str(u)) for u in sorted(u for u in units if u)) + ". "
              "Comparisons (`accuracy_diff`, `<method>-vs-<other>` = method minus other) are paired: both "
              "methods scored on the same users and pairs, CI of the difference.")
    misses = floor_misses(rows)
    floor = [r for r in _aggregated([r for r in rows if r["metric"] == "accuracy"]) if r["method"] == FLOOR_METHOD
             and r.get("context_votes") is None]
    if floor:
        rep.h2("The floor: `keyword`")
        rep.p("`keyword` is a transparent rule that reads only the user's visible context (word overlap of each "
              "response with what the user chose vs rejected, length and emoji cues, profile words); nothing is "
              "learned. A learned method that does not beat it (paired CI of the difference not above 0) shows "
              "nothing about learning on this split: such cells carry a †.")
        table = []
        for r in sorted(floor, key=lambda r: _split_order(r["split"])):
            who = [f"{m} ({_fmt(d['value'], 'accuracy_diff', True)} [{_fmt(d['ci_low'], 'accuracy_diff', True)}, "
                   f"{_fmt(d['ci_high'], 'accuracy_diff', True)}])" for (m, s), d in misses.items() if s == r["split"]]
            cell = _fmt(r["value"], "accuracy")
            if r.get("ci_low") is not None:
                cell += f" [{_fmt(r['ci_low'], 'accuracy')}, {_fmt(r['ci_high'], 'accuracy')}]"
            table.append([r["split"], cell, ", ".join(who) if who else "none"])
        rep.table(["split", "keyword accuracy (%)", "learned methods not above the floor"], table)
    multi = any(r.get("seeds") for r in rows)
    groups: dict[tuple, list[dict]] = {}
    for r in _aggregated(rows):
        groups.setdefault((r["benchmark"], r["metric"], r.get("context_votes")), []).append(r)
    for (bench, metric, k), rs in groups.items():
        splits = sorted({r["split"] for r in rs}, key=_split_order)
        unit = " (points)" if metric == "accuracy_diff" else " (%)" if _is_pct(metric) else ""
        head = f"{bench} — {metric}{unit}" + (f", {k} context votes" if k is not None else "")
        if multi:
            head += f" — mean ± SD over seeds {', '.join(map(str, rs[0].get('seeds') or []))}"
        rep.h2(head)
        table = []
        for m in dict.fromkeys(r["method"] for r in rs):
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
            table.append([m, *cells])
        rep.table(["method", *splits], table)
    if multi:
        per_seed = [r for r in rows if r["metric"] == "accuracy" and r.get("seed") is not None
                    and not r.get("seeds") and r.get("context_votes") is None]
        splits = sorted({r["split"] for r in per_seed}, key=_split_order)
        if per_seed:
            rep.h2("accuracy (%) per seed")
            table = []
            for m in dict.fromkeys(r["method"] for r in per_seed):
                for sd in sorted({r["seed"] for r in per_seed if r["method"] == m}):
                    cells = []
                    for s in splits:
                        hit = [r for r in per_seed if r["method"] == m and r["seed"] == sd and r["split"] == s]
                        cells.append("" if not hit else _fmt(hit[0]["value"], "accuracy")
                                     + (f" [{_fmt(hit[0]['ci_low'], 'accuracy')}, {_fmt(hit[0]['ci_high'], 'accuracy')}]"
                                        if hit[0].get("ci_low") is not None else ""))
                    table.append([m, sd, *cells])
            rep.table(["method", "seed", *splits], table)
    return rep


def render_markdown(rows: list[dict], title: str = "pluralign benchmark", notes: Sequence[str] = ()) -> str:
    """``report.md`` of a bench run: :func:`results_report` as Markdown."""
    return results_report(rows, title, notes).to_markdown()


# --- plots -------------------------------------------------------------------------------------------------------

def _plt():
    # matplotlib loads with the first plot: it is slow to import, and the backend is set before pyplot loads
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(rows: list[dict], path: str | Path, *, benchmark: str | None = None) -> Path:
    """Grouped bars: accuracy per method and split, with 95% CI error bars."""
    plt = _plt()
    rs = [r for r in rows if r["metric"] == "accuracy" and (benchmark is None or r["benchmark"] == benchmark)
          and r["value"] is not None]
    methods = list(dict.fromkeys(r["method"] for r in rs))
    splits = list(dict.fromkeys(r["split"] for r in rs))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(methods) * max(1, len(splits)) / 2), 4))
    width = 0.8 / max(1, len(splits))
    for j, s in enumerate(splits):
        xs, ys, lo, hi = [], [], [], []
        for i, m in enumerate(methods):
            hit = [r for r in rs if r["method"] == m and r["split"] == s]
            if not hit:
                continue
            r = hit[0]
            xs.append(i + (j - (len(splits) - 1) / 2) * width)
            ys.append(100 * r["value"])
            lo.append(100 * (r["value"] - (r["ci_low"] if r["ci_low"] is not None else r["value"])))
            hi.append(100 * ((r["ci_high"] if r["ci_high"] is not None else r["value"]) - r["value"]))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=s)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("pairwise accuracy (%)")
    ax.set_ylim(0, 100)
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=8, ncol=len(splits))
    ax.set_title(f"Accuracy per method and split{' — ' + benchmark if benchmark else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_curves(log: list[dict], keys: Sequence[str], path: str | Path, title: str) -> Path:
    """Line plots of logged values over steps (e.g. mean reward and RM accuracy during co-adaptation)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4))
    axes = np.atleast_1d(axes)
    for ax, k in zip(axes, keys, strict=True):
        pts = [(r["step"], r[k]) for r in log if r.get(k) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3)
        ax.set_xlabel("step")
        ax.set_title(k)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_reliability_and_roc(probs: np.ndarray, labels: np.ndarray, path: str | Path, *, n_bins: int = 10,
                             raw_probs: np.ndarray | None = None) -> Path:
    """Reliability diagram (equal-mass bins, log axes suit rare events) beside the ROC curve."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    for name, p in (("raw (training prior)", raw_probs), ("corrected", probs)):
        if p is None:
            continue
        order = np.argsort(p)
        bins = np.array_split(order, n_bins)
        mp = [p[b].mean() for b in bins if len(b)]
        fr = [labels[b].mean() for b in bins if len(b)]
        a1.plot(mp, fr, marker="o", label=name)
    lim = max(1e-3, float(max(probs.max(), labels.mean() * 3)))
    a1.plot([0, lim], [0, lim], color="grey", ls="--", lw=0.8)
    a1.set_xlabel("predicted P[Love]")
    a1.set_ylabel("observed love rate")
    a1.set_title("Reliability")
    a1.legend(fontsize=8)
    fpr, tpr, _ = roc_curve(labels, probs)
    a2.plot(fpr, tpr, label=f"AUROC {roc_auc_score(labels, probs):.3f}")
    a2.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    a2.set_xlabel("false positive rate")
    a2.set_ylabel("true positive rate")
    a2.set_title("ROC")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_bars(labels: Sequence[str], values: Sequence[float], path: str | Path, *, title: str, ylabel: str,
              errors: Sequence[tuple[float, float]] | None = None) -> Path:
    """Simple bar chart (e.g. love-rate change per segment)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(labels)), 3.6))
    yerr = None
    if errors is not None:
        yerr = [[v - lo for v, (lo, _) in zip(values, errors, strict=True)],
                [hi - v for v, (_, hi) in zip(values, errors, strict=True)]]
    ax.bar(range(len(labels)), values, yerr=yerr, capsize=3, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
