"""The RLUF objective RMs side by side: held-out accuracy on HH-RLHF pairs, and whether repetition pays.

GRPO with the hashed n-gram helpfulness head learned to repeat itself (BENCHMARKS.md, "A repetition judge during
training"). This measures why, without training a policy: for each kind of objective RM (a Bradley-Terry head
over hashed n-grams, the same head over frozen MiniLM embeddings, MiniLM fine-tuned end to end), its pairwise
accuracy on the held-out pairs, and, on held-out chosen answers, how often appending the answer's own last sentence
three times raises its score, and by how much (in units of the score's standard deviation over the answers).

    .venv/bin/python benchmarks/objective_rms.py --rms ngram,minilm-head,minilm-finetuned
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def with_repeated_ending(text: str, times: int = 3) -> str:
    """``text`` followed by its own last sentence ``times`` more times (the degenerate ending GRPO found)."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    last = sentences[-1] if sentences else text.strip()
    return " ".join([text.strip(), *[last] * times])


def build(name: str, kind: str, args):
    from pluralign.models.love import NgramEncoder, make_encoder
    from pluralign.objectives.preference_rm import train_hh_objective
    from pluralign.training.objective_rm import finetune_hh_objective

    if name == "ngram":
        return train_hh_objective(kind, NgramEncoder(), n_train=None, n_eval=args.n_eval, seed=args.seed)
    if name == "minilm-head":
        return train_hh_objective(kind, make_encoder(MINILM), n_train=None, n_eval=args.n_eval, seed=args.seed)
    if name == "minilm-finetuned":
        return finetune_hh_objective(kind, MINILM, args.cache, n_eval=args.n_eval, seed=args.seed)
    raise SystemExit(f"--rms: unknown {name!r} (ngram, minilm-head, minilm-finetuned)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rms", default="ngram,minilm-head,minilm-finetuned")
    ap.add_argument("--kinds", default="helpful,harmless")
    ap.add_argument("--n-eval", type=int, default=500, help="held-out pairs per objective (the bench's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="runs/cache/objective-rms", help="where fine-tuned RMs are kept")
    args = ap.parse_args()

    from pluralign.objectives.preference_rm import hh_objective_split

    print("| objective RM | kind | held-out accuracy | repetition raises score | mean change (score sd) | seconds |")
    print("|---|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        _, held_out = hh_objective_split(kind, None, args.n_eval, args.seed)
        prompts = [p.prompt for p in held_out]
        answers = [p.chosen for p in held_out]
        repeated = [with_repeated_ending(a) for a in answers]
        for name in args.rms.split(","):
            t0 = time.time()
            rm, acc = build(name, kind, args)
            a, b = np.asarray(rm.score(prompts, answers)), np.asarray(rm.score(prompts, repeated))
            print(f"| {name} | {kind} | {acc:.3f} | {np.mean(b > a):.0%} | {np.mean(b - a) / np.std(a):+.2f} | "
                  f"{time.time() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
