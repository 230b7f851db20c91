"""Is the PLUS reward a signal the summarizer can climb? How much of R(z)'s spread within a group is the summary.

GRPO ranks a context's sampled summaries by R(z), the RM's mean log-likelihood of the user's choice on
``reward_pairs`` of the user's pairs. That ranking helps only if it would come out the same on the user's *other*
pairs: if a summary's reward on two pairs does not predict its reward on the rest, the advantages are noise and RL
follows it. This probe builds the bench's PLUS setting (``plus`` method defaults, ``--set plus.KEY=VALUE`` as in
``pluralign bench``), warm-starts the RM on the zero-shot summaries exactly as the loop does, samples ``--group-size``
summaries for each of ``--users`` training users, scores every summary on every one of the user's pairs, and reports:

- the share of the reward's variance that belongs to the summary (sample effect) vs to the summary x pair
  interaction (what a different choice of pairs would change), from a two-way decomposition per user;
- the reliability of a reward averaged over k pairs, var_summary / (var_summary + var_interaction / k), for the
  k the loop uses and more;
- the empirical split-half check: within a user, Pearson r between the summaries' rewards on k random pairs and
  on the remaining pairs, averaged over random splits and users.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/plus_reward_reliability.py --full --train-users 64 --users 16 \\
        --group-size 8

The quick Pets-OOD suite cannot be probed: 14 of its 20 training contexts hold a single pair, 6 hold two.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np


def decompose(r: np.ndarray) -> tuple[float, float]:
    """Two-way (summary x pair) decomposition of one user's reward matrix ``r[g, p]``: the variance of the summary
    effect (bias-corrected) and of the interaction residual."""
    g, p = r.shape
    resid = r - r.mean(1, keepdims=True) - r.mean(0, keepdims=True) + r.mean()
    var_int = float((resid ** 2).sum() / max((g - 1) * (p - 1), 1))
    var_rows = float(r.mean(1).var(ddof=1))
    return max(var_rows - var_int / p, 0.0), var_int


def split_half(r: np.ndarray, k: int, rng: random.Random, n_splits: int) -> float | None:
    """Mean over random splits of Pearson r (across summaries) between the mean reward on k pairs and on the rest."""
    p = r.shape[1]
    if p <= k:
        return None
    rs = []
    for _ in range(n_splits):
        cols = list(range(p))
        rng.shuffle(cols)
        a, b = r[:, cols[:k]].mean(1), r[:, cols[k:]].mean(1)
        if a.std() > 1e-9 and b.std() > 1e-9:
            rs.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(rs)) if rs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="pets-ood")
    ap.add_argument("--full", action="store_true", help="the full-size suite (default: quick)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--users", type=int, default=16, help="training users whose summaries are sampled")
    ap.add_argument("--train-users", type=int, default=0,
                    help="warm-start the RM on the first N training contexts only (0 = all, as the loop does)")
    ap.add_argument("--group-size", type=int, default=8, help="summaries sampled per user")
    ap.add_argument("--k", default="1,2,4", help="pairs per reward to report the reliability of")
    ap.add_argument("--splits", type=int, default=50, help="random splits per user for the split-half check")
    ap.add_argument("-s", "--set", dest="overrides", action="append", default=[], metavar="plus.KEY=VALUE",
                    help="PlusConfig override as in pluralign bench (e.g. --set plus.warm_start_rm_epochs=1)")
    args = ap.parse_args()

    from pluralign.evaluation.methods import make_method
    from pluralign.evaluation.suite_splits import build_simulated_split
    from pluralign.training.plus_rewards import pair_rewards
    from pluralign.training.plus_trainer import PlusTrainer, rows_from_examples

    quick = not args.full
    cfg = make_method("plus", quick=quick, plus_overrides=args.overrides).plus_config
    rows = rows_from_examples(build_simulated_split(args.suite, seed=args.seed, quick=quick).train)
    if args.train_users:
        rows = rows[:args.train_users]
    t0 = time.time()
    trainer = PlusTrainer(cfg, rows)
    trainer.warm_start()
    print(f"{len(rows)} training contexts; RM warm-started on the zero-shot summaries in {time.time() - t0:.0f} s "
          f"(reward_pairs = {cfg.reward_pairs}, group_size = {cfg.group_size})", flush=True)
    probe = [r for r in rows if len(r.pairs) >= 3][:args.users]
    if not probe:
        raise SystemExit(f"no training context of {args.suite} has 3 or more pairs (pairs per context: "
                         f"{sorted({len(r.pairs) for r in rows})}); try --full")
    t1 = time.time()
    rollout = trainer.summarizer.rollout([r.context for r in probe], args.group_size)
    print(f"{len(rollout.summaries)} summaries of {len(probe)} users sampled in {time.time() - t1:.0f} s", flush=True)
    mats = []
    for i, row in enumerate(probe):
        zs = rollout.summaries[i * args.group_size:(i + 1) * args.group_size]
        pairs = [p for _ in zs for p in row.pairs]
        summ = [z for z in zs for _ in row.pairs]
        r = pair_rewards(trainer.rm, pairs, summ, clip=cfg.reward_clip, dtype=trainer.score_dtype).numpy()
        mats.append(r.reshape(len(zs), len(row.pairs)))
    parts = [decompose(r) for r in mats]
    v_sum, v_int = float(np.mean([a for a, _ in parts])), float(np.mean([b for _, b in parts]))
    n_pairs = [r.shape[1] for r in mats]
    print(f"pairs per user: {min(n_pairs)}-{max(n_pairs)} (mean {np.mean(n_pairs):.1f}); reward mean "
          f"{np.mean([r.mean() for r in mats]):.3f}, sd across a user's summaries (all pairs) "
          f"{np.mean([r.mean(1).std(ddof=1) for r in mats]):.4f}, sd across a summary's pairs "
          f"{np.mean([r.std(1, ddof=1).mean() for r in mats]):.3f}")
    print(f"variance per user, mean over users: summary effect {v_sum:.5f}, summary x pair interaction {v_int:.5f}")
    rng = random.Random(args.seed)
    print("| pairs per reward (k) | reliability var_s / (var_s + var_i / k) | split-half r (k pairs vs the rest) |")
    print("|---|---|---|")
    for k in (int(x) for x in args.k.split(",")):
        rel = v_sum / (v_sum + v_int / k) if v_sum + v_int > 0 else float("nan")
        sh = [x for x in (split_half(r, k, rng, args.splits) for r in mats) if x is not None]
        print(f"| {k} | {rel:.3f} | {np.mean(sh):+.3f} ({len(sh)} users) |" if sh else f"| {k} | {rel:.3f} | – |")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
