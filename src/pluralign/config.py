"""Dataclass configs from YAML files with ``key=value`` CLI overrides (one source of truth per trainer)."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _coerce(cls: type, name: str, value: Any, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    hint = hints.get(name)
    if hint is None or value is None:
        return value
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if origin in (typing.Union, types.UnionType) and len(args) == 1 else hint
    try:
        if base is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base in (int, float, str, bool) and not isinstance(value, base):
            if base is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return base(value)
        if typing.get_origin(base) in (list, tuple) and isinstance(value, str):
            return [x for x in value.split(",") if x]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: field '{name}' expects {getattr(base, '__name__', base)}, got {value!r}") from None
    return value


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Build ``cls`` from defaults, then a YAML file, then ``key=value`` overrides (later wins)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of field: value")
        for k, v in data.items():
            if k not in names:
                raise ConfigError(f"{p}: unknown field '{k}' for {cls.__name__} (known: {', '.join(sorted(names))})")
            values[k] = _coerce(cls, k, v, str(p))
    values.update(parse_overrides(cls, overrides))
    return cls(**values)


def parse_overrides(cls: type, overrides: list[str] | None) -> dict[str, Any]:
    """``key=value`` strings to typed field values of dataclass ``cls`` (unknown keys and bad types are errors)."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        k, raw = item.split("=", 1)
        k = k.strip().lstrip("-").replace("-", "_")
        if k not in names:
            raise ConfigError(f"override {item!r}: unknown field '{k}' for {cls.__name__}")
        v = yaml.safe_load(raw) if raw else raw
        values[k] = _coerce(cls, k, v, "command line")
    return values


def apply_overrides(config: T, overrides: list[str] | None) -> T:
    """A copy of dataclass instance ``config`` with ``key=value`` overrides applied (checked like load_config's)."""
    return dataclasses.replace(config, **parse_overrides(type(config), overrides))


def config_help(cls: type) -> str:
    """One line per field: name, default, and the help text kept in ``field(metadata={'help': ...})``."""
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
        lines.append(f"  {f.name}={default!r}  {f.metadata.get('help', '')}")
    return "\n".join(lines)
