"""``pluralign train TARGET``: one sub-subcommand per trainer, each in ``pluralign.cli.train_<target>``."""

from __future__ import annotations

import importlib
import importlib.util

TARGETS = {
    "rm": "summary-conditioned Bradley-Terry reward model",
    "love": "P[Love] classifier from binary reactions",
    "plus": "PLUS: summarizer + reward model co-adaptation",
    "policy": "policy optimisation (best-of-N selection, GRPO)",
}


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model (rm, love, plus, policy)",
                       description="Train one of pluralign's models. Each takes --config YAML and --set KEY=VALUE overrides "
                       "(repeatable; dotted keys reach into sections, e.g. --set rm.lr=1e-4).")
    tsub = p.add_subparsers(dest="target", metavar="TARGET")
    for name in TARGETS:
        mod = f"pluralign.cli.train_{name}"
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).register(tsub)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
