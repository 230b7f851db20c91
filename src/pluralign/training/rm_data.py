"""Preference rows for the reward model: checked up front, then tokenised into trainer columns.

A row is a dict with ``prompt``, ``chosen``, ``rejected`` and optional ``summary`` (any user text the reward model
is conditioned on) and ``margin``. Summary conditioning is a dataset map: :func:`pair_columns` renders each row
through the model's own :class:`~pluralign.models.rm_inputs.RMInputs` (template, truncation) into the
``chosen_ids`` / ``rejected_ids`` columns TRL's ``RewardTrainer`` reads, plus ``margin``, ``length`` (for length
bucketing) and, for encoders, token type ids.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

ROW_FIELDS = ("prompt", "chosen", "rejected", "summary", "margin")


def validate_rows(rows: Sequence[dict], source: str = "rows", line_numbers: Sequence[int] | None = None
                  ) -> list[dict]:
    """Check every row up front (so a bad row fails before any training); error names source, line and field."""
    out = []
    for i, row in enumerate(rows):
        where = f"{source} line {line_numbers[i]}" if line_numbers is not None else f"{source} row {i}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected an object with prompt/chosen/rejected, got {type(row).__name__}")
        for key in ("prompt", "chosen", "rejected"):
            if key not in row:
                raise ValueError(f"{where}: field '{key}' is missing")
            if not isinstance(row[key], str):
                raise ValueError(f"{where}: field '{key}' must be a string, got {type(row[key]).__name__}")
        for key in ("chosen", "rejected"):
            if not row[key].strip():
                raise ValueError(f"{where}: field '{key}' is empty")
        if row.get("summary") is not None and not isinstance(row["summary"], str):
            raise ValueError(f"{where}: field 'summary' must be a string or null")
        if row.get("margin") is not None and (isinstance(row["margin"], bool)
                                              or not isinstance(row["margin"], int | float)
                                              or not math.isfinite(row["margin"])):
            raise ValueError(f"{where}: field 'margin' must be a finite number, got {row['margin']!r}")
        out.append({k: row.get(k) for k in ROW_FIELDS})
    if not out:
        raise ValueError(f"{source}: no rows")
    return out


def row_margins(rows: Sequence[dict], default: float = 0.0) -> list[float]:
    """Each row's own margin, or ``default`` where it has none."""
    return [float(r["margin"]) if r.get("margin") is not None else float(default) for r in rows]


def pair_columns(rows: dict[str, list], inputs, default_margin: float = 0.0) -> dict[str, list]:
    """A batch of rows (column-wise, as ``datasets.map(batched=True)`` passes them) as trainer columns."""
    n = len(rows["prompt"])
    summaries = rows.get("summary") or [None] * n
    chosen = inputs.tokenize(rows["prompt"], rows["chosen"], summaries)
    rejected = inputs.tokenize(rows["prompt"], rows["rejected"], summaries)
    margins = rows.get("margin") or [None] * n
    out = {"chosen_ids": chosen.input_ids, "rejected_ids": rejected.input_ids,
           "margin": [float(m) if m is not None else float(default_margin) for m in margins],
           "length": [max(len(a), len(b)) for a, b in zip(chosen.input_ids, rejected.input_ids, strict=True)],
           "summary_tokens_cut": chosen.summary_tokens_cut}
    if chosen.token_type_ids is not None:
        out["chosen_token_type_ids"] = chosen.token_type_ids
        out["rejected_token_type_ids"] = rejected.token_type_ids
    return out


def rows_to_dataset(inputs, rows: Sequence[dict], default_margin: float = 0.0):
    """A ``datasets.Dataset`` of trainer columns for already validated rows (the text columns are dropped)."""
    # datasets (seconds to import) loads only here: row validation and the PLUS inner-loop updater do without it
    import datasets

    table = datasets.Dataset.from_dict({k: [r.get(k) for r in rows] for k in ROW_FIELDS})
    # The map runs in memory; a fixed-per-call fingerprint spares datasets from hashing the tokenizer.
    return table.map(pair_columns, batched=True, batch_size=256, remove_columns=list(ROW_FIELDS),
                     fn_kwargs={"inputs": inputs, "default_margin": default_margin},
                     new_fingerprint=uuid.uuid4().hex)
