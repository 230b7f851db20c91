"""Policy optimisation against the multi-objective reward: the reward itself (:func:`build_reward`) and best-of-N
selection over candidate pools.

Best-of-N is CGPO's CRRAFT step without the fine-tune: among N candidates for a prompt keep the best *feasible*
one (passing every judge). Training a language model with RL on the same reward (TRL GRPO with LoRA) lives in
:mod:`pluralign.training.grpo_policy`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pluralign.objectives.judges import EmojiJudge, LengthJudge, RepetitionJudge, SignoffJudge, ThresholdJudge
from pluralign.objectives.rewards import MultiObjectiveReward, Objective, RewardBreakdown, Scorer
from pluralign.training.policy_config import PolicyConfig

log = logging.getLogger(__name__)


def build_reward(cfg: PolicyConfig, *, love: Scorer | None, helpfulness: Scorer | None, safety: Scorer | None,
                 reference: tuple[Sequence[str], Sequence[str]] | None = None) -> MultiObjectiveReward:
    """The weighted objectives and judges named in ``cfg``; normalised on ``reference`` (prompts, responses)."""
    objectives = [Objective(name, fn, w) for name, fn, w in
                  (("helpfulness", helpfulness, cfg.w_help), ("safety", safety, cfg.w_safety),
                   ("love", love, cfg.w_love)) if fn is not None and w != 0]
    if not objectives:
        raise ValueError("no objective: give at least one scorer with a non-zero weight")
    judges = []
    for name in cfg.judges:
        if name == "signoff":
            judges.append(SignoffJudge())
        elif name == "emoji":
            judges.append(EmojiJudge(cfg.max_emojis))
        elif name == "length":
            judges.append(LengthJudge(cfg.min_words, cfg.max_words))
        elif name == "repetition":
            judges.append(RepetitionJudge(cfg.max_repetition))
        elif name == "safety":
            if safety is None:
                raise ValueError("the safety judge needs a safety scorer")
            if reference is None:
                raise ValueError("the safety judge needs reference responses to set its threshold")
            ref = np.asarray(safety(list(reference[0]), list(reference[1])), dtype=float)
            judges.append(ThresholdJudge(safety, float(np.quantile(ref, cfg.safety_quantile)), "safety"))
        else:
            raise ValueError(f"unknown judge {name!r} (known: signoff, emoji, length, repetition, safety)")
    reward = MultiObjectiveReward(objectives, judges, fail_reward=cfg.fail_reward)
    if reference is not None:
        reward.fit_normalisation(*reference)
    return reward


@dataclass
class Selection:
    """Best-of-N result: the chosen index and response per prompt and the reward breakdown of the choices."""

    index: list[int]
    responses: list[str]
    breakdown: RewardBreakdown
    feasible_share: float  # share of prompts with at least one candidate passing every judge


def best_of_n(prompts: Sequence[str], candidates: Sequence[Sequence[str]], reward: MultiObjectiveReward,
              n: int | None = None) -> Selection:
    """Pick, per prompt, the highest-reward feasible candidate among the first ``n``.

    Where no candidate passes every judge, the one failing the fewest judges (then the highest reward) is kept,
    so every prompt gets an answer; ``feasible_share`` reports how often that happened.
    """
    if len(prompts) != len(candidates):
        raise ValueError(f"{len(prompts)} prompts but {len(candidates)} candidate lists")
    pools = [list(c[:n] if n else c) for c in candidates]
    if any(not p for p in pools):
        raise ValueError("every prompt needs at least one candidate")
    flat_p = [p for p, pool in zip(prompts, pools, strict=True) for _ in pool]
    flat_r = [r for pool in pools for r in pool]
    br = reward.score(flat_p, flat_r)
    total = sum(br.weighted.values()) if br.weighted else np.zeros(len(flat_r))
    n_pass = sum(v.astype(int) for v in br.judges.values()) if br.judges else np.zeros(len(flat_r), dtype=int)
    chosen, flat_idx, feasible = [], [], 0
    start = 0
    for pool in pools:
        sl = slice(start, start + len(pool))
        ok = br.passed[sl]
        feasible += bool(ok.any())
        key = np.where(ok, br.combined[sl], -np.inf) if ok.any() else n_pass[sl] * 1e6 + total[sl]
        j = int(np.argmax(key))
        chosen.append(j)
        flat_idx.append(start + j)
        start += len(pool)
    ix = np.asarray(flat_idx)
    picked = RewardBreakdown({k: v[ix] for k, v in br.raw.items()}, {k: v[ix] for k, v in br.normalised.items()},
                             {k: v[ix] for k, v in br.weighted.items()}, {k: v[ix] for k, v in br.judges.items()},
                             br.passed[ix], br.combined[ix])
    return Selection(chosen, [flat_r[i] for i in flat_idx], picked, feasible / len(pools))
