"""``pluralign bench``: train every personalisation method on a suite and score it on every split.

Suites: ``pets``, ``pets-ood``, ``hh-users``, ``contexts`` (simulated, :func:`pluralign.sim.build_suite`), ``polis``
(real Polis votes turned into per-user pairs, :mod:`pluralign.evaluation.polis_pairs`) and ``rluf`` (delegated to
:func:`pluralign.evaluation.rluf_suite.run_rluf_suite`).

Per method and split the run records ``accuracy`` (95% CI: a cluster bootstrap over users, ``ci_unit="user"``, with
``n_users`` beside ``n``) and ``tokens_per_pair``; per method
``train_seconds`` (wall time of ``fit``) and ``peak_rss_mb`` (peak resident memory of this process while the method
was fitted and scored; it includes what the process already held, e.g. the suite). Methods may add their own
metrics (ICL: ``truncated_share``, ``tokens_cut_per_pair``). Simulated suites also get method ``bayes``, from the
simulator's true ``p_chosen``:

- ``bayes`` / ``accuracy``: accuracy on these very labels of the Bayes-optimal decision (pick the side with
  p > 0.5; p = 0.5 counts half). Directly comparable to the methods' accuracy (same pairs, same realised labels).
- ``bayes`` / ``expected_accuracy``: mean of max(p, 1 - p), the Bayes decision's accuracy in expectation over the
  simulator's label noise (what the realised figure estimates).

Honest by construction:

- ``keyword`` (:mod:`pluralign.evaluation.methods.keyword`), a non-learned rule over the user's visible context, runs
  in every suite: the floor. Every learned method is compared with it and with ``bt`` *paired* (same users, same
  pairs): records ``metric="accuracy_diff"``, ``method="<method>-vs-keyword"`` / ``"<method>-vs-bt"``, value = the
  method's accuracy minus the other's, with the cluster-bootstrap CI of the difference.
- Methods never see the truth: :func:`pluralign.data.splits.hide_truth` strips personas, ground-truth ``meta`` and
  true probabilities from every example; ``oracle`` and ``bayes`` read them from ``split.truth``.
- A ``validation`` split (training users carved out by :func:`pluralign.data.splits.carve_validation`) is what
  tuning reads (``latent`` early-stops on it; budgets such as ``--set rm.max_steps`` are chosen on its records); it is
  recorded as split ``validation``. The test splits are scored once per run.
- ``seeds=[0, 1, 2]`` (``--seeds 0,1,2``) runs everything per seed (suite, split, training, bootstrap) and adds
  across-seed records (``seeds``, ``seed_sd``, ``seed_min``, ``seed_max``; value = mean of the per-seed values; the
  CI pooled by redrawing users within each seed). Per-seed records carry ``seed``.

Everything is seeded; eval splits larger than ``max_eval_per_split`` are subsampled (seeded) to bound CPU time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from tqdm.auto import tqdm

from pluralign.data.io import read_users
from pluralign.evaluation.methods import available_methods, make_method
from pluralign.evaluation.methods.base import bench_rm_config
from pluralign.evaluation.methods.summary import load_summaries
from pluralign.evaluation.metrics import accuracy_result, auroc_result
from pluralign.evaluation.polis_pairs import (
    curve_count_records,
    curve_counts,
    plot_context_curve,
    tag_context_votes,
)
from pluralign.evaluation.ratings_pairs import load_ratings_split
from pluralign.evaluation.report import render_markdown
from pluralign.evaluation.results import (
    Result,
    write_results,
)
from pluralign.evaluation.rluf_suite import run_rluf_suite
from pluralign.evaluation.seed_stats import (
    aggregate_seeds,
    diff_items,
    paired_diffs,
)
from pluralign.evaluation.stages import PeakMemory, StageCache, method_stage, run_method
from pluralign.evaluation.suite_splits import (
    CONTEXT_SOURCES,
    VALIDATION_FRAC,
    bayes_results,
    build_polis_split,
    build_simulated_split,
    eval_cap,
    restrict_context,
    subsample,
)
from pluralign.models.backbone import resolve_backbone
from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.training.precision import bf16_supported
from pluralign.training.rm_config import RMConfig

log = logging.getLogger(__name__)

SIMULATED_SUITES = ("pets", "pets-ood", "hh-users", "contexts", "attributes")
SUITES = (*SIMULATED_SUITES, "polis", "ratings", "rluf")
FLOOR = "keyword"
# Simulated suites run PLUS by default (its three summarizers: the RL-trained LLM, the same LLM zero-shot and the
# extractive one): they are what the suites exist to test. On real data the LLM loop over thousands of users is
# hours of CPU, so there the plus methods are asked for by name.
DEFAULT_METHODS = {"simulated": [FLOOR, "bt", "icl", "oracle", "latent", "plus-extractive", "plus-untrained", "plus"],
                   "polis": [FLOOR, "bt", "icl", "group", "latent"],
                   "ratings": [FLOOR, "bt", "icl", "latent"]}


# --- methods ---------------------------------------------------------------------------------------------------


def resolve_methods(methods: Sequence[str] | None, kind: str, *, has_groups: bool,
                    has_summaries: bool) -> list[str]:
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
    if kind in ("polis", "ratings") and "oracle" in methods:
        raise ValueError(f"oracle needs the true persona: it runs on simulated suites only, not on {kind}")
    # The floor runs in every suite (it costs nothing): a learned method's figure means little without it.
    return list(dict.fromkeys([FLOOR, *methods]))


def run_suite(name: str, out_dir: str | os.PathLike, quick: bool = False, methods: Sequence[str] | None = None,
              seed: int = 0, polis_dir: str | os.PathLike | None = None, *, summaries: Any = None,
              summarizer: Any = None, rm_config: RMConfig | None = None, max_eval_per_split: int | None = None,
              context_source: str = "all", plus_overrides: list[str] | None = None, resume: bool = True,
              echo: bool = True, seeds: Sequence[int] | None = None, context_votes: Sequence[int] | None = None,
              data: str | os.PathLike | None = None, objective_rm: str = "head") -> list[Result]:
    """Run suite ``name``; write ``results.json`` and ``report.md`` into ``out_dir``; return the records.

    ``seeds`` (default ``[seed]``) runs the whole suite once per seed (records carry ``seed``) and, with more than
    one, adds the across-seed records (see the module docstring). ``summaries`` (a file path or user_id → summary
    mapping) or ``summarizer`` enables the ``summary`` method. ``rm_config`` replaces the bench's RMConfig for
    every RM-based method. ``context_source`` restricts what methods see of each user's history
    (:func:`restrict_context`). ``plus_overrides`` (``key=value``) change the PlusConfig of
    ``plus``/``plus-untrained``. Each finished method is saved to ``out_dir/methods/seed<S>/<method>.json``; with
    ``resume`` a re-run with the same settings reuses those and trains only the rest. ``context_votes`` (polis
    only) adds the few-shot curve: new users scored at each number of context votes, records with
    ``context_votes``, a plot in the report. ``data`` is the ratings suite's feedback file (``pluralign data convert
    ratings``). ``objective_rm`` (rluf only) picks the policies' helpfulness and safety RMs
    (:func:`pluralign.evaluation.rluf_policy.build_objectives`). Inputs are checked (suite, methods, summaries, Polis folder, ratings file) before anything is
    trained or written.
    """
    console = Console(stderr=True, quiet=not echo)
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r} (available: {', '.join(SUITES)})")
    seeds = list(seeds) if seeds is not None else [seed]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, got {seeds}")
    out = Path(out_dir)
    if objective_rm != "head":
        if name != "rluf":
            raise ValueError(f"objective_rm is a setting of the rluf suite, not of {name!r}")
        resolve_backbone(objective_rm)  # a missing backbone fails now, not after P[Love] has trained
    if name == "rluf":
        results = list(run_rluf_suite(out, quick, seeds[0], objective_rm=objective_rm) or [])
        if results and not (out / "results.json").exists():
            write_results(out, results, title="pluralign bench: rluf")
        return results

    if context_source not in CONTEXT_SOURCES:
        raise ValueError(f"--context-source must be one of {', '.join(CONTEXT_SOURCES)}, got {context_source!r}")
    kind = name if name in ("polis", "ratings") else "simulated"
    if context_votes and kind != "polis":
        raise ValueError("--context-votes applies to the polis suite only (real users' vote counts)")
    if kind == "ratings" and data is None:
        raise ValueError("the ratings suite needs --data FILE: a feedback file from 'pluralign data convert ratings'")
    if kind == "ratings" and not Path(data).is_file():
        raise FileNotFoundError(f"{data}: ratings feedback file does not exist")
    if kind == "polis" and polis_dir is None:
        raise ValueError("the polis suite needs --polis-dir: a folder of Polis open-data conversations")
    if kind == "polis" and not Path(polis_dir).is_dir():
        raise FileNotFoundError(f"{polis_dir}: Polis folder does not exist")
    if summaries is not None and not isinstance(summaries, dict):
        summaries = load_summaries(summaries)  # fail on a bad file before any training
    has_summaries = summaries is not None or summarizer is not None
    if methods is not None:  # explicit choices are checked before the (slow) suite is built
        resolve_methods(methods, kind, has_groups=False, has_summaries=has_summaries)
        if "summary" in methods and not has_summaries:
            raise ValueError("method summary needs --summaries FILE (or a summarizer)")

    t_start = time.perf_counter()
    per_seed: dict[int, list[Result]] = {}
    per_seed_items: dict[int, dict] = {}
    notes: list[str] = []
    for s in seeds:
        per_seed[s], per_seed_items[s], seed_notes = _run_seed(
            name, kind, out, s, quick=quick, methods=methods, polis_dir=polis_dir, summaries=summaries,
            summarizer=summarizer, rm_config=rm_config, max_eval_per_split=max_eval_per_split,
            context_source=context_source, plus_overrides=plus_overrides, resume=resume, echo=echo,
            console=console, has_summaries=has_summaries, context_votes=context_votes, data=data)
        notes += [n for n in seed_notes if n not in notes]
    results = [r for s in seeds for r in per_seed[s]]
    if len(seeds) > 1:
        results += aggregate_seeds(name, per_seed, per_seed_items)
    if context_votes:  # the few-shot curve: records of new-users@k=K splits carry K, and a plot joins the report

        tag_context_votes(results)
        png = plot_context_curve(results, out / "polis_context_votes.png", title=f"{name}: new users")
        if png is not None:
            notes.append(f"![new-users accuracy against context votes]({png.name})")
    title = f"{name}{' (quick)' if quick else ''}{'' if context_source == 'all' else f', context: {context_source}'}"
    if len(seeds) > 1:
        title += f", seeds {','.join(map(str, seeds))}"
    write_results(out, results, title=f"pluralign bench: {title}", notes=notes)
    if echo:
        shown = [r for r in results if (r.seeds is not None or len(seeds) == 1)]
        print(render_markdown([r.__dict__ for r in shown if r.metric in ("accuracy", "accuracy_diff",
                                                                          "tokens_per_pair", "train_seconds",
                                                                          "peak_rss_mb")], title, notes=notes))
        console.print(f"wrote {out / 'results.json'} and {out / 'report.md'} in "
                      f"{time.perf_counter() - t_start:.0f}s")
    return results


def _run_seed(name: str, kind: str, out: Path, seed: int, *, quick: bool, methods: Sequence[str] | None,
              polis_dir: Any, summaries: Any, summarizer: Any, rm_config: RMConfig | None, max_eval_per_split: int | None,
              context_source: str, plus_overrides: list[str] | None, resume: bool, echo: bool, console: Any,
              has_summaries: bool, context_votes: Sequence[int] | None = None,
              data: str | os.PathLike | None = None) -> tuple[list[Result], dict, list[str]]:
    """One seed of :func:`run_suite`: build and split the suite, run every method, add the paired comparisons.
    Returns the records (each with ``seed``), the per-pair scores by metric → method → split, and report notes."""
    with console.status(f"building suite {name} (seed {seed})"):
        if kind == "polis":
            split = build_polis_split(polis_dir, seed=seed, quick=quick, context_votes=context_votes)
        elif kind == "ratings":
            split = load_ratings_split(data, seed=seed, quick=quick, validation_frac=VALIDATION_FRAC)
        else:
            split = build_simulated_split(name, seed=seed, quick=quick)
        split = restrict_context(split, context_source)
    users_have_groups = any(e.context.group for e in split.train)
    chosen = resolve_methods(methods, kind, has_groups=users_have_groups, has_summaries=has_summaries)
    cap = eval_cap(quick, max_eval_per_split)
    eval_sets = {s: subsample(ex, cap, seed) for s, ex in split.eval.items() if ex}
    console.print(f"[bold]{name}[/] seed {seed} (context: {context_source}): train {len(split.train)} pairs, "
                  f"validation {len(split.validation)} pairs of {len(split.validation_user_ids)} users; eval "
                  + ", ".join(f"{s} {len(ex)}" for s, ex in eval_sets.items()) + f"; methods {', '.join(chosen)}")

    cfg = bench_rm_config(quick, rm_config)
    options = {"quick": quick, "summaries": summaries, "summarizer": summarizer, "plus_overrides": plus_overrides}
    built = [make_method(m, rm_config=replace(cfg), **options) for m in chosen]  # fail fast on bad options

    results: list[Result] = []
    items: dict[str, dict] = {}  # method → metric → split → {"user_ids", "values"}
    if kind == "simulated":
        bayes_items: dict[str, dict] = {}
        results += bayes_results(name, replace(split, eval=eval_sets), seed=seed, items=bayes_items)
        items["bayes"] = bayes_items

    fingerprint = {"suite": name, "quick": quick, "seed": seed, "polis_dir": str(polis_dir), "eval_cap": cap,
                   "context_source": context_source, "rm": json.loads(json.dumps(asdict(cfg), default=str)),
                   "summaries": summaries is not None, "summarizer": summarizer is not None,
                   "plus": sorted(plus_overrides or []), "validation_frac": VALIDATION_FRAC,
                   "context_votes": list(context_votes or []), "data": str(data)}
    # Each finished method is saved at once (OUT/methods/seed<S>/<method>.json): a stopped bench resumes there.
    cache = StageCache(out / "methods" / f"seed{seed}", fingerprint, strict=False)
    bar = tqdm(total=len(built), desc=f"bench {name} seed {seed}", unit="method", disable=not echo)
    while built:
        method = built.pop(0)  # dropped after its run, so only one trained model is held at a time
        bar.set_postfix_str(method.name)
        stage = cache.load(method.name) if resume else None
        if stage is None:
            stage = cache.run(method.name, lambda method=method: method_stage(
                name, method, split, eval_sets, seed=seed, quick=quick, simulated=kind == "simulated",
                transfer_rm_config=replace(cfg), progress=(lambda msg: bar.set_postfix_str(msg)) if echo else None),
                resume=False)
        else:
            console.print(f"{method.name}: reusing {cache.path(method.name)}")
        recs, method_items = stage.results, stage.artefacts["items"]
        results += recs
        items[method.name] = method_items
        bar.update(1)
    bar.close()
    accuracy_items = {m: by_metric["accuracy"] for m, by_metric in items.items() if "accuracy" in by_metric}
    results += paired_diffs(name, accuracy_items, seed=seed)
    if context_votes:
        results += curve_count_records(name, curve_counts(split))
    for r in results:
        r.seed = seed
    by_metric: dict[str, dict] = {"accuracy": accuracy_items,
                                  "accuracy_diff": diff_items(accuracy_items)}
    for m, per_metric in items.items():  # bayes' expected_accuracy, plus's transfer win rates
        for metric, splits in per_metric.items():
            if metric != "accuracy":
                by_metric.setdefault(metric, {})[m] = splits
    notes = list(split.notes)
    if split.validation:
        notes.append(f"Validation (seed {seed}): {len(split.validation_user_ids)} training users "
                     f"({len(split.validation)} pairs) held out of training; tuning reads only them (records with "
                     "split `validation`), the test splits are scored once.")
    return results, by_metric, notes


def evaluate_checkpoint(model_dir: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike, *,
                        summaries: Any = None, seed: int = 0, benchmark: str = "eval",
                        batch_size: int = 64) -> list[Result]:
    """Score a saved SummaryConditionedRM on a feedback file (``pluralign eval``); write and return the records.

    Pairwise ``accuracy`` on every user's ``targets`` (CI over users), grouped by ``target.meta["split"]`` (else
    ``all``); ``auroc`` of the reward against binary reactions (value 0/1, kind other than ``vote``), grouped the
    same way. Each user is conditioned on their summary when ``summaries`` has one. Inputs are all checked before anything is written.
    """
    users = read_users(data)
    by_user = (summaries if isinstance(summaries, dict) else load_summaries(summaries)) if summaries else {}
    pairs: dict[str, list[tuple[str | None, Any]]] = {}
    pair_users: dict[str, list[str]] = {}  # the user of each pair: the accuracy CI resamples users
    reactions: dict[str, list[tuple[str | None, Any]]] = {}
    for u in users:
        s = by_user.get(u.user_id)
        for t in u.targets:
            pairs.setdefault(str(t.meta.get("split") or "all"), []).append((s, t))
            pair_users.setdefault(str(t.meta.get("split") or "all"), []).append(u.user_id)
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
        results.append(accuracy_result(benchmark, "rm", split, margins, seconds=time.perf_counter() - t0, seed=seed,
                                       user_ids=pair_users[split]))
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
