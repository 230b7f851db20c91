"""``pluralign bench``: train every personalisation method on a suite and score it on every split.

Suites: ``pets``, ``pets-ood``, ``hh-users``, ``contexts`` (simulated, :func:`pluralign.sim.build_suite`), ``polis``
(real Polis votes turned into per-user pairs, :mod:`pluralign.evaluation.polis_pairs`) and ``rluf`` (delegated to
:func:`pluralign.evaluation.rluf_suite.run_rluf_suite`).

Per method and split the run records ``accuracy`` (95% bootstrap CI over pairs) and ``tokens_per_pair``; per method
``train_seconds`` (wall time of ``fit``) and ``peak_rss_mb`` (peak resident memory of this process while the method
was fitted and scored; it includes what the process already held, e.g. the suite). Methods may add their own
metrics (ICL: ``truncated_share``, ``tokens_cut_per_pair``). Simulated suites also get method ``bayes``, from the
simulator's true ``p_chosen``:

- ``bayes`` / ``accuracy``: accuracy on these very labels of the Bayes-optimal decision (pick the side with
  p > 0.5; p = 0.5 counts half). Directly comparable to the methods' accuracy (same pairs, same realised labels).
- ``bayes`` / ``expected_accuracy``: mean of max(p, 1 - p), the Bayes decision's accuracy in expectation over the
  simulator's label noise (what the realised figure estimates).

Everything is seeded; eval splits larger than ``max_eval_per_split`` are subsampled (seeded) to bound CPU time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from pluralign.data.splits import Example, SplitResult
from pluralign.evaluation.metrics import accuracy_result
from pluralign.evaluation.results import Result, mean_result, render_markdown, write_results

log = logging.getLogger(__name__)

SIMULATED_SUITES = ("pets", "pets-ood", "hh-users", "contexts", "attributes")
SUITES = (*SIMULATED_SUITES, "polis", "rluf")
DEFAULT_METHODS = {"simulated": ["bt", "icl", "oracle", "latent"], "polis": ["bt", "icl", "group", "latent"]}


# --- resources -----------------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # psutil is optional: fall back to the kernel's lifetime peak (coarser)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """Samples this process's RSS in a background thread; ``peak_mb`` is the highest value seen while active."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak_mb = _rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


# --- suites ----------------------------------------------------------------------------------------------------


def subsample(examples: list[Example], k: int | None, seed: int) -> list[Example]:
    if k is None or len(examples) <= k:
        return examples
    idx = sorted(random.Random(seed).sample(range(len(examples)), k))
    return [examples[i] for i in idx]


def build_simulated_split(name: str, *, seed: int, quick: bool) -> SplitResult:
    from pluralign.data.splits import make_splits
    from pluralign.sim import build_suite

    suite = build_suite(name, seed=seed, quick=quick)
    if name == "attributes":  # contexts are the pool-A pairs, targets the pool-B pairs (unseen wording)
        from pluralign.sim.attributes import attributes_splits

        return attributes_splits(suite.users, seed=seed, seen_eval_frac=0.3)
    fixed = list(suite.new_user_ids) if suite.new_user_ids else None
    # Three context pairs per user and 30% of the rest held out as seen-users leave most pairs for training.
    return make_splits(suite.users, seed=seed, new_user_ids=fixed, context_size=3, seen_eval_frac=0.3)


def build_polis_split(polis_dir: str | os.PathLike, *, seed: int, quick: bool) -> SplitResult:
    from pluralign.evaluation.polis_pairs import load_polis_pair_users, polis_splits

    users = load_polis_pair_users(polis_dir, seed=seed, min_pairs=4, max_pairs=8 if quick else 12,
                                  max_users_per_conversation=16 if quick else 80)
    if not users:
        raise ValueError(f"{polis_dir}: no Polis participant has enough agree and disagree votes for pairs")
    return polis_splits(users, seed=seed, context_size=3 if quick else 4)


CONTEXT_SOURCES = ("all", "pairs", "conversations", "profile")


