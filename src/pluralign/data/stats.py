"""Summary statistics of a feedback file: what a dataset holds before anyone trains on it.

``chosen_first_share`` is the share of pairs whose ``meta.chosen_first`` is true, over the pairs that record it
(where the chosen response was shown first; a value far from 0.5 means position bias in the labels).
``chosen_model`` counts, when pairs carry ``meta.chosen_model`` (Arena), show how often each side won.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from pluralign.data.schema import UserRecord

ITEM_KINDS = ("pairs", "conversations", "reactions", "targets")


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"total": 0, "mean": 0.0, "median": 0.0, "max": 0}
    return {"total": sum(values), "mean": statistics.fmean(values), "median": float(statistics.median(values)),
            "max": max(values)}


def compute_stats(users: Iterable[UserRecord]) -> dict[str, Any]:
    """A JSON-ready dict: users, items per user, label balance, reaction values by kind, sources."""
    users = list(users)
    per_user = {k: [len(getattr(u, k)) for u in users] for k in ITEM_KINDS}
    sources = Counter(u.source or "unknown" for u in users)
    groups = Counter(u.group for u in users if u.group is not None)
    all_pairs = [p for u in users for p in (*u.pairs, *u.targets)]
    p_chosen = [p.p_chosen for p in all_pairs if p.p_chosen is not None]
    flagged = [bool(p.meta["chosen_first"]) for p in all_pairs if "chosen_first" in p.meta]
    chosen_model = Counter(str(p.meta["chosen_model"]) for p in all_pairs if "chosen_model" in p.meta)
    values: dict[str, list[float]] = defaultdict(list)
    for u in users:
        for r in u.reactions:
            values[r.kind].append(r.value)
    reactions = {}
    for kind, vals in sorted(values.items()):
        dist = Counter(vals)
        shown = dict(sorted(dist.items())) if len(dist) <= 10 else None  # graded scores: summarise instead
        reactions[kind] = {"n": len(vals), "mean": statistics.fmean(vals), "min": min(vals), "max": max(vals),
                           "values": {f"{v:g}": n for v, n in shown.items()} if shown else None}
    return {
        "users": len(users),
        "items_per_user": {k: _spread(v) for k, v in per_user.items()},
        "labels": {
            "pairs_with_position": len(flagged),
            "chosen_first_share": (sum(flagged) / len(flagged)) if flagged else None,
            "pairs_with_p_chosen": len(p_chosen),
            "p_chosen_mean": statistics.fmean(p_chosen) if p_chosen else None,
            "chosen_model": dict(chosen_model.most_common()),
        },
        "reactions": reactions,
        "sources": dict(sources.most_common()),
        "groups": len(groups),
    }


def format_stats(stats: dict[str, Any], title: str = "") -> str:
    """The stats as a short plain-text report."""
    lines = [f"{title}" if title else "", f"users: {stats['users']}  (sources: "
             + ", ".join(f"{k} {v}" for k, v in stats["sources"].items()) + f"; groups: {stats['groups']})"]
    lines.append("items per user:   total      mean    median       max")
    for kind, s in stats["items_per_user"].items():
        lines.append(f"  {kind:<14}{s['total']:>7}  {s['mean']:>8.2f}  {s['median']:>8.1f}  {s['max']:>8}")
    lab = stats["labels"]
    if lab["pairs_with_position"]:
        lines.append(f"chosen shown first: {lab['chosen_first_share']:.3f} of {lab['pairs_with_position']} pairs")
    if lab["pairs_with_p_chosen"]:
        lines.append(f"p_chosen mean: {lab['p_chosen_mean']:.3f} over {lab['pairs_with_p_chosen']} pairs")
    if lab["chosen_model"]:
        lines.append("winner (meta.chosen_model): " + ", ".join(f"{k} {v}" for k, v in lab["chosen_model"].items()))
    for kind, r in stats["reactions"].items():
        dist = ", ".join(f"{v}: {n}" for v, n in r["values"].items()) if r["values"] else \
            f"min {r['min']:g}, max {r['max']:g}"
        lines.append(f"reactions '{kind}': n={r['n']}, mean {r['mean']:.3f} ({dist})")
    return "\n".join(line for line in lines if line)
