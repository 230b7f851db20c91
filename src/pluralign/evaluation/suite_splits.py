"""The splits ``pluralign bench`` and the demo score: simulated suites and Polis with their validation users carved
out and the truth hidden, one-kind-of-history contexts, seeded subsampling, and the simulator's Bayes rate."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pluralign.data.splits import Example, SplitResult, carve_validation, hide_truth, make_splits
from pluralign.evaluation.metrics import accuracy_result, pair_correct
from pluralign.evaluation.polis_pairs import load_polis_split
from pluralign.evaluation.results import Result, mean_result
from pluralign.sim import build_suite
from pluralign.sim.attributes import attributes_splits

VALIDATION_FRAC = 0.15  # share of training users carved out as the validation split


def eval_cap(quick: bool, max_eval_per_split: int | None = None) -> int:
    """Scored pairs per split: ``max_eval_per_split`` when set, else 100 quick / 600 full."""
    return max_eval_per_split if max_eval_per_split is not None else (100 if quick else 600)


def subsample(examples: list[Example], k: int | None, seed: int) -> list[Example]:
    if k is None or len(examples) <= k:
        return examples
    idx = sorted(random.Random(seed).sample(range(len(examples)), k))
    return [examples[i] for i in idx]


def build_simulated_split(name: str, *, seed: int, quick: bool) -> SplitResult:
    suite = build_suite(name, seed=seed, quick=quick)
    if name == "attributes":  # contexts are the pool-A pairs, targets the pool-B pairs (unseen wording)

        split = attributes_splits(suite.users, seed=seed, seen_eval_frac=0.3)
    else:
        fixed = list(suite.new_user_ids) if suite.new_user_ids else None
        # Three context pairs per user and 30% of the rest held out as seen-users leave most pairs for training.
        split = make_splits(suite.users, seed=seed, new_user_ids=fixed, context_size=3, seen_eval_frac=0.3)
    # Validation users come out of training before anything is scored; the truth leaves what methods see.
    split = hide_truth(carve_validation(split, frac=VALIDATION_FRAC, seed=seed))
    if getattr(suite, "self_descriptions", ""):
        split.notes.append(suite.self_descriptions)
    return split


def build_polis_split(polis_dir: str | os.PathLike, *, seed: int, quick: bool,
                      context_votes: Sequence[int] | None = None) -> SplitResult:
    """The Polis split; with ``context_votes`` also the few-shot curve's ``new-users@k=K`` splits
    (:func:`pluralign.evaluation.polis_pairs.add_context_vote_curve`)."""
    split, _ = load_polis_split(polis_dir, seed=seed, quick=quick, context_votes=context_votes)
    return hide_truth(carve_validation(split, frac=VALIDATION_FRAC, seed=seed))


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

    out = replace(split, train=fix(split.train), eval={k: fix(v) for k, v in split.eval.items()},
                  validation=fix(split.validation))
    if source != "profile":  # without profiles, no note about how the profiles were written applies
        out.notes = [n for n in split.notes if "self-description" not in n]
    return out


def _true_p(split: SplitResult, e: Example) -> float | None:
    if split.truth is not None:
        return split.truth.p_chosen_of(e)
    return e.target.p_chosen  # a split whose truth was never hidden (built by hand)


def bayes_results(benchmark: str, split: SplitResult, seed: int = 0,
                  items: dict[str, dict] | None = None) -> list[Result]:
    """The simulator's Bayes rate per split (see the module docstring for exactly what is reported), read from the
    split's truth table. ``items``, when given, receives the per-pair values (for across-seed pooling)."""
    out = []
    for name, examples in split.eval.items():
        ps = [_true_p(split, e) for e in examples]
        if not examples or any(p is None for p in ps):
            continue
        p = np.asarray(ps, dtype=float)
        users = [e.user_id for e in examples]
        out.append(accuracy_result(benchmark, "bayes", name, p - 0.5, seed=seed, user_ids=users))
        out.append(mean_result(benchmark, "bayes", name, "expected_accuracy", np.maximum(p, 1 - p), seed=seed,
                               user_ids=users))
        if items is not None:
            items.setdefault("accuracy", {})[name] = {"user_ids": users, "values": pair_correct(p - 0.5).tolist()}
            items.setdefault("expected_accuracy", {})[name] = {"user_ids": users,
                                                               "values": np.maximum(p, 1 - p).tolist()}
    return out
