"""A reaction log as columns: one row per reaction of one kind (``love``, value 1/0), with who reacted, when, the
true probability where the simulator knows it, the user's kind (honest or an adversary) and a summary; and the
chronological train/test split P[Love] is evaluated on."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pluralign.data.schema import UserRecord

HONEST = "normal"


@dataclass
class ReactionTable:
    """Reactions flattened into columns (one row per reaction)."""

    user_ids: list[str]
    prompts: list[str]
    responses: list[str]
    labels: np.ndarray
    timestamps: list[float | None]
    p_true: np.ndarray  # NaN where unknown (real data)
    user_kinds: list[str]  # "normal" unless the record marks an adversary (simulated logs)
    segments: list[str | None]
    summaries: list[str | None]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: Sequence[int] | np.ndarray) -> ReactionTable:
        ix = np.asarray(idx, dtype=int)
        pick = [*ix.tolist()]
        return ReactionTable([self.user_ids[i] for i in pick], [self.prompts[i] for i in pick],
                             [self.responses[i] for i in pick], self.labels[ix], [self.timestamps[i] for i in pick],
                             self.p_true[ix], [self.user_kinds[i] for i in pick], [self.segments[i] for i in pick],
                             [self.summaries[i] for i in pick])


def user_summary(u: UserRecord) -> str | None:
    """A summary stored with the record (``meta.summary``, e.g. exported by the service), else the user's own
    self-description. Never the simulator's hidden ``persona``: that is ground truth, which only oracles may read."""
    s = u.meta.get("summary")
    return str(s) if s else u.profile


def reaction_table(users: Sequence[UserRecord], kind: str = "love", source: str = "<records>") -> ReactionTable:
    """Flatten reactions of ``kind``; a value other than 0/1 is an error naming the record line and field."""
    cols: dict[str, list] = {k: [] for k in ("u", "p", "r", "y", "t", "pt", "k", "s", "z")}
    for line, u in enumerate(users, start=1):
        ukind = str(u.meta.get("kind", HONEST))
        summ = user_summary(u)
        for j, rx in enumerate(u.reactions):
            if rx.kind != kind:
                continue
            if rx.value not in (0.0, 1.0):
                raise ValueError(f"{source}:{line}: field 'reactions.{j}.value': {kind} reactions must be 0 or 1, "
                                 f"got {rx.value} (user {u.user_id!r}, reaction {rx.reaction_id!r})")
            cols["u"].append(u.user_id)
            cols["p"].append(rx.prompt)
            cols["r"].append(rx.response)
            cols["y"].append(rx.value)
            cols["t"].append(rx.timestamp)
            cols["pt"].append(math.nan if rx.p_true is None else rx.p_true)
            cols["k"].append(str(rx.meta.get("kind", ukind)))
            seg = rx.meta.get("segment")
            cols["s"].append(None if seg is None else str(seg))
            cols["z"].append(summ)
    if not cols["y"]:
        raise ValueError(f"{source}: no reactions of kind {kind!r} found (field 'reactions.kind')")
    return ReactionTable(cols["u"], cols["p"], cols["r"], np.asarray(cols["y"], dtype=float), cols["t"],
                         np.asarray(cols["pt"], dtype=float), cols["k"], cols["s"], cols["z"])


def with_summaries(table: ReactionTable, summaries: Sequence[str | None]) -> ReactionTable:
    """The same rows with other summaries."""
    if len(summaries) != len(table):
        raise ValueError(f"summaries ({len(summaries)}) and reactions ({len(table)}) differ in length")
    return dataclasses.replace(table, summaries=list(summaries))


def chrono_split(table: ReactionTable, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train = earliest reactions, test = the latest ``test_fraction`` (ties and missing timestamps keep row order)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    t = np.array([math.inf if x is None else x for x in table.timestamps], dtype=float)
    order = np.argsort(t, kind="stable")
    n_test = max(1, int(round(len(order) * test_fraction)))
    return np.sort(order[:-n_test]), np.sort(order[-n_test:])
