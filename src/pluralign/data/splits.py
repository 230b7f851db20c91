"""Splits that match how personalisation is judged.

- ``seen-users``: held-out pairs of users whose other pairs were trained on.
- ``new-users``: users never trained on, known only through their context.
- ``new-topics``: whole topics (prompts / conversations) held out from training for every user.
- ``chrono``: training users' pairs at or after time t, with contexts built only from before t.
- ``validation`` (:func:`carve_validation`): a share of the *training* users, taken out of training entirely, whose
  pairs are what every tuning choice reads (early stopping, budgets, thresholds), so the test splits are scored
  once and never steer a choice.

:func:`hide_truth` removes what a simulator knows and a model must not (the persona, ground-truth ``meta``, true
probabilities) from everything methods see, and keeps it in :attr:`SplitResult.truth` for ``oracle`` and the
scorers.

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
class GroundTruth:
    """The hidden side of a split, read only by ``oracle`` and the scorers, never handed to a method's inputs.

    ``persona`` and ``user_meta`` are keyed by user id; ``p_chosen`` (the true probability of the recorded label)
    and ``pair_meta`` by ``(user_id, pair_id)``; ``p_true`` (a reaction's true probability) by
    ``(user_id, reaction_id)``."""

    persona: dict[str, str] = field(default_factory=dict)
    user_meta: dict[str, dict] = field(default_factory=dict)
    p_chosen: dict[tuple[str, str], float] = field(default_factory=dict)
    pair_meta: dict[tuple[str, str], dict] = field(default_factory=dict)
    p_true: dict[tuple[str, str], float] = field(default_factory=dict)

    def persona_of(self, user_id: str) -> str | None:
        return self.persona.get(user_id)

    def p_chosen_of(self, example: Example) -> float | None:
        return self.p_chosen.get((example.user_id, example.target.pair_id))


@dataclass
class SplitResult:
    train: list[Example]
    eval: dict[str, list[Example]]
    train_user_ids: list[str] = field(default_factory=list)
    new_user_ids: list[str] = field(default_factory=list)
    new_topics: list[str] = field(default_factory=list)
    chrono_t: float | None = None
    validation: list[Example] = field(default_factory=list)
    validation_user_ids: list[str] = field(default_factory=list)
    truth: GroundTruth | None = None
    notes: list[str] = field(default_factory=list)  # what a report on this split must say about its data

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation),
                **{k: len(v) for k, v in self.eval.items()}}

    def examples(self) -> list[Example]:
        """Every example a method may be handed: training, validation and every eval split."""
        return [*self.train, *self.validation, *(e for v in self.eval.values() for e in v)]


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


def _blind_pair(pair: PreferencePair) -> PreferencePair:
    return pair.model_copy(update={"p_chosen": None, "meta": {}}) if pair.p_chosen is not None or pair.meta else pair


def hide_truth(split: SplitResult) -> SplitResult:
    """A copy of ``split`` whose examples carry no hidden truth, with that truth moved to ``split.truth``.

    Contexts lose ``persona``, the user's ``meta``, every pair's ``p_chosen`` and ``meta`` and every reaction's
    ``p_true`` and ``meta``; targets lose ``p_chosen`` and ``meta``. What a person could have written or done
    (pairs, conversations, reactions, profile, demographics, a real group label) stays. A self-description that a
    simulator wrote *from* the persona is the suite's business (see :mod:`pluralign.sim.suites`)."""
    truth = split.truth or GroundTruth()
    blinded: dict[int, UserRecord] = {}

    def blind_context(ctx: UserRecord) -> UserRecord:
        key = id(ctx)
        if key not in blinded:
            uid = ctx.user_id
            if ctx.persona:
                truth.persona[uid] = ctx.persona
            if ctx.meta:
                truth.user_meta[uid] = dict(ctx.meta)
            for p in (*ctx.pairs, *ctx.targets):
                if p.p_chosen is not None:
                    truth.p_chosen[(uid, p.pair_id)] = p.p_chosen
                if p.meta:
                    truth.pair_meta[(uid, p.pair_id)] = dict(p.meta)
            for r in ctx.reactions:
                if r.p_true is not None:
                    truth.p_true[(uid, r.reaction_id)] = r.p_true
            blinded[key] = ctx.model_copy(update={
                "persona": None, "meta": {},
                "pairs": [_blind_pair(p) for p in ctx.pairs], "targets": [_blind_pair(p) for p in ctx.targets],
                "reactions": [r.model_copy(update={"p_true": None, "meta": {}}) for r in ctx.reactions]})
        return blinded[key]

    def blind(examples: list[Example]) -> list[Example]:
        out = []
        for e in examples:
            if e.target.p_chosen is not None:
                truth.p_chosen[(e.user_id, e.target.pair_id)] = e.target.p_chosen
            if e.target.meta:
                truth.pair_meta[(e.user_id, e.target.pair_id)] = dict(e.target.meta)
            out.append(Example(e.user_id, blind_context(e.context), _blind_pair(e.target), e.split))
        return out

    return SplitResult(train=blind(split.train), eval={k: blind(v) for k, v in split.eval.items()},
                       train_user_ids=list(split.train_user_ids), new_user_ids=list(split.new_user_ids),
                       new_topics=list(split.new_topics), chrono_t=split.chrono_t,
                       validation=blind(split.validation), validation_user_ids=list(split.validation_user_ids),
                       truth=truth, notes=list(split.notes))


def carve_validation(split: SplitResult, *, frac: float = 0.15, seed: int = 0, min_users: int = 2,
                     min_train_users: int = 4) -> SplitResult:
    """Move ``frac`` of the training users (at least ``min_users``) out of training into ``split.validation``.

    A validation user's training and seen-users pairs become validation examples (split ``"validation"``, scored
    from the same visible context), and their new-topics / chrono pairs are dropped, so no test split holds a user
    that tuning looked at. Users are drawn by a seeded hash; with fewer than ``min_train_users`` training users left
    the split is returned unchanged (``validation`` empty)."""
    users = sorted(set(split.train_user_ids) | {e.user_id for e in split.train})
    k = max(min_users, int(math.floor(frac * len(users) + 0.5))) if frac > 0 else 0
    if k == 0 or len(users) - k < min_train_users:
        return split
    held = set(random.Random(f"validation:{seed}").sample(users, k))

    def keep(examples: list[Example]) -> list[Example]:
        return [e for e in examples if e.user_id not in held]

    validation = [Example(e.user_id, e.context, e.target, "validation")
                  for e in (*split.train, *split.eval.get("seen-users", [])) if e.user_id in held]
    ev = {name: keep(v) if name in ("seen-users", "new-topics", "chrono") else list(v)
          for name, v in split.eval.items()}
    return SplitResult(train=keep(split.train), eval=ev,
                       train_user_ids=[u for u in split.train_user_ids if u not in held],
                       new_user_ids=list(split.new_user_ids), new_topics=list(split.new_topics),
                       chrono_t=split.chrono_t, validation=[*split.validation, *validation],
                       validation_user_ids=sorted({*split.validation_user_ids, *held}), truth=split.truth,
                       notes=list(split.notes))
