"""``pluralign train plus``: PLUS co-adaptation of a user summarizer (RL) and a summary-conditioned reward model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pluralign.cli.options import add_config_args, config_epilog
from pluralign.config import load_config
from pluralign.data.io import read_users
from pluralign.data.splits import make_splits
from pluralign.training.plus_config import PlusConfig

DESCRIPTION = """\
Train PLUS: a summarizer writes a short summary of each user's history; it is trained with RL (reward
R(z) = log sigmoid(r(x, y_c | z) - r(x, y_r | z)) on the user's pairs, clipped) while the reward model trains on the
same summaries. Backends: cpu (statement selection over MiniLM embeddings, minutes on 2 cores, readable by
construction) and hf (any chat causal LM; PPO or GRPO/RLOO; LoRA; multi-GPU with 'accelerate launch -m pluralign.cli
train plus ...').

--train is a pluralign feedback file (one user record per line); users are split with make_splits and the
summarizer and RM are scored on the held-out splits at the end. All hyperparameters are PlusConfig keys: set them
in --config YAML and with --set KEY=VALUE; the reward model is the 'rm' section (--set rm.lr=1e-4). Writes OUT/summarizer, OUT/rm, OUT/summaries.jsonl (with
provenance, see 'pluralign summaries'), OUT/log.jsonl, checkpoints and OUT/train_results.json.
"""


def register(sub) -> None:
    p = sub.add_parser("plus", help="PLUS: summarizer + reward model co-adaptation", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_fields_help())
    p.add_argument("--train", metavar="FILE", help="feedback JSONL to train on (overrides train_file)")
    p.add_argument("--out", metavar="DIR", help="output directory (overrides output_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the output dir")
    add_config_args(p, "PlusConfig", "epochs=2 --set rm.lr=1e-4",
                    config_help="PlusConfig values as a YAML mapping (e.g. configs/plus-cpu.yaml)")
    p.set_defaults(func=run)


def _fields_help() -> str:
    return config_epilog(PlusConfig)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.train:
        overrides.append(f"train_file={args.train}")
    if args.out:
        overrides.append(f"output_dir={args.out}")
    if args.resume:
        overrides.append("resume=true")
    cfg = load_config(PlusConfig, args.config, overrides)
    if not cfg.train_file:
        raise ValueError("no training data: pass --train FILE or set train_file in the config")
    if not cfg.output_dir:
        raise ValueError("no output directory: pass --out DIR or set output_dir in the config")

    from pluralign.training.distributed import leave_together, make_accelerator
    from pluralign.training.plus_trainer import PlusTrainer, rows_from_examples

    users = read_users(cfg.train_file)  # every record checked before anything is written
    kw = {"context_size": cfg.context_size} if cfg.context_size else {}
    split = make_splits(users, seed=cfg.seed, **kw)
    if not split.train:
        raise ValueError(f"{cfg.train_file}: no user has enough labelled pairs for training targets")
    accelerator = make_accelerator()
    trainer = PlusTrainer(cfg, rows_from_examples(split.train), accelerator=accelerator)
    history = trainer.train()
    # Collective: every process contributes its checksum (equal values = replicas stayed in sync).
    checksums = trainer.replica_checksums()
    if accelerator.is_main_process:
        _write_results(cfg, trainer, split, history, checksums, accelerator.num_processes)
    leave_together()
    return 0


def _write_results(cfg: PlusConfig, trainer, split, history: list[dict], checksums: list[float],
                   processes: int) -> None:
    """Main process: greedy summaries and pairwise accuracy on every eval split, then ``train_results.json``."""
    from pluralign.training.plus_trainer import pair_margins

    results = {"steps": trainer.state["step"], "final": history[-1] if history else {}, "eval": {},
               "processes": processes, "replica_checksums": checksums}
    for name, examples in split.eval.items():
        if not examples:
            continue
        summaries = trainer.summarizer.summarize([e.context for e in examples], sample=False)
        margins = pair_margins(trainer.rm, [e.target for e in examples], summaries)
        results["eval"][name] = {"accuracy": float((margins > 0).mean()), "n": len(examples)}
    Path(cfg.output_dir, "train_results.json").write_text(json.dumps(results, indent=1))
    for name, r in results["eval"].items():
        print(f"{name}: accuracy {100 * r['accuracy']:.1f}% on {r['n']} pairs")
    print(f"wrote {cfg.output_dir}/summarizer, rm, summaries.jsonl, log.jsonl, train_results.json; "
          f"mean summary words {np.mean([h.get('summary_words', 0) for h in history]):.1f}")
