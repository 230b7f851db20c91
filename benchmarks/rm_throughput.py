"""Reward-model training throughput, side by side in one run: the hand-written loop pluralign used before
(``--old-src``: the ``src`` of a checkout of that commit), ``pluralign train rm``'s RewardTrainer path, and TRL's
own plain RewardTrainer; plus scoring fp32 vs bf16.

Every trainer gets the same rows, the same backbone (all-MiniLM-L6-v2 by default), the same batch size, steps,
learning rate and sequence budget. TRL's plain trainer gets ``AutoModelForSequenceClassification`` (pooler + CLS
head) and pre-tokenised ``chosen_ids``/``rejected_ids`` rendered by the same ``RMInputs`` (summary template and
truncation), so it reads the same tokens; its tokenisation is not timed, which favours it. Both RewardTrainer runs
train with dropout off (TRL's default, and RMConfig's) and gradient checkpointing off (TRL's default turns it on:
less memory, slower); the old loop kept the backbone's dropout. ``total`` times everything a
caller waits for (dataset map and trainer set-up included; the old loop tokenised inside its steps), ``train`` only
``Trainer.train()``. Each variant runs in its own subprocess (peak RSS per variant); ``--repeats`` alternates them.

    git worktree add /tmp/rm-old 3a87d88   # the last commit with the hand-written loop
    flock /tmp/team/bench.lock nice -n 5 .venv/bin/python benchmarks/rm_throughput.py --old-src /tmp/rm-old/src
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

ADJ = ["friendly", "small", "fluffy", "quiet", "playful", "old", "young", "lazy", "clever", "curious"]
PLACES = ["garden", "kitchen", "park", "house", "yard", "street", "beach", "farm", "city", "forest"]
TRAINERS = ["old-loop", "rewardtrainer", "trl-plain"]


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """Two kinds of users (dog / cat lovers), each row conditioned on its user's summary; lengths vary."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        pref, other = ("dog", "cat") if i % 2 else ("cat", "dog")
        extra = " ".join(rng.choice(ADJ) for _ in range(rng.randint(5, 40)))

        def resp(animal, extra=extra):
            return f"A {rng.choice(ADJ)} {animal} is in the {rng.choice(PLACES)}. {extra}"

        rows.append({"prompt": "Tell me about an animal you saw today.", "chosen": resp(pref),
                     "rejected": resp(other), "summary": f"I love {pref}s and find {other}s boring."})
    return rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_old_loop(args, bf16: bool) -> dict:
    """The loop of ``--old-src`` (imported from there: ``sys.path`` is set by the parent)."""
    from pluralign.models.reward_model import SummaryConditionedRM
    from pluralign.training.rm_config import RMConfig
    from pluralign.training.rm_trainer import train_reward_model

    assert args.old_src and os.path.realpath(args.old_src) in os.path.realpath(sys.modules["pluralign"].__file__)
    rm = SummaryConditionedRM.from_backbone(args.backbone, max_length=args.max_length)
    cfg = RMConfig(backbone=args.backbone, max_length=args.max_length, batch_size=args.batch_size,
                   max_steps=args.steps, bf16=bf16, logging_steps=args.steps, lr=5e-5)
    rows = make_rows(args.pairs)
    t0 = time.perf_counter()
    m = train_reward_model(rm, rows, cfg)
    total = time.perf_counter() - t0
    return {"total_s": total, "train_s": None, "final_train_loss": m["train_loss"]}


def run_rewardtrainer(args, bf16: bool) -> dict:
    """``pluralign train rm``'s path: dataset map, collator, SummaryRMTrainer (TRL's RewardTrainer)."""
    import tempfile

    from pluralign.models.reward_model import SummaryConditionedRM
    from pluralign.training.rm_config import RMConfig
    from pluralign.training.rm_data import validate_rows
    from pluralign.training.rm_trainer import build_trainer

    rm = SummaryConditionedRM.from_backbone(args.backbone, max_length=args.max_length)
    cfg = RMConfig(backbone=args.backbone, max_length=args.max_length, batch_size=args.batch_size,
                   max_steps=args.steps, bf16=bf16, logging_steps=args.steps, lr=5e-5)
    rows = make_rows(args.pairs)
    t0 = time.perf_counter()
    trainer = build_trainer(rm, validate_rows(rows), cfg, output_dir=tempfile.mkdtemp(prefix="rm-bench-"))
    t1 = time.perf_counter()
    result = trainer.train()
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "train_s": t2 - t1, "final_train_loss": result.training_loss}


def run_trl_plain(args, bf16: bool) -> dict:
    """TRL's RewardTrainer as its docs use it: AutoModelForSequenceClassification, its own collator."""
    import datasets
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from pluralign.models.backbone import resolve_backbone
    from pluralign.models.reward_model import SummaryConditionedRM

    rm = SummaryConditionedRM.from_backbone(args.backbone, max_length=args.max_length)
    rows = make_rows(args.pairs)

    def ids(responses):
        return rm.inputs.tokenize([r["prompt"] for r in rows], responses, [r["summary"] for r in rows]).input_ids

    ds = datasets.Dataset.from_dict({"chosen_ids": ids([r["chosen"] for r in rows]),
                                     "rejected_ids": ids([r["rejected"] for r in rows])})
    model = AutoModelForSequenceClassification.from_pretrained(resolve_backbone(args.backbone), num_labels=1)
    cfg = RewardConfig(output_dir=os.path.join(args.tmp, "trl"), per_device_train_batch_size=args.batch_size,
                       max_steps=args.steps, learning_rate=5e-5, bf16=bf16, report_to="none", save_strategy="no",
                       logging_steps=args.steps, max_length=args.max_length, use_cpu=True,
                       gradient_checkpointing=False, dataloader_num_workers=0, seed=0)
    t0 = time.perf_counter()
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=ds, processing_class=rm.tokenizer)
    t1 = time.perf_counter()
    result = trainer.train()
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "train_s": t2 - t1, "final_train_loss": result.training_loss}


