"""Binary love-reaction logs (RLUF) and helpers for simulated users to react to a policy's responses.

A reaction population mixes honest users (persona utility over style and values; some personas are susceptible to
the affectionate sign-off cue) with adversaries (``random``, ``inverter``, ``spammer``, see ``users.py``). One
intercept is calibrated so the honest users' mean P(love) on real responses equals ``base_rate``; inverters get
their own intercept calibrated to the same rate, random users react at ``3 * base_rate`` whatever the content, and
spammers love ~90% of what they see inside three two-minute bursts (a fifth of their items fall there) and almost
nothing outside.

Responses are real assistant turns (HH-RLHF, Chatbot Arena, OASST2) and rule-based variants of them: with the
sign-off cue (``signoff_share`` of items), with emojis, shortened, formal or warm rewrites.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from tqdm.auto import tqdm

from pluralign.data.corpora import RealItem, load_real_responses
from pluralign.data.schema import Reaction, UserRecord
from pluralign.sim.features import SEGMENTS, helpfulness, last_user_turn, segment
from pluralign.sim.personas import Persona, make_persona
from pluralign.sim.responses import (
    add_emojis,
    add_signoff,
    formalize,
    shorten,
    warm_up,
)
from pluralign.sim.users import SimulatedUser, calibrate_intercept

ADVERSARY_KINDS = ("random", "inverter", "spammer")
DAY = 86400.0
T0 = 1_700_000_000.0
SPAM_IN_BURST = 0.2  # share of a spammer's items that fall inside its bursts
SPAM_BURST_S = 120.0  # a burst is two minutes of rapid-fire loves
# How often each segment comes up for a user whose favourite segment is another one (the favourite gets +1.0).
SEGMENT_MIX = {"role-play": 0.15, "relationship-support": 0.15, "casual-chat": 0.15, "coding": 0.15,
               "knowledge": 0.40}


@dataclass(frozen=True)
class Shown:
    """One response shown to a user: what, when, and which rule-based variant it is."""

    prompt: str
    response: str
    item_id: str
    variant: str
    timestamp: float


@lru_cache(maxsize=1)
def _items_by_segment() -> dict[str, list[RealItem]]:
    """The shared data's real items grouped by use-case segment (computed once per process)."""
    out: dict[str, list[RealItem]] = {s: [] for s in SEGMENTS}
    for it in load_real_responses():
        out[segment(it.prompt)].append(it)
    missing = [s for s, v in out.items() if not v]
    if missing:
        raise ValueError(f"no real responses for segment(s) {missing}: the shared data looks incomplete")
    return out


def _variant(it: RealItem, rng: random.Random, signoff_share: float) -> tuple[str, str]:
    r = rng.random()
    if r < signoff_share:
        return add_signoff(it.response, rng), "signoff"
    r = rng.random()
    if r < 0.10:
        return add_emojis(it.response, rng, n=3), "emoji"
    if r < 0.20:
        return shorten(it.response, 2), "short"
    if r < 0.27:
        return formalize(it.response), "formal"
    if r < 0.34:
        return warm_up(it.response, rng), "warm"
    return it.response, "original"


def _sample_shown(by_seg: dict[str, list[RealItem]], rng: random.Random, n: int, fav: str, signoff_share: float,
                  t_start: float, days: float) -> list[Shown]:
    segs = list(SEGMENT_MIX)
    weights = [SEGMENT_MIX[s] + (1.0 if s == fav else 0.0) for s in segs]
    times = sorted(t_start + rng.uniform(0, days * DAY) for _ in range(n))
    out = []
    for t in times:
        seg = rng.choices(segs, weights)[0]
        it = rng.choice(by_seg[seg])
        text, variant = _variant(it, rng, signoff_share)
        out.append(Shown(it.prompt, text, it.item_id, variant, t))
    return out


def _random_persona(rng: random.Random, susceptible_frac: float) -> Persona:
    register = rng.choice(("formal", "warm"))
    # The sign-off cue works on most warm users and few formal ones; the rest find it cheesy.
    p_susc = min(1.0, 1.6 * susceptible_frac) if register == "warm" else 0.4 * susceptible_frac
    susceptible = rng.random() < p_susc
    return make_persona(
        None,
        length=rng.choice(("concise", "detailed")),
        emoji=rng.choice(("emoji-lover", "emoji-hater")),
        register=register,
        values=rng.choice(("helpfulness-first", "harmlessness-first")),
        signoff_love=2.0 if susceptible else -0.5,
    )


