"""Bradley-Terry training of ``SummaryConditionedRM`` on (prompt, chosen, rejected[, summary, margin]) rows.

Why our own loop instead of TRL's ``RewardTrainer``: in PLUS the text that conditions each row (the user summary)
is rewritten by the summarizer at every co-adaptation step, and the PLUS loop interleaves short RM updates on
in-memory rows with summarizer PPO steps. ``RewardTrainer`` wants a fixed, pre-tokenised dataset and owns the
whole run; here rows are tokenised per batch (so a new summary costs nothing), and ``RMUpdater.train_on`` /
``rm_step`` give the co-adaptation loop incremental updates with a persistent optimizer.
``benchmarks/rm_throughput.py`` runs both on the same data to keep us honest about speed.

The loop itself is conventional: length-bucketed batches (shuffle, then sort by length within buckets),
gradient accumulation, AdamW with linear warm-up + cosine decay, gradient clipping, bf16 autocast where the
hardware has it, ``accelerate`` for multi-GPU (``accelerate launch``) and trackers, resumable checkpoints.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.training.distributed import make_accelerator
from pluralign.training.rm_config import RMConfig

log = logging.getLogger(__name__)

ROW_FIELDS = {"prompt", "chosen", "rejected", "summary", "margin"}


# ---------------------------------------------------------------------------------------------------- rows
def validate_rows(rows: Sequence[dict], source: str = "rows", line_numbers: Sequence[int] | None = None
                  ) -> list[dict]:
    """Check every row up front (so a bad row fails before any training); error names source, line and field."""
    out = []
    for i, row in enumerate(rows):
        where = f"{source} line {line_numbers[i]}" if line_numbers is not None else f"{source} row {i}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected an object with prompt/chosen/rejected, got {type(row).__name__}")
        for key in ("prompt", "chosen", "rejected"):
            if key not in row:
                raise ValueError(f"{where}: field '{key}' is missing")
            if not isinstance(row[key], str):
                raise ValueError(f"{where}: field '{key}' must be a string, got {type(row[key]).__name__}")
        for key in ("chosen", "rejected"):
            if not row[key].strip():
                raise ValueError(f"{where}: field '{key}' is empty")
        if row.get("summary") is not None and not isinstance(row["summary"], str):
            raise ValueError(f"{where}: field 'summary' must be a string or null")
        if row.get("margin") is not None and (isinstance(row["margin"], bool)
                                              or not isinstance(row["margin"], int | float)
                                              or not math.isfinite(row["margin"])):
            raise ValueError(f"{where}: field 'margin' must be a finite number, got {row['margin']!r}")
        out.append({k: row.get(k) for k in ROW_FIELDS})
    if not out:
        raise ValueError(f"{source}: no rows")
    return out


def _row_len(row: dict) -> int:
    return len(row["prompt"]) + len(row.get("summary") or "") + max(len(row["chosen"]), len(row["rejected"]))


def bucketed_batches(rows: Sequence[dict], batch_size: int, bucket_size: int, seed: int) -> list[list[int]]:
    """One epoch of index batches: shuffled, sorted by length within buckets of ``bucket_size`` batches, then the
    batch order shuffled again so long and short batches interleave."""
    rng = random.Random(seed)
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    chunk = max(1, batch_size * bucket_size)
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s: s + chunk], key=lambda i: _row_len(rows[i]))
        batches += [part[j: j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _micro_batches(rows, batch_size, bucket_size, seed, rank=0, world=1) -> Iterator[list[int]]:
    """Endless stream of micro-batches, epoch after epoch (epoch e reshuffles with seed + e); sharded by rank."""
    epoch = 0
    while True:
        batches = bucketed_batches(rows, batch_size, bucket_size, seed + epoch)
        # Every process must take the same number of steps: pad the shard by wrapping around.
        per_rank = math.ceil(len(batches) / world)
        batches = (batches * 2)[: per_rank * world] if len(batches) < per_rank * world else batches
        yield from batches[rank::world]
        epoch += 1


# ---------------------------------------------------------------------------------------------------- core step
def bf16_supported(device: torch.device | str | None = None) -> bool:
    """bf16 autocast pays off: CUDA with bf16, or a CPU with AVX-512 BF16 / AMX."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        f = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        g = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool((f and f()) or (g and g()))
    return False


