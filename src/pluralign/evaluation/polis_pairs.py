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

Few-shot curve (:func:`add_context_vote_curve`, ``pluralign bench polis --context-votes 2,4,8,16,32``): how accuracy
on new users grows with the number of votes they have given. For each new user, ``targets_per_user`` pairs are
fixed first; the user's other pairs, in a fixed (seeded) order, are the pool their context is drawn from, and at k
context votes the context is the first k/2 pairs of that pool (each pair is one agree and one disagree vote), so
contexts are nested as k grows and the targets stay the same. A user whose pool holds fewer than k votes is left out
of that k and counted (records ``users_left_out`` / ``users_scored``). Eval splits are named ``new-users@k=K``; every
record of such a split carries ``context_votes`` = K. Methods are trained once, on the usual training contexts: the
curve asks how a trained model uses more evidence about a new user, as PAL's and LoRe's few-shot curves do. The
curve's new users are the ``new-users`` split's plus participants of the training conversations whom the bench's
per-conversation cap left out of training (:func:`load_polis_split`), so that enough people with many votes exist.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pluralign.data.converters import polis
from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.data.splits import Example, SplitResult, make_splits
from pluralign.evaluation.results import Result


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
    seed = kw.get("seed", 0)
    return polis_pair_users(polis.convert(Path(polis_dir)), seed=seed,
                            **{k: v for k, v in kw.items() if k != "seed"})


# --- few-shot curve ----------------------------------------------------------------------------------------------

CURVE_SPLIT = "new-users@k={k}"
_CURVE_RE = re.compile(r"^new-users@k=(\d+)$")


def parse_context_votes(text: str) -> list[int]:
    """``"2,4,8,16,32"`` → ``[2, 4, 8, 16, 32]``: distinct positive even numbers (a context pair is two votes)."""
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError("--context-votes must be comma-separated even numbers, e.g. 2,4,8,16,32; "
                         f"got {text!r}") from None
    bad = [k for k in ks if k <= 0 or k % 2]
    if not ks or bad or len(set(ks)) != len(ks):
        raise ValueError(f"--context-votes must list distinct positive even numbers (each context pair is one agree "
                         f"and one disagree vote), e.g. 2,4,8,16,32; got {text!r}")
    return sorted(ks)


def context_votes_of(split: str) -> int | None:
    """K for a curve split name ``new-users@k=K``, else None."""
    m = _CURVE_RE.match(split)
    return int(m.group(1)) if m else None


