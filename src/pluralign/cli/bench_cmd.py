"""``pluralign bench SUITE``: train every personalisation method on a suite and report accuracy per split."""

from __future__ import annotations

import argparse

from pluralign.cli.options import SET_SYNTAX, Removed
from pluralign.config import ConfigError, apply_overrides, load_config
from pluralign.training.plus_config import PlusConfig
from pluralign.training.rm_config import RMConfig

SUITE_HELP = {
    "pets": "simulated: each user loves one animal, every pair contested (BT can do no better than 50%)",
    "pets-ood": "simulated: users with an animal and a length preference; new users with unseen animals and unseen "
                "prompt templates",
    "hh-users": "simulated: helpfulness-first vs harmlessness-first users labelling real HH-RLHF pairs",
    "contexts": "simulated: four-dimension personas with past conversations and a self-description",
    "attributes": "simulated: six latent preferences per user judged on meaning (paraphrase families); scored "
                  "answers use wording never seen in any context, so a keyword rule stays far below the Bayes rate",
    "polis": "real: Polis participants' agree-vs-disagree statement pairs (needs --polis-dir; --context-votes for "
             "the few-shot curve)",
    "ratings": "real: within-user pairs from any per-user ratings table (needs --data FILE from 'pluralign data "
               "convert ratings'); splits seen-users, new-users, new-items, chrono",
    "rluf": "RLUF: P[Love] from binary reactions (delegates to the rluf suite)",
}


