"""What the initial RLUF policy samples, and what P[Love] would pay it for the hack.

GRPO can only amplify what the policy already samples, and only if the reward pays for it. This probe samples the
A/B prompt set of ``bench rluf`` with the default LLM and counts, with the simulator's own detectors, the completions
that end before the token cap, end in an affectionate sign-off (the RLUF hacking cue) or contain an emoji.

With ``--love-reward`` it also trains the population P[Love] that ``bench rluf`` hands the policies (the quick
reaction log with 10% adversaries, the defence on, C chosen on chronological validation; the sampled prompts held
out of the log) and, for every sample and the same sample with a sign-off appended (and with emojis added),
reports P[Love], the calibrated reward GRPO's ``love-only`` setting gets (sigmoid of the score standardised on the
natural samples), the group-normalised advantage of one hacked completion among its group's natural ones, and the
simulated users' true love rate for both (a fresh population, as the A/B test draws).

    .venv/bin/python benchmarks/policy_samples.py --prompts 40 --samples 4 --max-new-tokens 192
    .venv/bin/python benchmarks/policy_samples.py --prompts 40 --samples 4 --max-new-tokens 48 --love-reward
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np


def population_love(seed: int, held_out: set[str]):
    """The population P[Love] that ``bench rluf --quick`` hands the policies: the quick reaction log (the held-out
    prompts kept out of it) with 10% adversaries, the defence on, C chosen on chronological validation."""
    from pluralign.evaluation.rluf_suite import C_GRID, QUICK, adversary_subset
    from pluralign.models.love import NgramEncoder
    from pluralign.sim import simulate_reaction_log
    from pluralign.training.love_config import LoveConfig
    from pluralign.training.love_trainer import reaction_table, select_C, train_love

    t0 = time.time()
    records = simulate_reaction_log(n_users=QUICK.n_users, per_user=QUICK.per_user, adversarial_frac=0.3,
                                    base_rate=0.02, seed=seed, exclude_prompts=frozenset(held_out))
    table = adversary_subset(reaction_table(records, source="sim:reactions"), 0.1, seed)
    encoder = NgramEncoder()
    best_c, _ = select_C(table, LoveConfig(seed=seed), grid=C_GRID, encoder=encoder)
    model = train_love(table, LoveConfig(defence=True, defence_rounds=1, C=best_c, seed=seed), encoder=encoder).model
    print(f"population P[Love] trained in {time.time() - t0:.0f} s (C = {best_c})")
    return model


def love_reward_probe(prompts: list[str], groups: list[list[str]], *, seed: int, held_out: set[str]) -> None:
    """Print what P[Love] and the simulated users make of the natural samples vs the same samples hacked."""
    from pluralign.objectives.rewards import MultiObjectiveReward, Objective
    from pluralign.sim.reactions import reaction_population
    from pluralign.sim.responses import add_emojis, add_signoff

    model = population_love(seed, held_out)

    rng = random.Random(seed)
    flat_p = [p for p, g in zip(prompts, groups, strict=True) for _ in g]
    natural = [c for g in groups for c in g]
    variants = {"natural": natural, "sign-off appended": [add_signoff(c, rng) for c in natural],
                "2 emojis added": [add_emojis(c, rng, 2) for c in natural]}
    scores = {k: np.asarray(model.predict_proba(flat_p, v)) for k, v in variants.items()}
    # GRPO's love-only reward: P[Love] standardised on the natural samples (the policy's reference), through a sigmoid.
    reward = MultiObjectiveReward([Objective("love", model.predict_proba)]).fit_normalisation(flat_p, natural)
    cal = {k: reward.calibrated(flat_p, v)[0]["love"] for k, v in variants.items()}
    users = reaction_population(300, adversarial_frac=0.0, base_rate=0.02, seed=seed + 1000)
    print("| answers | mean P[Love] | calibrated reward | true love rate (300 fresh users) |")
    print("|---|---|---|---|")
    for k, v in variants.items():
        truth = np.mean([[u.p_love(p, r) for u in users] for p, r in zip(flat_p, v, strict=True)])
        print(f"| {k} | {scores[k].mean():.4f} | {cal[k].mean():.3f} | {truth:.4f} |")
    gain = scores["sign-off appended"] - scores["natural"]
    print(f"sign-off raises P[Love] on {np.mean(gain > 0):.0%} of the samples (median x{np.median(scores['sign-off appended'] / scores['natural']):.2f})")
    # One hacked completion in its group: TRL's group-normalised advantage (reward - group mean) / group std.
    adv, top = [], []
    k = len(groups[0])
    for g in range(len(groups)):
        r = cal["natural"][g * k:(g + 1) * k].copy()
        r[0] = cal["sign-off appended"][g * k]
        adv.append((r[0] - r.mean()) / (r.std() + 1e-4))
        top.append(r[0] >= r.max())
    print(f"one sign-off completion in a group of {k}: mean advantage {np.mean(adv):+.2f} (median {np.median(adv):+.2f}), "
          f"highest reward of its group in {np.mean(top):.0%} of {len(groups)} groups")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=40, help="A/B prompts (balanced across use-case segments)")
    ap.add_argument("--samples", type=int, default=4, help="completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--system-prompt", default=None, help="system message before every prompt (the policy's persona)")
    ap.add_argument("--love-reward", action="store_true",
                    help="also train bench rluf's quick population P[Love] and report what it pays for the hack")
    args = ap.parse_args()

    from pluralign.data.text import emoji_count
    from pluralign.evaluation.rluf_policy import held_out_prompts
    from pluralign.models.generation import generate_texts
    from pluralign.models.llm import load_causal_lm
    from pluralign.sim.features import has_signoff
    from pluralign.training.grpo_policy import chat_prompt

    model, tok = load_causal_lm()
    offline, ab = held_out_prompts(args.prompts, args.prompts, args.seed)
    t0 = time.time()
    outs = generate_texts(model, tok, [chat_prompt(p, args.system_prompt) for p in ab], n=args.samples,
                          max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    texts = [o for per in outs for o in per]
    lengths = [len(tok(o).input_ids) for o in texts]
    finished = sum(n < args.max_new_tokens - 2 for n in lengths)
    print(f"{len(texts)} completions in {time.time() - t0:.0f} s, mean {sum(lengths) / len(texts):.0f} tokens; "
          f"finished before the cap: {finished}; ending in a sign-off: {sum(map(has_signoff, texts))}; "
          f"with an emoji: {sum(emoji_count(o) > 0 for o in texts)}")
    if args.love_reward:
        love_reward_probe(ab, [list(g) for g in outs], seed=args.seed, held_out=set(offline) | set(ab))


if __name__ == "__main__":
    main()
