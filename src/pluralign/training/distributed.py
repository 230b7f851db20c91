"""Data parallelism for the PLUS co-adaptation loop under ``accelerate launch`` / ``torchrun``.

Why not ``accelerator.prepare(model)`` (DDP): DDP averages gradients only when the forward pass goes through its
wrapper, but the PLUS loop calls the summarizer's and the RM's own methods (``rollout``, ``logprobs``, ``score``)
from several updaters. Instead every trained parameter gets a hook that averages its gradient over the processes as
soon as backward has accumulated it, so every optimizer (summarizer, critic, RM) steps on the global mean gradient
and the replicas stay identical. The price is one small all-reduce per parameter tensor (no bucketing): fine for
LoRA and small models, and the rollouts — the expensive part — are what gets split.

Rules that keep the replicas in lock-step: every process runs the same number of backward passes (``shard`` pads
with repeats so shards have equal length, ``global_count`` sizes the RM updates from the global data) and starts
from the same weights (models are built before the per-rank sampling seed is set).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from accelerate import Accelerator

T = TypeVar("T")


def make_accelerator(**kwargs: Any):
    """An ``accelerate.Accelerator`` that also runs data-parallel on CPU-only machines: with no accelerator device,
    ``cpu=True`` makes ``torchrun``/``accelerate launch`` with several processes use the gloo backend (otherwise
    accelerate silently runs every process as a separate single-process job)."""
    return Accelerator(cpu=not torch.accelerator.is_available(), **kwargs)


def leave_together() -> None:
    """End of a ``torchrun`` job: every rank waits for the others, then tears the process group down. A rank that
    exits while its group is alive and the main process still works (evaluating, writing) can abort in the gloo
    group's destructor ("terminate called without an active exception"). Nothing to do in a single process."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def world_of(accelerator: Any) -> tuple[int, int]:
    """(rank, world size); (0, 1) without an accelerator."""
    if accelerator is None:
        return 0, 1
    return int(accelerator.process_index), int(accelerator.num_processes)


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """This rank's equal share of ``items``: ranks take every ``world``-th item; the list is padded by cycling from
    its start so all shards have ``ceil(n / world)`` items (equal work, equal number of backward passes)."""
    items = list(items)
    if world <= 1 or not items:
        return items
    total = math.ceil(len(items) / world) * world
    padded = (items * math.ceil(total / len(items)))[:total]  # cycles as often as needed, even with n < world
    return padded[rank::world]


def average_gradients(optimizers: Iterable[torch.optim.Optimizer], world: int) -> list[Any]:
    """Hook every parameter these optimizers step so its gradient is averaged over the ``world`` processes right
    after backward accumulates it. Returns the hook handles (``handle.remove()`` undoes it)."""
    if world <= 1:
        return []

    def hook(p: torch.Tensor) -> None:
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world)

    return [p.register_post_accumulate_grad_hook(hook) for p in trained_params(optimizers) if p.requires_grad]


def global_count(n: int, world: int) -> int:
    """Sum of ``n`` over all processes."""
    if world <= 1:
        return n

    t = torch.tensor([n], dtype=torch.long)
    dist.all_reduce(t)
    return int(t.item())


def global_mean(values: dict[str, float], world: int) -> dict[str, float]:
    """Mean over processes of each value (for logs; every rank gets the same numbers)."""
    if world <= 1 or not values:
        return values

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / world for k, v in zip(keys, t.tolist(), strict=True)}


def trained_params(optimizers: Iterable[torch.optim.Optimizer]) -> list[torch.Tensor]:
    """Every distinct parameter the optimizers step."""
    out, seen = [], set()
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
    return out


def param_checksum(params: Iterable[torch.Tensor]) -> float:
    """Sum of |parameters| in float64: equal across replicas iff they stayed in sync (to rounding)."""
    return float(sum(float(p.detach().double().abs().sum()) for p in params))


def gather_floats(x: float, world: int) -> list[float]:
    """``x`` from every process, in rank order."""
    if world <= 1:
        return [x]

    out = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(out, torch.tensor([x], dtype=torch.float64))
    return [float(t.item()) for t in out]