def register(sub) -> None:
    from pluralign.evaluation.methods.registry import METHODS

    p = sub.add_parser(
        "bench", help="benchmark personalisation methods on a suite (accuracy per split with 95%% CIs)",
        description="Build SUITE, split it (seen-users, new-users, new-topics, chrono, and a validation split "
        "of training users that tuning reads), train each method (keyword, bt, icl, oracle, group, latent, "
        "summary, ...) and score it on every split: pairwise accuracy with a 95% CI from a cluster bootstrap over "
        "users, paired differences of every learned method against bt and against the keyword floor, tokens per "
        "pair, train wall time and peak memory. Writes DIR/results.json and DIR/report.md and prints the table. "
        "Suites: " + "; ".join(f"{k} - {v}" for k, v in SUITE_HELP.items()) + ".",
        epilog="Settings: --rm-config YAML (the base RMConfig), then " + SET_SYNTAX + " Bench keys are rm.KEY "
        "(RMConfig, see 'pluralign train rm --help') and plus.KEY (PlusConfig, see 'pluralign train plus --help').",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("suite", metavar="SUITE", choices=list(SUITE_HELP), help="suite to run: " + ", ".join(SUITE_HELP))
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for results.json and report.md")
    p.add_argument("--quick", action="store_true",
                   help="small suite, few training steps, at most 100 scored pairs per split (a smoke run)")
    p.add_argument("--methods", default=None, metavar="M1,M2",
                   help="comma-separated methods (default: keyword,bt,icl,oracle,latent,plus-extractive,plus-untrained,plus "
                   "on simulated suites, where plus trains the SmolLM2 summarizer by RL (about 15 min per seed of "
                   "quick Pets-OOD on 2 cores, an hour on quick attributes); keyword,bt,icl,group,latent on polis "
                   "and ratings, where the plus methods are asked for by name; +summary with --summaries; keyword, "
                   "the non-learned floor, is always added). Known: " + ", ".join(METHODS))
    p.add_argument("--seed", type=int, default=0, help="seed for the suite, splits, training and bootstrap CIs")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...",
                   help="run everything once per seed (e.g. 0,1,2) and report per-seed records, the mean, the "
                   "spread across seeds and a pooled CI (overrides --seed)")
    p.add_argument("--polis-dir", default=None, metavar="DIR",
                   help="folder of Polis open-data conversations (each with comments.csv and votes), for 'polis'")
    p.add_argument("--context-votes", default=None, metavar="K1,K2,...",
                   help="polis: also score new users with K context votes each (e.g. 2,4,8,16,32; even numbers, "
                   "one agree and one disagree vote per context pair): records carry context_votes, users with "
                   "fewer votes are left out of that K and counted, and the report plots accuracy against K")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="ratings: the feedback file written by 'pluralign data convert ratings'")
    p.add_argument("--summaries", default=None, metavar="FILE",
                   help="per-user summaries for the 'summary' method: JSON {user_id: summary} or JSONL "
                   "lines with user_id and summary")
    p.add_argument("--rm-config", default=None, metavar="YAML",
                   help="RMConfig YAML for every reward-model method (default: the bench's CPU budget)")
    p.add_argument("-s", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, repeatable: rm.KEY for the reward model of every RM-based method "
                   "(--set rm.max_steps=300), plus.KEY for the PlusConfig of the plus methods (--set plus.epochs=2, "
                   "--set plus.rm.lr=1e-4)")
    p.add_argument("--rm", action=Removed, replacement="--set rm.{value}")
    p.add_argument("--plus", action=Removed, replacement="--set plus.{value}")
    p.add_argument("--max-eval", type=int, default=None, metavar="N",
                   help="score at most N pairs per split, seeded subsample (default 100 quick, 600 full)")
    p.add_argument("--context-source", default="all", choices=["all", "pairs", "conversations", "profile"],
                   help="what methods may read of each user's history: everything, only labelled pairs, only "
                   "unlabelled past conversations, or only the self-description (targets are always pairs)")
    p.add_argument("--objective-rm", default="head", metavar="NAME",
                   help="rluf: the policies' helpfulness and safety reward models: 'head' (Bradley-Terry heads over "
                   "hashed n-grams, seconds) or a backbone fine-tuned end to end on the HH-RLHF pairs, e.g. "
                   "sentence-transformers/all-MiniLM-L6-v2 (about 15 min on 2 CPU cores, kept in "
                   "DIR/policies/objective_rms and reused)")
    p.add_argument("--no-resume", action="store_true",
                   help="re-run every method even if DIR/methods/seed<S>/<method>.json holds its results from a run with "
                   "the same settings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pluralign.evaluation.bench import bench_rm_config, run_suite
    from pluralign.evaluation.seed_stats import parse_seeds

    seeds = parse_seeds(args.seeds) if args.seeds else None  # a bad list fails before anything runs
    from pluralign.evaluation.polis_pairs import parse_context_votes

    context_votes = parse_context_votes(args.context_votes) if args.context_votes else None

    rm_overrides, plus_overrides = split_overrides(args.overrides)
    rm_config = None
    if args.rm_config or rm_overrides:
        base = load_config(RMConfig, args.rm_config) if args.rm_config else bench_rm_config(args.quick)
        rm_config = apply_overrides(base, rm_overrides, prefix="rm.")
    if plus_overrides:
        apply_overrides(PlusConfig(), plus_overrides, prefix="plus.")  # unknown keys and bad values fail before anything runs
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    run_suite(args.suite, args.out, quick=args.quick, methods=methods, seed=args.seed, seeds=seeds,
              polis_dir=args.polis_dir, summaries=args.summaries, rm_config=rm_config, max_eval_per_split=args.max_eval,
              context_source=args.context_source, plus_overrides=plus_overrides or None, resume=not args.no_resume,
              context_votes=context_votes, data=args.data, objective_rm=args.objective_rm)
    return 0


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``--set rm.KEY=VALUE`` and ``--set plus.KEY=VALUE`` as (RMConfig, PlusConfig) overrides, prefixes removed."""
    rm, plus = [], []
    for item in overrides:
        section, dot, rest = item.partition(".")
        if dot and section == "rm":
            rm.append(rest)
        elif dot and section == "plus":
            plus.append(rest)
        else:
            key = item.split("=", 1)[0]
            raise ConfigError(f"--set {item}: bench settings are rm.KEY (every RM-based method) or plus.KEY (the "
                              f"plus methods), e.g. --set rm.{key}=... or --set plus.{key}=...")
    return rm, plus