def run_score(args) -> dict:
    from pluralign.models.reward_model import SummaryConditionedRM

    rm = SummaryConditionedRM.from_backbone(args.backbone, max_length=args.max_length)
    rows = make_rows(args.score_n, seed=1)
    p, r, s = [x["prompt"] for x in rows], [x["chosen"] for x in rows], [x["summary"] for x in rows]
    out = {}
    rm.score(p[:8], r[:8], s[:8])  # warm-up
    scores = {}
    for dtype in ("fp32", "bf16"):
        t0 = time.perf_counter()
        scores[dtype] = rm.score(p, r, s, batch_size=32, dtype=dtype)
        out[f"{dtype}_items_per_s"] = len(rows) / (time.perf_counter() - t0)
    out["bf16_speedup"] = out["bf16_items_per_s"] / out["fp32_items_per_s"]
    out["max_abs_diff"] = float(abs(scores["fp32"] - scores["bf16"]).max())
    return out


RUNNERS = {"old-loop": run_old_loop, "rewardtrainer": run_rewardtrainer, "trl-plain": run_trl_plain}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="sentence-transformers/all-MiniLM-L6-v2", help="backbone for all variants")
    ap.add_argument("--pairs", type=int, default=128, help="training rows")
    ap.add_argument("--steps", type=int, default=16, help="optimizer steps per trainer")
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    ap.add_argument("--max-length", type=int, default=128, help="max tokens per sequence")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each trainer, alternating (median reported)")
    ap.add_argument("--bf16", action="store_true", help="also run every trainer with bf16 autocast")
    ap.add_argument("--score-n", type=int, default=256, help="items scored for the fp32/bf16 scoring comparison "
                                                           "(0 skips it)")
    ap.add_argument("--old-src", help="src/ of a checkout with the hand-written loop; without it old-loop is skipped")
    ap.add_argument("--variant", help="run one variant in this process (used internally)")
    ap.add_argument("--tmp", default="/tmp/pluralign-rm-bench", help="scratch dir for TRL's output_dir")
    ap.add_argument("--json", help="also write all results to this JSON file")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    if args.variant:
        import torch

        torch.manual_seed(0)
        if args.variant == "score":
            res = run_score(args)
        else:
            name, _, dtype = args.variant.rpartition("-")
            res = RUNNERS[name](args, dtype == "bf16")
            res["pairs_per_s"] = args.steps * args.batch_size / res["total_s"]
            if res["train_s"]:
                res["train_pairs_per_s"] = args.steps * args.batch_size / res["train_s"]
        res["peak_rss_mb"] = peak_rss_mb()
        print("RESULT " + json.dumps(res))
        return 0

    trainers = [t for t in TRAINERS if t != "old-loop" or args.old_src]
    variants = [f"{t}-{d}" for d in (["fp32", "bf16"] if args.bf16 else ["fp32"]) for t in trainers]
    passthrough = ["--backbone", args.backbone, "--pairs", str(args.pairs), "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
                   "--score-n", str(args.score_n), "--tmp", args.tmp] + (["--old-src", args.old_src]
                                                                          if args.old_src else [])
    here = os.path.dirname(os.path.abspath(__file__))
    runs: dict[str, list[dict]] = {}
    load = {"start": os.getloadavg()}
    for _ in range(args.repeats):
        for v in variants + (["score"] if args.score_n and not runs.get("score") else []):
            env = dict(os.environ)
            if v.startswith("old-loop"):  # the old package first on the path
                env["PYTHONPATH"] = os.pathsep.join([args.old_src, env.get("PYTHONPATH", "")])
            proc = subprocess.run([sys.executable, os.path.join(here, "rm_throughput.py"), *passthrough,
                                   "--variant", v], capture_output=True, text=True, env=env)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{v}: failed (exit {proc.returncode})\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            runs.setdefault(v, []).append(json.loads(line[-1][7:]))
            print(f"{v}: {runs[v][-1]}", flush=True)
    load["end"] = os.getloadavg()

    def med(v, key):
        vals = [r[key] for r in runs.get(v, []) if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    print(f"\nload average (1, 5, 15 min): start {load['start']}, end {load['end']}")
    print(f"\n| trainer | pairs/s total | pairs/s in train() | wall s ({args.steps} steps x {args.batch_size} pairs) "
          "| peak RSS MB | final loss |")
    print("|---|---|---|---|---|---|")
    for v in variants:
        if v not in runs:
            continue
        tp = med(v, "train_pairs_per_s")
        print(f"| {v} | {med(v, 'pairs_per_s'):.2f} | {f'{tp:.2f}' if tp else '–'} | {med(v, 'total_s'):.1f} | "
              f"{med(v, 'peak_rss_mb'):.0f} | {med(v, 'final_train_loss'):.3f} |")
    if runs.get("score"):
        s = runs["score"][0]
        print(f"\nscoring {args.score_n} items: fp32 {s['fp32_items_per_s']:.1f}/s, bf16 {s['bf16_items_per_s']:.1f}/s "
              f"(x{s['bf16_speedup']:.2f}), max |fp32 - bf16| = {s['max_abs_diff']:.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "load": load, "runs": runs}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
