"""Any per-user ratings table -> within-user preference pairs (MovieLens, per-annotator rating sets, surveys).

Source: a CSV (or JSONL / JSON / parquet) file with one rating per row: a user column, an item column, the item's
text and a numeric rating (names set by ``user_col``, ``item_col``, ``text_col``, ``rating_col``). Columns listed in
``profile_cols`` describe the user (age, occupation, ...) and become the user's ``profile`` ("age: 25; occupation:
writer") and ``demographics``; ``time_col`` (optional, seconds since the epoch or ISO dates) feeds the ``chrono``
split.

Pairs: each user's rated items are shuffled (seeded per user) and paired off, so every item is in at most one of
the user's pairs (a context pair then never reveals half of a target's label); a pair is (higher-rated item,
lower-rated item); items with equal ratings are never paired (ties carry no preference) and an item left without a
partner is dropped. ``pair_id`` = ``"{user}:{chosen item}>{rejected item}"``; ``meta`` holds the two item ids and
the rating gap (the ratings bench holds out items through them). The prompt is ``prompt``, the same for every pair.

Every bad row is reported (file, line, column): a missing column, an empty user / item / text, a rating that is not
a number, a user who rated the same item twice, an item whose text differs between rows, a user whose profile
columns change between rows.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from pluralign.data.converters.source_rows import IssueLog, build_options, iter_rows
from pluralign.data.schema import PreferencePair, UserRecord

SUMMARY = ("per-user ratings table (CSV/JSONL: user, item, item text, rating[, profile columns]) -> within-user "
           "pairs from rating differences, ties dropped")


@dataclass
class Options:
    user_col: str = field(default="user_id", metadata={"help": "column holding the user id"})
    item_col: str = field(default="item_id", metadata={"help": "column holding the item id"})
    text_col: str = field(default="text", metadata={"help": "column holding the item's text (what a model reads)"})
    rating_col: str = field(default="rating", metadata={"help": "column holding the numeric rating"})
    profile_cols: str = field(default="", metadata={
        "help": "comma-separated columns describing the user; they become the profile and demographics"})
    time_col: str = field(default="", metadata={
        "help": "optional column with the rating's time (seconds since the epoch or an ISO date), for chrono"})
    prompt: str = field(default="Which of these two would you like more?", metadata={
        "help": "the prompt every pair answers"})
    min_pairs: int = field(default=1, metadata={"help": "skip users with fewer pairs than this"})
    max_pairs: int = field(default=0, metadata={"help": "keep at most this many pairs per user (0: all)"})
    seed: int = field(default=0, metadata={"help": "seed of the per-user shuffle that pairs the items"})


@dataclass
class _Rating:
    item: str
    rating: float
    time: float | None
    line: int


def _columns(o: Options) -> list[str]:
    return [c.strip() for c in o.profile_cols.split(",") if c.strip()]


def _parse_time(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return datetime.fromisoformat(raw.strip()).timestamp()


def _read(path: Path, o: Options, log: IssueLog):
    """(user -> ratings, item -> text, user -> profile values, user -> first line), every bad row logged."""
    profile_cols = _columns(o)
    required = [o.user_col, o.item_col, o.text_col, o.rating_col, *profile_cols] + ([o.time_col] if o.time_col else [])
    ratings: dict[str, dict[str, _Rating]] = {}
    texts: dict[str, tuple[str, int]] = {}
    profiles: dict[str, tuple[dict[str, str], int]] = {}
    header_checked = False
    for row in iter_rows(path, log):
        if not header_checked:
            header_checked = True
            missing = [c for c in required if c not in row.data]
            if missing:
                log.add(row.path, 1 if row.path.lower().endswith(".csv") else row.line, missing[0],
                        f"column(s) {', '.join(missing)} not found (columns: {', '.join(map(str, row.data))}); "
                        "set them with --user-col/--item-col/--text-col/--rating-col/--profile-cols")
                return {}, {}, {}
        cells = {c: ("" if row.data.get(c) is None else str(row.data.get(c))) for c in required}
        bad = False
        for col in (o.user_col, o.item_col, o.text_col):
            if not cells[col].strip():
                log.add(row.path, row.line, col, "empty value: every row needs a user, an item and the item's text")
                bad = True
        try:
            value = float(cells[o.rating_col])
            if not math.isfinite(value):
                raise ValueError
        except ValueError:
            log.add(row.path, row.line, o.rating_col, f"expected a number, got {cells[o.rating_col]!r}")
            bad = True
        when = None
        if o.time_col and cells[o.time_col].strip():
            try:
                when = _parse_time(cells[o.time_col])
            except ValueError:
                log.add(row.path, row.line, o.time_col,
                        f"expected seconds since the epoch or an ISO date, got {cells[o.time_col]!r}")
                bad = True
        if bad:
            continue
        user, item, text = cells[o.user_col].strip(), cells[o.item_col].strip(), cells[o.text_col]
        seen_text = texts.setdefault(item, (text, row.line))
        if seen_text[0] != text:
            log.add(row.path, row.line, o.text_col,
                    f"item {item!r} has a different text than on line {seen_text[1]}: one text per item")
            continue
        mine = ratings.setdefault(user, {})
        if item in mine:
            log.add(row.path, row.line, o.item_col,
                    f"user {user!r} rated item {item!r} twice (first on line {mine[item].line})")
            continue
        mine[item] = _Rating(item, value, when, row.line)
        values = {c: cells[c].strip() for c in profile_cols}
        seen_profile = profiles.setdefault(user, (values, row.line))
        if seen_profile[0] != values:
            col = next(c for c in profile_cols if seen_profile[0][c] != values[c])
            log.add(row.path, row.line, col, f"user {user!r} has {values[col]!r} here but "
                    f"{seen_profile[0][col]!r} on line {seen_profile[1]}: profile columns must not change per row")
    return ratings, texts, profiles


def _pairs(user: str, rated: dict[str, _Rating], texts: dict, o: Options) -> list[PreferencePair]:
    """Disjoint pairs of differently rated items (seeded shuffle, then each item paired with the next one that has
    a different rating)."""
    rng = random.Random(f"{o.seed}:{user}")
    items = sorted(rated)
    rng.shuffle(items)
    pending: list[str] = []
    pairs: list[PreferencePair] = []
    for item in items:
        partner = next((p for p in pending if rated[p].rating != rated[item].rating), None)
        if partner is None:
            pending.append(item)
            continue
        pending.remove(partner)
        hi, lo = sorted((item, partner), key=lambda i: -rated[i].rating)
        stamps = [t for t in (rated[hi].time, rated[lo].time) if t is not None]
        pairs.append(PreferencePair(
            pair_id=f"{user}:{hi}>{lo}", prompt=o.prompt, chosen=texts[hi][0], rejected=texts[lo][0],
            timestamp=max(stamps) if stamps else None,
            meta={"chosen_item": hi, "rejected_item": lo, "rating_gap": rated[hi].rating - rated[lo].rating}))
    pairs.sort(key=lambda p: (p.timestamp or 0.0, p.pair_id))
    return pairs[: o.max_pairs] if o.max_pairs > 0 else pairs


def convert(source: Path, **opts) -> list[UserRecord]:
    """One user per distinct user id with at least ``min_pairs`` pairs; raises ``FeedbackFileError`` listing every
    bad row."""
    o = build_options(Options, opts)
    for name in ("user_col", "item_col", "text_col", "rating_col"):
        if not getattr(o, name).strip():
            raise ValueError(f"option {name}: a column name is required")
    log = IssueLog()
    source = Path(source)
    if not source.exists():
        log.add(source, 0, "", "does not exist")
    elif source.is_dir():
        log.add(source, 0, "", "expected a ratings file (CSV, JSONL, JSON or parquet), got a folder")
    if log.issues:
        log.raise_if_any()
    ratings, texts, profiles = _read(source, o, log)
    log.raise_if_any()
    if not ratings:
        log.add(source, 0, "", "no ratings in this file")
        log.raise_if_any()
    users: list[UserRecord] = []
    for user in sorted(ratings, key=lambda u: (len(u), u)):
        pairs = _pairs(user, ratings[user], texts, o)
        if len(pairs) < max(1, o.min_pairs):
            continue
        values = profiles.get(user, ({}, 0))[0]
        profile = "; ".join(f"{c}: {v}" for c, v in values.items() if v) or None
        try:
            users.append(UserRecord(user_id=user, profile=profile, demographics={c: v for c, v in values.items() if v},
                                    source="ratings", pairs=pairs, meta={"rated_items": len(ratings[user])}))
        except ValidationError as e:
            log.add_validation(source, ratings[user][next(iter(ratings[user]))].line, e, prefix=f"user {user}: ")
    log.raise_if_any()
    return users
