"""``pluralign simulate``: write a simulated feedback file with known ground truth, and summarise it."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pluralign.config import load_config
from pluralign.data.io import write_users
from pluralign.sim.config import ReactionLogConfig
from pluralign.sim.reactions import simulate_reaction_log
from pluralign.sim.suites import build_suite

SIM_SUITES = ("pets", "pets-ood", "hh-users", "contexts", "attributes", "reactions")


def _rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a value in [0, 1], got {v}")
    return v


def register(sub) -> None:
    p = sub.add_parser(
        "simulate", help="write a simulated feedback file (pets, pets-ood, hh-users, contexts, attributes, reactions)",
        description="Simulate users whose preferences are known and write their feedback as a pluralign JSONL file. "
        "pets: users each love one of six animals, every pair contested; pets-ood: training users plus shifted new "
        "users (unseen animals, unseen templates; everyone also has a length preference); hh-users: helpfulness-first vs "
        "harmlessness-first users labelling the same real HH-RLHF pairs; contexts: personas with past "
        "conversations and a self-description; attributes: six latent preferences per user judged on what answers mean, context and scored pairs worded from disjoint paraphrase pools (meta.pool); reactions: an RLUF-style log of binary love reactions with "
        "adversarial users. Labels are sampled from the users' true probabilities, which are stored too "
        "(p_chosen, p_true), so the Bayes (oracle) accuracy is known and printed.")
    p.add_argument("suite", choices=SIM_SUITES, metavar="SUITE", help=f"what to simulate: {', '.join(SIM_SUITES)}")
    p.add_argument("--out", type=Path, required=True, help="feedback file to write (JSONL, replaced atomically)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed; the same seed gives the same file (default 0, or the --config file's)")
    p.add_argument("--quick", action="store_true",
                   help="a small version (tens of users) for smoke tests; for reactions, 40 users x 20 unless --config")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--summary-out", type=Path, default=None,
                   help="also write the summary (sizes, Bayes accuracy, new_user_ids, description) to this JSON file")
    r = p.add_argument_group("reactions only (flags and --set override --config; see ReactionLogConfig)")
    r.add_argument("--config", type=Path, default=None,
                   help="YAML file of ReactionLogConfig fields (n_users, per_user, base_rate, adversarial_frac, "
                   "adversary_kinds, signoff_share, susceptible_frac, days, love_scale, seed)")
    r.add_argument("-s", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one ReactionLogConfig key, repeatable, e.g. --set susceptible_frac=0.2")
    r.add_argument("--users", type=int, default=None, help="number of users (default 200, 40 with --quick)")
    r.add_argument("--per-user", type=int, default=None,
                   help="responses shown to each user (default 40, 20 with --quick)")
    r.add_argument("--base-rate", type=_rate, default=None,
                   help="honest users' mean P(love), e.g. 0.01-0.10 (default 0.02)")
    r.add_argument("--adversarial-frac", type=_rate, default=None,
                   help="share of adversarial users (default 0.1)")
    r.add_argument("--adversary-kinds", default=None,
                   help="comma-separated kinds among random, inverter, spammer (default: all three)")
    r.add_argument("--signoff-share", type=_rate, default=None,
                   help="share of shown responses that end with an affectionate sign-off (default 0.1)")
    p.set_defaults(func=run_simulate)


def _summary_reactions(users) -> dict:
    """Sizes, love rates, and the oracle AUROC: how well the true P(love) ranks honest users' sampled reactions
    (the ceiling for any P[Love] model on this log)."""
    from sklearn.metrics import roc_auc_score

    vals = [x.value for u in users for x in u.reactions]
    honest = [x for u in users if u.meta.get("kind") == "normal" for x in u.reactions]
    kinds: dict[str, int] = {}
    by_segment: dict[str, list[float]] = {}
    for u in users:
        kinds[str(u.meta.get("kind"))] = kinds.get(str(u.meta.get("kind")), 0) + 1
    for x in honest:
        by_segment.setdefault(str(x.meta.get("segment")), []).append(x.p_true)
    hv = [x.value for x in honest]
    auroc = roc_auc_score(hv, [x.p_true for x in honest]) if 0 < sum(hv) < len(hv) else float("nan")
    return {"users": len(users), "reactions": len(vals), "loves": int(sum(vals)),
            "love_rate": float(np.mean(vals)) if vals else float("nan"),
            "honest_mean_p_true": float(np.mean([x.p_true for x in honest])) if honest else float("nan"),
            "oracle_auroc_honest": float(auroc), "kinds": kinds,
            "honest_p_love_by_segment": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_segment.items())}}


def run_simulate(args: argparse.Namespace) -> int:
    if args.overrides and args.suite != "reactions":
        raise ValueError(f"--set applies to the reactions suite only (ReactionLogConfig); {args.suite} has no "
                         "settings beyond --seed and --quick")
    if args.suite == "reactions":
        overrides = [] if args.config else [f"n_users={40 if args.quick else 200}", f"per_user={20 if args.quick else 40}"]
        flags = {"n_users": args.users, "per_user": args.per_user, "base_rate": args.base_rate,
                 "adversarial_frac": args.adversarial_frac, "adversary_kinds": args.adversary_kinds,
                 "signoff_share": args.signoff_share, "seed": args.seed}
        overrides += [f"{k}={v}" for k, v in flags.items() if v is not None]
        cfg = load_config(ReactionLogConfig, args.config, overrides + list(args.overrides))
        users = simulate_reaction_log(**asdict(cfg))
        summary = {"suite": "reactions", **asdict(cfg), **_summary_reactions(users)}
    else:
        seed = args.seed if args.seed is not None else 0
        suite = build_suite(args.suite, seed=seed, quick=args.quick)
        users = suite.users
        summary = {"suite": suite.name, "seed": seed, "users": len(users), "pairs": suite.n_pairs(),
                   "conversations": sum(len(u.conversations) for u in users),
                   "bayes_accuracy": suite.bayes_accuracy, "new_user_ids": suite.new_user_ids,
                   "description": suite.description,
                   **{k: v for k, v in suite.stats.items() if k not in ("users", "pairs")}}
    n = write_users(args.out, users)
    summary["out"] = str(args.out)
    if args.summary_out is not None:
        args.summary_out.parent.mkdir(parents=True, exist_ok=True)
        args.summary_out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"wrote {n} users to {args.out}")
    for k, v in summary.items():
        if k in ("out", "new_user_ids"):
            if k == "new_user_ids" and v:
                print(f"  new_user_ids: {len(v)} (first: {v[0]})")
            continue
        print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
    return 0