def use_bf16(setting: bool | None, device: torch.device | str | None = None) -> bool:
    """A config's ``bf16`` setting resolved: ``None`` means "where the device supports it"."""
    return bf16_supported(device) if setting is None else bool(setting)


def pair_loss(model: SummaryConditionedRM, rows: Sequence[dict], *, margin: float = 0.0, bf16: bool = False,
              forward=None, center_rewards_coef: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Bradley-Terry loss -log sigmoid(r_c - r_r - m) on a batch of rows, chosen and rejected in one forward.

    ``forward`` is the (possibly DDP-wrapped) module to call; tokenisation always uses the bare ``model``.
    """
    n = len(rows)
    prompts = [r["prompt"] for r in rows] * 2
    responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    summaries = [r.get("summary") for r in rows] * 2
    enc = model.encode(prompts, responses, summaries)
    batch = enc.batch.to(model.device)
    with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
        rewards = (forward or model)(**batch).float()
    rc, rr = rewards[:n], rewards[n:]
    m = torch.tensor([r["margin"] if r.get("margin") is not None else margin for r in rows],
                     dtype=rewards.dtype, device=rewards.device)
    loss = -F.logsigmoid(rc - rr - m).mean()
    if center_rewards_coef:
        loss = loss + center_rewards_coef * ((rc + rr) ** 2).mean()
    with torch.no_grad():
        stats = {"loss": float(loss), "accuracy": float((rc > rr).float().mean()),
                 "margin": float((rc - rr).mean()), "summary_tokens_cut": float(sum(enc.summary_tokens_cut[:n]))}
    return loss, stats


def make_optimizer(model: SummaryConditionedRM, config: RMConfig) -> torch.optim.AdamW:
    """AdamW with three groups: backbone weights (decayed), backbone biases/norms (not), head (own lr)."""
    decay, no_decay, head = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("head."):
            head.append(p)
        elif p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    head_lr = config.head_lr if config.head_lr is not None else 10 * config.lr
    groups = [{"params": decay, "weight_decay": config.weight_decay, "lr": config.lr},
              {"params": no_decay, "weight_decay": 0.0, "lr": config.lr},
              {"params": head, "weight_decay": 0.0, "lr": head_lr}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def rm_step(model: SummaryConditionedRM, optimizer: torch.optim.Optimizer, rows: Sequence[dict], *,
            scheduler=None, margin: float = 0.0, bf16: bool = False, max_grad_norm: float = 1.0) -> dict[str, float]:
    """One optimizer step on in-memory rows (one batch, no accumulation). For the PLUS co-adaptation loop."""
    model.train()
    loss, stats = pair_loss(model, rows, margin=margin, bf16=bf16)
    loss.backward()
    if max_grad_norm:
        stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], max_grad_norm))
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return stats


class RMUpdater:
    """Keeps an optimizer across calls so the PLUS loop can do ``train_on(rows, steps)`` between summarizer steps.

    The learning rate is constant after ``warmup_steps`` (the reward landscape keeps moving, a decaying schedule
    would freeze the RM halfway through co-adaptation).
    """

    def __init__(self, model: SummaryConditionedRM, config: RMConfig, warmup_steps: int = 0) -> None:
        from transformers import get_constant_schedule_with_warmup

        self.model, self.config = model, config
        self.bf16 = use_bf16(config.bf16, model.device)
        self.optimizer = make_optimizer(model, config)
        self.scheduler = get_constant_schedule_with_warmup(self.optimizer, warmup_steps)
        self.steps = 0
        self._rng = random.Random(config.seed)

    def train_on(self, rows: Sequence[dict], steps: int = 1, progress: str | None = None) -> dict[str, float]:
        """``steps`` optimizer steps on batches drawn (shuffled, cycling) from ``rows``; mean stats returned.
        ``progress``: a description to show a progress bar under (long calls such as PLUS's RM warm start)."""
        from tqdm.auto import tqdm

        rows = validate_rows(rows, "train_on rows")
        order: list[int] = []
        acc: dict[str, list[float]] = {}
        for _ in tqdm(range(steps), desc=progress, unit="step", disable=progress is None, leave=False):
            if len(order) < self.config.batch_size:
                fresh = list(range(len(rows)))
                self._rng.shuffle(fresh)
                order += fresh
            batch, order = order[: self.config.batch_size], order[self.config.batch_size:]
            stats = rm_step(self.model, self.optimizer, [rows[i] for i in batch], scheduler=self.scheduler,
                            margin=self.config.margin, bf16=self.bf16, max_grad_norm=self.config.max_grad_norm)
            self.steps += 1
            for k, v in stats.items():
                acc.setdefault(k, []).append(v)
        return {k: float(np.mean(v)) for k, v in acc.items()}


# ---------------------------------------------------------------------------------------------------- evaluation
def evaluate_pairs(model: SummaryConditionedRM, rows: Sequence[dict], batch_size: int = 64, margin: float = 0.0,
                   bf16: bool = False) -> dict[str, float]:
    """Pairwise accuracy (ties count as wrong), mean BT loss and mean reward margin on ``rows``."""
    rows = validate_rows(rows, "eval rows")
    prompts = [r["prompt"] for r in rows]
    summaries = [r.get("summary") for r in rows]
    dtype = "bf16" if bf16 else "fp32"
    rc = model.score(prompts, [r["chosen"] for r in rows], summaries, batch_size=batch_size, dtype=dtype)
    rr = model.score(prompts, [r["rejected"] for r in rows], summaries, batch_size=batch_size, dtype=dtype)
    m = np.array([r["margin"] if r.get("margin") is not None else margin for r in rows], dtype=np.float64)
    diff = rc.astype(np.float64) - rr
    loss = np.logaddexp(0.0, -(diff - m))  # -log sigmoid(x) = log(1 + e^-x), stable
    return {"accuracy": float((diff > 0).mean()), "loss": float(loss.mean()), "margin": float(diff.mean()),
            "n": len(rows)}


# ---------------------------------------------------------------------------------------------------- checkpoints
def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, model: SummaryConditionedRM, optimizer, scheduler, state: dict) -> None:
    """model (HF format) + optimizer + scheduler + RNG + trainer state, written to a temp dir then renamed."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / "rng_state.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def _checkpoints(output_dir: Path) -> list[Path]:
    found = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _resolve_resume(config: RMConfig) -> Path | None:
    if not config.resume_from_checkpoint:
        return None
    if config.resume_from_checkpoint == "latest":
        found = _checkpoints(Path(config.output_dir))
        return found[-1] if found else None
    p = Path(config.resume_from_checkpoint)
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pt"):
        if not (p / name).exists():
            raise FileNotFoundError(f"{p / name}: missing, cannot resume from this checkpoint")
    return p


def load_checkpoint(directory: Path, model: SummaryConditionedRM, optimizer, scheduler) -> dict:
    """Restore weights, optimizer, scheduler and RNG from ``directory``; returns the saved trainer state."""
    saved = SummaryConditionedRM.from_pretrained(directory)
    missing, unexpected = model.load_state_dict(saved.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"{directory}: checkpoint does not match the model (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    optimizer.load_state_dict(torch.load(directory / "optimizer.pt", map_location=model.device, weights_only=False))
    scheduler.load_state_dict(torch.load(directory / "scheduler.pt", weights_only=False))
    _set_rng_state(torch.load(directory / "rng_state.pt", weights_only=False))
    return json.loads((directory / "trainer_state.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------- trainer
def _tracker_config(config: RMConfig) -> dict:
    return {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in asdict(config).items()}


def train_reward_model(model: SummaryConditionedRM, train_rows: Sequence[dict], config: RMConfig,
                       eval_rows: Sequence[dict] | None = None) -> dict[str, Any]:
    """Train ``model`` in place with Bradley-Terry loss; returns final metrics (train_*, eval_*, throughput).

    Rows: dicts with ``prompt``, ``chosen``, ``rejected`` and optional ``summary`` (any user text) and ``margin``.
    With ``config.output_dir`` set, checkpoints go to ``output_dir/checkpoint-<step>`` every ``save_steps`` and the
    final model to ``output_dir``.
    """
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    train_rows = validate_rows(train_rows, "train_rows")
    eval_rows = validate_rows(eval_rows, "eval_rows") if eval_rows else None
    out_dir = Path(config.output_dir) if config.output_dir else None
    trackers = None if config.report_to == "none" else config.report_to
    accelerator = make_accelerator(log_with=trackers, project_dir=str(out_dir) if out_dir else None)
    set_seed(config.seed)
    bf16 = use_bf16(config.bf16, accelerator.device)
    model.to(accelerator.device)
    optimizer = make_optimizer(model, config)
    world, rank = accelerator.num_processes, accelerator.process_index
    micro_per_epoch = math.ceil(math.ceil(len(train_rows) / config.batch_size) / world)
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / config.grad_accum))
    total = config.max_steps if config.max_steps > 0 else max(1, math.ceil(config.epochs * steps_per_epoch))
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    wrapped, optimizer = accelerator.prepare(model, optimizer)  # DDP on several GPUs, unchanged on one device

    step, micro_done = 0, 0
    resume = _resolve_resume(config)
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer, scheduler)
        step, micro_done = int(state["step"]), int(state["micro_batches"])
        log.info("resumed from %s at step %d", resume, step)
    if trackers and out_dir is not None:
        accelerator.init_trackers("pluralign-rm", config=_tracker_config(config))

    stream = _micro_batches(train_rows, config.batch_size, config.bucket_size, config.seed, rank, world)
    for _ in range(micro_done):  # fast-forward the deterministic data order to where the checkpoint stopped
        next(stream)
    params = [p for p in model.parameters() if p.requires_grad]
    window: dict[str, list[float]] = {}
    history: list[dict[str, float]] = []
    last_log: dict[str, float] = {}
    pairs_seen, t0 = 0, time.perf_counter()
    model.train()
    bar = tqdm(total=total, initial=step, desc="train rm", unit="step", disable=not accelerator.is_local_main_process)
    while step < total:
        for j in range(config.grad_accum):
            idx = next(stream)
            micro_done += 1
            sync = j == config.grad_accum - 1
            with nullcontext() if sync or world == 1 else accelerator.no_sync(wrapped):
                loss, stats = pair_loss(model, [train_rows[i] for i in idx], margin=config.margin, bf16=bf16,
                                        forward=wrapped, center_rewards_coef=config.center_rewards_coef)
                accelerator.backward(loss / config.grad_accum)
            pairs_seen += len(idx)
            for k, v in stats.items():
                window.setdefault(k, []).append(v)
        grad_norm = accelerator.clip_grad_norm_(params, config.max_grad_norm) if config.max_grad_norm else None
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        if grad_norm is not None:
            window.setdefault("grad_norm", []).append(float(grad_norm))
        if (config.logging_steps and step % config.logging_steps == 0) or step == total:
            last_log = {f"train_{k}": float(np.mean(v)) for k, v in window.items()}
            last_log["lr"] = scheduler.get_last_lr()[0]
            window = {}
            if eval_rows and config.eval_steps and step % config.eval_steps == 0 and step != total:
                last_log.update({f"eval_{k}": v for k, v in evaluate_pairs(
                    model, eval_rows, config.eval_batch_size, config.margin, bf16).items()})
                model.train()
            history.append({"step": step, **last_log})
            accelerator.log(last_log, step=step)
            bar.set_postfix(loss=f"{last_log.get('train_loss', float('nan')):.3f}",
                            acc=f"{last_log.get('train_accuracy', float('nan')):.2f}")
        if out_dir is not None and config.save_steps and step % config.save_steps == 0 and step != total:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                save_checkpoint(out_dir / f"checkpoint-{step}", model, optimizer, scheduler,
                                {"step": step, "micro_batches": micro_done, "total_steps": total})
                if config.save_total_limit > 0:
                    for old in _checkpoints(out_dir)[: -config.save_total_limit]:
                        shutil.rmtree(old, ignore_errors=True)
    bar.close()
    wall = time.perf_counter() - t0
    metrics: dict[str, Any] = {"steps": step, "total_steps": total, "pairs_seen": pairs_seen * world,
                               "wall_s": wall, "pairs_per_s": pairs_seen * world / wall if wall > 0 else 0.0,
                               "bf16": bf16, **last_log}
    if eval_rows:
        metrics.update({f"eval_{k}": v for k, v in evaluate_pairs(
            model, eval_rows, config.eval_batch_size, config.margin, bf16).items()})
        accelerator.log({k: v for k, v in metrics.items() if k.startswith("eval_")}, step=step)
    metrics["history"] = history
    model.eval()
    accelerator.wait_for_everyone()
    if out_dir is not None and accelerator.is_main_process:
        model.save_pretrained(out_dir)
        (out_dir / "train_results.json").write_text(
            json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2) + "\n", encoding="utf-8")
    if trackers and out_dir is not None:
        accelerator.end_training()
    return metrics