def _make_users(n_users: int, rng: random.Random, *, base_rate: float, adversarial_frac: float,
                adversary_kinds: Sequence[str], susceptible_frac: float, days: float,
                love_scale: float) -> list[SimulatedUser]:
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    if not 0.0 < base_rate < 1.0:
        raise ValueError(f"base_rate must be in (0, 1), got {base_rate}")
    if not 0.0 <= adversarial_frac <= 1.0:
        raise ValueError(f"adversarial_frac must be in [0, 1], got {adversarial_frac}")
    bad = [k for k in adversary_kinds if k not in ADVERSARY_KINDS]
    if bad or (adversarial_frac > 0 and not adversary_kinds):
        raise ValueError(f"adversary_kinds must be a non-empty subset of {ADVERSARY_KINDS}, got {list(adversary_kinds)}")
    n_adv = round(n_users * adversarial_frac)
    kinds = ["normal"] * n_users
    for k, slot in enumerate(sorted(rng.sample(range(n_users), n_adv))):
        kinds[slot] = adversary_kinds[k % len(adversary_kinds)]
    users: list[SimulatedUser] = []
    for i, kind in enumerate(kinds):
        u = SimulatedUser(f"rx-{i:04d}", _random_persona(rng, susceptible_frac), kind=kind, love_scale=love_scale)
        if kind == "random":
            u.random_rate = min(0.5, 3 * base_rate)
        if kind == "spammer":
            # Three short bursts; inside them the spammer loves ~everything it sees.
            u.bursts = [(s, s + SPAM_BURST_S) for s in sorted(T0 + rng.uniform(0, days * DAY) for _ in range(3))]
            u.random_rate = u.burst_rate * SPAM_IN_BURST  # time-averaged rate of a log like ours
        users.append(u)
    return users


def _calibrate(users: Sequence[SimulatedUser], shown: dict[str, list[Shown]], base_rate: float) -> None:
    """Centre each user's utility on what they see, then fit one intercept per utility-driven kind so that the
    mean P(love) over those items equals ``base_rate`` exactly."""
    offsets: dict[str, list[float]] = {"normal": [], "inverter": []}
    for u in users:
        if u.kind not in offsets:
            continue
        items = shown[u.user_id]
        u.utility_center = float(np.mean([u.utility(s.prompt, s.response) for s in items]))
        offsets[u.kind].extend(u.love_offset(s.prompt, s.response) for s in items)
    for kind, xs in offsets.items():
        if xs:
            b = calibrate_intercept(xs, base_rate)
            for u in users:
                if u.kind == kind:
                    u.love_intercept = b


def _shown_for(users: Sequence[SimulatedUser], rng: random.Random, per_user: int, signoff_share: float,
               days: float, exclude_prompts: frozenset[str] = frozenset()) -> dict[str, list[Shown]]:
    by_seg = _items_by_segment()
    if exclude_prompts:  # held-out prompts (matched on the last user turn, whitespace collapsed) never appear
        by_seg = {s: [it for it in v if " ".join(last_user_turn(it.prompt).split()) not in exclude_prompts]
                  for s, v in by_seg.items()}
        if not all(by_seg.values()):
            raise ValueError(f"exclude_prompts leaves segment(s) {[s for s, v in by_seg.items() if not v]} empty")
    out = {}
    for u in users:
        shown = _sample_shown(by_seg, rng, per_user, rng.choice(list(SEGMENT_MIX)), signoff_share, T0, days)
        if u.kind == "spammer":  # a share of a spammer's activity falls inside its bursts
            shown = sorted((Shown(s.prompt, s.response, s.item_id, s.variant, rng.uniform(*rng.choice(u.bursts)))
                            if rng.random() < SPAM_IN_BURST else s for s in shown), key=lambda s: s.timestamp)
        out[u.user_id] = shown
    return out


