"""Per-user preference pairs from Polis votes, and the Polis benchmark splits.

A pair is (a statement the user agreed with, one they disagreed with), both from the same conversation; the prompt
is the conversation's topic question. Each vote is used in at most one pair per user, so a user's context pairs and
target pairs never share a vote (otherwise the context would reveal half of a target's label). Pass votes are not
used. The votes themselves are dropped from the records (``reactions=[]``): the splitter keeps reactions in the
context, and they include the target votes.

Splits (participant ids are per conversation, so a held-out conversation is necessarily held out with its users):
- ``seen-users`` / ``new-users``: as in :func:`pluralign.data.splits.make_splits`, within the training conversations;
- ``new-topics``: every user of the held-out conversation(s), scored from their own in-conversation context only,
  by a model that never saw that conversation's statements.

Presentation order: ``meta["a_is_chosen"]`` is a balanced random bit for consumers that show a pair as A/B; margin
based methods score each side separately, so for them order cannot matter.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.data.splits import Example, SplitResult, make_splits


def user_pairs(user: UserRecord, *, max_pairs: int | None = None, seed: int = 0) -> list[PreferencePair]:
    """Disjoint agree-vs-disagree pairs for one user, within each conversation (seeded per user)."""
    rng = random.Random(f"{seed}:{user.user_id}")
    by_topic: dict[str, tuple[list, list]] = {}
    for r in user.reactions:
        if r.kind != "vote" or r.value == 0:
            continue
        agree, disagree = by_topic.setdefault(r.topic or "", ([], []))
        (agree if r.value > 0 else disagree).append(r)
    pairs: list[PreferencePair] = []
    for topic in sorted(by_topic):
        agree, disagree = by_topic[topic]
        agree, disagree = sorted(agree, key=lambda r: r.reaction_id), sorted(disagree, key=lambda r: r.reaction_id)
        rng.shuffle(agree)
        rng.shuffle(disagree)
        for a, d in zip(agree, disagree, strict=False):
            stamps = [t for t in (a.timestamp, d.timestamp) if t is not None]
            pairs.append(PreferencePair(
                pair_id=f"{user.user_id}:{a.item_id}>{d.item_id}", prompt=a.prompt, chosen=a.response,
                rejected=d.response, topic=topic or None, timestamp=max(stamps) if stamps else None,
                meta={"a_is_chosen": rng.random() < 0.5, "source": "polis-votes"}))
    rng.shuffle(pairs)
    return pairs[:max_pairs] if max_pairs is not None else pairs


def polis_pair_users(users: Sequence[UserRecord], *, min_pairs: int = 3, max_pairs: int | None = None,
                     max_users_per_conversation: int | None = None, seed: int = 0) -> list[UserRecord]:
    """Users with at least ``min_pairs`` pairs, their votes turned into pairs (and dropped as reactions)."""
    rng = random.Random(seed)
    by_conv: dict[str, list[UserRecord]] = {}
    for u in users:
        pairs = user_pairs(u, max_pairs=max_pairs, seed=seed)
        if len(pairs) >= min_pairs:
            conv = str(u.meta.get("conversation") or (pairs[0].topic or ""))
            by_conv.setdefault(conv, []).append(u.model_copy(update={"pairs": pairs, "reactions": []}))
    out: list[UserRecord] = []
    for conv in sorted(by_conv):
        us = by_conv[conv]
        if max_users_per_conversation is not None and len(us) > max_users_per_conversation:
            us = sorted(rng.sample(us, max_users_per_conversation), key=lambda u: u.user_id)
        out.extend(us)
    return out


def conversation_of(user: UserRecord) -> str:
    return str(user.meta.get("conversation") or (user.pairs[0].topic if user.pairs else ""))


def polis_splits(users: Sequence[UserRecord], *, seed: int = 0, new_user_frac: float = 0.2,
                 held_conversations: int = 1, context_size: int = 4,
                 max_targets_per_user: int | None = None, seen_eval_frac: float = 0.3) -> SplitResult:
    """Seen-users / new-users within training conversations, new-topics = whole held-out conversation(s)."""
    convs = sorted({conversation_of(u) for u in users})
    if len(convs) < 2:
        held: list[str] = []
    else:
        held = sorted(random.Random(seed).sample(convs, min(held_conversations, len(convs) - 1)))
    rng = random.Random(seed + 1)
    held_users = [u.user_id for u in users if conversation_of(u) in held]
    rest = sorted(u.user_id for u in users if conversation_of(u) not in held)
    new_users = sorted(rng.sample(rest, int(round(new_user_frac * len(rest))))) if len(rest) >= 5 else []
    split = make_splits(users, seed=seed, new_user_ids=held_users + new_users, new_topic_frac=0.0,
                        context_size=context_size, max_targets_per_user=max_targets_per_user,
                        seen_eval_frac=seen_eval_frac, chrono_quantile=None)
    held_set = set(held_users)
    moved = [Example(e.user_id, e.context, e.target, "new-topics") for e in split.eval["new-users"]
             if e.user_id in held_set]
    split.eval["new-users"] = [e for e in split.eval["new-users"] if e.user_id not in held_set]
    split.eval["new-topics"] = moved
    split.new_user_ids = new_users
    split.new_topics = held
    return split


def load_polis_pair_users(polis_dir: str | Path, **kw) -> list[UserRecord]:
    """Convert a directory of Polis open-data conversations (via the polis converter) and build pair users."""
    from pluralign.data.converters import polis

    seed = kw.get("seed", 0)
    return polis_pair_users(polis.convert(Path(polis_dir)), seed=seed,
                            **{k: v for k, v in kw.items() if k != "seed"})
