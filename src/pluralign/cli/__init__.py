"""The ``pluralign`` command. Thin: each subcommand lives in its own module here and calls into the packages.

Every command that takes settings reads them the same way: ``--config YAML`` then ``--set KEY=VALUE`` (dotted keys
reach into sections, e.g. ``--set rm.lr=1e-4``; see :mod:`pluralign.cli.options`).

Every module listed in ``COMMANDS`` exposes ``register(subparsers)``, adds its parser(s) and sets
``func`` to a handler taking the parsed ``argparse.Namespace`` and returning an exit code. Modules import heavy
libraries (torch, transformers) inside their handlers so ``pluralign --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys

from pluralign import __version__
from pluralign.cli.options import stray_override_message

COMMANDS = ["data", "simulate", "bench", "eval", "train", "summaries", "gate", "serve", "demo"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pluralign",
        description="Learn what each user wants from their feedback: summary-conditioned reward models (PLUS), "
        "P[Love] from binary reactions (RLUF), simulated users, benchmarks and a feedback service.",
        epilog="Run 'pluralign COMMAND --help' for the options of a command. Quickstart: 'make demo'.",
    )
    parser.add_argument("--version", action="version", version=f"pluralign {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        modname = f"pluralign.cli.{name}_cmd"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never a silent download attempt: offline unless the user opts in
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.error(stray_override_message(extras) or f"unrecognized arguments: {' '.join(extras)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, PermissionError) as e:
        # Known user errors (bad files, bad configs): one clear message, no traceback.
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
