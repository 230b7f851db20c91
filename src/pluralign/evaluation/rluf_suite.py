"""The ``rluf`` bench suite: P[Love] (AUROC vs oracle, calibration, length bias, adversaries, personalisation),
then language-model policies trained by RL on it under CGPO judges, the release gate, and simulated A/B tests
(:mod:`pluralign.evaluation.rluf_policy`).

Design choices that keep it honest and fast on CPU:
- One reaction log with 30% adversarial users is simulated; the 0% and 10% conditions are the same log restricted
  to all honest users plus the right number of its adversaries. Only the adversary share changes between
  conditions, and every text is embedded once.
- The policies' offline and A/B prompt sets are held out before the log is simulated, so the log never shows them;
  policies are SmolLM2 + LoRA trained with TRL GRPO, their answers judged by a separate population of simulated
  users (new traffic, a seed the log never used), with common random numbers and user-level CIs.
- Each model is held against its own ceiling: the personalised P[Love] against the per-user oracle
  (``oracle_auroc``, each user's true P(love)), the population P[Love] against ``population_oracle_auroc`` (the
  honest users' mean true P(love)); ``oracle_length_r`` and ``population_oracle_length_r`` are the truth's own
  length correlations, i.e. how much length effect an accurate model must carry.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pluralign.evaluation.love_suite import oasst_section, summary_love_section
from pluralign.evaluation.metrics import auroc, pearson_r
from pluralign.evaluation.results import Result, json_default
from pluralign.evaluation.rluf_policy import (
    FULL_BUDGET,
    QUICK_BUDGET,
    PolicyBudget,
    held_out_prompts,
    policy_markdown,
)
from pluralign.evaluation.stages import policy_stage
from pluralign.models.love import LoveModel, NgramEncoder
from pluralign.sim import simulate_reaction_log
from pluralign.training.love_config import LoveConfig
from pluralign.training.love_trainer import HONEST, ReactionTable, reaction_table, select_C, train_love

log = logging.getLogger(__name__)
BENCH = "rluf"


@dataclass(frozen=True)
class SuiteSize:
    n_users: int  # reaction-log users (30% adversarial before subsetting)
    per_user: int  # reactions per user
    n_prompts: int  # fixed prompt set for policies
    impressions: int  # simulated A/B impressions per prompt and arm
    ab_users: int  # simulated users in the A/B population
    rm_pairs: int | None  # HH-RLHF training pairs per objective RM (None = all but the held-out ones)
    rm_eval: int = 500  # held-out HH-RLHF pairs per objective RM (its reported accuracy)


# The n-gram P[Love] is cheap, so even the quick log is large enough to hold ~300 loves: with the ~70 of a
# 120 x 30 log, P[Love] could not rank policies (offline-online r 0.31).
QUICK = SuiteSize(n_users=300, per_user=50, n_prompts=120, impressions=30, ab_users=150, rm_pairs=None)
FULL = SuiteSize(n_users=600, per_user=60, n_prompts=400, impressions=60, ab_users=400, rm_pairs=None)

C_GRID = (0.3, 1.0, 3.0, 10.0)  # the head's inverse L2 strength, chosen by chronological validation

def adversary_subset(table: ReactionTable, adv_share: float, seed: int) -> ReactionTable:
    """All honest users plus enough adversaries (a fixed random order) for ``adv_share`` of users."""
    kind_of = dict(zip(table.user_ids, table.user_kinds, strict=True))
    honest = sorted(u for u, k in kind_of.items() if k == HONEST)
    adversaries = sorted(u for u, k in kind_of.items() if k != HONEST)
    random.Random(seed).shuffle(adversaries)
    n_adv = min(len(adversaries), round(len(honest) * adv_share / (1 - adv_share)))
    keep = set(honest) | set(adversaries[:n_adv])
    return table.take([i for i, u in enumerate(table.user_ids) if u in keep])


def _love_results(method: str, metrics: dict[str, float], n: int, seconds: float) -> list[Result]:
    return [Result(BENCH, method, "chrono", m, metrics[m], n, seconds=seconds)
            for m in ("auroc", "oracle_auroc", "ece", "length_r", "oracle_length_r") if m in metrics]


def run_rluf_suite(out_dir: str | Path, quick: bool = False, seed: int = 0, objective_rm: str = "head"
                   ) -> list[Result]:
    """Run the whole RLUF benchmark; write ``out_dir/rluf_details.json`` and ``rluf_ab.md``; return the Results.

    ``objective_rm``: the policies' helpfulness and safety RMs (:func:`~pluralign.evaluation.rluf_policy.build_objectives`)."""
    size = QUICK if quick else FULL
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    details: dict = {"size": size.__dict__, "seed": seed}
    encoder = NgramEncoder()

    # --- 1. P[Love]: adversaries x defence, calibration, length, personalisation ---------------------------------
    t0 = time.time()
    # The policies' offline and A/B prompt sets are held out first: the reaction log never shows them.
    budget = QUICK_BUDGET if quick else FULL_BUDGET
    offline_prompts, ab_prompts = held_out_prompts(budget.offline_prompts, budget.ab_prompts, seed)
    records, sim_users = simulate_reaction_log(n_users=size.n_users, per_user=size.per_user, adversarial_frac=0.3,
                                               base_rate=0.02, seed=seed, return_users=True,
                                               exclude_prompts=frozenset(offline_prompts + ab_prompts))
    full = reaction_table(records, source="sim:reactions")
    details["reaction_log"] = {"reactions": len(full), "love_rate": float(full.labels.mean())}
    log.info("rluf: %d reactions simulated in %.0fs", len(full), time.time() - t0)
    # The head's C is chosen once, by AUROC on a chronological validation split inside the training split of the
    # main condition (10% adversaries); the test split is never used for tuning.
    best_C, c_scores = select_C(adversary_subset(full, 0.1, seed), LoveConfig(seed=seed), grid=C_GRID, encoder=encoder)
    details["C_selection"] = {"chosen": best_C, "validation_auroc": c_scores}
    rounds = 1 if quick else 2
    main_model: LoveModel | None = None
    for adv in (0.0, 0.1, 0.3):
        table = adversary_subset(full, adv, seed)
        for defence in (False, True):
            t = time.time()
            res = train_love(table, LoveConfig(defence=defence, defence_rounds=rounds, C=best_C, seed=seed),
                             encoder=encoder)
            tag = f"p_love-adv{round(100 * adv)}-{'defence' if defence else 'nodefence'}"
            n = int(res.metrics["n_test"])
            results.append(Result(BENCH, tag, "chrono", "auroc", res.metrics["auroc"], n, seconds=time.time() - t))
            results.append(Result(BENCH, tag, "chrono", "oracle_auroc", res.metrics["oracle_auroc"], n))
            details[tag] = res.metrics | (_defence_summary(res, table) if defence else {})
            if adv == 0.1 and defence:
                main_model, main_table, main_res = res.model, table, res
    assert main_model is not None
    m = main_res.metrics
    results += _love_results("p_love", m, int(m["n_test"]), main_res.seconds)
    pop = _population_oracle(main_table, main_res.test_idx, sim_users)
    for k, v in pop.items():
        results.append(Result(BENCH, "p_love", "chrono", k, v, int(m["n_test"])))
        details[k] = v
    results.append(Result(BENCH, "p_love-uncorrected", "chrono", "ece", m["ece_raw"], int(m["n_test"])))
    # Both length debiasing methods, always measured (the default is decided from these figures, see BENCHMARKS).
    for method, tag in (("poe", "p_love-length-debiased"), ("joint", "p_love-length-debiased-joint")):
        deb = train_love(main_table, LoveConfig(length_debias=True, debias_method=method, defence_rounds=rounds,
                                                C=best_C, seed=seed), encoder=encoder)
        results += _love_results(tag, deb.metrics, int(deb.metrics["n_test"]), deb.seconds)
        details[tag] = deb.metrics
    # The contract's P[Love] records: `love` (neural) and `love-linear`, personalised by summaries written from each
    # user's earlier reactions (never the persona), and both on real OpenAssistant reactions (benchmark `oasst`).
    love_rows, love_models = summary_love_section(main_table, encoder, bench=BENCH, seed=seed, quick=quick,
                                                  rounds=rounds, c_grid=C_GRID, details=details)
    results += love_rows
    results += oasst_section(seed=seed, quick=quick, details=details)

    results += policy_section(out, budget, main_model, encoder, details, seed, offline_prompts=offline_prompts,
                              ab_prompts=ab_prompts, love_results=list(results), objective_rm=objective_rm)
    (out / "rluf_details.json").write_text(json.dumps(details, indent=1, default=json_default), encoding="utf-8")
    return results


