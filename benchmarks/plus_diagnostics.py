"""Why a PLUS run on Pets-OOD lands where it does: after every co-adaptation epoch, what the greedy summaries carry
(the user's animal, a length cue) and the RM's accuracy per split *and per contrast* (animal pairs vs length pairs).

Pets-OOD pairs turn on one of two things, the user's animal or whether they want the long answer, so a summary
has to carry both cues within its word budget; this script shows which one a run loses and when. It runs the bench's
PLUS setting (same split, same RM config, same ``--set`` overrides as ``pluralign bench pets-ood``):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plus_diagnostics.py --seed 1 --set rm.max_steps=150 \
        --set rm.max_length=192 --set plus.epochs=3 --set plus.rm_passes=1 --set plus.warm_start_rm_epochs=1 \
        --max-eval 300
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from pluralign.sim.responses import ANIMAL_INFO

LENGTH_WORDS = ("brief", "thorough", "more detailed answers", "more concise answers", "On top of that", "It is also worth", "It also helps", "Beyond that")


def cues(summary: str, animal: str) -> dict[str, bool]:
    """Does the summary name the user's animal on a liked line, and does it carry any length cue?"""
    a = ANIMAL_INFO[animal]
    lines = [s for s in summary.replace(". ", ".\n").split("\n") if s]
    liked = [s for s in lines if s.startswith(("Prefers:", "Says:"))]
    return {"animal": any(a.singular in s.lower() or a.plural in s.lower() for s in liked),
            "length": any(w.lower() in summary.lower() for w in LENGTH_WORDS)}


def context_has(user, animal: str) -> dict[str, bool]:
    """The same cues over the whole context: what a summary *could* carry."""
    from pluralign.summarizers.cpu import extract_statements

    return cues("\n".join(s.text for s in extract_statements(user)), animal)


def report(method, eval_sets: dict, train_rows) -> dict:
    out: dict = {}
    for split, examples in eval_sets.items():
        margins = np.asarray(method.score_pairs(examples))
        by: dict[str, list[bool]] = defaultdict(list)
        comp: dict[str, list[bool]] = defaultdict(list)
        for e, m in zip(examples, margins, strict=True):
            by[e.target.meta.get("contrast", "?")].append(bool(m > 0))
        seen_ctx = {}
        for e, z in zip(examples, method.conditionings(examples), strict=True):
            if e.user_id in seen_ctx:
                continue
            seen_ctx[e.user_id] = True
            animal = e.context.meta["animal"]
            c, avail = cues(z or "", animal), context_has(e.context, animal)
            for k in c:
                comp[f"{k}_in_summary"].append(c[k])
                comp[f"{k}_in_context"].append(avail[k])
        out[split] = {"acc": float(np.mean(margins > 0)),
                      **{f"acc_{k}": round(float(np.mean(v)), 3) for k, v in by.items()},
                      **{k: round(float(np.mean(v)), 3) for k, v in comp.items()}, "users": len(seen_ctx)}
    zs = method.summarizer.summarize([r.context for r in train_rows], sample=False)
    comp = defaultdict(list)
    for r, z in zip(train_rows, zs, strict=True):
        for k, v in cues(z, r.context.meta["animal"]).items():
            comp[f"{k}_in_summary"].append(v)
    out["train"] = {k: round(float(np.mean(v)), 3) for k, v in comp.items()}
    out["train_example_summary"] = zs[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-s", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="rm.KEY=VALUE or plus.KEY=VALUE, repeatable (as in bench)")
    ap.add_argument("--max-eval", type=int, default=300)
    ap.add_argument("--splits", default="seen-users,new-users")
    ap.add_argument("--untrained", action="store_true", help="diagnose plus-untrained instead")
    ap.add_argument("--out", default=None, help="write the per-epoch records here (JSON lines)")
    args = ap.parse_args()

    from pluralign.cli.bench_cmd import split_overrides
    from pluralign.config import apply_overrides
    from pluralign.evaluation.bench import bench_rm_config
    from pluralign.evaluation.methods import make_method
    from pluralign.evaluation.methods.base import seed_everything
    from pluralign.evaluation.suite_splits import build_simulated_split, subsample
    from pluralign.training.plus_trainer import PlusTrainer, rows_from_examples

    split = build_simulated_split("pets-ood", seed=args.seed, quick=False)
    eval_sets = {s: subsample(split.eval[s], args.max_eval, args.seed) for s in args.splits.split(",")}
    rm_overrides, plus_overrides = split_overrides(args.overrides)
    rm_cfg = apply_overrides(bench_rm_config(False), rm_overrides, prefix="rm.")
    method = make_method("plus-untrained" if args.untrained else "plus", rm_config=rm_cfg, quick=False,
                         plus_overrides=plus_overrides)
    seed_everything(args.seed)
    cfg = dataclasses.replace(method.plus_config, seed=args.seed, train_summarizer=not args.untrained)
    epochs = cfg.epochs
    rows = rows_from_examples(split.train)
    trainer = PlusTrainer(dataclasses.replace(cfg, epochs=1), rows)
    method.summarizer, method.model = trainer.summarizer, trainer.rm
    t0 = time.time()
    records = []
    for epoch in range(epochs + 1):
        if epoch:
            trainer.cfg = dataclasses.replace(trainer.cfg, epochs=epoch)
            trainer.train()
        else:
            trainer.warm_start()
        method._summaries = {}
        rec = {"seed": args.seed, "epoch": epoch, "seconds": round(time.time() - t0),
               "last_reward": trainer.history[-1].get("reward"), **report(method, eval_sets, rows)}
        records.append(rec)
        print(json.dumps(rec), flush=True)
        if args.out:
            Path(args.out).write_text("\n".join(json.dumps(r) for r in records) + "\n")


if __name__ == "__main__":
    main()
