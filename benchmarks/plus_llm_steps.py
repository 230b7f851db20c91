"""Cost of one PLUS RL step with the LLM summarizer on CPU, and where it goes (rollout, reward, update, RM).

Runs the real loop (:class:`pluralign.training.plus_trainer.PlusTrainer`) with the default ``hf`` summarizer
(SmolLM2-135M-Instruct, LoRA r=16 on the top 12 layers, GRPO, bf16 autocast in log-probs and updates) and the MiniLM
summary-conditioned RM on Pets-OOD training users, for a few steps, and prints per step the seconds of each phase
(``rollout_seconds``: sampling ``contexts x group_size`` summaries and the greedy one the RM trains on;
``reward_seconds``: RM scoring of the reward pairs; ``update_seconds``: reference + old log-probs and the
policy-gradient pass; ``rm_seconds``: the RM's BT steps), the reward, RM accuracy, summary tokens, KL and copy
rate, then the zero-shot and trained summaries of a few users side by side. Writes ``--out/log.jsonl``.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/plus_llm_steps.py --steps 3 --contexts 4 --group-size 4
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="RL steps to run")
    ap.add_argument("--contexts", type=int, default=4, help="contexts per RL step (rollout_batch_size)")
    ap.add_argument("--group-size", type=int, default=4, help="summaries sampled per context")
    ap.add_argument("--warm-start", type=int, default=0, help="RM warm-start epochs before RL (0: measure steps only)")
    ap.add_argument("--suite", default="pets-ood")
    ap.add_argument("--out", default="runs/plus-llm-steps")
    ap.add_argument("-s", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="PlusConfig override, repeatable (dotted for the RM: --set rm.lr=1e-4)")
    args = ap.parse_args()

    from pluralign.config import apply_overrides
    from pluralign.evaluation.suite_splits import build_simulated_split
    from pluralign.training.plus_config import PlusConfig
    from pluralign.training.plus_trainer import PlusTrainer, rows_from_examples
    from pluralign.training.rm_config import RMConfig

    rows = rows_from_examples(build_simulated_split(args.suite, seed=0, quick=True).train)
    rows = rows[: args.steps * args.contexts]
    cfg = apply_overrides(PlusConfig(rollout_batch_size=args.contexts, group_size=args.group_size, epochs=1,
                                     warm_start_rm_epochs=args.warm_start, rm=RMConfig(max_length=160, batch_size=8),
                                     output_dir=args.out), args.overrides)
    t0 = time.time()
    trainer = PlusTrainer(cfg, rows)
    print(f"setup (load SmolLM2 + MiniLM): {time.time() - t0:.1f} s; {len(rows)} contexts", flush=True)
    users = [r.context for r in rows[:3]]
    before = trainer.summarizer.summarize(users)
    hist = trainer.train()
    keys = ("seconds", "rollout_seconds", "reward_seconds", "update_seconds", "rm_seconds",
            "reward", "rm_accuracy", "summary_tokens", "summary_words", "kl", "copy_rate")
    for h in hist:
        if "reward" in h:
            print(json.dumps({k: round(h[k], 3) for k in keys if k in h} | {"step": h["step"]}), flush=True)
    after = trainer.summarizer.summarize(users)
    for u, a, b in zip(users, before, after, strict=True):
        print(f"--- {u.user_id}\n  zero-shot: {a}\n  after RL:  {b}")


if __name__ == "__main__":
    main()
