"""Values every part of the pipeline can take: the databases, the JSON encoder, the export and the tokenizers.

A request body that Python's JSON parser accepts can still hold what later breaks something far from the request:
a lone UTF-16 surrogate (``"\\ud800"``) cannot be encoded as UTF-8, so the database driver, the export or a
tokenizer fails on it; NaN and Infinity (also ``1e999``, which parses as Infinity) are not JSON; PostgreSQL stores no
NUL in text. :func:`check_storable` refuses such values at the request, naming the field, so one client's bad event
never fails a commit shared with other clients' events, nor an export of everyone's data.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pluralign.service.errors import ApiError

FINITE = "numbers must be finite (no NaN, Infinity or overflowing values such as 1e999)"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "text must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return (f"text holds a lone UTF-16 surrogate (U+{ord(text[e.start]):04X} at character {e.start}), which is "
                "not valid Unicode")
    return None


def _key(k: Any) -> str:
    # A field name echoed in an error must itself be printable and encodable.
    s = str(k)
    return s if text_problem(s) is None and s.isprintable() else json.dumps(s)[1:-1]


def first_problem(value: Any, field: str) -> tuple[str, str] | None:
    """The first place (in document order) in a parsed JSON ``value`` that cannot be stored: ``(field, why)``.

    Iterative, so any nesting depth the parser accepted is walked without recursion.
    """
    stack: list[tuple[Any, str]] = [(value, field)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, str):
            why = text_problem(v)
            if why:
                return where, why
        elif isinstance(v, float):
            if not math.isfinite(v):
                return where, FINITE
        elif isinstance(v, dict):
            items = list(v.items())
            for k, _ in items:
                why = text_problem(k) if isinstance(k, str) else None
                if why:
                    return f"{where}.{_key(k)}", f"field name: {why}"
            stack.extend((x, f"{where}.{_key(k)}") for k, x in reversed(items))
        elif isinstance(v, list | tuple):
            stack.extend((x, f"{where}.{i}") for i, x in reversed(list(enumerate(v))))
    return None


def check_storable(value: Any, field: str) -> None:
    """Raise a 422 naming the field if ``value`` holds a lone surrogate, NUL, NaN or an infinity.

    The common case costs one C-speed ``json.dumps`` and one UTF-8 encode; the walk that names the field runs only
    when that fast check fails.
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
        if "\\u0000" not in text:
            return
    except (ValueError, UnicodeEncodeError, RecursionError, TypeError):
        pass
    found = first_problem(value, field)
    if found is not None:
        where, why = found
        raise ApiError(422, "invalid_request", f"{where}: {why}", field=where)


_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON's parser joins valid pairs, so any left are lone


def _repair_str(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def repair_unencodable(value: Any) -> tuple[Any, int]:
    """``value`` with every lone surrogate replaced by U+FFFD, and how many strings changed.

    For the export only: rows stored before the service refused such text must not stop everyone's export; the
    export reports the count and the events it touched.
    """
    if isinstance(value, str):
        fixed = _repair_str(value)
        return fixed, int(fixed != value)
    if isinstance(value, dict):
        out, n = {}, 0
        for k, v in value.items():
            k2, a = repair_unencodable(k) if isinstance(k, str) else (k, 0)
            v2, b = repair_unencodable(v)
            out[k2] = v2
            n += a + b
        return out, n
    if isinstance(value, list):
        items = [repair_unencodable(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    return value, 0
