"""Batched sampling speed of the default LLM: plain fp32 ``model.generate`` vs pluralign's sampling path.

The workload is the one every later stage pays for: PLUS summarizer prompts of simulated users (about 280 tokens
with the chat template), a batch of 16 sequences, 48 new tokens each (EOS ignored, so both sides produce exactly
the same number of tokens). Two settings, each run side by side (alternating) ``--repeats`` times:

- ``distinct``: 16 different prompts, one completion each;
- ``grouped``: 4 prompts, 4 completions each (summary rollouts, best-of-N) — ``generate(num_return_sequences=4)``
  against ``generate_texts(n=4)``.

Records (``DIR/results.json``, the bench harness's format): ``benchmark="generation"``, ``metric="tokens_per_s"``
(new tokens / wall seconds, the median repeat), ``split`` = the setting, methods ``hf-generate-fp32``,
``pluralign`` (the dtype ``load_causal_lm`` picks: bf16 where the CPU multiplies it natively, else fp32; outputs
equivalent to plain ``generate``) and ``pluralign-int8`` (``load_causal_lm(quantize="int8")``: different outputs,
see the quality records); ``tokens_per_cpu_s`` (new tokens / process CPU seconds, steadier on a shared machine);
``speedup`` and ``speedup_cpu`` (method / hf, the median of per-repeat wall-time and CPU-time ratios),
``load_seconds`` (``first``: GGUF conversion + load into an empty cache; ``cached``), and ``peak_rss_mb``.
Quality (``split="quality"``, greedy decoding of the same prompts and lengths): ``greedy_identical_rows`` (rows
whose 48 greedy tokens equal plain fp32 ``generate``'s), ``greedy_matching_prefix`` (mean tokens before the first
difference), and, teacher-forced on fp32's greedy text, ``top1_agreement`` (share of positions where the method's
most likely token is fp32's) and ``perplexity`` of that text. ``DIR/details.json`` keeps every repeat.

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


def time_hf(model, tokenizer, prompts: list[str], n: int, new_tokens: int, seed: int) -> tuple[float, float]:
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


def time_ours(model, tokenizer, prompts: list[str], n: int, new_tokens: int, seed: int) -> tuple[float, float]:
    from pluralign.models.generation import encode_prompts, sample_tokens

    ids = encode_prompts(tokenizer, prompts)
    c0, t0 = time.process_time(), time.perf_counter()
    out = sample_tokens(model, ids, n=n, max_new_tokens=new_tokens, temperature=1.0, seed=seed,
                        batch_size=len(prompts) * n, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id, stop_at_eos=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(len(seqs) == n and all(len(s) == new_tokens for s in seqs) for seqs in out)
    return wall, cpu


def greedy_hf(model, tokenizer, prompts: list[str], new_tokens: int) -> list[list[int]]:
    import torch

    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             pad_token_id=tokenizer.pad_token_id)
    return out[:, enc["input_ids"].shape[1]:].tolist()


def greedy_ours(model, tokenizer, prompts: list[str], new_tokens: int) -> list[list[int]]:
    from pluralign.models.generation import encode_prompts, sample_tokens

    out = sample_tokens(model, encode_prompts(tokenizer, prompts), temperature=0, max_new_tokens=new_tokens,
                        batch_size=len(prompts), eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id, stop_at_eos=False)
    return [seqs[0] for seqs in out]


def teacher_forced(model, fp32, tokenizer, prompts: list[str], texts: list[list[int]]) -> tuple[float, float]:
    """(top-1 agreement with ``fp32``, perplexity) of ``model`` on the continuations ``texts`` of ``prompts``."""
    import math

    import torch

    agree = total = 0
    nll = 0.0
    with torch.inference_mode():
        for prompt, cont in zip(prompts, texts, strict=True):
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            x = torch.tensor([ids + cont])
            got = model(input_ids=x).logits[0, len(ids) - 1:-1].float()
            ref = got if model is fp32 else fp32(input_ids=x).logits[0, len(ids) - 1:-1].float()
            agree += int((got.argmax(-1) == ref.argmax(-1)).sum())
            total += len(cont)
            nll += float(torch.nn.functional.cross_entropy(got, torch.tensor(cont), reduction="sum"))
    return agree / total, math.exp(nll / total)


def matching_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


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
    ap.add_argument("--no-int8", action="store_true", help="skip the int8-quantised method")
    ap.add_argument("--no-quality", action="store_true", help="skip the greedy/teacher-forced quality checks")
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
    models = {"hf-generate-fp32": (time_hf, fp32), "pluralign": (time_ours, ours)}
    if not args.no_int8:
        models["pluralign-int8"] = (time_ours, load_causal_lm(args.model, quantize="int8")[0])
    settings = {"distinct": (args.batch, 1), "grouped": (args.batch // args.group, args.group)}
    prompts = summarizer_prompts(tok, args.batch, args.prompt_tokens)
    lengths = [len(tok(p)["input_ids"]) for p in prompts]
    details["prompt_tokens"] = {"min": min(lengths), "max": max(lengths), "mean": statistics.mean(lengths)}
    print(f"prompts: {details['prompt_tokens']}, pluralign dtype {details['pluralign_dtype']}", flush=True)
    for fn, model in models.values():  # warm-up (allocator, kernels) for every side
        fn(model, tok, prompts[:2], 1, 4, 0)
    methods = list(models)
    for split, (n_prompts, n) in settings.items():
        walls: dict[str, list[float]] = {m: [] for m in methods}
        cpus: dict[str, list[float]] = {m: [] for m in methods}
        for r in range(args.repeats):
            for method in (methods if r % 2 == 0 else methods[::-1]):
                fn, model = models[method]
                wall, cpu = fn(model, tok, prompts[:n_prompts], n, args.new_tokens, seed=r)
                walls[method].append(wall)
                cpus[method].append(cpu)
                print(f"{split} repeat {r} {method}: {wall:.2f} s "
                      f"({n_prompts * n * args.new_tokens / wall:.1f} tokens/s; CPU {cpu:.1f} s), "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
        tokens = n_prompts * n * args.new_tokens
        for method, ws in walls.items():
            med = statistics.median(ws)
            records.append(Result("generation", method, split, "tokens_per_s", tokens / med, tokens, seconds=med))
            cpu = statistics.median(cpus[method])  # steadier than wall time on a shared machine
            records.append(Result("generation", method, split, "tokens_per_cpu_s", tokens / cpu, tokens, seconds=cpu))
        for method in methods[1:]:
            for metric, times in (("speedup", walls), ("speedup_cpu", cpus)):
                ratios = [h / o for h, o in zip(times["hf-generate-fp32"], times[method], strict=True)]
                records.append(Result("generation", method, split, metric, statistics.median(ratios), len(ratios),
                                      ci_low=min(ratios), ci_high=max(ratios)))
        details["repeats"][split] = {"walls": walls, "cpu": cpus, "tokens": tokens}
    if not args.no_quality:
        reference = greedy_hf(fp32, tok, prompts, args.new_tokens)
        details["quality"] = {}
        for method in methods:
            model = models[method][1]
            greedy = reference if method == "hf-generate-fp32" else greedy_ours(model, tok, prompts, args.new_tokens)
            same = sum(g == ref for g, ref in zip(greedy, reference, strict=True))
            prefix = statistics.mean(matching_prefix(g, ref) for g, ref in zip(greedy, reference, strict=True))
            top1, ppl = teacher_forced(model, fp32, tok, prompts, reference)
            for metric, value in (("greedy_identical_rows", same), ("greedy_matching_prefix", prefix),
                                  ("top1_agreement", top1), ("perplexity", ppl)):
                records.append(Result("generation", method, "quality", metric, value, len(prompts)))
            details["quality"][method] = {"identical_rows": same, "matching_prefix": prefix, "top1": top1,
                                          "perplexity": ppl, "first_row": tok.decode(greedy[0])}
            print(f"quality {method}: greedy identical rows {same}/{len(prompts)}, matching prefix {prefix:.1f}, "
                  f"top-1 agreement {top1:.3f}, perplexity of fp32 greedy text {ppl:.3f}", flush=True)
    records.append(Result("generation", "all", "all", "peak_rss_mb", peak_rss_mb(), 1))
    details["load_avg_end"] = os.getloadavg()
    notes = [f"batch {args.batch}, {args.new_tokens} new tokens, prompts {details['prompt_tokens']} tokens, "
             f"pluralign dtype {details['pluralign_dtype']}; speedup = median of per-repeat ratios (ci = min..max); load average "
             f"{details['load_avg_start']} at the start, {os.getloadavg()} at the end."]
    path = write_results(args.out, records, title="Generation: plain generate vs pluralign", notes=notes)
    (Path(args.out) / "details.json").write_text(json.dumps(details, indent=1))
    for r in records:
        print(f"{r.split:>9} {r.method:>17} {r.metric:>13} {r.value:9.2f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
