"""The stage layer: ``pluralign demo`` and ``pluralign bench`` are lists of the same stages.

A stage takes its inputs and returns a :class:`StageOutput`: ``results`` (the
:class:`~pluralign.evaluation.results.Result` records that go into ``results.json``) and ``artefacts`` (JSON-able
detail that a report or a later stage reads: per-pair scores, example texts, a saved model's folder, a training
log). A :class:`StageCache` keeps one JSON file per finished stage, so a stopped job resumes with the first stage
that has no file.

The stages:

- :func:`method_stage`: fit one personalisation method and score every split (``bench pets|pets-ood|...`` runs one
  per method and seed, the demo one per method); a fitted ``plus`` with an LLM summarizer also answers new users
  with its summaries in a chat model's prompt (:mod:`pluralign.evaluation.transfer`).
- :func:`winrate_stage`: best-of-N answers picked with the user's summary vs the population RM (demo).
- :func:`love_stage`: P[Love] trained on a simulated reaction log (demo).
- :func:`policy_stage`: language-model policies trained by GRPO on P[Love], helpfulness and safety, A/B-tested and
  gated (:mod:`pluralign.evaluation.rluf_policy`): the policy half of ``bench rluf`` and the demo's ``ab`` stage.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from pluralign.data.splits import Example, SplitResult
from pluralign.evaluation.metrics import accuracy_result, pair_correct
from pluralign.evaluation.results import Result, json_default
from pluralign.evaluation.rluf_policy import POLICY_SETTINGS, PolicyBudget, run_policy_benchmark
from pluralign.evaluation.transfer import bench_transfer
from pluralign.evaluation.winrate import candidate_pools, personalised_win_rate
from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.sim import simulate_reaction_log
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import HONEST, reaction_table, train_love

log = logging.getLogger(__name__)


@dataclass
class StageOutput:
    """What a stage returns: its result records and the artefacts (JSON-able) that reports and later stages read."""

    results: list[Result]
    artefacts: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # wall time of the run that produced it (set by StageCache.run)

    def rows(self) -> list[dict]:
        return [asdict(r) for r in self.results]


def _normalised(fingerprint: dict) -> dict:
    """The fingerprint as it reads back from JSON (tuples become lists, unknown types their ``str``)."""
    return json.loads(json.dumps(fingerprint, default=str, sort_keys=True))


class StageCache:
    """One JSON file per finished stage under ``root``: ``{"fingerprint", "seconds", "results", "artefacts"}``,
    written atomically as soon as the stage finishes; a stage whose file carries this cache's fingerprint is not run
    again.

    ``strict=True`` (the demo's ``OUT/stages``): the folder belongs to one configuration, kept in
    ``root/config.json``, and a different one is refused with an error. ``strict=False`` (the bench's
    ``OUT/methods/seed<S>``): a stage saved under other settings is run again and its file replaced."""

    def __init__(self, root: str | os.PathLike, fingerprint: dict, *, strict: bool = True):
        self.root = Path(root)
        self.fingerprint = _normalised(fingerprint)
        self.root.mkdir(parents=True, exist_ok=True)
        if strict:
            fp = self.root / "config.json"
            text = json.dumps(self.fingerprint, sort_keys=True, indent=1)
            if fp.exists() and fp.read_text() != text:
                raise ValueError(f"{self.root.parent} holds a run with another configuration; use a new --out or "
                                 f"delete it (compare {fp})")
            fp.write_text(text)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def load(self, name: str) -> StageOutput | None:
        """The stage's saved output, or None when it has not finished under these settings."""
        path = self.path(name)
        if not path.exists():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("fingerprint") != self.fingerprint or "artefacts" not in saved:
            log.info("stage %s: settings changed since %s was written; running it again", name, path)
            return None
        return StageOutput([Result(**r) for r in saved["results"]], saved["artefacts"], saved.get("seconds"))

    def save(self, name: str, output: StageOutput) -> Path:
        path = self.path(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "seconds": output.seconds,
                                   "results": output.rows(), "artefacts": output.artefacts},
                                  default=json_default), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def run(self, name: str, fn: Callable[[], StageOutput], *, resume: bool = True) -> StageOutput:
        """The saved output of stage ``name`` if there is one (and ``resume``), else ``fn()``, saved."""
        if resume and (done := self.load(name)) is not None:
            log.info("stage %s: done in an earlier run, reusing %s", name, self.path(name))
            return done
        t0 = time.time()
        out = fn()
        out.seconds = time.time() - t0
        # Artefacts read back from JSON exactly as a later run would see them (arrays become lists).
        out.artefacts = json.loads(json.dumps(out.artefacts, default=json_default))
        self.save(name, out)
        return out


