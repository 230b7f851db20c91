"""P[Love] over several seeds: the contract's ``love`` / ``love-linear`` records of ``pluralign bench rluf`` (and the
OASST records), without the policy half of the suite.

Each seed simulates the suite's reaction log (30% adversaries), keeps the main condition (all honest users, 10%
adversaries), and runs :func:`pluralign.evaluation.love_suite.summary_love_section` and
:func:`~pluralign.evaluation.love_suite.oasst_section`, exactly as ``run_rluf_suite`` does. Writes
``OUT/seed<k>/results.json`` + ``details.json`` per seed and ``OUT/summary.json`` (mean and spread over seeds).

    .venv/bin/python benchmarks/love_seeds.py --quick --seeds 0 1 2 --out runs/bench/love-seeds
    .venv/bin/python benchmarks/love_seeds.py --quick --oasst-only --seeds 0 1 2 --out runs/bench/oasst-seeds
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np


def run_seed(seed: int, quick: bool, out: Path, oasst: bool, simulated: bool = True) -> list[dict]:
    from pluralign.evaluation.love_suite import oasst_section, summary_love_section
    from pluralign.evaluation.results import write_results
    from pluralign.evaluation.rluf_suite import BENCH, C_GRID, FULL, QUICK, adversary_subset
    from pluralign.models.love import NgramEncoder
    from pluralign.sim import simulate_reaction_log
    from pluralign.training.love_trainer import make_summarizer, reaction_table

    size = QUICK if quick else FULL
    t0 = time.time()
    details: dict = {"seed": seed, "quick": quick}
    d = out / f"seed{seed}"
    done: list = []

    def save(rows: list) -> None:  # after every method: a long run keeps what it finished
        details["seconds"] = time.time() - t0
        write_results(d, done + rows, title=f"P[Love], seed {seed}")
        (d / "details.json").write_text(json.dumps(details, indent=1, default=float), encoding="utf-8")

    # cheap records first (linear, OASST linear), then the neural ones
    done += oasst_section(seed=seed, quick=quick, details=details, methods=("length", "love-linear")) if oasst else []
    if "oasst" in details:
        details["oasst_linear"] = details.pop("oasst")
    save([])
    if simulated:
        records = simulate_reaction_log(n_users=size.n_users, per_user=size.per_user, adversarial_frac=0.3,
                                        base_rate=0.02, seed=seed)
        table = adversary_subset(reaction_table(records, source="sim:reactions"), 0.1, seed)
        details["reactions"] = len(table)
        summarizer = make_summarizer("cpu", seed)
        kw = dict(bench=BENCH, seed=seed, quick=quick, rounds=1 if quick else 2, c_grid=C_GRID,
                  summarizer=summarizer)
        details_lin: dict = {}
        lin, _ = summary_love_section(table, NgramEncoder(), details=details_lin, methods=("love-linear",),
                                      on_result=save, **kw)
        done += lin
        details.update(details_lin)
        neural, _ = summary_love_section(table, NgramEncoder(), details=details, methods=("love",), on_result=save,
                                         **kw)
        done += neural
    if oasst:
        # the floor again (1 s), so the neural model's paired difference to it is computed on the same replies
        done += [r for r in oasst_section(seed=seed, quick=quick, details=details, methods=("length", "love"))
                 if r.method != "length" and r.metric in ("auroc", "auroc_diff")]
    save([])
    return json.loads((d / "results.json").read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--no-oasst", action="store_true", help="skip the OpenAssistant records")
    part.add_argument("--oasst-only", action="store_true", help="only the OpenAssistant records (no simulated log)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out)
    rows = {s: run_seed(s, args.quick, out, not args.no_oasst, simulated=not args.oasst_only) for s in args.seeds}
    merged: dict[str, list[float]] = {}
    for res in rows.values():
        for r in res:
            if r["value"] is not None:
                merged.setdefault(f"{r['benchmark']}/{r['method']}/{r['split']}/{r['metric']}", []).append(r["value"])
    summary = {k: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)), "values": v}
               for k, v in sorted(merged.items())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    for k, v in summary.items():
        print(f"{k}: mean {v['mean']:.4f} [{', '.join(f'{x:.4f}' for x in v['values'])}]")


if __name__ == "__main__":
    main()
