"""``pluralign train love``: fit P[Love] on a reaction log (feedback JSONL with ``reactions``)."""

from __future__ import annotations

import argparse
import json

from pluralign.cli.options import HelpFormatter, add_config_args, config_epilog
from pluralign.config import load_config
from pluralign.data.io import read_users
from pluralign.training.love_config import LoveConfig


def register(tsub) -> None:
    p = tsub.add_parser(
        "love", help="P[Love] classifier from binary love reactions",
        description="Train P[Love] = Pr(love | user summary, prompt, response) on the reactions of a feedback file. "
        "model=linear (default): hashed n-grams or frozen encoder embeddings and a logistic head; model=neural: a "
        "fine-tuned transformer classifier (neural_backbone: MiniLM by default, any HF encoder or causal LM such as "
        "smollm2). Both: binary cross-entropy with positives upsampled to target_pos_share, prior-shift correction "
        "to the live base rate, optional adversarial-user defence, and with personalised=true the user's summary "
        "written by `summarizer` from their own earlier reactions. The latest test_fraction of reactions (by time) "
        "is held out; AUROC (also per user kind), ECE before/after correction and the length correlation are written "
        "to OUT/metrics.json.",
        epilog=config_epilog(LoveConfig),
        formatter_class=HelpFormatter)
    p.add_argument("--data", required=True, help="feedback JSONL (UserRecord per line) with love reactions")
    p.add_argument("--out", required=True, help="output directory for the model and metrics.json")
    add_config_args(p, "LoveConfig", "defence=false", config_help="YAML file of LoveConfig keys")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pluralign.training.love_trainer import train_love

    cfg = load_config(LoveConfig, args.config, args.overrides)
    users = read_users(args.data)
    res = train_love(users, cfg, out_dir=args.out, source=str(args.data))
    print(json.dumps({k: round(v, 4) for k, v in res.metrics.items()}, indent=1))
    if res.defence is not None:
        print(f"defence: {len(res.defence.flagged())} of {len(res.defence.users)} users flagged as unreliable")
    print(f"saved P[Love] to {args.out}")
    return 0