# --- personalisation methods -----------------------------------------------------------------------------------


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


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




def _fits_with_validation(method: Any) -> bool:
    return "validation" in inspect.signature(method.fit).parameters


def run_method(benchmark: str, method: Any, split: SplitResult, eval_sets: dict[str, list[Example]], *,
               seed: int, progress: Callable[[str], None] | None = None,
               items: dict[str, dict] | None = None) -> list[Result]:
    """Fit one method on ``split.train`` (tuning on ``split.validation``) and score it on every non-empty eval set
    and on the validation split. Only a method with ``use_truth`` is handed ``split.truth``. ``items``, when
    given, receives per split the user ids and per-pair correctness (for paired comparisons and seed pooling)."""
    results: list[Result] = []
    if hasattr(method, "use_truth"):
        method.use_truth(split.truth)
    scored = {**eval_sets, "validation": split.validation}
    train_users = len({e.user_id for e in split.train})
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        if _fits_with_validation(method):
            method.fit(split.train, seed=seed, validation=split.validation or None)
        else:  # a method registered from outside that predates validation
            method.fit(split.train, seed=seed)
        train_s = time.perf_counter() - t0
        for name, examples in scored.items():
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
            users = [e.user_id for e in examples]
            n_users = len(set(users))
            results.append(accuracy_result(benchmark, method.name, name, margins, seconds=score_s, seed=seed,
                                           user_ids=users))
            if items is not None:
                items.setdefault("accuracy", {})[name] = {"user_ids": users,
                                                          "values": pair_correct(margins).tolist()}
            results.append(Result(benchmark, method.name, name, "tokens_per_pair",
                                  float(method.tokens_per_pair(examples)), len(examples), ci_unit="user",
                                  n_users=n_users))
            extra = getattr(method, "extra_metrics", None)
            for metric, value in (extra(examples) if extra else {}).items():
                results.append(Result(benchmark, method.name, name, metric, float(value), len(examples),
                                      ci_unit="user", n_users=n_users))
    results.append(Result(benchmark, method.name, "all", "train_seconds", train_s, len(split.train), seconds=train_s,
                          ci_unit="user", n_users=train_users))
    results.append(Result(benchmark, method.name, "all", "peak_rss_mb", mem.peak_mb, len(split.train),
                          ci_unit="user", n_users=train_users))
    return results


def has_chat_summarizer(method: Any) -> bool:
    """A fitted ``plus`` whose summarizer is an LLM (its base model, adapter off, is the chat model of transfer)."""
    return method.name == "plus" and hasattr(getattr(method, "summarizer", None), "initial_model")


