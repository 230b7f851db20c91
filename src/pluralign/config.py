"""Dataclass configs: defaults < a YAML file < ``--set key.sub=value`` overrides, one syntax for every command.

A config is a dataclass whose fields carry their help text (``field(metadata={"help": ...})``); a field whose type
is itself a dataclass is a section, written as a nested mapping in YAML (``rm: {lr: 1e-4}``) and as a dotted key on
the command line (``--set rm.lr=1e-4``). Every value is checked against its field's type, and every error names
where the value came from (the YAML file or ``--set``), the dotted key and the expected type; an unknown key is an
error with a did-you-mean (which also points a flat key of the old form, ``rm_lr``, at its nested place ``rm.lr``).

Why not ``transformers.HfArgumentParser`` / ``trl.TrlParser``: they map flat dataclasses to ``--flags`` and do not
nest one config inside another (``PlusConfig.rm`` is an ``RMConfig``), which is the point here.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

OVERRIDE_SYNTAX = "--set KEY=VALUE"


class ConfigError(ValueError):
    pass


@dataclasses.dataclass
class _Value:
    """A value as read, where it came from (a YAML path or a ``--set`` item), and whether it is command-line text
    (parsed by the field's type: ``2024`` stays text for a str field)."""

    value: Any
    where: str
    from_text: bool = False


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _section_type(hint: Any) -> type | None:
    """The dataclass a field's type names (``RMConfig``), or None for a plain field."""
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _dotted_names(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    names = []
    for name in _fields(cls):
        sub = _section_type(hints.get(name))
        names += _dotted_names(sub, f"{prefix}{name}.") if sub else [f"{prefix}{name}"]
    return names


def _unknown(key: str, where: str, root: type) -> ConfigError:
    known = _dotted_names(root)
    hint = ""
    # A flat key of the old form (rm_lr) whose nested place exists (rm.lr).
    moved = [k for k in known if k != key and k.replace(".", "_") == key.replace(".", "_")]
    close = moved or difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?"
        if moved and "." in moved[0]:
            section, _, rest = moved[0].rpartition(".")
            hint += f" (settings of a section nest: '{section}: {{{rest}: ...}}' in YAML, --set {moved[0]}=... on " \
                    "the command line)"
    return ConfigError(f"{where}: unknown key '{key}' for {root.__name__}{hint}")


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _coerce(hint: Any, v: _Value, key: str) -> Any:
    """``v.value`` as the field type ``hint`` says, or a ConfigError naming ``v.where``, ``key`` and the type."""
    value = v.value
    origin = typing.get_origin(hint)
    if hint is Any or hint is None:
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        is_null = value is None or (v.from_text and str(value).strip().lower() in ("null", "none", "~"))
        if optional and is_null:
            return None
        if len(args) == 1:
            return _coerce(args[0], v, key)
        return value
    if value is None:
        raise ConfigError(f"{v.where}: key '{key}' expects {_type_name(hint)}, got null")

    def bad() -> ConfigError:
        return ConfigError(f"{v.where}: key '{key}' expects {_type_name(hint)}, got {value!r}")

    base = origin or hint
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        raise bad()
    if base is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    raise bad() from None
                if f.is_integer():
                    return int(f)
        raise bad()
    if base is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if base is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # YAML reads 2024 or 1e-4 as numbers; a str field takes their text
        raise bad()
    if base in (list, tuple, set):
        if isinstance(value, str) and v.from_text:
            text = value.strip()
            value = yaml.safe_load(text) if text.startswith("[") else [x.strip() for x in text.split(",") if x.strip()]
        if not isinstance(value, list | tuple | set):
            raise bad()
        args = typing.get_args(hint)
        item = args[0] if args and base is not tuple else Any
        items = [_coerce(item, _Value(x, v.where, v.from_text), f"{key}[{i}]") for i, x in enumerate(value)]
        return base(items)
    if base is dict:
        if isinstance(value, str) and v.from_text:
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise bad()
        return value
    return value


def _build(cls: type[T], values: dict[str, Any], base: T | None, root: type, prefix: str = "") -> T:
    """``cls`` from ``base`` (or its defaults) with ``values`` (a nested dict of :class:`_Value`) replaced."""
    fields = _fields(cls)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, v in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            where = v.where if isinstance(v, _Value) else next(iter(_leaves(v))).where
            raise _unknown(key, where, root)
        sub = _section_type(hints.get(name))
        if sub is not None:
            if isinstance(v, _Value) and v.value in (None, {}):
                continue  # an empty section changes nothing
            if isinstance(v, _Value):
                example = next(iter(_dotted_names(sub)), "key")
                raise ConfigError(f"{v.where}: '{key}' is a section of {_type_name(sub)}: set its keys, e.g. "
                                  f"'{key}: {{{example}: ...}}' in YAML or --set {key}.{example}=... (got "
                                  f"{v.value!r})")
            inner = getattr(base, name) if base is not None else _default(fields[name])
            kwargs[name] = _build(sub, v, inner, root, f"{key}.")
        else:
            if isinstance(v, dict):
                raise ConfigError(f"{next(iter(_leaves(v))).where}: key '{key}' is a single "
                                  f"{_type_name(hints.get(name))}, not a section")
            kwargs[name] = _coerce(hints.get(name, Any), v, key)
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except (ValueError, TypeError) as e:
        sources = sorted({x.where for x in _leaves(values)})
        raise ConfigError(f"{' + '.join(sources) or 'defaults'}: {e}") from None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _leaves(values: dict | _Value):
    if isinstance(values, _Value):
        yield values
        return
    for v in values.values():
        yield from _leaves(v)


def _merge(into: dict, key_path: list[str], v: _Value) -> None:
    node = into
    for part in key_path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[key_path[-1]] = v


def _yaml_values(cls: type | None, data: dict, where: str) -> dict:
    """A YAML mapping as nested :class:`_Value` dicts: a section's mapping is opened, a dict field's is kept whole."""
    hints = typing.get_type_hints(cls) if cls is not None else {}
    out: dict = {}
    for k, val in data.items():
        sub = _section_type(hints.get(str(k)))
        if sub is not None and isinstance(val, dict) and val:
            out[str(k)] = _yaml_values(sub, val, where)
        else:
            out[str(k)] = _Value(val, where)
    return out


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file (a missing file, bad YAML or a non-mapping is a ConfigError)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of key: value")
    return data


def _override_values(overrides: list[str] | None, prefix: str = "") -> dict:
    where = "--set"
    out: dict = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"{where} {item!r}: expected KEY=VALUE, e.g. --set rm.lr=1e-4")
        k, raw = item.split("=", 1)
        k = k.strip()
        if k.startswith("-"):
            raise ConfigError(f"{where} {item!r}: write the key without dashes, e.g. --set {k.lstrip('-')}={raw}")
        parts = [p.replace("-", "_") for p in k.split(".")]
        if not all(parts):
            raise ConfigError(f"{where} {item!r}: empty key")
        _merge(out, parts, _Value(raw, f"{where} {prefix}{item}", from_text=True))
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Build ``cls`` from its defaults, then a YAML file, then ``KEY=VALUE`` overrides (dotted keys reach into
    sections: ``rm.lr=1e-4``; later wins). Unknown keys and values of the wrong type are :class:`ConfigError`."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    values = _yaml_values(cls, read_yaml(path), str(path)) if path is not None else {}
    for k, v in _override_values(overrides).items():
        _deep_set(values, k, v)
    return _build(cls, _parse_text(cls, values), None, cls)


def apply_overrides(config: T, overrides: list[str] | None, prefix: str = "") -> T:
    """A copy of dataclass instance ``config`` with ``KEY=VALUE`` overrides applied (checked like load_config's);
    ``prefix`` is how the caller's command line spelled the keys (``rm.`` for bench's ``--set rm.lr=...``)."""
    cls = type(config)
    return _build(cls, _parse_text(cls, _override_values(overrides, prefix)), config, cls)


def _deep_set(into: dict, key: str, v: Any) -> None:
    if isinstance(v, dict) and isinstance(into.get(key), dict):
        for k2, v2 in v.items():
            _deep_set(into[key], k2, v2)
    else:
        into[key] = v


def _parse_text(cls: type, values: dict) -> dict:
    """Command-line text parsed as YAML, except for str fields (``--set output_dir=2024`` stays a string)."""
    hints = typing.get_type_hints(cls)
    fields = _fields(cls)
    out: dict = {}
    for name, v in values.items():
        hint = hints.get(name, Any)
        sub = _section_type(hint)
        if isinstance(v, dict):
            out[name] = _parse_text(sub, v) if sub is not None and name in fields else v
        elif isinstance(v, _Value) and v.from_text and name in fields and not _is_text(hint):
            raw = v.value
            try:
                parsed = yaml.safe_load(raw) if raw.strip() else raw
            except yaml.YAMLError:
                parsed = raw
            out[name] = _Value(parsed, v.where, from_text=isinstance(parsed, str))
        else:
            out[name] = v
    return out


def _is_text(hint: Any) -> bool:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint is str or (typing.get_origin(hint) in (typing.Union, types.UnionType) and args == [str])


def config_help(cls: type, prefix: str = "", defaults: Any = None) -> str:
    """One line per field, sections as dotted keys: ``key=default  help`` (the help in ``field(metadata=...)``);
    a section's defaults are those of its field's default value (``DemoConfig.rm`` is not ``RMConfig()``)."""
    hints = typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = getattr(defaults, f.name) if defaults is not None else _default(f)
        sub = _section_type(hints.get(f.name))
        if sub is not None:
            lines.append(f"  {prefix}{f.name}.*  {f.metadata.get('help', '')}".rstrip())
            lines.append(config_help(sub, f"{prefix}{f.name}.", default))
            continue
        lines.append(f"  {prefix}{f.name}={default!r}  {f.metadata.get('help', '')}".rstrip())
    return "\n".join(lines)