def restrict_context(split: SplitResult, source: str) -> SplitResult:
    """Keep only one kind of user history in every example's context (targets untouched): ``pairs`` (labelled
    choices), ``conversations`` (unlabelled past chats) or ``profile`` (the self-description); ``all`` keeps it all.

    This is how the bench tests PLUS's claim that summaries help when the history is not preference labels."""
    if source not in CONTEXT_SOURCES:
        raise ValueError(f"context source must be one of {', '.join(CONTEXT_SOURCES)}, got {source!r}")
    if source == "all":
        return split
    drop = {"pairs": {"conversations": [], "profile": None, "reactions": []},
            "conversations": {"pairs": [], "profile": None, "reactions": []},
            "profile": {"pairs": [], "conversations": [], "reactions": []}}[source]
    cache: dict[int, Any] = {}

    def fix(examples: list[Example]) -> list[Example]:
        out = []
        for e in examples:
            ctx = cache.setdefault(id(e.context), e.context.model_copy(update=drop))
            out.append(replace(e, context=ctx))
        return out

    return replace(split, train=fix(split.train), eval={k: fix(v) for k, v in split.eval.items()})


def bayes_results(benchmark: str, split: SplitResult, seed: int = 0) -> list[Result]:
    """The simulator's Bayes rate per split (see the module docstring for exactly what is reported)."""
    out = []
    for name, examples in split.eval.items():
        ps = [e.target.p_chosen for e in examples]
        if not examples or any(p is None for p in ps):
            continue
        p = np.asarray(ps, dtype=float)
        out.append(accuracy_result(benchmark, "bayes", name, p - 0.5, seed=seed))
        out.append(mean_result(benchmark, "bayes", name, "expected_accuracy", np.maximum(p, 1 - p), seed=seed))
    return out


# --- methods ---------------------------------------------------------------------------------------------------


def bench_rm_config(quick: bool, rm_config: Any = None):
    """RMConfig used by every RM-based method: the trainer's defaults, with a step budget fit for 2 CPU cores."""
    from pluralign.training.rm_config import RMConfig

    if rm_config is not None:
        return rm_config
    if quick:
        return RMConfig(max_length=160, max_steps=30, batch_size=8, lr=1e-4)
    return RMConfig(max_length=256, max_steps=300, batch_size=16, lr=5e-5)


def resolve_methods(methods: Sequence[str] | None, kind: str, *, has_groups: bool,
                    has_summaries: bool) -> list[str]:
    from pluralign.evaluation.methods import available_methods

    if methods is None:
        chosen = list(DEFAULT_METHODS[kind])
        if kind == "simulated" and has_groups:
            chosen.append("group")
        if has_summaries:
            chosen.append("summary")
        return chosen
    unknown = [m for m in methods if m not in available_methods()]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)} (available: {', '.join(available_methods())})")
    if kind == "polis" and "oracle" in methods:
        raise ValueError("oracle needs the true persona: it runs on simulated suites only, not on polis")
    return list(methods)


def run_method(benchmark: str, method: Any, split: SplitResult, eval_sets: dict[str, list[Example]], *,
               seed: int, progress: Callable[[str], None] | None = None) -> list[Result]:
    """Fit one method on ``split.train`` and score it on every non-empty eval set."""
    results: list[Result] = []
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        method.fit(split.train, seed=seed)
        train_s = time.perf_counter() - t0
        for name, examples in eval_sets.items():
            if not examples:
                continue
            if progress:
                progress(f"{method.name}: scoring {name} ({len(examples)} pairs)")
            t1 = time.perf_counter()
            margins = method.score_pairs(examples)
            score_s = time.perf_counter() - t1
            if len(margins) != len(examples):
                raise RuntimeError(f"{method.name}: score_pairs returned {len(margins)} margins for "
                                   f"{len(examples)} examples")
            results.append(accuracy_result(benchmark, method.name, name, margins, seconds=score_s, seed=seed))
            results.append(Result(benchmark, method.name, name, "tokens_per_pair",
                                  float(method.tokens_per_pair(examples)), len(examples)))
            extra = getattr(method, "extra_metrics", None)
            for metric, value in (extra(examples) if extra else {}).items():
                results.append(Result(benchmark, method.name, name, metric, float(value), len(examples)))
    results.append(Result(benchmark, method.name, "all", "train_seconds", train_s, len(split.train), seconds=train_s))
    results.append(Result(benchmark, method.name, "all", "peak_rss_mb", mem.peak_mb, len(split.train)))
    return results


def _method_file(out: Path, method: str) -> Path:
    return out / "methods" / f"{method}.json"


def _load_method(out: Path, method: str, fingerprint: dict) -> list[Result] | None:
    """A finished method's results from an earlier run with the same settings (None: run it)."""
    path = _method_file(out, method)
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("fingerprint") != fingerprint:
        log.info("%s: settings changed since %s was written; re-running", method, path)
        return None
    return [Result(**r) for r in saved["results"]]