def method_stage(benchmark: str, method: Any, split: SplitResult, eval_sets: dict[str, list[Example]], *, seed: int,
                 quick: bool, simulated: bool, transfer_rm_config: Any = None, transfer_blind: Any = None,
                 progress: Callable[[str], None] | None = None, report_pairs: int = 0,
                 model_dir: Path | None = None) -> StageOutput:
    """Fit ``method`` and score it on every eval set (:func:`run_method`); on a simulated suite a ``plus`` with an
    LLM summarizer adds the transfer records (``transfer_rm_config``: the user-blind RM's settings, or
    ``transfer_blind``: the run's fitted user-blind RM, anything with ``.model``). Artefacts: ``items`` (per-pair
    correctness per split, for paired comparisons and seed pooling). For a report: ``report_pairs`` > 0 keeps the
    margins of the first pairs of each eval set and the users' conditioning texts (``margins``, ``conditioning``);
    ``model_dir`` saves the RM there (``model_dir`` artefact); ``training_log`` keeps the method's per-step log."""
    items: dict[str, dict] = {}
    results = run_method(benchmark, method, split, eval_sets, seed=seed, items=items, progress=progress)
    if simulated and eval_sets.get("new-users") and has_chat_summarizer(method):
        results += bench_transfer(benchmark, method, split, eval_sets["new-users"], seed=seed, quick=quick,
                                  rm_config=transfer_rm_config, blind=transfer_blind, items=items)
    artefacts: dict[str, Any] = {"items": items}
    if report_pairs:
        shown = {s: exs[:report_pairs] for s, exs in eval_sets.items()}
        artefacts["margins"] = {
            s: [{"user_id": e.user_id, "pair_id": e.target.pair_id, "margin": float(x)}
                for e, x in zip(exs, method.score_pairs(exs), strict=True)] for s, exs in shown.items()}
        if hasattr(method, "conditionings"):
            # One context per user (a user's examples share it): the text the RM was conditioned on, for the
            # training users and the scored users (what the report and the win-rate stage look up).
            firsts: dict[str, Example] = {}
            for exs in (split.train, *eval_sets.values()):
                for e in exs:
                    firsts.setdefault(e.user_id, e)
            texts = method.conditionings(list(firsts.values()))
            artefacts["conditioning"] = dict(zip(firsts, texts, strict=True))
    if model_dir is not None and getattr(method, "model", None) is not None:
        method.save_pretrained(model_dir)
        artefacts["model_dir"] = str(model_dir)
    if getattr(method, "training_log", None):
        artefacts["training_log"] = method.training_log
    return StageOutput(results, artefacts)


# --- best-of-N win rate ----------------------------------------------------------------------------------------


class SavedPicker:
    """A saved RM plus the conditioning text it used per user: what best-of-N needs."""

    def __init__(self, model_dir: str, conditioning: dict[str, str | None]):
        self.model = SummaryConditionedRM.from_pretrained(model_dir)
        self._by_user = conditioning

    def conditioning(self, example: Example) -> str | None:
        return self._by_user.get(example.user_id)


def winrate_stage(benchmark: str, split: SplitResult, suite: Any, methods: dict[str, StageOutput], *,
                  n_candidates: int, prompts_per_user: int, seed: int, max_users: int | None) -> StageOutput:
    """Best-of-N answers picked by the personalised RM (``plus``, else ``oracle`` or ``icl``) with each user's
    conditioning vs the population ``bt`` RM, judged by the simulated users (seen and new users). ``methods``:
    the method stages' outputs (their ``model_dir`` and ``conditioning`` artefacts)."""
    personal_name = "plus" if "plus" in methods else next((m for m in ("oracle", "icl") if m in methods), None)
    if suite is None or personal_name is None or "bt" not in methods:
        return StageOutput([], {"skipped": "needs a simulated suite, the bt method and a personalised method"})
    mine, blind = methods[personal_name].artefacts, methods["bt"].artefacts
    personal = SavedPicker(mine["model_dir"], mine["conditioning"])
    default = SavedPicker(blind["model_dir"], blind.get("conditioning", {}))
    pools = candidate_pools(suite.users)
    results: list[Result] = []
    artefacts: dict[str, Any] = {"personal": personal_name, "examples": {}}
    for s in ("seen-users", "new-users"):
        exs = split.eval.get(s) or []
        if not exs:
            continue
        wr = personalised_win_rate(exs, suite.simulated, pools, personal, default, n_candidates=n_candidates,
                                   prompts_per_user=prompts_per_user, seed=seed, max_users=max_users)
        results += wr.results(benchmark, f"{personal_name}-vs-default", s)
        artefacts["examples"][s] = wr.examples
        artefacts[s] = {"wins": wr.wins, "losses": wr.losses, "ties": wr.ties}
    return StageOutput(results, artefacts)


