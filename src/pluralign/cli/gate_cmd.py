"""``pluralign gate``: the release gate (pass or block a candidate policy against a baseline)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pluralign.models.rm_checkpoint import is_reward_model_dir


def register(sub) -> None:
    p = sub.add_parser(
        "gate", help="release gate: compare a candidate policy's responses with a baseline's (pass/block)",
        description="Score two responses files (JSONL rows with 'prompt' and 'response') on every objective "
        "(P[Love] when --love is given, and any pairwise reward models given with --rm) and on reward-hacking "
        "monitors (sign-off rate, emoji rate, length, repetition), with paired bootstrap CIs. Exit code 0 = pass, "
        "1 = block (reasons are printed and written to OUT/gate.md and OUT/gate.json).")
    p.add_argument("--candidate", required=True, help="JSONL responses of the candidate policy")
    p.add_argument("--baseline", required=True, help="JSONL responses of the baseline (current) policy")
    p.add_argument("--love", default=None, help="P[Love] model dir (from 'pluralign train love') as an objective")
    p.add_argument("--rm", action="append", default=[], metavar="NAME=DIR",
                   help="an extra objective: a reward model dir ('pluralign train rm' or pairwise_rm.json); repeatable")
    p.add_argument("--out", required=True, help="output directory for gate.json and gate.md")
    p.add_argument("--objective-tolerance", type=float, default=0.0,
                   help="block an objective only if its whole delta CI is below -TOL (default 0)")
    p.add_argument("--monitor-tolerance", type=float, default=0.0,
                   help="block a hacking monitor only if its whole delta CI is above +TOL (default 0)")
    p.add_argument("--length-tolerance", type=float, default=0.2,
                   help="block when mean length moves by more than this share and significantly (default 0.2)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=run)


def _load_rm(spec: str):
    if "=" not in spec:
        raise ValueError(f"--rm {spec!r}: expected NAME=DIR")
    name, path = spec.split("=", 1)
    d = Path(path)
    if (d / "pairwise_rm.json").exists():
        from pluralign.objectives.preference_rm import EmbeddingPairwiseRM

        rm = EmbeddingPairwiseRM.from_pretrained(d)
    elif is_reward_model_dir(d):
        from pluralign.models.reward_model import SummaryConditionedRM

        rm = SummaryConditionedRM.from_pretrained(d)
    else:
        raise FileNotFoundError(f"--rm {spec}: {d} holds no reward model (pairwise_rm.json, or a "
                                "SummaryConditionedRM directory from 'pluralign train rm')")
    return name, lambda p, r: rm.score(list(p), list(r))


def run(args: argparse.Namespace) -> int:
    from pluralign.evaluation.gate import read_responses, run_gate, write_gate_report

    cand = read_responses(args.candidate)
    base = read_responses(args.baseline)
    objectives = {}
    if args.love:
        from pluralign.models.love import LoveModel

        love = LoveModel.from_pretrained(args.love)
        objectives["love"] = lambda p, r: love.predict_proba(list(p), list(r))
    for spec in args.rm:
        name, fn = _load_rm(spec)
        objectives[name] = fn
    report = run_gate(cand, base, objectives, objective_tolerance=args.objective_tolerance,
                      monitor_tolerance=args.monitor_tolerance, length_tolerance=args.length_tolerance,
                      n_boot=args.n_boot, seed=args.seed)
    write_gate_report(report, args.out)
    print(report.to_markdown())
    return 0 if report.passed else 1
