"""Cost of the PLUS reward on CPU: scoring one rollout batch's (pair, summary) items with the summary-conditioned RM,
fp32 vs bf16 autocast, and how many items deduplication removes once the policy repeats itself.

The reward of a rollout step is the RM's margin on up to 4 of each context's pairs for every sampled summary
(``rollout_batch_size x group_size x 4`` pairs, two RM forwards each): the loop's dominant cost on CPU. This runs
the real pieces (Pets-OOD suite, CPU summarizer, MiniLM RM at max_length 256) on one rollout batch, side by side.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/plus_step_cost.py --contexts 32 --group-size 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, default=32, help="contexts in the rollout batch")
    ap.add_argument("--group-size", type=int, default=4, help="summaries sampled per context")
    ap.add_argument("--max-length", type=int, default=256, help="RM input cap in tokens")
    ap.add_argument("--temperature", type=float, default=0.3,
                    help="sampling temperature for the dedup count (a trained policy is sharper than 1.0)")
    args = ap.parse_args()

    import torch

    from pluralign.evaluation.suite_splits import build_simulated_split
    from pluralign.summarizers.cpu import CpuSummarizer, CpuSummarizerConfig
    from pluralign.training.plus_config import PlusConfig
    from pluralign.training.plus_trainer import build_rm, pair_margins, reward_items, rows_from_examples
    from pluralign.training.rm_config import RMConfig

    torch.manual_seed(0)
    rows = rows_from_examples(build_simulated_split("pets-ood", seed=0, quick=False).train)[: args.contexts]
    rm = build_rm(PlusConfig(rm=RMConfig(max_length=args.max_length)))
    summ = CpuSummarizer(seed=0)
    roll = summ.rollout([r.context for r in rows], args.group_size)
    pairs, zs, _ = reward_items(rows, roll.summaries, args.group_size)
    tokens = rm.count_tokens([p.prompt for p in pairs], [p.chosen for p in pairs], zs)
    print(f"{len(pairs)} (pair, summary) items, {2 * len(pairs)} RM forwards, "
          f"mean {np.mean(tokens):.0f} tokens per forward (uncut)")
    pair_margins(rm, pairs[:8], zs[:8])  # warm-up
    times = {}
    for dtype in ("fp32", "bf16"):
        t = time.perf_counter()
        m = pair_margins(rm, pairs, zs, dtype=dtype)
        times[dtype] = time.perf_counter() - t
        print(f"{dtype}: {times[dtype]:.1f} s, {2 * len(pairs) / times[dtype]:.1f} forwards/s")
        if dtype == "fp32":
            ref = m
    agree = float(np.mean(np.sign(m) == np.sign(ref)))
    print(f"bf16 / fp32 speed-up: {times['fp32'] / times['bf16']:.2f}x; "
          f"margin sign agreement {agree:.3f}, max |diff| {np.abs(m - ref).max():.3f}")
    sharp = CpuSummarizer(CpuSummarizerConfig(temperature=args.temperature), encoder=summ.encoder, seed=0)
    with torch.no_grad():  # a policy that prefers some statements: random scorer weights, lower temperature
        sharp.scorer[2].weight.normal_(0, 1.0)
    roll = sharp.rollout([r.context for r in rows], args.group_size)
    sharp_pairs, sharp_zs, _ = reward_items(rows, roll.summaries, args.group_size)
    keys = {(p.prompt, p.chosen, p.rejected, z) for p, z in zip(sharp_pairs, sharp_zs, strict=True)}
    total = len(sharp_pairs)
    print(f"dedup at temperature {args.temperature}: {len(keys)} distinct of {total} items "
          f"({1 - len(keys) / total:.0%} fewer forwards)")


if __name__ == "__main__":
    main()