# --- P[Love] -----------------------------------------------------------------------------------------------------


def love_stage(benchmark: str, model_dir: Path, *, n_users: int, per_user: int, adversarial_frac: float,
               base_rate: float, seed: int, exclude_prompts: Sequence[str] = ()) -> StageOutput:
    """P[Love] (the defence on) on a simulated reaction log that never shows ``exclude_prompts``; the model is
    saved to ``model_dir``. Records on the chronological test split: AUROC and its oracle, ECE (prior-corrected and
    raw), length r. Artefacts: the metrics, the honest test reactions' probabilities and labels (for the
    reliability diagram), the log's size and love rate, the users the defence flagged."""
    records = simulate_reaction_log(n_users=n_users, per_user=per_user, adversarial_frac=adversarial_frac,
                                    base_rate=base_rate, seed=seed, exclude_prompts=frozenset(exclude_prompts))
    table = reaction_table(records, source="sim:reactions")
    res = train_love(table, LoveConfig(defence=True, seed=seed), out_dir=model_dir)
    m = res.metrics
    n = int(m["n_test"])
    results = [Result(benchmark, "p_love", "chrono", k, m[k], n) for k in ("auroc", "oracle_auroc", "ece", "length_r")]
    results.append(Result(benchmark, "p_love-uncorrected", "chrono", "ece", m["ece_raw"], n))
    te = table.take(res.test_idx)
    te = te.take(np.flatnonzero([k == HONEST for k in te.user_kinds]))
    probs = res.model.predict_proba(te.prompts, te.responses, te.summaries, corrected=True)
    raw = res.model.predict_proba(te.prompts, te.responses, te.summaries, corrected=False)
    flagged = res.defence.flagged() if res.defence is not None else []
    return StageOutput(results, {"metrics": m, "probs": probs, "raw": raw, "labels": te.labels,
                                 "reactions": len(table), "love_rate": float(table.labels.mean()),
                                 "flagged_users": len(flagged)})


# --- language-model policies -------------------------------------------------------------------------------------


def policy_stage(out: Path, budget: PolicyBudget, love_model: Any, *, offline_prompts: Sequence[str],
                 ab_prompts: Sequence[str], encoder: Any = None, seed: int = 0, benchmark: str = "rluf",
                 base_cfg: Any = None, settings: Sequence[tuple[str, dict]] = POLICY_SETTINGS,
                 objective_rm: str = "head") -> StageOutput:
    """GRPO policies rewarded by ``love_model`` (prior-corrected P[Love]), helpfulness and safety, every checkpoint
    answered, scored offline, A/B-tested against the initial model with fresh simulated users and gated
    (:func:`pluralign.evaluation.rluf_policy.run_policy_benchmark`, files under ``out/policies``). Artefacts: the
    benchmark's details (checkpoints, final policies with per-segment lifts and gate reasons, runs, example
    answers, the objective RMs' held-out accuracy, offline-online r, targets)."""
    def love(prompts, responses):
        return love_model.predict_proba(list(prompts), list(responses))

    details: dict = {}
    results = run_policy_benchmark(out, budget, love, offline_prompts=offline_prompts, ab_prompts=ab_prompts,
                                   encoder=encoder, seed=seed, bench=benchmark, base_cfg=base_cfg, settings=settings,
                                   details=details, objective_rm=objective_rm)
    return StageOutput(results, details)


__all__ = ["PeakMemory", "SavedPicker", "StageCache", "StageOutput", "has_chat_summarizer", "json_default",
           "love_stage", "method_stage", "policy_stage", "run_method", "winrate_stage"]
