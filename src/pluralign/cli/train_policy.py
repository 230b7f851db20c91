"""``pluralign train policy``: best-of-N selection over a candidate file (CPU) or GRPO on a model (TRL)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pluralign.cli.gate_cmd import _load_rm
from pluralign.cli.options import HelpFormatter, add_config_args, config_epilog
from pluralign.config import load_config
from pluralign.data.io import iter_jsonl_objects
from pluralign.training.policy_config import PolicyConfig


def register(tsub) -> None:
    p = tsub.add_parser(
        "policy", help="policy optimisation: best-of-N over candidates, or GRPO of an LLM with LoRA (method=grpo)",
        description="Optimise a policy against the weighted objectives (P[Love], helpfulness, safety) under CGPO "
        "judges. method=best-of-n reads --candidates (JSONL rows {'prompt', 'candidates': [...]}, candidate 0 = "
        "the baseline answer, used as the normalisation reference) and writes the chosen responses to "
        "OUT/responses.jsonl. method=grpo trains LoRA adapters on the policy LLM (model=..., default SmolLM2-135M-"
        "Instruct) with TRL GRPOTrainer on the prompts of --candidates, keeping OUT/checkpoint-<step> every "
        "save_steps. Every objective is logged separately (OUT/rewards.json, or TRL's rewards/<name> in "
        "OUT/grpo_run.json).",
        epilog=config_epilog(PolicyConfig),
        formatter_class=HelpFormatter)
    p.add_argument("--candidates", required=True, help="JSONL rows with 'prompt' and 'candidates' (list of str)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--love", default=None, help="P[Love] model dir (pluralign train love)")
    p.add_argument("--helpfulness", default=None, help="helpfulness reward model dir (pairwise or summary RM)")
    p.add_argument("--safety", default=None, help="safety reward model dir (pairwise or summary RM)")
    p.add_argument("--model", default=None, help="grpo: policy LLM (HF dir, .gguf or name; sets model=...)")
    add_config_args(p, "PolicyConfig", "w_love=0.1 --set n=4", config_help="YAML file of PolicyConfig keys")
    p.set_defaults(func=run)


def read_candidates(path: str) -> tuple[list[str], list[list[str]]]:
    """Prompts and candidate lists; a bad row is an error naming file, line and field."""
    prompts, cands = [], []
    for lineno, obj in iter_jsonl_objects(path, "candidates"):
        if not isinstance(obj.get("prompt"), str):
            raise ValueError(f"{path}:{lineno}: field 'prompt': required string is missing")
        c = obj.get("candidates")
        if not isinstance(c, list) or not c or not all(isinstance(x, str) and x.strip() for x in c):
            raise ValueError(f"{path}:{lineno}: field 'candidates': expected a non-empty list of non-empty strings")
        prompts.append(obj["prompt"])
        cands.append(c)
    if not prompts:
        raise ValueError(f"{path}: no rows")
    return prompts, cands


def _scorer(path: str | None):
    if path is None:
        return None

    return _load_rm(f"rm={path}")[1]


def run(args: argparse.Namespace) -> int:
    from pluralign.evaluation.gate import write_responses
    from pluralign.training.policy import best_of_n, build_reward

    overrides = list(args.overrides) + ([f"model={args.model}"] if args.model else [])
    cfg = load_config(PolicyConfig, args.config, overrides)
    prompts, cands = read_candidates(args.candidates)
    love = None
    if args.love:
        from pluralign.models.love import LoveModel

        lm = LoveModel.from_pretrained(args.love)
        love = lambda p, r: lm.predict_proba(list(p), list(r))  # noqa: E731
    help_fn, safety_fn = _scorer(args.helpfulness), _scorer(args.safety)
    judges = [j for j in cfg.judges if j != "safety" or safety_fn is not None]
    if len(judges) != len(cfg.judges):
        print("note: no --safety model, so the safety judge is off")
    cfg.judges = judges
    reward = build_reward(cfg, love=love, helpfulness=help_fn, safety=safety_fn,
                          reference=(prompts, [c[0] for c in cands]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.method == "best-of-n":
        sel = best_of_n(prompts, cands, reward, cfg.n)
        write_responses(out / "responses.jsonl", prompts, sel.responses)
        summary = sel.breakdown.summary() | {"feasible_share": sel.feasible_share}
        (out / "rewards.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        print(json.dumps(summary, indent=1))
        return 0
    if cfg.method == "grpo":
        from pluralign.training.grpo_policy import train_grpo_policy

        run = train_grpo_policy(prompts, reward, cfg, out)
        summary = {"train_steps": run.train_steps, "seconds": run.seconds,
                   "checkpoints": {str(k): str(v) for k, v in run.checkpoints.items()},
                   "log_history": run.log_history}
        (out / "grpo_run.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
        print(f"GRPO: {run.train_steps} steps in {run.seconds:.0f}s; LoRA checkpoints: "
              + ", ".join(str(v) for v in run.checkpoints.values()))
        return 0
    raise ValueError(f"method must be best-of-n or grpo, got {cfg.method!r}")