def _save_method(out: Path, method: str, fingerprint: dict, results: list[Result]) -> None:
    """Written as soon as a method finishes (atomically), so a stopped bench resumes with the next method."""
    path = _method_file(out, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "results": [asdict(r) for r in results]}, default=str),
                   encoding="utf-8")
    os.replace(tmp, path)


def run_suite(name: str, out_dir: str | os.PathLike, quick: bool = False, methods: Sequence[str] | None = None,
              seed: int = 0, polis_dir: str | os.PathLike | None = None, *, summaries: Any = None,
              summarizer: Any = None, rm_config: Any = None, max_eval_per_split: int | None = None,
              context_source: str = "all", plus_overrides: list[str] | None = None, resume: bool = True,
              echo: bool = True) -> list[Result]:
    """Run suite ``name``; write ``results.json`` and ``report.md`` into ``out_dir``; return the records.

    ``summaries`` (a file path or user_id → summary mapping) or ``summarizer`` enables the ``summary`` method.
    ``rm_config`` replaces the bench's RMConfig for every RM-based method. ``context_source`` restricts what methods
    see of each user's history (:func:`restrict_context`). ``plus_overrides`` (``key=value``) change the
    PlusConfig of ``plus``/``plus-untrained``. Each finished method is saved to
    ``out_dir/methods/<method>.json``; with ``resume`` a re-run with the same settings reuses those and trains only
    the rest. Inputs are checked (suite, methods,
    summaries, Polis folder) before anything is trained or written.
    """
    from rich.console import Console

    console = Console(stderr=True, quiet=not echo)
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r} (available: {', '.join(SUITES)})")
    out = Path(out_dir)
    if name == "rluf":
        from pluralign.evaluation.rluf_suite import run_rluf_suite

        results = list(run_rluf_suite(out, quick, seed) or [])
        if results and not (out / "results.json").exists():
            write_results(out, results, title="pluralign bench: rluf")
        return results

    if context_source not in CONTEXT_SOURCES:
        raise ValueError(f"--context-source must be one of {', '.join(CONTEXT_SOURCES)}, got {context_source!r}")
    kind = "polis" if name == "polis" else "simulated"
    if kind == "polis" and polis_dir is None:
        raise ValueError("the polis suite needs --polis-dir: a folder of Polis open-data conversations")
    if kind == "polis" and not Path(polis_dir).is_dir():
        raise FileNotFoundError(f"{polis_dir}: Polis folder does not exist")
    if summaries is not None and not isinstance(summaries, dict):
        from pluralign.evaluation.methods.summary import load_summaries

        summaries = load_summaries(summaries)  # fail on a bad file before any training
    has_summaries = summaries is not None or summarizer is not None
    if methods is not None:  # explicit choices are checked before the (slow) suite is built
        resolve_methods(methods, kind, has_groups=False, has_summaries=has_summaries)
        if "summary" in methods and not has_summaries:
            raise ValueError("method summary needs --summaries FILE (or a summarizer)")

    t_start = time.perf_counter()
    with console.status(f"building suite {name}"):
        split = (build_polis_split(polis_dir, seed=seed, quick=quick) if kind == "polis"
                 else build_simulated_split(name, seed=seed, quick=quick))
        split = restrict_context(split, context_source)
    users_have_groups = any(e.context.group for e in split.train)
    chosen = resolve_methods(methods, kind, has_groups=users_have_groups, has_summaries=has_summaries)
    cap = max_eval_per_split if max_eval_per_split is not None else (100 if quick else 600)
    eval_sets = {s: subsample(ex, cap, seed) for s, ex in split.eval.items() if ex}
    console.print(f"[bold]{name}[/] (context: {context_source}): train {len(split.train)} pairs; eval "
                  + ", ".join(f"{s} {len(ex)}" for s, ex in eval_sets.items()) + f"; methods {', '.join(chosen)}")

    from pluralign.evaluation.methods import make_method

    cfg = bench_rm_config(quick, rm_config)
    options = {"quick": quick, "summaries": summaries, "summarizer": summarizer, "plus_overrides": plus_overrides}
    built = [make_method(m, rm_config=replace(cfg), **options) for m in chosen]  # fail fast on bad options

    results: list[Result] = []
    if kind == "simulated":
        results += bayes_results(name, replace(split, eval=eval_sets), seed=seed)
    from tqdm.auto import tqdm

    fingerprint = {"suite": name, "quick": quick, "seed": seed, "polis_dir": str(polis_dir), "eval_cap": cap,
                   "context_source": context_source, "rm": json.loads(json.dumps(asdict(cfg), default=str)),
                   "summaries": summaries is not None, "summarizer": summarizer is not None,
                   "plus": sorted(plus_overrides or [])}
    bar = tqdm(total=len(built), desc=f"bench {name}", unit="method", disable=not echo)
    while built:
        method = built.pop(0)  # dropped after its run, so only one trained model is held at a time
        bar.set_postfix_str(method.name)
        done = _load_method(out, method.name, fingerprint) if resume else None
        if done is None:
            done = run_method(name, method, split, eval_sets, seed=seed,
                              progress=(lambda msg: bar.set_postfix_str(msg)) if echo else None)
            _save_method(out, method.name, fingerprint, done)
        else:
            console.print(f"{method.name}: reusing {_method_file(out, method.name)}")
        results += done
        bar.update(1)
    bar.close()
    title = f"{name}{' (quick)' if quick else ''}{'' if context_source == 'all' else f', context: {context_source}'}"
    write_results(out, results, title=f"pluralign bench: {title}")
    if echo:
        print(render_markdown([r.__dict__ for r in results if r.metric in ("accuracy", "tokens_per_pair",
                                                                       "train_seconds", "peak_rss_mb")],
                              title))
        console.print(f"wrote {out / 'results.json'} and {out / 'report.md'} in "
                      f"{time.perf_counter() - t_start:.0f}s")
    return results


