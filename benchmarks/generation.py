"""Batched sampling speed of the default LLM: plain fp32 ``model.generate`` vs pluralign's sampling path.

The workload is the one every later stage pays for: PLUS summarizer prompts of simulated users (about 280 tokens
with the chat template), a batch of 16 sequences, 48 new tokens each (EOS ignored, so both sides produce exactly
the same number of tokens). Two settings, each run side by side (alternating) ``--repeats`` times:

- ``distinct``: 16 different prompts, one completion each;
- ``grouped``: 4 prompts, 4 completions each (summary rollouts, best-of-N) — ``generate(num_return_sequences=4)``
  against ``generate_texts(n=4)``.

Records (``DIR/results.json``, the bench harness's format): ``benchmark="generation"``, ``metric="tokens_per_s"``
(new tokens / wall seconds, the median repeat), ``split`` = the setting, methods ``hf-generate-fp32`` and
``pluralign`` (the dtype ``load_causal_lm`` picks: bf16 where the CPU multiplies it natively, else fp32);
``tokens_per_cpu_s`` (new tokens / process CPU seconds, steadier on a shared machine); ``speedup``
(pluralign / hf, the median of per-repeat wall-time ratios), ``load_seconds`` (``first``: GGUF conversion +
load into an empty cache; ``cached``), and ``peak_rss_mb``. ``DIR/details.json`` keeps every repeat.

    .venv/bin/python benchmarks/generation.py --out runs/bench/generation
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarizer_prompts(tokenizer, count: int, target_tokens: int) -> list[str]:
    """PLUS summarizer queries (chat template + "##Summary" pre-fill) of simulated Pets users, trimmed to about
    ``target_tokens`` tokens by the number of labelled pairs shown."""
    from pluralign.sim.suites import build_suite
    from pluralign.summarizers.base import SUMMARY_MARKER, build_summarizer_prompt

    users = build_suite("pets", seed=0, quick=True).users
    out = []
    for u in users:
        best = None
        for pairs in range(1, 9):
            chat = [{"role": "user", "content": build_summarizer_prompt(u, max_pairs=pairs)}]
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            text += SUMMARY_MARKER + "\n"
            if best is None or abs(len(tokenizer(text)["input_ids"]) - target_tokens) < abs(best[1] - target_tokens):
                best = (text, len(tokenizer(text)["input_ids"]))
        out.append(best[0])
        if len(out) == count:
            return out
    raise ValueError(f"the pets suite has fewer than {count} users")


def time_hf(model, tokenizer, prompts: list[str], n: int, new_tokens: int, seed: int) -> float:
    import torch

    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)
    c0, t0 = time.process_time(), time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape == (len(prompts) * n, enc["input_ids"].shape[1] + new_tokens), out.shape
    return wall, cpu


def time_ours(model, tokenizer, prompts: list[str], n: int, new_tokens: int, seed: int) -> float:
    from pluralign.models.generation import encode_prompts, sample_tokens

    ids = encode_prompts(tokenizer, prompts)
    c0, t0 = time.process_time(), time.perf_counter()
    out = sample_tokens(model, ids, n=n, max_new_tokens=new_tokens, temperature=1.0, seed=seed,
                        batch_size=len(prompts) * n, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id, stop_at_eos=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(len(seqs) == n and all(len(s) == new_tokens for s in seqs) for seqs in out)
    return wall, cpu


def measure_load(keep_cache: bool) -> tuple[float, float, str]:
    """(first load incl. GGUF conversion into an empty cache, cached load, the converted dir)."""
    from pluralign.models.llm import load_causal_lm

    tmp = tempfile.mkdtemp(prefix="pluralign-cache-")
    old = os.environ.get("PLURALIGN_CACHE")
    os.environ["PLURALIGN_CACHE"] = tmp
    try:
        t0 = time.perf_counter()
        load_causal_lm()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_causal_lm()
        cached = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("PLURALIGN_CACHE", None)
        else:
            os.environ["PLURALIGN_CACHE"] = old
        if not keep_cache:
            shutil.rmtree(tmp, ignore_errors=True)
    return first, cached, tmp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (results.json, report.md, details.json)")
    ap.add_argument("--model", default=None, help="model name/path (default: the embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--batch", type=int, default=16, help="sequences per batch")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--prompt-tokens", type=int, default=280, help="approximate prompt length")
    ap.add_argument("--group", type=int, default=4, help="completions per prompt in the 'grouped' setting")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--skip-first-load", action="store_true", help="do not time the GGUF conversion")
    args = ap.parse_args(argv)

    import torch

    from pluralign.evaluation.results import Result, write_results
    from pluralign.models.llm import load_causal_lm, resolve_dtype

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    records: list[Result] = []
    details: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                                 "torch": torch.__version__, "fast_bf16": str(resolve_dtype("auto"))},
                     "load_avg_start": os.getloadavg(), "repeats": {}}
    if not args.skip_first_load and args.model is None:
        first, cached, _ = measure_load(keep_cache=False)
        records += [Result("generation", "pluralign", "first", "load_seconds", first, 1, seconds=first),
                    Result("generation", "pluralign", "cached", "load_seconds", cached, 1, seconds=cached)]
        print(f"load: first (conversion) {first:.1f} s, cached {cached:.1f} s", flush=True)

    fp32, tok = load_causal_lm(args.model, dtype="float32")
    ours = fp32 if resolve_dtype("auto") == torch.float32 else load_causal_lm(args.model, dtype="auto")[0]
    details["pluralign_dtype"] = str(next(ours.parameters()).dtype)
    settings = {"distinct": (args.batch, 1), "grouped": (args.batch // args.group, args.group)}
    prompts = summarizer_prompts(tok, args.batch, args.prompt_tokens)
    lengths = [len(tok(p)["input_ids"]) for p in prompts]
    details["prompt_tokens"] = {"min": min(lengths), "max": max(lengths), "mean": statistics.mean(lengths)}
    print(f"prompts: {details['prompt_tokens']}, pluralign dtype {details['pluralign_dtype']}", flush=True)
    time_ours(ours, tok, prompts[:2], 1, 4, 0)  # warm-up (allocator, kernels) for both sides
    time_hf(fp32, tok, prompts[:2], 1, 4, 0)
    for split, (n_prompts, n) in settings.items():
        walls: dict[str, list[float]] = {"hf-generate-fp32": [], "pluralign": []}
        cpus: dict[str, list[float]] = {"hf-generate-fp32": [], "pluralign": []}
        for r in range(args.repeats):
            for method in (["hf-generate-fp32", "pluralign"] if r % 2 == 0 else ["pluralign", "hf-generate-fp32"]):
                fn, model = (time_hf, fp32) if method == "hf-generate-fp32" else (time_ours, ours)
                wall, cpu = fn(model, tok, prompts[:n_prompts], n, args.new_tokens, seed=r)
                walls[method].append(wall)
                cpus[method].append(cpu)
                print(f"{split} repeat {r} {method}: {wall:.2f} s "
                      f"({n_prompts * n * args.new_tokens / wall:.1f} tokens/s; CPU {cpu:.1f} s), load {os.getloadavg()[0]:.1f}",
                      flush=True)
        tokens = n_prompts * n * args.new_tokens
        for method, ws in walls.items():
            med = statistics.median(ws)
            records.append(Result("generation", method, split, "tokens_per_s", tokens / med, tokens, seconds=med))
            cpu = statistics.median(cpus[method])  # steadier than wall time on a shared machine
            records.append(Result("generation", method, split, "tokens_per_cpu_s", tokens / cpu, tokens, seconds=cpu))
        ratios = [h / o for h, o in zip(walls["hf-generate-fp32"], walls["pluralign"], strict=True)]
        records.append(Result("generation", "pluralign", split, "speedup", statistics.median(ratios), len(ratios),
                              ci_low=min(ratios), ci_high=max(ratios)))
        details["repeats"][split] = {"walls": walls, "cpu": cpus, "ratios": ratios, "tokens": tokens}
    records.append(Result("generation", "all", "all", "peak_rss_mb", peak_rss_mb(), 1))
    details["load_avg_end"] = os.getloadavg()
    notes = [f"batch {args.batch}, {args.new_tokens} new tokens, prompts {details['prompt_tokens']} tokens, "
             f"pluralign dtype {details['pluralign_dtype']}; speedup = median of per-repeat ratios (ci = min..max)."]
    path = write_results(args.out, records, title="Generation: plain generate vs pluralign", notes=notes)
    (Path(args.out) / "details.json").write_text(json.dumps(details, indent=1))
    for r in records:
        print(f"{r.split:>9} {r.method:>17} {r.metric:>13} {r.value:9.2f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
