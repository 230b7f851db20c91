"""Human-facing reports: plots (matplotlib) and the same content as ``report.md`` and ``report.html``.

A report is a list of blocks (headings, paragraphs, tables, images). Both renderings come from the same blocks, so
the numbers in the HTML and the Markdown can never disagree with each other or with ``results.json``.
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


def _plt():
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