def evaluate_checkpoint(model_dir: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike, *,
                        summaries: Any = None, seed: int = 0, benchmark: str = "eval",
                        batch_size: int = 64) -> list[Result]:
    """Score a saved SummaryConditionedRM on a feedback file (``pluralign eval``); write and return the records.

    Pairwise ``accuracy`` on every user's ``targets``, grouped by ``target.meta["split"]`` (else ``all``); ``auroc``
    of the reward against binary reactions (value 0/1, kind other than ``vote``), grouped the same way. Each user is
    conditioned on their summary when ``summaries`` has one. Inputs are all checked before anything is written.
    """
    from pluralign.data.io import read_users
    from pluralign.evaluation.methods.summary import load_summaries
    from pluralign.evaluation.metrics import auroc_result
    from pluralign.models.reward_model import SummaryConditionedRM
    from pluralign.training.rm_trainer import bf16_supported

    users = read_users(data)
    by_user = (summaries if isinstance(summaries, dict) else load_summaries(summaries)) if summaries else {}
    pairs: dict[str, list[tuple[str | None, Any]]] = {}
    reactions: dict[str, list[tuple[str | None, Any]]] = {}
    for u in users:
        s = by_user.get(u.user_id)
        for t in u.targets:
            pairs.setdefault(str(t.meta.get("split") or "all"), []).append((s, t))
        for r in u.reactions:
            if r.kind != "vote" and r.value in (0.0, 1.0):
                reactions.setdefault(str(r.meta.get("split") or "all"), []).append((s, r))
    if not pairs and not reactions:
        raise ValueError(f"{data}: nothing to evaluate: no user has 'targets' (held-out pairs) or binary reactions")
    model = SummaryConditionedRM.from_pretrained(model_dir)
    dtype = "bf16" if bf16_supported(model.device) else "fp32"

    def score(prompts, responses, summ):
        return np.asarray(model.score(prompts, responses, summ, batch_size=batch_size, dtype=dtype), dtype=float)

    results: list[Result] = []
    for split, items in pairs.items():
        summ = [s for s, _ in items]
        prompts = [t.prompt for _, t in items]
        t0 = time.perf_counter()
        margins = score(prompts, [t.chosen for _, t in items], summ) - score(prompts, [t.rejected for _, t in items],
                                                                            summ)
        results.append(accuracy_result(benchmark, "rm", split, margins, seconds=time.perf_counter() - t0, seed=seed))
    for split, items in reactions.items():
        t0 = time.perf_counter()
        rewards = score([r.prompt for _, r in items], [r.response for _, r in items], [s for s, _ in items])
        results.append(auroc_result(benchmark, "rm", split, [r.value for _, r in items], rewards,
                                    seconds=time.perf_counter() - t0, seed=seed))
    write_results(out_dir, results, title=f"pluralign eval: {model_dir} on {data}")
    return results


def accuracy_of(results: Sequence[Result], method: str, split: str) -> float:
    """Convenience for tests and reports: the accuracy value recorded for (method, split), NaN if absent."""
    for r in results:
        if r.method == method and r.split == split and r.metric == "accuracy":
            return r.value
    return math.nan


__all__ = ["SUITES", "PeakMemory", "accuracy_of", "bayes_results", "evaluate_checkpoint", "run_method", "run_suite"]
