"""``pluralign train rm``: fit a summary-conditioned Bradley-Terry reward model from a JSONL file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pluralign.cli.options import add_config_args, config_epilog
from pluralign.config import load_config
from pluralign.data.io import iter_jsonl_objects, read_users
from pluralign.training.rm_config import RMConfig

DESCRIPTION = """\
Train a summary-conditioned reward model r(prompt, response | summary) with the Bradley-Terry loss.

FILE is either a JSONL of TRL-style preference rows ({"prompt", "chosen", "rejected"} plus optional "summary"
and "margin"), or a pluralign feedback file (one user record per line, see 'pluralign data --help'); for the
latter, every user's labelled pairs become rows, conditioned on the user's profile or persona (--condition).
All hyperparameters are RMConfig keys: set them in --config YAML and with --set KEY=VALUE (e.g. --set lr=1e-4).
Every input row is checked before anything is written; the trained model goes to --out in HF format.
"""


def register(sub) -> None:
    p = sub.add_parser("rm", help="summary-conditioned Bradley-Terry reward model",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=_fields_help())
    p.add_argument("--train", required=True, metavar="FILE",
                   help="training rows: TRL-style preference JSONL or a pluralign feedback file")
    p.add_argument("--eval", metavar="FILE", help="held-out rows in the same formats; accuracy is reported")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory for the model (HF format), checkpoints and train_results.json")
    p.add_argument("--condition", choices=["profile", "persona", "none"], default="profile",
                   help="feedback files only: the text used as each user's summary (default: profile; users "
                        "without one are unconditioned). TRL rows use their own 'summary' field.")
    add_config_args(p, "RMConfig", "lr=1e-4 --set max_steps=50")
    p.set_defaults(func=run)


def _fields_help() -> str:
    return config_epilog(RMConfig)


def _first_object(path: Path) -> dict | None:
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    obj = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return None
                return obj if isinstance(obj, dict) else None
    return None


def load_rows(path: str | Path, condition: str = "profile") -> list[dict]:
    """Rows from a TRL-style JSONL or a pluralign feedback file; errors name the file, line and field."""
    from pluralign.training.rm_data import validate_rows

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file does not exist")
    first = _first_object(p)
    if first is not None and "user_id" in first and "chosen" not in first:
        rows = []
        for u in read_users(p):
            summary = {"profile": u.profile, "persona": u.persona, "none": None}[condition]
            rows += [{"prompt": q.prompt, "chosen": q.chosen, "rejected": q.rejected, "summary": summary}
                     for q in u.pairs]
        if not rows:
            raise ValueError(f"{p}: no user has labelled pairs to train on")
        return validate_rows(rows, str(p))
    rows, lines = [], []
    for lineno, obj in iter_jsonl_objects(p, "preference"):
        rows.append(obj)
        lines.append(lineno)
    if not rows:
        raise ValueError(f"{p}: file is empty: expected one JSON preference row per line")
    return validate_rows(rows, str(p), lines)


def run(args: argparse.Namespace) -> int:
    config = load_config(RMConfig, args.config, [*args.overrides, f"output_dir={args.out}"])
    train_rows = load_rows(args.train, args.condition)
    eval_rows = load_rows(args.eval, args.condition) if args.eval else None

    from pluralign.models.reward_model import SummaryConditionedRM
    from pluralign.training.distributed import leave_together
    from pluralign.training.rm_trainer import train_reward_model

    model = SummaryConditionedRM.from_backbone(config.backbone, max_length=config.max_length, pooling=config.pooling,
                                               lora_r=config.lora_r, lora_alpha=config.lora_alpha,
                                               lora_dropout=config.lora_dropout, seed=config.seed)
    metrics = train_reward_model(model, train_rows, config, eval_rows)
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if k != "history"}
    print(json.dumps(shown, indent=2))
    print(f"saved reward model to {args.out}")
    leave_together()
    return 0