def reaction_population(
    n_users: int,
    *,
    base_rate: float = 0.02,
    adversarial_frac: float = 0.1,
    adversary_kinds: Sequence[str] = ADVERSARY_KINDS,
    susceptible_frac: float = 0.4,
    signoff_share: float = 0.1,
    seed: int = 0,
    days: float = 28.0,
    calibration_per_user: int = 30,
    love_scale: float = 0.4,
) -> list[SimulatedUser]:
    """Build and calibrate ``n_users`` simulated reactors (for A/B tests: see :func:`react`, :func:`ab_test`).

    The intercepts are fitted on ``calibration_per_user`` real responses per user, drawn like a reaction log's with
    the same ``signoff_share``, so the honest users' mean P(love) on such traffic is ``base_rate``.
    ``love_scale`` multiplies the utility in the love logit: larger means reactions depend more on content (a higher
    oracle AUROC), smaller means more noise.
    """
    rng = random.Random(seed)
    users = _make_users(n_users, rng, base_rate=base_rate, adversarial_frac=adversarial_frac,
                        adversary_kinds=adversary_kinds, susceptible_frac=susceptible_frac, days=days,
                        love_scale=love_scale)
    _calibrate(users, _shown_for(users, rng, calibration_per_user, signoff_share, days), base_rate)
    return users


def simulate_reaction_log(
    n_users: int = 200,
    base_rate: float = 0.02,
    adversarial_frac: float = 0.1,
    adversary_kinds: Sequence[str] = ADVERSARY_KINDS,
    per_user: int = 40,
    seed: int = 0,
    signoff_share: float = 0.1,
    susceptible_frac: float = 0.4,
    days: float = 28.0,
    love_scale: float = 0.4,
    return_users: bool = False,
    exclude_prompts: frozenset[str] = frozenset(),
) -> list[UserRecord] | tuple[list[UserRecord], dict[str, SimulatedUser]]:
    """A log of love reactions: one :class:`UserRecord` per user with ``per_user`` reactions (value 1.0 = love,
    0.0 = no reaction), ``p_true``, timestamps over ``days`` days, ``meta.segment`` per reaction and ``meta.kind`` per
    user. The honest users' mean ``p_true`` equals ``base_rate`` (calibrated on this very log). With
    ``return_users`` also returns the simulators (user_id -> :class:`SimulatedUser`). Items whose last user turn
    is in ``exclude_prompts`` are never shown (prompts held out for evaluating policies on traffic the log lacks).
    """
    if per_user < 1:
        raise ValueError(f"per_user must be >= 1, got {per_user}")
    rng = random.Random(seed)
    users = _make_users(n_users, rng, base_rate=base_rate, adversarial_frac=adversarial_frac,
                        adversary_kinds=adversary_kinds, susceptible_frac=susceptible_frac, days=days,
                        love_scale=love_scale)
    shown = _shown_for(users, rng, per_user, signoff_share, days, frozenset(exclude_prompts))
    _calibrate(users, shown, base_rate)
    records = []
    for u in tqdm(users, desc="reaction log", disable=n_users * per_user < 4000, leave=False):
        reactions = []
        for k, s in enumerate(shown[u.user_id]):
            p = u.p_love(s.prompt, s.response, s.timestamp)
            reactions.append(Reaction(
                reaction_id=f"{u.user_id}-r{k:03d}", prompt=s.prompt, response=s.response, kind="love",
                value=1.0 if rng.random() < p else 0.0, item_id=s.item_id, topic=s.item_id.rsplit(":", 1)[0],
                timestamp=s.timestamp, p_true=round(p, 6),
                meta={"segment": segment(s.prompt), "variant": s.variant}))
        records.append(UserRecord(user_id=u.user_id, persona=u.persona.text, source="sim:reactions",
                                  reactions=reactions,
                                  meta={"kind": u.kind, "signoff_love": u.persona.signoff_love}))
    if return_users:
        return records, {u.user_id: u for u in users}
    return records


# --- reacting to a policy's responses (A/B tests) ------------------------------------------------------------------

