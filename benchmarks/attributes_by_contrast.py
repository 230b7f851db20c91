"""Which of the six preferences a method gets right on the ``attributes`` suite: accuracy per contrasted dimension.

Every ``attributes`` pair contrasts one dimension (topic, length, emoji, formality, tone, directness), so an overall
accuracy hides what was learned: the ``keyword`` floor gets length and emoji (visible on the surface) and little else.
This reads a finished ``pluralign bench attributes`` run (its per-pair correctness in ``OUT/methods/seedS/*.json``),
rebuilds the same split and the same scored subsample, looks each pair's contrast up in the split's hidden truth (the
scorers' channel, never shown to methods) and prints accuracy per dimension with a 95% CI over users, beside the
Bayes rate on the same pairs. It trains nothing.

    .venv/bin/python benchmarks/attributes_by_contrast.py runs/bench/attributes --seed 0 --split new-users
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pluralign.evaluation.metrics import mean_result
from pluralign.evaluation.suite_splits import build_simulated_split, eval_cap, subsample
from pluralign.metrics import pair_correct
from pluralign.sim.attributes import DIMENSIONS


def by_contrast(out: Path, seed: int, split_name: str, quick: bool, cap: int | None) -> dict[str, dict[str, tuple]]:
    """method -> dimension -> (accuracy, ci_low, ci_high, n_pairs, n_users); ``bayes`` from the true probabilities."""
    split = build_simulated_split("attributes", seed=seed, quick=quick)
    examples = (split.validation if split_name == "validation"
                else subsample(split.eval[split_name], eval_cap(quick, cap), seed))
    contrast = [split.truth.pair_meta[(e.user_id, e.target.pair_id)]["contrast"] for e in examples]
    users = [e.user_id for e in examples]
    truth_p = np.array([split.truth.p_chosen_of(e) for e in examples], dtype=float)
    values = {"bayes": pair_correct(truth_p - 0.5)}
    for path in sorted((out / "methods" / f"seed{seed}").glob("*.json")):
        items = json.loads(path.read_text(encoding="utf-8"))["artefacts"].get("items", {}).get("accuracy", {})
        got = items.get(split_name)
        if not got:
            continue
        if got["user_ids"] != users:
            raise SystemExit(f"{path}: its {split_name} pairs are not this split's (another --quick, seed or cap?)")
        values[path.stem] = np.asarray(got["values"], dtype=float)
    table: dict[str, dict[str, tuple]] = {}
    for method, v in values.items():
        row = {}
        for dim in (*DIMENSIONS, "all"):
            idx = [i for i, c in enumerate(contrast) if dim in ("all", c)]
            r = mean_result("attributes", method, split_name, "accuracy", v[idx], None, seed,
                            user_ids=[users[i] for i in idx])
            row[dim] = (r.value, r.ci_low, r.ci_high, r.n, r.n_users)
        table[method] = row
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the --out folder of a finished `pluralign bench attributes` run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="new-users", help="new-users, new-topics, seen-users, chrono or validation")
    ap.add_argument("--quick", action="store_true", help="the run was --quick")
    ap.add_argument("--max-eval", type=int, default=None, help="the run's --max-eval, if it set one")
    args = ap.parse_args()
    table = by_contrast(args.out, args.seed, args.split, args.quick, args.max_eval)
    dims = (*DIMENSIONS, "all")
    print(f"accuracy (%) by contrasted dimension, {args.split}, seed {args.seed}, 95% CI over users")
    print("| method | " + " | ".join(dims) + " |")
    print("|---|" + "---|" * len(dims))
    for method, row in table.items():
        cells = [f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" for a, lo, hi, _, _ in (row[d] for d in dims)]
        print(f"| {method} | " + " | ".join(cells) + " |")
    print("pairs per dimension: " + ", ".join(f"{d} {table['bayes'][d][3]}" for d in dims))


if __name__ == "__main__":
    main()
