"""``pluralign demo``: the main job end to end on CPU (what ``make demo`` runs)."""

from __future__ import annotations

import argparse

from pluralign.cli.options import HelpFormatter, add_config_args, config_epilog
from pluralign.config import load_config
from pluralign.demo_config import DemoConfig


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="train and evaluate PLUS and P[Love] end to end and write a report",
        description="Simulate users (or read Polis conversations), train the summary-conditioned reward model and "
        "the summarizer with co-adaptation, train P[Love] on simulated reactions, evaluate every method on seen "
        "users, new users and new topics, run a simulated A/B test with the release gate, and write "
        "results.json, report.md and report.html. Interrupted runs resume from OUT/stages. Settings are DemoConfig "
        "keys (--config YAML, --set KEY=VALUE; the reward models are the 'rm' section: --set rm.max_steps=60); "
        "--size, --seed and --polis-dir are shorthands for --set size=..., seed=..., polis_dir=....",
        epilog=config_epilog(DemoConfig), formatter_class=HelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--polis-dir", help="run the PLUS part on a folder of Polis open-data conversations")
    p.add_argument("--size", choices=["tiny", "small", "full"], help="tiny (smoke test), small (default), full")
    p.add_argument("--seed", type=int, help="random seed")
    add_config_args(p, "DemoConfig", "rm.max_steps=60",
                    config_help="YAML DemoConfig (e.g. configs/demo-paper-gpu.yaml)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pluralign.demo import run_demo, summary_table

    overrides = list(args.overrides)
    for key in ("polis_dir", "size", "seed"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={getattr(args, key)}")
    cfg = load_config(DemoConfig, args.config, overrides)
    rows = run_demo(cfg, args.out)
    print(summary_table(rows))
    print(f"\nReport: {args.out}/report.html (and report.md); all numbers: {args.out}/results.json")
    return 0
