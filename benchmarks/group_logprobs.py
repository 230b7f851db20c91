"""Cost of the GRPO update's log-prob passes with each user's history run once per group vs once per sample.

Samples ``--group-size`` summaries for ``--contexts`` training users of a suite with the default ``hf`` summarizer
(SmolLM2-135M-Instruct, LoRA r=16 on the top 12 layers, bf16 autocast where the CPU has it), then times, side by side
on the same rollout, the three passes of one update (old log-probs, reference log-probs with the adapter off, and
the policy forward + backward) row by row (``group_size=1``) and with the history shared by its group, and prints
the ratio and how far each mode's log-probs are from an fp32 row-by-row pass.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/group_logprobs.py --suite attributes --contexts 4 --group-size 4
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="attributes")
    ap.add_argument("--contexts", type=int, default=4, help="users per rollout (rollout_batch_size)")
    ap.add_argument("--group-size", type=int, default=4, help="summaries sampled per user")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats of each mode (the best is kept)")
    args = ap.parse_args()

    import torch

    from pluralign.evaluation.suite_splits import build_simulated_split
    from pluralign.models.llm import fast_bf16_cpu
    from pluralign.summarizers.hf import HFSummarizer, sequence_logprobs
    from pluralign.training.plus_config import PlusConfig
    from pluralign.training.plus_trainer import rows_from_examples

    torch.manual_seed(0)
    cfg = PlusConfig()
    rows = rows_from_examples(build_simulated_split(args.suite, seed=0, quick=True).train)[: args.contexts]
    s = HFSummarizer.from_pretrained(cfg.summarizer, lora_r=cfg.lora_r, lora_layers=cfg.lora_layers,
                                     max_new_tokens=cfg.max_new_tokens, bf16=fast_bf16_cpu())
    ro = s.rollout([r.context for r in rows], group_size=args.group_size)
    a = (ro.query_ids, ro.query_mask, ro.response_ids, ro.response_mask)
    print(f"{args.suite}: {args.contexts} users x {args.group_size} summaries; history tokens "
          f"{ro.query_mask.sum(1)[::args.group_size].tolist()}, summary tokens {ro.response_mask.sum(1).tolist()}, "
          f"bf16 {s.bf16}", flush=True)

    def update_passes(group_size: int) -> tuple[float, torch.Tensor]:
        t0 = time.perf_counter()
        with torch.no_grad(), s.autocast():
            sequence_logprobs(s.model, *a, group_size=group_size)
            with s.model.disable_adapter():
                sequence_logprobs(s.model, *a, group_size=group_size)
        with s.autocast():
            logp = sequence_logprobs(s.model, *a, group_size=group_size)
        (logp * ro.response_mask).sum().backward()
        s.model.zero_grad()
        return time.perf_counter() - t0, logp.detach()

    times: dict[int, float] = {}
    logps: dict[int, torch.Tensor] = {}
    for _ in range(args.repeats):
        for g in (1, args.group_size):
            t, logps[g] = update_passes(g)
            times[g] = min(times.get(g, float("inf")), t)
    with torch.no_grad():  # fp32 reference: how far each bf16 mode strays from it
        exact = sequence_logprobs(s.model, *a)
    mask = ro.response_mask.bool()
    print(f"row by row: {times[1]:.1f} s; history once per group: {times[args.group_size]:.1f} s; "
          f"{times[1] / times[args.group_size]:.2f}x")
    for g, name in ((1, "row by row"), (args.group_size, "once per group")):
        d = (logps[g] - exact)[mask].abs()
        print(f"|log-prob - fp32 row-by-row log-prob|, {name}{' (bf16 autocast)' if s.bf16 else ''}: "
              f"mean {d.mean():.4f}, max {d.max():.4f}")


if __name__ == "__main__":
    main()
