"""Summaries for a personalised P[Love], written by a summarizer from each user's own *earlier* reactions, so that
no reaction is ever predicted from a summary that contains it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.summarizers import load_summarizer
from pluralign.training.reaction_table import ReactionTable, with_summaries


def history_context(user_id: str, table: ReactionTable, rows: Sequence[int], negatives_per_love: int = 1,
                    max_loves: int = 4) -> UserRecord:
    """What a summarizer reads of one user: their own reactions in ``rows`` as preference pairs (each of their latest
    ``max_loves`` loved responses over up to ``negatives_per_love`` responses they saw nearest in time and did not
    love). A user without a love in ``rows`` has an empty history (and gets an empty summary)."""
    rows = sorted(rows, key=lambda i: (table.timestamps[i] is None, table.timestamps[i] or 0.0, i))
    loved = [i for i in rows if table.labels[i] == 1.0][-max_loves:] if max_loves > 0 else []
    others = [i for i in rows if table.labels[i] == 0.0]
    pairs = []
    for i in loved:
        ti = table.timestamps[i] or 0.0
        near = sorted(others, key=lambda j: (abs((table.timestamps[j] or 0.0) - ti), j))[:negatives_per_love]
        for j in near:
            pairs.append(PreferencePair(pair_id=f"{user_id}:{i}>{j}", prompt=table.prompts[i],
                                        chosen=table.responses[i], rejected=table.responses[j],
                                        timestamp=table.timestamps[i]))
    return UserRecord(user_id=user_id, pairs=pairs)


def make_summarizer(spec: str, seed: int = 0):
    """The summarizer named by ``LoveConfig.summarizer`` (``"stored"`` gives None: use the records' own text)."""
    if spec == "stored":
        return None
    # The summarizer backends load inside the branches: they bring transformers and peft, which linear P[Love]
    # training does not otherwise need.
    if spec == "cpu":
        from pluralign.summarizers.cpu import CpuSummarizer

        return CpuSummarizer(seed=seed)
    if spec.startswith("hf:"):
        from pluralign.summarizers.hf import HFSummarizer

        return HFSummarizer.from_pretrained(spec[3:], max_new_tokens=64, seed=seed)

    return load_summarizer(spec)


def attach_summaries(table: ReactionTable, train_idx: np.ndarray, summarizer, *, blocks: int = 4,
                     negatives_per_love: int = 1, max_loves: int = 4) -> ReactionTable:
    """Summaries written by ``summarizer`` from each user's *earlier* reactions, never from the one being predicted.

    The training reactions are cut into ``blocks`` time blocks (equal counts); a training reaction in block b gets
    the summary of the user's reactions in blocks < b (block 0: none), every other row (the test split) the
    summary of all the user's training reactions. A model trained on summaries that contain the very reaction it
    predicts would learn to look its answer up, and fail on the test split where it cannot.
    """
    if summarizer is None:  # "stored": keep the text the records carry
        return table
    train_idx = np.sort(np.asarray(train_idx, dtype=int))
    t = np.array([math.inf if table.timestamps[i] is None else table.timestamps[i] for i in train_idx])
    order = train_idx[np.argsort(t, kind="stable")]
    block_of = np.full(len(table), blocks, dtype=int)  # rows outside training see every training block
    for b, part in enumerate(np.array_split(order, blocks)):
        block_of[part] = b
    by_user: dict[str, list[int]] = {}
    for i in train_idx:
        by_user.setdefault(table.user_ids[i], []).append(int(i))
    needed = sorted({(table.user_ids[i], int(block_of[i])) for i in range(len(table)) if block_of[i] > 0})
    contexts = [history_context(u, table, [i for i in by_user.get(u, []) if block_of[i] < b], negatives_per_love,
                                max_loves) for u, b in needed]
    text: dict[tuple[str, int], str] = {}
    has_history = [k for k, c in zip(needed, contexts, strict=True) if c.pairs]
    todo = [c for c in contexts if c.pairs]
    if hasattr(summarizer, "precompute"):
        summarizer.precompute(todo)
    step = 64
    for i in tqdm(range(0, len(todo), step), desc=f"summaries of {len(todo)} histories", disable=len(todo) < 2 * step):
        for k, z in zip(has_history[i:i + step], summarizer.summarize(todo[i:i + step]), strict=True):
            text[k] = z
    return with_summaries(table, [text.get((u, int(block_of[i])), "") or None
                                  for i, u in enumerate(table.user_ids)])
