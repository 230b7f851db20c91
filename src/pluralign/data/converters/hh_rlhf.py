"""Anthropic HH-RLHF (``{"chosen", "rejected"}`` full transcripts) -> one population user per subset.

Source: a ``.jsonl``/``.jsonl.gz`` file or a folder of them (e.g. ``harmless-base/test.jsonl.gz``, ...). The subset
is the file's folder name (``hh:helpful-base``), or the file name when files sit directly in ``source``.

Each transcript is ``"\\n\\nHuman: ...\\n\\nAssistant: ...``". The ``prompt`` is the dialogue before the final
``"\\n\\nAssistant:"`` (kept in the HH layout, ``"Human: ...\\n\\nAssistant: ...\\n\\nHuman: ..."``), the responses
are the two final assistant turns. ``topic`` = a hash of the prompt, ``pair_id`` = ``hh:{subset}:{content hash}``
(stable across runs). Pairs whose two transcripts differ before the final turn, or whose final turn is empty, are
not preference pairs over one prompt: they are skipped and counted (a warning says how many). Word-for-word
repeats are kept once. HH always stores the preferred reply as ``chosen``: trainers must shuffle positions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pluralign.data.converters.source_rows import (
    FieldError,
    IssueLog,
    build_options,
    files_in,
    iter_jsonl,
    stable_id,
)
from pluralign.data.schema import PreferencePair, UserRecord

SUMMARY = "Anthropic HH-RLHF chosen/rejected transcripts (.jsonl[.gz] file or folder of subsets) -> population users"

log_ = logging.getLogger(__name__)
TURN = "\n\nAssistant:"


@dataclass
class Options:
    subset: str = field(default="", metadata={"help": "subset name for a single file (default: its folder name)"})


class SkippedPair(Exception):
    """A row that is well-formed JSON but not a usable pair (counted, not an error)."""


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(shared prompt dialogue, chosen final turn, rejected final turn)."""
    ic, ir = chosen.rfind(TURN), rejected.rfind(TURN)
    if ic < 0:
        raise FieldError("chosen", "no '\\n\\nAssistant:' turn in the transcript")
    if ir < 0:
        raise FieldError("rejected", "no '\\n\\nAssistant:' turn in the transcript")
    if chosen[:ic] != rejected[:ir]:
        raise SkippedPair("different contexts")
    a, b = chosen[ic + len(TURN):].strip(), rejected[ir + len(TURN):].strip()
    if not a or not b:
        raise SkippedPair("empty final turn")
    return chosen[:ic].strip(), a, b


def _subset_name(path: Path, source: Path, opts: Options) -> str:
    if opts.subset:
        return opts.subset
    if source.is_dir() and path.parent == source:
        return path.name.split(".")[0]
    return path.parent.name


def convert(source: Path, **opts) -> list[UserRecord]:
    o = build_options(Options, opts)
    log = IssueLog()
    source = Path(source)
    by_subset: dict[str, list[PreferencePair]] = {}
    skipped: dict[str, int] = {}
    for path in files_in(source, (".jsonl", ".jsonl.gz"), log):
        subset = _subset_name(path, source, o)
        pairs = by_subset.setdefault(subset, [])
        seen: set[str] = {p.pair_id for p in pairs}
        for row in tqdm(iter_jsonl(path, log), desc=f"hh-rlhf {subset}", unit="pair", disable=None):
            unknown = [k for k in row.data if k not in ("chosen", "rejected")]
            if unknown:
                log.add(row.path, row.line, unknown[0], "unknown field (HH-RLHF rows have only chosen and rejected)")
                continue
            bad = [k for k in ("chosen", "rejected") if not isinstance(row.data.get(k), str)]
            if bad:
                got = type(row.data.get(bad[0])).__name__ if bad[0] in row.data else "nothing (missing)"
                log.add(row.path, row.line, bad[0], f"expected a transcript string, got {got}")
                continue
            try:
                prompt, chosen, rejected = split_transcripts(row.data["chosen"], row.data["rejected"])
            except FieldError as e:
                log.add(row.path, row.line, e.field, str(e))
                continue
            except SkippedPair as e:
                skipped[str(e)] = skipped.get(str(e), 0) + 1
                continue
            pid = f"hh:{subset}:{stable_id(prompt, chosen, rejected)}"
            if pid in seen:
                skipped["duplicate"] = skipped.get("duplicate", 0) + 1
                continue
            seen.add(pid)
            pairs.append(PreferencePair(pair_id=pid, prompt=prompt, chosen=chosen, rejected=rejected,
                                        topic=stable_id(prompt, n=12)))
    log.raise_if_any()
    if skipped:
        log_.warning("hh-rlhf: skipped %s", ", ".join(f"{n} ({why})" for why, n in sorted(skipped.items())))
    return [UserRecord(user_id=f"hh:{s}", source="hh-rlhf", pairs=p, meta={"subset": s})
            for s, p in by_subset.items() if p]
