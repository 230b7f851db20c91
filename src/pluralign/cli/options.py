"""The one way every command takes its settings: ``--config YAML`` then ``--set KEY=VALUE`` (repeatable).

A dotted KEY reaches into a section (``--set rm.lr=1e-4``); later values win. Forms that no longer exist (a bare
``key=value`` after the options, ``bench --rm``/``--plus``) fail with a message that shows the ``--set`` spelling.
"""

from __future__ import annotations

import argparse
import re
import textwrap

from pluralign.config import config_help

SET_SYNTAX = ("--set KEY=VALUE, repeatable (later wins). A dotted KEY reaches into a section (--set rm.lr=1e-4, or "
              "'rm: {lr: 1e-4}' in YAML); a list is a,b or [a, b]; null sets None. Unknown keys and values of the "
              "wrong type are errors naming the key and the expected type.")

_BARE_OVERRIDE = re.compile(r"^[A-Za-z_][\w.-]*=")


def add_config_args(p: argparse.ArgumentParser, config_name: str, example: str, *,
                    config_help: str | None = None) -> None:
    """``--config YAML`` and ``-s/--set KEY=VALUE`` (into ``args.config`` and ``args.overrides``)."""
    p.add_argument("--config", metavar="YAML",
                   help=config_help or f"{config_name} values as a YAML mapping (sections as nested mappings)")
    p.add_argument("-s", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override one {config_name} key, repeatable; e.g. --set {example}")


def config_epilog(cls: type) -> str:
    """``--help`` text after the options: the override syntax, then every key with its default and help."""
    return f"{textwrap.fill('Settings: --config YAML, then ' + SET_SYNTAX, 110)}\n\n{cls.__name__} keys (KEY=default  help):\n" \
        f"{config_help(cls)}"


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-line descriptions; keeps text that has its own line breaks (the settings list) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Removed(argparse.Action):
    """An option that no longer exists: using it is an error that names its replacement."""

    def __init__(self, option_strings, dest, replacement: str = "", **kwargs):
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, nargs=1, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None):
        value = values[0] if values else "KEY=VALUE"
        parser.error(f"{option_string} was removed: write {self.replacement.format(value=value)}")


def stray_override_message(extras: list[str]) -> str | None:
    """The error for ``key=value`` words left over after parsing (the removed positional override form)."""
    bare = [x for x in extras if _BARE_OVERRIDE.match(x)]
    if not bare:
        return None
    spelled = " ".join(f"--set {x}" for x in bare)
    return (f"bare KEY=VALUE overrides ({' '.join(bare)}) were removed: write {spelled} "
            "(a dotted KEY reaches into a section, e.g. --set rm.lr=1e-4)")
