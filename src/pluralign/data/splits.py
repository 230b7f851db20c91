"""Splits that match how personalisation is judged.

- ``seen-users``: held-out pairs of users whose other pairs were trained on.
- ``new-users``: users never trained on, known only through their context.
- ``new-topics``: whole topics (prompts / conversations) held out from training for every user.
- ``chrono``: training users' pairs at or after time t, with contexts built only from before t.

Every example pairs a user's *context* (what a model may see) with one *target* pair. A user's context is built once,
from pairs that are neither targets nor on held-out topics nor after t, so a target can never leak into the same
user's context (checked again, by content, in :func:`check_no_leakage`).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pluralign.data.schema import PreferencePair, UserRecord

SPLIT_NAMES = ("seen-users", "new-users", "new-topics", "chrono")


@dataclass
class Example:
    """One scored item: the user's visible history and the pair to predict."""

    user_id: str
    context: UserRecord
    target: PreferencePair
    split: str  # "train" or one of SPLIT_NAMES


@dataclass
class SplitResult:
    train: list[Example]
    eval: dict[str, list[Example]]
    train_user_ids: list[str] = field(default_factory=list)
    new_user_ids: list[str] = field(default_factory=list)
    new_topics: list[str] = field(default_factory=list)
    chrono_t: float | None = None

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), **{k: len(v) for k, v in self.eval.items()}}


def topic_of(pair: PreferencePair) -> str:
    """The unit held out by ``new-topics``: the pair's topic, else its prompt."""
    if pair.topic:
        return pair.topic
    return "prompt:" + hashlib.sha1(pair.prompt.encode("utf-8")).hexdigest()[:12]


def _content_key(pair: PreferencePair) -> tuple[str, frozenset[str]]:
    return (pair.prompt, frozenset((pair.chosen, pair.rejected)))


def _user_rng(seed: int, user_id: str) -> random.Random:
    h = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def _pick_fraction(items: Sequence[str], frac: float, rng: random.Random, *, min_keep: int) -> list[str]:
    """Pick round(frac * n) items, but only if at least ``min_keep`` remain."""
    items = sorted(items)
    k = int(math.floor(frac * len(items) + 0.5))
    if frac <= 0 or len(items) - k < min_keep or k == 0:
        return []
    return sorted(rng.sample(items, k))


