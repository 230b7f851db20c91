"""Public corpora read from the shared data folder: HH-RLHF test pairs and real (prompt, response) items.

The raw files (HH-RLHF test splits, Chatbot Arena battles, OASST2 subset) are read directly, not through the
converters: the simulator and the RLUF suites want the texts (a final assistant turn and its dialogue prefix), not
users. ``$PLURALIGN_DATA_DIR`` or ``../shared/data`` next to the repository holds them.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pluralign.data.io import iter_jsonl_objects

HH_SUBSETS = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled")


def shared_data_dir() -> Path:
    """The shared real-data folder: ``$PLURALIGN_DATA_DIR``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("PLURALIGN_DATA_DIR")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[3]
    candidates += [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"]
    for c in candidates:
        if (c / "hh-rlhf-test").is_dir():
            return c
    raise FileNotFoundError(
        "shared data folder not found (looked in: " + ", ".join(str(c) for c in candidates)
        + "); set PLURALIGN_DATA_DIR to the folder holding hh-rlhf-test/, arena-llama3-battles/, oasst2-subset/"
    )


@dataclass(frozen=True)
class HHPair:
    """One HH-RLHF test pair split into the shared dialogue prefix and the two final assistant turns."""

    pair_key: str  # "<subset>:<line>"
    subset: str
    prompt: str
    chosen: str
    rejected: str


def _split_dialogue(text: str) -> tuple[str, str] | None:
    idx = text.rfind("\n\nAssistant:")
    if idx < 0:
        return None
    return text[:idx].strip(), text[idx + len("\n\nAssistant:"):].strip()


@lru_cache(maxsize=8)
def load_hh_pairs(data_dir: str | None = None, subsets: tuple[str, ...] = HH_SUBSETS) -> tuple[HHPair, ...]:
    """HH-RLHF pairs whose two dialogues share the prefix and differ in a non-empty final assistant turn."""
    root = Path(data_dir) if data_dir else shared_data_dir()
    out: list[HHPair] = []
    for subset in subsets:
        path = root / "hh-rlhf-test" / subset / "test.jsonl.gz"
        if not path.exists():
            raise FileNotFoundError(f"{path}: HH-RLHF test split not found")
        for lineno, obj in iter_jsonl_objects(path, "HH-RLHF"):
            try:
                a, b = _split_dialogue(obj["chosen"]), _split_dialogue(obj["rejected"])
            except (KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: fields 'chosen'/'rejected': not an HH-RLHF record ({e})") from None
            if a is None or b is None or a[0] != b[0] or not a[1] or not b[1] or a[1] == b[1]:
                continue
            out.append(HHPair(f"{subset}:{lineno}", subset, a[0], a[1], b[1]))
    return tuple(out)


@lru_cache(maxsize=1)
def hh_label_index() -> frozenset[tuple[str, str, str]]:
    """``(subset kind, prompt, human-preferred final turn)`` for every HH-RLHF test pair (see ``features.hh_label``)."""
    return frozenset(("harmless" if p.subset == "harmless-base" else "helpful", p.prompt, p.chosen)
                     for p in load_hh_pairs())


@dataclass(frozen=True)
class RealItem:
    """A real (prompt, assistant response) pair and where it came from."""

    item_id: str
    source: str
    prompt: str
    response: str


@lru_cache(maxsize=4)
def load_real_responses(data_dir: str | None = None, max_words: int = 400) -> tuple[RealItem, ...]:
    """English single-turn-ish (prompt, response) items from HH-RLHF, Chatbot Arena and OASST2, deduplicated."""
    root = Path(data_dir) if data_dir else shared_data_dir()
    items: list[RealItem] = []
    seen: set[tuple[str, str]] = set()

    def add(item_id: str, source: str, prompt: str, response: str) -> None:
        prompt, response = prompt.strip(), response.strip()
        if not prompt or not response or len(response.split()) > max_words or (prompt, response) in seen:
            return
        seen.add((prompt, response))
        items.append(RealItem(item_id, source, prompt, response))

    for p in load_hh_pairs(str(root)):
        add(f"hh:{p.pair_key}:c", "hh-rlhf", p.prompt, p.chosen)
        add(f"hh:{p.pair_key}:r", "hh-rlhf", p.prompt, p.rejected)
    arena = root / "arena-llama3-battles"
    csv.field_size_limit(1 << 26)
    for path in sorted(arena.glob("*.csv")):
        with open(path, encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                for col in ("llama-3-70b-instruct", "not_llama"):
                    add(f"arena:{path.stem}:{i}:{col}", "arena", row.get("question") or "", row.get(col) or "")
    oasst = root / "oasst2-subset" / "oasst2_filtered.jsonl"
    if oasst.exists():
        for lineno, obj in iter_jsonl_objects(oasst, "oasst"):
            if not isinstance(obj.get("prompt"), dict):
                raise ValueError(f"{oasst}:{lineno}: field 'prompt': not an oasst message tree")
            _walk_oasst(obj["prompt"], add)
    return tuple(items)


def _walk_oasst(msg: dict, add) -> None:
    for reply in msg.get("replies") or []:
        if msg.get("role") == "prompter" and reply.get("role") == "assistant" and msg.get("lang") == "en":
            # "oasst:<prompt message>:<reply>", so the prompt id (the topic) is everything before the last colon
            add(f"oasst:{msg['message_id']}:{reply['message_id']}", "oasst", msg.get("text") or "",
                reply.get("text") or "")
        _walk_oasst(reply, add)
