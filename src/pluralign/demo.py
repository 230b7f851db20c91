"""The main job end to end (``pluralign demo``): PLUS and P[Love] trained and evaluated on CPU, with a report.

The demo is a list of the stages of :mod:`pluralign.evaluation.stages` (the same ones ``pluralign bench`` runs),
each cached under ``OUT/stages`` so an interrupted run resumes where it stopped:

1. ``method-<name>``: fit one personalisation method (bt, icl, oracle, latent, plus-untrained, plus) on the suite's
   training examples and score every split; the reward model is saved under ``OUT/models/<name>``.
2. ``winrate``: best-of-N answers chosen with the user's PLUS summary vs the population RM, judged by each
   simulated user's ground truth (seen and new users).
3. ``love``: P[Love] on a simulated reaction log (2% base rate, 10% adversarial users, defence on).
4. ``ab``: a language-model policy (SmolLM2 + LoRA) trained by GRPO on P[Love], helpfulness and safety under CGPO
   judges (baseline, moderate and love-only settings), A/B-tested against fresh simulated users, and gated.

Everything the report shows comes from ``OUT/results.json`` (plus the stages' artefacts), so the numbers agree.
Size ``small`` (the default) is budgeted to fit ~15 minutes on 2 CPU cores (:data:`SMALL_PLUS` and the ``small``
preset of :mod:`pluralign.demo_config`); ``full`` runs the larger budgets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pluralign.config import load_config
from pluralign.demo_config import DemoConfig, apply_size
from pluralign.evaluation.methods import make_method
from pluralign.evaluation.methods.plus import default_plus_config
from pluralign.evaluation.report import (
    Report,
    plot_accuracy,
    plot_bars,
    plot_curves,
    plot_reliability_and_roc,
    render_markdown,
)
from pluralign.evaluation.results import Result, write_results
from pluralign.evaluation.rluf_policy import POLICY_SETTINGS, PolicyBudget, held_out_prompts
from pluralign.evaluation.stages import (
    SavedPicker,
    StageCache,
    StageOutput,
    love_stage,
    method_stage,
    policy_stage,
    winrate_stage,
)
from pluralign.evaluation.suite_splits import (
    bayes_results,
    build_polis_split,
    build_simulated_split,
    subsample,
)
from pluralign.models.love import LoveModel, NgramEncoder
from pluralign.models.tiny import tiny_causal_lm
from pluralign.sim.suites import build_suite
from pluralign.training.plus_config import PlusConfig
from pluralign.training.policy_config import PolicyConfig

log = logging.getLogger(__name__)
BENCH = "demo"


# --- the demo's stages: the shared stages of pluralign.evaluation.stages with the demo's settings -------------------

def _build_split(cfg: DemoConfig):
    if cfg.polis_dir:
        return build_polis_split(cfg.polis_dir, seed=cfg.seed, quick=cfg.quick), None
    return build_simulated_split(cfg.suite, seed=cfg.seed, quick=cfg.quick), build_suite(cfg.suite, seed=cfg.seed,
                                                                                            quick=cfg.quick)


# The PLUS budget of the default (small) demo, so that the whole demo fits ~15 minutes on 2 CPU cores: one pass of
# co-adaptation over the training users (the bench's quick setting makes two), summaries asked for in 35 words and
# cut at 48 new tokens (50 words, 72 tokens) and one RM warm-start epoch (2). size=full runs the bench's PLUS
# setting, --set plus_config=YAML any other.
SMALL_PLUS = {"epochs": 1, "word_budget": 35, "max_new_tokens": 48, "warm_start_rm_epochs": 1}


def _method_options(cfg: DemoConfig, name: str) -> dict:
    rm_cfg = replace(cfg.rm)
    opts: dict[str, Any] = {"rm_config": rm_cfg, "quick": cfg.quick}
    if name.startswith("plus"):
        if cfg.plus_config:
            opts["plus_config"] = load_config(PlusConfig, cfg.plus_config)
        elif cfg.size == "tiny":
            opts["plus_config"] = default_plus_config(True, rm_cfg, epochs=1, rollout_batch_size=8, group_size=2,
                                                      max_new_tokens=32, warm_start_rm_epochs=1, rm_passes=1.0)
        elif cfg.size == "small":
            opts["plus_config"] = default_plus_config(True, rm_cfg, **SMALL_PLUS)
    return opts


def run_method_stage(cfg: DemoConfig, name: str, split, eval_sets: dict, out: Path,
                     done: dict[str, StageOutput] | None = None) -> StageOutput:
    """Fit and score one method (the bench's method stage), keeping what the report and the win-rate stage read:
    the margins of the first 8 pairs of each split, the users' conditioning texts, the saved RM, the training log.
    ``plus``'s best-of-N transfer test reads the ``bt`` stage's saved RM when it ran (``done``) instead of fitting
    the same user-blind RM again."""
    method = make_method(name, **_method_options(cfg, name))
    bt_dir = ((done or {}).get("method-bt") or StageOutput([])).artefacts.get("model_dir")
    return method_stage(_benchmark(cfg), method, split, eval_sets, seed=cfg.seed, quick=cfg.quick,
                        simulated=not cfg.polis_dir, transfer_rm_config=_method_options(cfg, "bt")["rm_config"],
                        transfer_blind=SavedPicker(bt_dir, {}) if bt_dir and name == "plus" else None,
                        report_pairs=8, model_dir=out / "models" / name)


def run_winrate_stage(cfg: DemoConfig, split, suite, methods: dict[str, StageOutput]) -> StageOutput:
    return winrate_stage(BENCH, split, suite, methods, n_candidates=cfg.winrate_candidates,
                         prompts_per_user=cfg.winrate_prompts, seed=cfg.seed, max_users=40 if cfg.quick else None)


def run_love_stage(cfg: DemoConfig, out: Path) -> StageOutput:
    offline, ab = demo_policy_prompts(cfg)  # the policy stage's prompts never appear in the log
    return love_stage(BENCH, out / "models" / "p_love", n_users=cfg.love_users, per_user=cfg.love_per_user,
                      adversarial_frac=cfg.adversarial_frac, base_rate=cfg.base_rate, seed=cfg.seed,
                      exclude_prompts=offline + ab)


DEMO_POLICIES = ("w0", "w0.1", "love-only")  # baseline, moderate, and the unguarded hack


def demo_policy_prompts(cfg: DemoConfig) -> tuple[list[str], list[str]]:
    """The policy stage's offline and A/B prompts, held out of the love stage's reaction log."""
    return held_out_prompts(cfg.policy_offline_prompts, cfg.ab_prompts, cfg.seed)


def run_ab_stage(cfg: DemoConfig, out: Path) -> StageOutput:
    """The rluf suite's policy stage at the demo's budget: SmolLM2 + LoRA trained by GRPO in three settings on the
    love stage's P[Love], each policy's answers A/B-tested against the initial model with fresh simulated users, and
    gated."""
    offline, ab = demo_policy_prompts(cfg)
    n_rm = 200 if cfg.size == "tiny" else 1500  # n-gram heads are cheap: use many HH-RLHF pairs
    budget = PolicyBudget(train_prompts=cfg.policy_train_prompts, offline_prompts=len(offline), ab_prompts=len(ab),
                          max_steps=cfg.policy_steps, save_steps=max(1, cfg.policy_steps // 2), ab_users=cfg.ab_users,
                          impressions=cfg.impressions, rm_pairs=n_rm, rm_eval=n_rm // 2)
    model, extra = cfg.policy_model, {}
    if model == "tiny":  # the CI smoke test: a tiny random decoder stands in for SmolLM2 (same code path)

        model = str(out / "models" / "tiny_policy")
        m, tok = tiny_causal_lm(seed=cfg.seed)
        m.save_pretrained(model)
        tok.save_pretrained(model)
        extra = {"lora_top_layers": 0}
    pcfg = PolicyConfig(method="grpo", model=model, max_steps=cfg.policy_steps,
                        save_steps=budget.save_steps, max_completion_length=cfg.policy_tokens, seed=cfg.seed, **extra)
    return policy_stage(out, budget, LoveModel.from_pretrained(out / "models" / "p_love"), offline_prompts=offline,
                        ab_prompts=ab, encoder=NgramEncoder(), seed=cfg.seed, benchmark=BENCH, base_cfg=pcfg,
                        settings=[s for s in POLICY_SETTINGS if s[0] in DEMO_POLICIES])


def _benchmark(cfg: DemoConfig) -> str:
    return "polis" if cfg.polis_dir else cfg.suite


# --- report -----------------------------------------------------------------------------------------------------------

def _value(rows: list[dict], method: str, split: str, metric: str) -> float | None:
    for r in rows:
        if r["method"] == method and r["split"] == split and r["metric"] == metric:
            return r["value"]
    return None


def _undefined(v: float | None) -> bool:
    """True for a figure with no value: None in results.json, NaN in memory (e.g. a win rate when every pair tied)."""
    return v is None or _undefined_float(v)


def _undefined_float(v: object) -> bool:
    return isinstance(v, float) and bool(np.isnan(v))


def _pct(v: float | None) -> str:
    return "–" if _undefined(v) else f"{100 * v:.1f}%"


def build_report(out: Path, cfg: DemoConfig, rows: list[dict], stages: dict[str, StageOutput], split,
                 suite) -> None:
    """``report.md`` and ``report.html`` (one :class:`~pluralign.evaluation.report.Report`) from the rows and the
    stages' artefacts."""
    fig = out / "figures"
    fig.mkdir(exist_ok=True)
    data = f"Polis conversations in {cfg.polis_dir}" if cfg.polis_dir else f"the simulated '{cfg.suite}' suite"
    rep = Report("pluralign demo")
    rep.p(f"PLUS and P[Love] trained and evaluated on CPU on {data} (size {cfg.size}, seed {cfg.seed}). Every number "
          "below is read from results.json in this folder.")
    bench = "polis" if cfg.polis_dir else cfg.suite
    rep.h2("Which response does this user prefer? Pairwise accuracy per method and split")
    plot_accuracy(rows, fig / "accuracy.png", benchmark=bench)
    rep.image("figures/accuracy.png", "Pairwise accuracy with 95% bootstrap CIs")
    splits = [s for s in ("seen-users", "new-users", "new-topics", "chrono")
              if any(r["split"] == s and r["metric"] == "accuracy" and r["benchmark"] == bench for r in rows)]
    methods = list(dict.fromkeys(r["method"] for r in rows if r["metric"] == "accuracy" and r["benchmark"] == bench))
    table = []
    for m in methods:
        cells = []
        for s in splits:
            hit = [r for r in rows if r["benchmark"] == bench and r["method"] == m and r["split"] == s
                   and r["metric"] == "accuracy"]
            cells.append(f"{_pct(hit[0]['value'])} [{_pct(hit[0]['ci_low'])}, {_pct(hit[0]['ci_high'])}]"
                         if hit else "")
        tok = next((r["value"] for r in rows if r["benchmark"] == bench and r["method"] == m
                    and r["metric"] == "tokens_per_pair"), None)
        secs = _value(rows, m, "all", "train_seconds")
        table.append([m, *cells, f"{tok:.0f}" if tok is not None else "–", f"{secs:.0f}" if secs is not None else "–"])
    rep.table(["method", *splits, "tokens / pair", "train s"], table)

    art = {name: o.artefacts for name, o in stages.items()}
    plus_log = art.get("method-plus", {}).get("training_log")
    if plus_log:
        keys = [k for k in ("reward", "mean_reward", "rm_accuracy", "copy_rate", "summary_words", "kl")
                if any(k in r for r in plus_log)][:4]
        if keys and all("step" in r for r in plus_log):
            rep.h2("PLUS co-adaptation: reward and RM accuracy over steps")
            plot_curves(plus_log, keys, fig / "plus_curves.png", "PLUS co-adaptation")
            rep.image("figures/plus_curves.png", "Summarizer reward, RM accuracy and copy rate during co-adaptation")
    transfer = [r for r in rows if r["method"] == "plus" and r["metric"].startswith(("transfer_win_rate",
                                                                                      "best_of_n_win_rate"))
                and not r["metric"].endswith("_ties")]
    if transfer:
        rep.h2("Transfer: SmolLM2 answers with the user's summary in its system prompt (new users)")
        rep.p("Win rate = wins / (wins + losses) judged by the simulated user's ground truth, 95% CI over users: "
              "RL-trained summary vs no summary, vs the zero-shot summary, and best-of-8 picked by the "
              "summary-conditioned RM vs the user-blind RM.")
        rep.table(["comparison", "win rate", "95% CI", "decided answers"],
                  [[r["metric"], _pct(r["value"]), f"{_pct(r.get('ci_low'))} to {_pct(r.get('ci_high'))}", str(r["n"])]
                   for r in transfer])

    wr = art.get("winrate", {})
    if stages.get("winrate") and stages["winrate"].results:
        rep.h2("Personalisation a user can feel: best-of-N with the user's summary vs default answers")
        rep.p(f"Answers picked by the {wr['personal']} RM with the user's summary vs the population RM, judged by "
              "each simulated user's ground truth (ties excluded from the win rate).")
        wrows = [r for r in stages["winrate"].rows() if r["metric"] == "win_rate"]
        rep.table(["split", "win rate [95% CI]", "wins / losses / ties"],
                  [[r["split"], f"{_pct(r['value'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]",
                    "{wins} / {losses} / {ties}".format(**wr[r["split"]])] for r in wrows])

    ex_rows = _example_users(art, split, suite)
    if ex_rows:
        rep.h2("Example users: history, summaries and predicted choices")
        rep.table(["user", "history (excerpt)", "learned summary (plus)", "untrained summary", "target pair",
                   "truth", "predicted (plus / untrained / bt)"], ex_rows)

    love = art.get("love")
    if love:
        rep.h2("P[Love]: calibration and ROC on the chronological test split")
        m = love["metrics"]
        plot_reliability_and_roc(np.asarray(love["probs"]), np.asarray(love["labels"]), fig / "p_love.png",
                                 raw_probs=np.asarray(love["raw"]))
        rep.image("figures/p_love.png", "Reliability diagram (raw vs prior-corrected) and ROC")
        rep.table(["metric", "value"], [
            ["AUROC (oracle)", f"{m['auroc']:.3f} ({m['oracle_auroc']:.3f})"],
            ["ECE raw → corrected", f"{m['ece_raw']:.4f} → {m['ece']:.4f}"],
            ["Pearson r(score, length)", f"{m['length_r']:+.3f}"],
            ["reactions / love rate / flagged users", f"{love['reactions']} / {_pct(love['love_rate'])} / "
                                                        f"{love['flagged_users']}"]])

    ab = art.get("ab")
    if ab:
        rep.h2("A language-model policy trained by RL on P[Love], judged by users who never trained it")
        runs = ab.get("runs", {})
        rep.p("SmolLM2-135M-Instruct with LoRA, trained by TRL GRPO on P[Love] (prior-corrected), a helpfulness and a "
              "safety reward model (fitted on HH-RLHF labels) under CGPO judges (sign-off, emoji, length, safety: a "
              "failing answer earns no reward); love-only has no judges. Each policy's greedy answers to held-out "
              "prompts are A/B-tested against the initial model's with fresh simulated users (CIs over users); the "
              "gate compares them offline. GRPO steps: " + ", ".join(f"{k} {v['train_steps']} "
                                                                      f"({v['seconds']:.0f}s)" for k, v in runs.items())
              + ".")
        trows = []
        for name, d in ab["finals"].items():
            trows.append([name, _pct(_value(rows, name, "all", "love_lift")),
                          _pct(_value(rows, name, "all", "help_delta")), _pct(_value(rows, name, "all", "safety_delta")),
                          _pct(_value(rows, name, "all", "signoff_rate")), _pct(_value(rows, name, "all", "emoji_rate")),
                          d["gate"], "; ".join(d["gate_reasons"])[:200] or "–"])
        rep.table(["policy", "love lift", "helpfulness change", "safety change", "sign-off rate", "emoji rate", "gate",
                   "reasons"], trows)
        rep.p(f"Initial model: sign-off rate {_pct(_value(rows, 'initial', 'all', 'signoff_rate'))}, emoji rate "
              f"{_pct(_value(rows, 'initial', 'all', 'emoji_rate'))}.")
        examples = ab.get("examples", [])
        if examples:
            rep.p("Example answers to the same prompts, with their rewards (P[Love] prior-corrected; helpfulness and "
                  "safety RM scores).")
            erows = []
            for ex in examples[:3]:
                for name, a in ex["answers"].items():
                    erows.append([_short(ex["prompt"], 80), name, _short(a["text"], 220), f"{a['love']:.4f}",
                                  f"{a['helpfulness']:+.2f}", f"{a['safety']:+.2f}"])
            rep.table(["prompt", "policy", "answer", "P[Love]", "helpfulness RM", "safety RM"], erows)
        name = "w0.1" if "w0.1" in ab["finals"] else next(iter(ab["finals"]))
        seg = ab["finals"][name]["per_segment"]
        labels = [s for s in seg if seg[s].get("love_lift") is not None and not np.isnan(seg[s]["love_lift"])]
        if labels:
            plot_bars(labels, [100 * seg[s]["love_lift"] for s in labels], fig / "ab_segments.png",
                      title=f"Love-rate change per segment ({name})", ylabel="love-rate change (%)")
            rep.image("figures/ab_segments.png", "Love-rate change per use-case segment")
    rep.h2("All results")
    rep.p("The complete table of results.json.")
    rep.table(["benchmark", "method", "split", "metric", "value", "95% CI", "n"],
              [[r["benchmark"], r["method"], r["split"], r["metric"],
                "–" if _undefined(r["value"]) else f"{r['value']:.4f}",
                "" if _undefined(r["ci_low"]) else f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]", r["n"]] for r in rows])
    rep.write(out)


def _short(text: str | None, n: int = 160) -> str:
    if not text:
        return "–"
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _example_users(art: dict[str, dict], split, suite, k: int = 4) -> list[list[str]]:
    plus, untrained, bt = (art.get(f"method-{m}", {}) for m in ("plus", "plus-untrained", "bt"))
    if not plus.get("margins"):
        return []
    by_key = {(e.user_id, e.target.pair_id): e for exs in split.eval.values() for e in exs}
    rows: list[list[str]] = []
    shown: set[str] = set()
    for s in ("new-users", "seen-users"):
        for item in plus["margins"].get(s, []):
            e = by_key.get((item["user_id"], item["pair_id"]))
            if e is None or e.user_id in shown:
                continue
            shown.add(e.user_id)

            def pred(stage: dict, s: str = s, item: dict = item) -> str:
                hit = [x for x in stage.get("margins", {}).get(s, []) if x["pair_id"] == item["pair_id"]
                       and x["user_id"] == item["user_id"]]
                return "–" if not hit else ("A" if hit[0]["margin"] > 0 else "B")

            hist = "; ".join(f"prefers “{_short(p.chosen, 50)}” over “{_short(p.rejected, 50)}”"
                             for p in e.context.pairs[:2]) or _short(e.context.profile)
            persona = f" ({_short(e.context.persona, 60)})" if e.context.persona else ""
            rows.append([f"{e.user_id} [{s}]{persona}", hist,
                         _short(plus.get("conditioning", {}).get(e.user_id)),
                         _short(untrained.get("conditioning", {}).get(e.user_id)),
                         f"{_short(e.target.prompt, 60)} — A: {_short(e.target.chosen, 60)} / "
                         f"B: {_short(e.target.rejected, 60)}",
                         "A", f"{pred(plus)} / {pred(untrained)} / {pred(bt)}"])
            if len(rows) >= k:
                return rows
    return rows


# --- entry point ------------------------------------------------------------------------------------------------------

def demo_stages(cfg: DemoConfig, split, suite, eval_sets: dict, out: Path,
                done: dict[str, StageOutput]) -> list[tuple[str, Callable[[], StageOutput]]]:
    """The demo as a list of (name, stage): one method stage per method, the win rate (which reads the method
    stages' outputs from ``done``), then on a simulated suite P[Love] and the policy A/B test."""
    methods = [m for m in cfg.methods if not (cfg.polis_dir and m == "oracle")]
    steps: list[tuple[str, Callable[[], StageOutput]]] = [
        (f"method-{m}", lambda m=m: run_method_stage(cfg, m, split, eval_sets, out, done)) for m in methods]
    steps.append(("winrate", lambda: run_winrate_stage(cfg, split, suite, {m: done[f"method-{m}"] for m in methods})))
    if not cfg.polis_dir:
        steps += [("love", lambda: run_love_stage(cfg, out)), ("ab", lambda: run_ab_stage(cfg, out))]
    return steps


def run_demo(cfg: DemoConfig, out_dir: str | Path) -> list[dict]:
    """Run every stage (resuming finished ones from ``OUT/stages``), write results.json, report.md/html; return the
    result rows."""
    cfg = apply_size(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.polis_dir and not Path(cfg.polis_dir).is_dir():
        raise FileNotFoundError(f"--polis-dir {cfg.polis_dir}: no such folder")
    cache = StageCache(out / "stages", asdict(cfg))
    t0 = time.time()
    split, suite = _build_split(cfg)
    cap = 150 if cfg.quick else 600
    if cfg.size == "tiny":
        cap = 30
    eval_sets = {s: subsample(ex, cap, cfg.seed) for s, ex in split.eval.items() if ex}
    rows: list[dict] = []
    if suite is not None:
        rows += [asdict(r) for r in bayes_results(_benchmark(cfg), replace(split, eval=eval_sets), seed=cfg.seed)]
    stages: dict[str, StageOutput] = {}
    steps = demo_stages(cfg, split, suite, eval_sets, out, stages)
    bar = tqdm(steps, desc="pluralign demo", unit="stage")
    for name, fn in bar:
        bar.set_postfix_str(name)
        stages[name] = cache.run(name, fn)
        rows += stages[name].rows()
    rows.append(asdict(Result(BENCH, "demo", "all", "wall_seconds", time.time() - t0, 1)))
    # Undefined figures are None, as results.json writes them, whether a stage ran now or came from its cache.
    rows = [{k: None if _undefined_float(v) else v for k, v in r.items()} for r in rows]
    write_results(out, [Result(**r) for r in rows], title="pluralign demo")
    (out / "bench_report.md").write_text((out / "report.md").read_text(), encoding="utf-8")
    build_report(out, cfg, rows, stages, split, suite)
    return rows


def summary_table(rows: list[dict]) -> str:
    keep = {"accuracy", "tokens_per_pair", "win_rate", "auroc", "oracle_auroc", "ece", "length_r", "love_lift",
            "signoff_rate", "help_delta", "safety_delta"}
    return render_markdown([r for r in rows if r["metric"] in keep], "pluralign demo — results")
