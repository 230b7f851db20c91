"""Chatbot Arena battle CSVs (question, preference, two answer columns, category_labels) -> one population user.

Source: one CSV or a folder of them (the shared ``arena-llama3-battles`` has four, with ``soft_questions``
repeating the ``creative_writing`` rows). The two answer columns are whatever columns are not ``question``,
``preference`` or ``category_labels`` (``llama-3-70b-instruct`` and ``not_llama`` in the shared files);
``preference`` names the winning column. Arena voters have no ids, so all votes go to ``arena:population``.

Each battle becomes a pair: ``prompt`` = question, ``chosen`` = the winner's answer; ``meta`` keeps ``category``,
``chosen_model`` (the winning column) and ``file``. A battle repeated across files (same question, answers and
verdict) is kept once; ``pair_id`` = ``arena:{content hash}``, ``topic`` = a hash of the question.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from tqdm import tqdm

from pluralign.data.converters.source_rows import IssueLog, build_options, files_in, iter_csv, stable_id
from pluralign.data.schema import PreferencePair, UserRecord

SUMMARY = "Chatbot Arena battle CSVs (question, preference, two answer columns, category_labels) -> population user"

log_ = logging.getLogger(__name__)
FIXED = ("question", "preference", "category_labels")


@dataclass
class Options:
    user_id: str = field(default="arena:population", metadata={"help": "id of the one population user"})


def convert(source: Path, **opts) -> list[UserRecord]:
    o = build_options(Options, opts)
    log = IssueLog()
    pairs: list[PreferencePair] = []
    seen: set[str] = set()
    n_repeats = 0
    for path in files_in(Path(source), (".csv",), log):
        models: list[str] | None = None
        for row in tqdm(iter_csv(path, log, required=("question", "preference")), desc=f"arena {path.name}",
                        unit="battle", disable=None):
            if models is None:
                models = [c for c in row.data if c not in FIXED]
                if len(models) != 2:
                    log.add(path, 1, "", f"expected exactly two answer columns besides {', '.join(FIXED)}, "
                            f"got {models}")
                    break
            winner = row.data["preference"].strip()
            if winner not in models:
                log.add(row.path, row.line, "preference", f"expected one of {models}, got {winner!r}")
                continue
            loser = models[1] if winner == models[0] else models[0]
            question, a, b = row.data["question"], row.data[winner], row.data[loser]
            pid = "arena:" + stable_id(question, a, b, winner)
            if pid in seen:
                n_repeats += 1
                continue
            try:
                pair = PreferencePair(pair_id=pid, prompt=question, chosen=a, rejected=b,
                                      topic=stable_id(question, n=12),
                                      meta={"category": row.data.get("category_labels", "").strip() or None,
                                            "chosen_model": winner, "file": path.name})
            except ValidationError as e:
                # name the CSV column the bad text came from, not the schema field
                for err in e.errors():
                    col = {"chosen": winner, "rejected": loser, "prompt": "question"}.get(str(err["loc"][0]), "")
                    log.add(row.path, row.line, col, err["msg"])
                continue
            seen.add(pid)
            pairs.append(pair)
    log.raise_if_any()
    if n_repeats:
        log_.info("arena: %d repeated battle(s) kept once", n_repeats)
    return [UserRecord(user_id=o.user_id, source="arena", pairs=pairs)] if pairs else []
