"""The `pluralign` command explains itself and fails clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pluralign.cli import COMMANDS, build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out, f"'{name}' missing from pluralign --help"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "pluralign", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "pluralign" in r.stdout


def test_parser_builds_without_heavy_imports():
    code = ("import sys; from pluralign.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stdout + r.stderr
    assert build_parser().prog == "pluralign"
