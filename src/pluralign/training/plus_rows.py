"""PLUS training rows: one user context with the pairs its summary is judged on, and how each step splits a
context's pairs between the summarizer's reward and the RM's training."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from pluralign.data.schema import PreferencePair, UserRecord


@dataclass
class PlusRow:
    """One user context with the pairs its summary is judged on (reward) and the RM trains on."""

    user_id: str
    context: UserRecord
    pairs: list[PreferencePair]


def rows_from_examples(examples: Sequence) -> list[PlusRow]:
    """One row per distinct user context (a user's training examples share it) with all of that user's targets."""
    rows: dict[tuple[str, str], PlusRow] = {}
    for e in examples:
        key = (e.user_id, e.context.model_dump_json())
        if key not in rows:
            rows[key] = PlusRow(e.user_id, e.context, [])
        rows[key].pairs.append(e.target)
    return list(rows.values())


def split_pairs(row: PlusRow, n_reward: int, *, seed: int, step: int) -> tuple[PlusRow, list[PreferencePair]]:
    """This step's reward pairs (a row holding them) and RM training pairs of one context: a fresh shuffle per
    (seed, step, user) puts ``n_reward`` pairs on the reward side (at most all but one) and the rest on the RM side,
    so the summarizer is never rewarded on a pair the RM is fitting in the same step, and every pair serves both
    roles across steps. A context with a single pair gives it to the reward and trains the RM on nothing."""
    order = list(range(len(row.pairs)))
    random.Random(f"{seed}:{step}:{row.user_id}").shuffle(order)
    k = 1 if len(order) <= 1 else min(n_reward, len(order) - 1)
    reward = PlusRow(row.user_id, row.context, [row.pairs[i] for i in order[:k]])
    return reward, [row.pairs[i] for i in order[k:]]


def rm_rows(pairs: Sequence[PreferencePair], summaries: Sequence[str | None]) -> list[dict]:
    """In-memory rows for :class:`pluralign.training.rm_updater.RMUpdater`."""
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "summary": z or None}
            for p, z in zip(pairs, summaries, strict=True)]
