"""Reward-model throughput: our Bradley-Terry loop vs TRL's RewardTrainer, and scoring fp32 vs bf16.

Both trainers get the same rows, the same backbone (all-MiniLM-L6-v2 by default) and the same token ids (TRL gets
pre-tokenised ``chosen_ids``/``rejected_ids`` built with ``SummaryConditionedRM.encode``, so tokenisation of the
summary-conditioned text is identical; TRL's dataset preparation is therefore not timed). Each variant runs in its
own subprocess so peak RSS is per variant. Differences that remain: TRL's model is
``AutoModelForSequenceClassification`` (pooler + CLS head, no token_type_ids), ours mean-pools into a linear head.

    .venv/bin/python benchmarks/rm_throughput.py --pairs 128 --steps 16 --batch-size 8 --max-length 128
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time

ADJ = ["friendly", "small", "fluffy", "quiet", "playful", "old", "young", "lazy", "clever", "curious"]
PLACES = ["garden", "kitchen", "park", "house", "yard", "street", "beach", "farm", "city", "forest"]
VARIANTS = ["ours-fp32", "ours-bf16", "trl-fp32", "trl-bf16", "score"]


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """Two kinds of users (dog / cat lovers), each row conditioned on its user's summary."""
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


def run_ours(args, bf16: bool) -> dict:
    from pluralign.models.reward_model import SummaryConditionedRM
    from pluralign.training.rm_config import RMConfig
    from pluralign.training.rm_trainer import train_reward_model

    rm = SummaryConditionedRM.from_backbone(args.backbone, max_length=args.max_length)
    cfg = RMConfig(backbone=args.backbone, max_length=args.max_length, batch_size=args.batch_size,
                   max_steps=args.steps, bf16=bf16, logging_steps=args.steps, lr=5e-5)
    rows = make_rows(args.pairs)
    t0 = time.perf_counter()
    m = train_reward_model(rm, rows, cfg)
    wall = time.perf_counter() - t0
    pairs = args.steps * args.batch_size
    return {"wall_s": wall, "pairs_per_s": pairs / wall, "final_train_loss": m["train_loss"]}


def run_trl(args, bf16: bool) -> dict:
    import datasets
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from pluralign.models.backbone import resolve_backbone
    from pluralign.models.reward_model import SummaryConditionedRM

    rm = SummaryConditionedRM.from_backbone(args.backbone, max_length=args.max_length)
    rows = make_rows(args.pairs)

    def ids(responses):
        enc = rm.encode([r["prompt"] for r in rows], responses, [r["summary"] for r in rows]).batch
        return [x[m.bool()].tolist() for x, m in zip(enc["input_ids"], enc["attention_mask"], strict=True)]

    ds = datasets.Dataset.from_dict({"chosen_ids": ids([r["chosen"] for r in rows]),
                                     "rejected_ids": ids([r["rejected"] for r in rows])})
    model = AutoModelForSequenceClassification.from_pretrained(resolve_backbone(args.backbone), num_labels=1)
    out = os.path.join(args.tmp, "trl")
    cfg = RewardConfig(output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                       learning_rate=5e-5, bf16=bf16, report_to="none", save_strategy="no",
                       logging_steps=args.steps, max_length=args.max_length, use_cpu=True,
                       dataloader_num_workers=0, disable_tqdm=True, seed=0)
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=ds, processing_class=rm.tokenizer)
    t0 = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "pairs_per_s": args.steps * args.batch_size / wall,
            "final_train_loss": result.training_loss}


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
        wall = time.perf_counter() - t0
        out[f"{dtype}_items_per_s"] = len(rows) / wall
    out["bf16_speedup"] = out["bf16_items_per_s"] / out["fp32_items_per_s"]
    out["max_abs_diff"] = float(abs(scores["fp32"] - scores["bf16"]).max())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="sentence-transformers/all-MiniLM-L6-v2", help="backbone for all variants")
    ap.add_argument("--pairs", type=int, default=128, help="training rows")
    ap.add_argument("--steps", type=int, default=16, help="optimizer steps per trainer")
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    ap.add_argument("--max-length", type=int, default=128, help="max tokens per sequence")
    ap.add_argument("--score-n", type=int, default=256, help="items scored for the fp32/bf16 scoring comparison")
    ap.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (used internally)")
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
        elif args.variant.startswith("ours"):
            res = run_ours(args, args.variant.endswith("bf16"))
        else:
            res = run_trl(args, args.variant.endswith("bf16"))
        res["peak_rss_mb"] = peak_rss_mb()
        print("RESULT " + json.dumps(res))
        return 0

    results = {}
    passthrough = ["--backbone", args.backbone, "--pairs", str(args.pairs), "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
                   "--score-n", str(args.score_n), "--tmp", args.tmp]
    for v in VARIANTS:
        proc = subprocess.run([sys.executable, __file__, *passthrough, "--variant", v], capture_output=True,
                              text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{v}: failed (exit {proc.returncode})\n{proc.stderr[-2000:]}", file=sys.stderr)
            results[v] = {"error": proc.stderr[-500:]}
            continue
        results[v] = json.loads(line[-1][7:])
        print(f"{v}: {results[v]}", flush=True)
    print(f"\n| trainer | pairs/s | wall s ({args.steps} steps x {args.batch_size} pairs) | peak RSS MB | final loss |")
    print("|---|---|---|---|---|")
    for v in VARIANTS[:4]:
        r = results[v]
        if "error" not in r:
            print(f"| {v} | {r['pairs_per_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['final_train_loss']:.3f} |")
    s = results["score"]
    if "error" not in s:
        print(f"\nscoring {args.score_n} items: fp32 {s['fp32_items_per_s']:.1f}/s, bf16 {s['bf16_items_per_s']:.1f}/s "
              f"(x{s['bf16_speedup']:.2f}), max |fp32 - bf16| = {s['max_abs_diff']:.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