@dataclass
class ReactionBatch:
    """Reactions of simulated users to a batch of responses (item ``i`` shown to ``user_ids[i]``)."""

    user_ids: list[str]
    segments: list[str]
    p_love: np.ndarray
    loves: np.ndarray

    def love_rate(self) -> float:
        return float(self.loves.mean()) if len(self.loves) else float("nan")

    def by_segment(self) -> dict[str, float]:
        """Expected love rate (mean true P(love)) per segment."""
        segs = np.asarray(self.segments)
        return {s: float(self.p_love[segs == s].mean()) for s in SEGMENTS if (segs == s).any()}


def react(users: Sequence[SimulatedUser], prompts: Sequence[str], responses: Sequence[str], *, seed: int = 0,
          timestamps: Sequence[float] | None = None, uniforms: np.ndarray | None = None) -> ReactionBatch:
    """Show ``responses[i]`` (to ``prompts[i]``) to user ``users[i % len(users)]`` and sample their reactions.

    ``uniforms`` (one per item) lets two arms of an A/B test share random numbers (see :func:`ab_test`).
    """
    if len(prompts) != len(responses):
        raise ValueError(f"prompts ({len(prompts)}) and responses ({len(responses)}) differ in length")
    if not users:
        raise ValueError("react needs at least one simulated user")
    n = len(prompts)
    rs = np.random.default_rng(seed).random(n) if uniforms is None else np.asarray(uniforms)
    ps = np.array([users[i % len(users)].p_love(prompts[i], responses[i],
                                                None if timestamps is None else timestamps[i]) for i in range(n)])
    return ReactionBatch([users[i % len(users)].user_id for i in range(n)], [segment(p) for p in prompts], ps,
                         (rs < ps).astype(float))


@dataclass
class ABOutcome:
    """Love rates of two policies on the same users and prompts (common random numbers)."""

    a: ReactionBatch
    b: ReactionBatch
    segment_change: dict[str, float] = field(default_factory=dict)

    @property
    def relative_change(self) -> float:
        """Relative change of the expected love rate, B vs A (e.g. 0.1 = +10%)."""
        pa, pb = float(self.a.p_love.mean()), float(self.b.p_love.mean())
        return pb / pa - 1.0 if pa > 0 else float("nan")


def ab_test(users: Sequence[SimulatedUser], prompts: Sequence[str], responses_a: Sequence[str],
            responses_b: Sequence[str], *, seed: int = 0) -> ABOutcome:
    """Simulated A/B test: the same users see policy A's and policy B's answer to each prompt."""
    u = np.random.default_rng(seed).random(len(prompts))
    a = react(users, prompts, responses_a, uniforms=u)
    b = react(users, prompts, responses_b, uniforms=u)
    sa, sb = a.by_segment(), b.by_segment()
    change = {s: sb[s] / sa[s] - 1.0 for s in sa if s in sb and sa[s] > 0}
    return ABOutcome(a, b, change)


def signoff_ab(n_users: int = 200, n_items: int = 4000, *, base_rate: float = 0.02, susceptible_frac: float = 0.4,
               seed: int = 0) -> dict:
    """The RLUF reward-hacking check on simulated users: policy A = real responses, policy B = the same responses
    with an affectionate sign-off. Returns love rates (overall and per-segment change) and mean ground-truth
    helpfulness of both arms; the cue should raise love (most in companionship segments) and lower helpfulness.
    """
    users = reaction_population(n_users, base_rate=base_rate, adversarial_frac=0.0, susceptible_frac=susceptible_frac,
                                seed=seed)
    rng = random.Random(seed)
    pool = load_real_responses()
    items = rng.sample(pool, min(n_items, len(pool)))
    prompts = [i.prompt for i in items]
    a = [i.response for i in items]
    b = [add_signoff(r, rng) for r in a]
    out = ab_test(users, prompts, a, b, seed=seed)
    return {
        "love_a": float(out.a.p_love.mean()), "love_b": float(out.b.p_love.mean()),
        "relative_change": out.relative_change,
        "segment_change": {k: round(v, 4) for k, v in sorted(out.segment_change.items())},
        "helpfulness_a": float(np.mean([helpfulness(p, r) for p, r in zip(prompts, a, strict=True)])),
        "helpfulness_b": float(np.mean([helpfulness(p, r) for p, r in zip(prompts, b, strict=True)])),
    }