def policy_section(out: Path, budget: PolicyBudget, main_model: LoveModel, encoder, details: dict, seed: int, *,
                   offline_prompts: list[str], ab_prompts: list[str],
                   love_results: list[Result] | None = None, objective_rm: str = "head") -> list[Result]:
    """The policy stage (:func:`pluralign.evaluation.stages.policy_stage`, the demo's ``ab`` stage at this suite's
    budget): GRPO with P[Love] (the population model ``main_model``, prior-corrected), helpfulness and safety,
    checkpoints judged offline and by fresh simulated users; fills ``details["policy"]`` and ``details["targets"]``
    and returns the Results."""
    stage = policy_stage(out, budget, main_model, offline_prompts=offline_prompts, ab_prompts=ab_prompts,
                         encoder=encoder, seed=seed, benchmark=BENCH, objective_rm=objective_rm)
    pol = stage.artefacts
    details["policy"] = pol
    details["targets"] = _targets(love_results or []) | pol["policy_targets"]
    (out / "rluf_ab.md").write_text(policy_markdown(pol), encoding="utf-8")
    return stage.results


def _population_oracle(table: ReactionTable, test_idx: np.ndarray, sim_users: dict) -> dict[str, float]:
    """The honest users' *mean* true P(love) on the honest test reactions: its AUROC is the ceiling of any model
    that does not know who is reacting (``oracle_auroc`` uses each user's own ``p_true``, i.e. their personal
    taste), and its length correlation is what an accurate population P[Love] inherits."""
    test = table.take(test_idx)
    test = test.take([i for i, k in enumerate(test.user_kinds) if k == HONEST])
    honest = [u for u in sim_users.values() if u.kind == HONEST]
    mean_p: dict[tuple[str, str], float] = {}
    for key in zip(test.prompts, test.responses, strict=True):
        if key not in mean_p:
            mean_p[key] = float(np.mean([u.p_love(*key) for u in honest]))
    p = np.array([mean_p[k] for k in zip(test.prompts, test.responses, strict=True)])
    lengths = np.array([len(r.split()) for r in test.responses], dtype=float)
    return {"population_oracle_auroc": auroc(test.labels, p), "population_oracle_length_r": pearson_r(p, lengths)}