def make_splits(
    users: Iterable[UserRecord],
    *,
    seed: int = 0,
    new_user_frac: float = 0.2,
    new_user_ids: Sequence[str] | None = None,
    new_topic_frac: float = 0.15,
    seen_eval_frac: float = 0.5,
    context_size: int | None = None,
    max_targets_per_user: int | None = None,
    chrono_quantile: float | None = 0.8,
) -> SplitResult:
    """Split users' pairs into training examples and the four evaluation splits. Deterministic given ``seed``.

    ``context_size``: number of pairs in each user's context (default: half of the user's usable pairs, at least 1).
    Explicit ``UserRecord.targets`` are always used as targets (never as context). ``new_user_ids`` fixes the new users
    (e.g. a suite's shifted users) instead of drawing ``new_user_frac`` of them. ``chrono_quantile=None`` disables
    the chronological split; it is also empty when fewer than half the pairs have timestamps.
    """
    users = sorted(users, key=lambda u: u.user_id)
    rng = random.Random(seed)
    all_pairs = [p for u in users for p in (*u.pairs, *u.targets)]

    topics = sorted({topic_of(p) for p in all_pairs})
    held_topics = set(_pick_fraction(topics, new_topic_frac, rng, min_keep=2)) if len(topics) >= 5 else set()

    ids = [u.user_id for u in users]
    if new_user_ids is not None:
        unknown = set(new_user_ids) - set(ids)
        if unknown:
            raise ValueError(f"new_user_ids not among the users: {sorted(unknown)[:5]}")
        new_users = set(new_user_ids)
    else:
        new_users = set(_pick_fraction(ids, new_user_frac, rng, min_keep=2)) if len(ids) >= 5 else set()

    stamps = sorted(p.timestamp for p in all_pairs if p.timestamp is not None)
    chrono_t = None
    if chrono_quantile is not None and stamps and len(stamps) * 2 >= len(all_pairs):
        chrono_t = stamps[min(len(stamps) - 1, int(chrono_quantile * len(stamps)))]

    result = SplitResult(train=[], eval={s: [] for s in SPLIT_NAMES}, new_user_ids=sorted(new_users),
                         new_topics=sorted(held_topics), chrono_t=chrono_t)

    for u in users:
        urng = _user_rng(seed, u.user_id)
        is_new = u.user_id in new_users
        explicit = list(u.targets)
        on_held_topic = [p for p in u.pairs if topic_of(p) in held_topics]
        rest = [p for p in u.pairs if topic_of(p) not in held_topics]
        late: list[PreferencePair] = []
        if chrono_t is not None and not is_new:
            late = [p for p in rest if p.timestamp is not None and p.timestamp >= chrono_t]
            rest = [p for p in rest if not (p.timestamp is not None and p.timestamp >= chrono_t)]
        urng.shuffle(rest)
        n_ctx = context_size if context_size is not None else max(1, len(rest) // 2)
        if not explicit and len(rest) <= n_ctx:
            n_ctx = max(0, len(rest) - 1)  # keep at least one target when the user has any pair
        context_pairs, targets = rest[:n_ctx], rest[n_ctx:] + explicit
        if max_targets_per_user is not None:
            targets = targets[:max_targets_per_user]

        # No target may appear in its own user's context, by id or by content.
        forbidden_ids = {p.pair_id for p in (*targets, *on_held_topic, *late)}
        forbidden_content = {_content_key(p) for p in (*targets, *on_held_topic, *late)}
        context_pairs = [p for p in context_pairs if p.pair_id not in forbidden_ids
                         and _content_key(p) not in forbidden_content]
        context_pairs.sort(key=lambda p: (p.timestamp or 0.0, p.pair_id))

        def visible(ts: float | None, is_new: bool = is_new) -> bool:
            return chrono_t is None or is_new or ts is None or ts < chrono_t

        context = u.model_copy(update={
            "pairs": context_pairs,
            "targets": [],
            "reactions": [r for r in u.reactions if visible(r.timestamp)
                          and (r.topic is None or r.topic not in held_topics)],
            "conversations": [c for c in u.conversations if visible(c.timestamp)],
        })

        if is_new:
            result.eval["new-users"] += [Example(u.user_id, context, t, "new-users") for t in targets]
            continue
        result.train_user_ids.append(u.user_id)
        n_seen = int(math.floor(seen_eval_frac * len(targets) + 0.5)) if len(targets) > 1 else 0
        for i, t in enumerate(targets):
            if i < n_seen:
                result.eval["seen-users"].append(Example(u.user_id, context, t, "seen-users"))
            else:
                result.train.append(Example(u.user_id, context, t, "train"))
        result.eval["new-topics"] += [Example(u.user_id, context, t, "new-topics") for t in on_held_topic]
        result.eval["chrono"] += [Example(u.user_id, context, t, "chrono") for t in late]

    check_no_leakage(result)
    return result


def check_no_leakage(result: SplitResult) -> None:
    """Raise if any example's target (by id or content) is in that example's context, or if held-out data leaks."""
    all_examples = result.train + [e for v in result.eval.values() for e in v]
    for ex in all_examples:
        ctx_ids = {p.pair_id for p in ex.context.pairs}
        ctx_content = {_content_key(p) for p in ex.context.pairs}
        if ex.target.pair_id in ctx_ids or _content_key(ex.target) in ctx_content:
            raise AssertionError(f"target {ex.target.pair_id} of user {ex.user_id} leaks into its context")
    held = set(result.new_topics)
    for ex in result.train:
        if ex.user_id in result.new_user_ids:
            raise AssertionError(f"new user {ex.user_id} appears in training")
        if topic_of(ex.target) in held:
            raise AssertionError(f"held-out topic {topic_of(ex.target)} appears in training")
        if result.chrono_t is not None and ex.target.timestamp is not None and ex.target.timestamp >= result.chrono_t:
            raise AssertionError("a pair after the chrono cut-off appears in training")
