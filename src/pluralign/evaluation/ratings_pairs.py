"""The ratings benchmark's splits: per-user pairs from any ratings table (``pluralign data convert ratings``).

- ``seen-users`` / ``new-users`` / ``chrono``: as in :func:`pluralign.data.splits.make_splits`.
- ``new-items``: a seeded share of the items is held out. Every pair that involves a held-out item leaves training
  and every context; the training users' such pairs are scored from the same contexts (the model has never seen
  those items, and neither has the user's context). New users' pairs with held-out items are dropped (they would
  mix two shifts), and counted in :class:`RatingsSplitInfo`.

A pair's items come from its ``meta`` (``chosen_item`` / ``rejected_item``, as the ratings converter writes them);
a file without them has no ``new-items`` split, and says so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pluralign.data.io import read_users
from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.data.splits import (
    Example,
    SplitResult,
    carve_validation,
    check_no_leakage,
    hide_truth,
    make_splits,
)


@dataclass
class RatingsSplitInfo:
    held_items: list[str]
    new_items_pairs: int
    dropped_pairs: int  # pairs with a held-out item that no split scores: new users' pairs, users with no context


def pair_items(pair: PreferencePair) -> tuple[str, str] | None:
    a, b = pair.meta.get("chosen_item"), pair.meta.get("rejected_item")
    return (str(a), str(b)) if a is not None and b is not None else None


def ratings_splits(users: Sequence[UserRecord], *, seed: int = 0, new_item_frac: float = 0.15,
                   **kw) -> tuple[SplitResult, RatingsSplitInfo]:
    """make_splits (``kw``: ``context_size``, ``seen_eval_frac``, ...) on the pairs without held-out items, plus the
    ``new-items`` split. Raises if the file has no item ids in its pairs' meta while ``new_item_frac`` > 0."""
    pairs = [p for u in users for p in u.pairs]
    if not pairs:
        raise ValueError("ratings bench: the users have no pairs")
    with_items = [pair_items(p) for p in pairs]
    if new_item_frac > 0 and any(x is None for x in with_items):
        raise ValueError("ratings bench: pairs need meta.chosen_item and meta.rejected_item (as written by "
                         "'pluralign data convert ratings') for the new-items split")
    items = sorted({i for x in with_items if x for i in x})
    k = int(math.floor(new_item_frac * len(items) + 0.5))
    held = set(random.Random(f"new-items:{seed}").sample(items, k)) if 0 < k < len(items) else set()

    def touches_held(p: PreferencePair) -> bool:
        x = pair_items(p)
        return bool(x and (x[0] in held or x[1] in held))

    kept_users, held_pairs = [], {}
    for u in users:
        keep = [p for p in u.pairs if not touches_held(p)]
        held_pairs[u.user_id] = [p for p in u.pairs if touches_held(p)]
        if keep:
            kept_users.append(u.model_copy(update={"pairs": keep}))
    split = make_splits(kept_users, seed=seed, new_topic_frac=0.0, **kw)
    split.eval.pop("new-topics", None)
    contexts: dict[str, UserRecord] = {}
    for e in split.train + [x for v in split.eval.values() for x in v]:
        contexts.setdefault(e.user_id, e.context)
    new_users = set(split.new_user_ids)
    new_items: list[Example] = []
    dropped = 0
    for uid in sorted(held_pairs):
        if uid in contexts and uid not in new_users:
            new_items += [Example(uid, contexts[uid], p, "new-items") for p in held_pairs[uid]]
        else:
            dropped += len(held_pairs[uid])
    split.eval["new-items"] = new_items
    split.new_topics = []
    for e in split.train:
        if touches_held(e.target) or any(touches_held(p) for p in e.context.pairs):
            raise AssertionError(f"a held-out item reached training ({e.target.pair_id})")
    check_no_leakage(split)
    return split, RatingsSplitInfo(sorted(held), len(new_items), dropped)


def load_ratings_split(path: str | Path, *, seed: int, quick: bool, validation_frac: float = 0.15) -> SplitResult:
    """The ratings bench split from a feedback file written by ``pluralign data convert ratings``: at most 60 users
    (quick) / 600 users with at most 8 / 16 pairs each (seeded), 3 / 4 context pairs, validation users carved out of
    training (and out of ``new-items``), nothing hidden-truth-like left in what methods see."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: ratings feedback file does not exist")
    if p.suffix.lower() in (".csv", ".tsv", ".parquet"):
        raise ValueError(f"{p}: bench ratings reads a feedback file; convert the table first: pluralign data convert "
                         f"ratings {p} --user-col U --item-col I --text-col T --rating-col R --out ratings.jsonl")
    users = [u for u in read_users(p) if u.pairs]
    if len(users) < 5:
        raise ValueError(f"{p}: {len(users)} user(s) with pairs; the ratings bench needs at least 5")
    rng = random.Random(f"ratings:{seed}")
    max_users, max_pairs = (60, 8) if quick else (600, 16)
    if len(users) > max_users:
        users = sorted(rng.sample(users, max_users), key=lambda u: u.user_id)
    users = [u.model_copy(update={"pairs": u.pairs[:max_pairs]}) for u in users]
    split, info = ratings_splits(users, seed=seed, context_size=3 if quick else 4, seen_eval_frac=0.3)
    split = carve_validation(split, frac=validation_frac, seed=seed)
    held_users = set(split.validation_user_ids)
    split.eval["new-items"] = [e for e in split.eval["new-items"] if e.user_id not in held_users]
    split = hide_truth(split)
    split.notes.append(f"new-items: {len(info.held_items)} of the items held out of training and every context; "
                       f"{len(split.eval['new-items'])} pairs of training users scored; {info.dropped_pairs} pairs "
                       "with held-out items dropped (new users' pairs, or users with no other pair).")
    return split