def _defence_summary(res, table: ReactionTable) -> dict:
    """Mean reliability per user kind and detection precision / recall per adversary kind (simulator truth)."""
    kind_of = dict(zip(table.user_ids, table.user_kinds, strict=True))
    out: dict[str, list[float]] = {}
    for u, rel in res.defence.users.items():
        out.setdefault(kind_of[u], []).append(rel.reliability)
    loves: dict[str, list[int]] = {}
    for u, rel in res.defence.users.items():
        loves.setdefault(kind_of[u], []).append(rel.n_pos)
    return {"flagged": {k: float(np.mean(v)) for k, v in sorted(out.items())},
            "train_loves_per_user": {k: float(np.mean(v)) for k, v in sorted(loves.items())},
            "detection": res.defence.detection(kind_of, honest=HONEST)}


def _targets(results: list[Result]) -> dict:
    get = {(r.method, r.metric): r.value for r in results if r.split in ("chrono", "all")}  # not chrono-<kind>
    # The per-user oracle knows each user's taste: the personalised P[Love] is the model to hold against it; the
    # population P[Love] is held against the population oracle (the mean taste), its own ceiling.
    auroc = get.get(("love", "auroc"), math.nan)
    oracle = get.get(("love", "oracle_auroc"), math.nan)
    pop_auroc, pop_oracle = get.get(("p_love", "auroc"), math.nan), get.get(("p_love", "population_oracle_auroc"),
                                                                            math.nan)
    return {
        "auroc_vs_oracle": auroc / oracle if oracle else None, "auroc_target_met": auroc >= 0.95 * oracle,
        "population_auroc_vs_population_oracle": pop_auroc / pop_oracle if pop_oracle else None,
        "population_auroc_target_met": pop_auroc >= 0.95 * pop_oracle,
        "ece_target_met": get.get(("p_love", "ece"), math.nan) <= 0.02,
        "length_r": get.get(("p_love", "length_r"), math.nan),
        "oracle_length_r": get.get(("p_love", "oracle_length_r"), math.nan),
        "population_oracle_length_r": get.get(("p_love", "population_oracle_length_r"), math.nan),
        "length_target_met": abs(get.get(("p_love", "length_r"), math.nan)) <= 0.10,
    }