def add_context_vote_curve(split: SplitResult, users: Sequence[UserRecord], ks: Sequence[int], *,
                           targets_per_user: int = 4, label: str = "") -> dict[int, dict[str, int]]:
    """Add ``new-users@k=K`` eval splits for the new users of ``split`` (see the module docstring); ``users`` hold
    every pair of each user (not capped). Returns per k the users scored and left out (also added to the notes)."""
    by_id = {u.user_id: u for u in users}
    counts: dict[int, dict[str, int]] = {}
    for k in ks:
        examples: list[Example] = []
        scored = left_out = 0
        for uid in split.new_user_ids:
            u = by_id.get(uid)
            if u is None:
                continue
            targets, pool = u.pairs[:targets_per_user], u.pairs[targets_per_user:]
            if len(targets) < targets_per_user or 2 * len(pool) < k:
                left_out += 1
                continue
            ctx = u.model_copy(update={"pairs": sorted(pool[: k // 2], key=lambda p: (p.timestamp or 0.0, p.pair_id)),
                                       "targets": [], "reactions": []})
            examples += [Example(uid, ctx, t, CURVE_SPLIT.format(k=k)) for t in targets]
            scored += 1
        split.eval[CURVE_SPLIT.format(k=k)] = examples
        counts[k] = {"users_scored": scored, "users_left_out": left_out}
    split.notes.append(
        f"Few-shot curve{label} (new users, " + ", ".join(f"k={k}: {c['users_scored']} users scored, {c['users_left_out']} "
                                                  "left out" for k, c in counts.items())
        + f"): each new user's {targets_per_user} target pairs are fixed, the context is the first k/2 pairs (k votes) "
          "of their other pairs; users with fewer than k such votes (or fewer target pairs) are left out of that k.")
    return counts


def curve_counts(split: SplitResult) -> dict[int, dict[str, int]]:
    """Per k of the split's curve: new users scored (they have examples) and left out (the other new users)."""
    out = {}
    for name, examples in split.eval.items():
        k = context_votes_of(name)
        if k is not None:
            scored = len({e.user_id for e in examples})
            out[k] = {"users_scored": scored, "users_left_out": len(split.new_user_ids) - scored}
    return dict(sorted(out.items()))


def curve_count_records(benchmark: str, counts: dict[int, dict[str, int]]) -> list[Any]:
    """``users_scored`` / ``users_left_out`` records (method ``data``) per k."""
    return [Result(benchmark, "data", CURVE_SPLIT.format(k=k), metric, float(c[metric]),
                   c["users_scored"] + c["users_left_out"], context_votes=k)
            for k, c in counts.items() for metric in ("users_scored", "users_left_out")]


def tag_context_votes(results: Sequence[Any]) -> None:
    """Set ``context_votes`` on every record of a curve split (in place)."""
    for r in results:
        k = context_votes_of(r.split)
        if k is not None:
            r.context_votes = k


def plot_context_curve(results: Sequence[Any], path: str | Path, title: str = "Polis new users") -> Path | None:
    """Accuracy against context votes, one line per method with its 95% CI band (the across-seed records when there
    are several seeds). Returns the PNG path, or None when no curve record exists."""
    # matplotlib loads with the first plot: it is slow to import, and the backend is set before pyplot loads
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in results if r.metric == "accuracy" and r.context_votes is not None]
    pooled = [r for r in recs if r.seeds is not None]
    recs = pooled or recs
    if not recs:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in dict.fromkeys(r.method for r in recs):
        mine = sorted((r for r in recs if r.method == method), key=lambda r: r.context_votes)
        ks = [r.context_votes for r in mine]
        ax.plot(ks, [100 * r.value for r in mine], marker="o", label=method)
        if all(r.ci_low is not None for r in mine):
            ax.fill_between(ks, [100 * r.ci_low for r in mine], [100 * r.ci_high for r in mine], alpha=0.12)
    ax.set_xscale("log", base=2)
    ks = sorted({r.context_votes for r in recs})
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("context votes per new user (k)")
    ax.set_ylabel("pairwise accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def load_polis_split(polis_dir: str | Path, *, seed: int, quick: bool, context_votes: Sequence[int] | None = None,
                     curve_users: int = 600) -> tuple[SplitResult, dict[int, dict[str, int]]]:
    """The Polis bench split (before validation is carved and the truth hidden), and with ``context_votes`` the
    few-shot curve splits and their per-k user counts. Training and the usual splits see at most 8 (quick) / 12
    pairs per user and at most 16 / 80 users per conversation either way. The curve scores the new users and, so
    that enough people with many votes are scored, participants of the training conversations whom that per-
    conversation cap left out (never trained on either; up to ``curve_users`` in all, a seeded sample); they join
    ``split.new_user_ids``."""
    max_pairs, cap = (8, 16) if quick else (12, 80)
    records = polis.convert(Path(polis_dir))
    users = polis_pair_users(records, seed=seed, min_pairs=4, max_pairs=None if context_votes else max_pairs,
                             max_users_per_conversation=cap)
    if not users:
        raise ValueError(f"{polis_dir}: no Polis participant has enough agree and disagree votes for pairs")
    capped = [u.model_copy(update={"pairs": u.pairs[:max_pairs]}) if len(u.pairs) > max_pairs else u for u in users]
    split = polis_splits(capped, seed=seed, context_size=3 if quick else 4)
    if not context_votes:
        return split, {}
    taken = {u.user_id for u in users}
    train_convs = {conversation_of(u) for u in capped} - set(split.new_topics)
    extra = [u for u in polis_pair_users(records, seed=seed, min_pairs=4)
             if u.user_id not in taken and conversation_of(u) in train_convs]
    room = max(0, curve_users - len(split.new_user_ids))
    if len(extra) > room:
        extra = sorted(random.Random(f"curve:{seed}").sample(extra, room), key=lambda u: u.user_id)
    split.new_user_ids = sorted({*split.new_user_ids, *(u.user_id for u in extra)})
    counts = add_context_vote_curve(split, [*users, *extra], context_votes, label=f", seed {seed}")
    return split, counts
