"""Name → method class, imported lazily so listing methods never loads torch.

Adding a method is one line here: ``"my-method": "package.module:ClassName"``. The class is built as
``cls(**options)`` with the bench's shared options (``rm_config``, ``summaries``, ``summarizer``, ``quick``);
it must accept and ignore the ones it does not use (``**_``).
"""

from __future__ import annotations

import importlib
from typing import Any

METHODS: dict[str, str] = {
    "keyword": "pluralign.evaluation.methods.keyword:KeywordMethod",
    "bt": "pluralign.evaluation.methods.bt:BradleyTerryMethod",
    "icl": "pluralign.evaluation.methods.icl:InContextMethod",
    "oracle": "pluralign.evaluation.methods.oracle:OracleMethod",
    "group": "pluralign.evaluation.methods.group:GroupLabelMethod",
    "latent": "pluralign.evaluation.methods.latent:LatentUserMethod",
    "summary": "pluralign.evaluation.methods.summary:SummaryMethod",
    "plus": "pluralign.evaluation.methods.plus:PlusMethod",
    "plus-untrained": "pluralign.evaluation.methods.plus:PlusUntrainedMethod",
    "plus-extractive": "pluralign.evaluation.methods.plus:PlusExtractiveMethod",
}


def available_methods() -> list[str]:
    return list(METHODS)


def make_method(name: str, **options: Any):
    """Instantiate the method registered as ``name``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r} (available: {', '.join(METHODS)})")
    module, _, cls = METHODS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**options)
