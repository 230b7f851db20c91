"""``pluralign eval``: score a trained reward-model checkpoint on a feedback file's targets."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a trained reward model on a feedback file (accuracy / AUROC with 95%% CIs)",
        description="Load a SummaryConditionedRM checkpoint (written by 'pluralign train rm') and score it on the "
        "evaluation targets of a pluralign feedback file: pairwise accuracy on every user's 'targets' (per split "
        "named in a target's meta.split, else 'all'), and AUROC of the reward against binary reactions "
        "(value 0/1, e.g. love) when the file has them. Each user is conditioned on their summary from --summaries "
        "when given, else left unconditioned. Writes DIR/results.json and DIR/report.md and prints the table.")
    p.add_argument("--model", required=True, metavar="DIR", help="reward-model checkpoint directory")
    p.add_argument("--data", required=True, metavar="FILE", help="pluralign feedback file (JSONL of user records)")
    p.add_argument("--summaries", default=None, metavar="FILE",
                   help="per-user summaries: JSON {user_id: summary} or JSONL lines with user_id and summary")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for results.json and report.md")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap CIs")
    p.add_argument("--name", default="eval", help="benchmark name recorded in results.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pluralign.evaluation.bench import evaluate_checkpoint
    from pluralign.evaluation.results import render_markdown

    results = evaluate_checkpoint(args.model, args.data, args.out, summaries=args.summaries, seed=args.seed,
                                  benchmark=args.name)
    print(render_markdown([r.__dict__ for r in results], f"pluralign eval: {args.model}"))
    return 0
