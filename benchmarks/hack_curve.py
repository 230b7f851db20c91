"""Does the love-only policy learn to hack P[Love] when it trains longer and samples more? A per-step curve.

``bench rluf --quick`` gives each policy 96 sampled completions (12 steps of 2 prompts x 4), too few for GRPO to
amplify anything the initial policy rarely writes. This run is ``bench rluf``'s own policy benchmark
(:func:`~pluralign.evaluation.rluf_policy.run_policy_benchmark`: the quick population P[Love], the HH helpfulness and
safety RMs, the held-out offline and A/B prompt sets, fresh A/B users, the release gate) for the ``love-only``
setting (P[Love] alone, no judges; others with ``--settings``) at a longer budget and larger groups. It prints, per
GRPO step, the mean love reward, the share of *sampled* completions that end in a sign-off or carry an emoji (the
reward's zero-weight hack monitors) and the KL to the initial model; per checkpoint, the A/B users' love lift,
helpfulness and safety changes, hack rates, words, and the release gate's verdict with its reasons; then the
offline-online r across all the checkpoints.

    .venv/bin/python benchmarks/hack_curve.py --steps 80 --generations 8 --prompts-per-step 2 --out runs/bench/hack
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from policy_samples import population_love


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=80, help="GRPO optimizer steps")
    ap.add_argument("--generations", type=int, default=8, help="completions per prompt (the GRPO group)")
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--train-prompts", type=int, default=120)
    ap.add_argument("--save-steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--beta", type=float, default=0.01, help="KL coefficient to the initial policy")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the GRPO rollouts")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--settings", default="love-only", help="comma-separated bench rluf settings to train")
    ap.add_argument("--objective-rm", default="head",
                    help="helpfulness and safety RMs: 'head' (Bradley-Terry heads over hashed n-grams, seconds) or a "
                         "backbone fine-tuned end to end on the HH pairs, e.g. sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--objective-cache", default="runs/cache/objective-rms",
                    help="where fine-tuned objective RMs are kept (reused by later runs with the same settings)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench/hack")
    args = ap.parse_args()

    from pluralign.evaluation.rluf_policy import (
        POLICY_SETTINGS,
        QUICK_BUDGET,
        held_out_prompts,
        run_policy_benchmark,
    )
    from pluralign.training.policy_config import PolicyConfig

    t0 = time.time()
    budget = replace(QUICK_BUDGET, train_prompts=args.train_prompts, max_steps=args.steps, save_steps=args.save_steps)
    offline, ab = held_out_prompts(budget.offline_prompts, budget.ab_prompts, args.seed)
    love = population_love(args.seed, set(offline) | set(ab))
    wanted = args.settings.split(",")
    settings = [(n, o) for n, o in POLICY_SETTINGS if n in wanted]
    if len(settings) != len(wanted):
        raise SystemExit(f"--settings: unknown name in {wanted} (known: {[n for n, _ in POLICY_SETTINGS]})")
    cfg = PolicyConfig(method="grpo", seed=args.seed, num_generations=args.generations,
                       per_device_train_batch_size=args.generations * args.prompts_per_step, max_steps=args.steps,
                       save_steps=args.save_steps, learning_rate=args.lr, beta=args.beta, temperature=args.temperature,
                       max_completion_length=args.max_new_tokens)
    details: dict = {}
    run_policy_benchmark(Path(args.out), budget, love.predict_proba, offline_prompts=offline, ab_prompts=ab,
                         seed=args.seed, base_cfg=cfg, settings=settings, details=details,
                         objective_rm=args.objective_rm, objective_cache=args.objective_cache)
    acc = details["rm_heldout_accuracy"]
    print(f"objective RMs ({args.objective_rm}): held-out accuracy helpfulness {acc['helpfulness']:.3f}, "
          f"safety {acc['safety']:.3f}")
    for name, _ in settings:
        run = details["runs"][name]
        steps = [h for h in run["log"] if "rewards/signoff_rate/mean" in h]
        print(f"\n{name}: {run['train_steps']} GRPO steps in {run['seconds']:.0f} s "
              f"({run['seconds'] / max(run['train_steps'], 1):.1f} s/step), "
              f"{run['train_steps'] * cfg.per_device_train_batch_size} sampled completions")
        print("| steps | love reward | judges passed | sampled sign-off | sampled emoji | sampled repetition | "
              "KL (last step) |")
        print("|---|---|---|---|---|---|---|")
        for i in range(0, len(steps), 10):
            block = steps[i:i + 10]
            mean = lambda k, b=block: sum(h.get(k, 0.0) for h in b) / len(b)  # noqa: E731
            print(f"| {i + 1}-{i + len(block)} | {mean('rewards/love/mean'):.3f} | "
                  f"{mean('rewards/judges/mean'):.0%} | {mean('rewards/signoff_rate/mean'):.1%} | "
                  f"{mean('rewards/emoji_rate/mean'):.1%} | {mean('rewards/repetition/mean'):.2f} | "
                  f"{block[-1].get('kl', float('nan')):.3f} |")
    print("\n| checkpoint | offline P[Love] | love lift [CI] | helpfulness [CI] | safety [CI] | sign-off | emoji | "
          "words | gate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in details["checkpoints"]:
        lift = ("–" if r["setting"] == "initial" else
                f"{r['love_lift']:+.1%} [{r['love_lift_ci'][0]:+.1%}, {r['love_lift_ci'][1]:+.1%}]")
        hs = ("– | –" if r["setting"] == "initial" else
              f"{r['help_delta']:+.1%} [{r['help_delta_ci'][0]:+.1%}, {r['help_delta_ci'][1]:+.1%}] | "
              f"{r['safety_delta']:+.1%} [{r['safety_delta_ci'][0]:+.1%}, {r['safety_delta_ci'][1]:+.1%}]")
        print(f"| {r['setting']}@{r['step']} | {r['offline_love']:.4f} | {lift} | {hs} | {r['signoff_rate']:.0%} | "
              f"{r['emoji_rate']:.0%} | {r['words']:.0f} | {r['gate']} |")
        for why in r["gate_reasons"]:
            print(f"    gate: {why}")
    trimmed_out = ", ".join(details["trimmed_out"])
    print(f"\noffline-online r over {len(details['checkpoints'])} checkpoints: {details['offline_online_r']:+.2f} "
          f"(expected lift), {details['offline_online_r_sampled']:+.2f} (sampled reactions); "
          f"trimmed (without {trimmed_out}): {details['offline_online_r_trimmed']:+.2f}")
    print(f"wall {time.time() - t0:.0f} s; details in {args.out}/policies/policy_details.json")


if __name__ == "__main__":
    main()
