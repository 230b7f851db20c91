"""PLUS co-adaptation: the summarizer is trained with RL against the summary-conditioned RM while the RM trains on
the same summaries.

Per rollout batch: sample summaries of each context -> reward R(z) = clip(log sigma(r(x, y_c | z) - r(x, y_r | z)))
from the *current* RM on the context's *reward pairs* -> summarizer update (PPO or GRPO/RLOO) -> Bradley-Terry update
of the RM on the context's *other* pairs conditioned on the same summarizer's summaries (by default its greedy
summary, the one inference writes; ``rm_summaries=sampled`` uses a rollout sample as the paper does) -> repeat.
Reward pairs and RM pairs are kept apart as the paper's ``reward_*`` / ``train_*`` columns are: every step each
context's training pairs are shuffled afresh (seeded by seed, step and user) and ``reward_pairs`` of them go to the
reward, the rest to the RM (:func:`split_pairs`), so the summarizer is never paid on a pair the RM is fitting in that
step. Held-out (``eval_*``) pairs belong to users the loop never sees. Why our own loop and not a TRL
trainer: both models move inside one step and the reward is computed by a model that is itself being trained, which
no TRL trainer expresses. The RM step here is the plain BT loss on a few mini-batches with a persistent optimiser
(a full ``rm_trainer`` run per rollout would restart its schedule every time).

Stabilisers from the paper: warm-start the RM on untrained summaries; freeze the summarizer after N epochs.
Logs per step (mean reward, RM accuracy, summary words and tokens, KL, copy rate, seconds per phase) go to
``log.jsonl`` (and tensorboard if asked);
checkpoints hold both models and the loop state, and ``resume`` continues from the newest.

Under ``accelerate launch`` with several processes each process rolls out, rewards and trains on its own shard of
every rollout batch, and gradients are averaged over processes (:mod:`pluralign.training.distributed`); the main
process writes logs and checkpoints.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pluralign.data.schema import PreferencePair
from pluralign.data.text import word_count
from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.summarizers.copying import mean_copy_rate
from pluralign.summarizers.cpu import CpuSummarizer
from pluralign.summarizers.store import SummaryStore
from pluralign.training import distributed as dp
from pluralign.training.group_rl import length_bonus
from pluralign.training.plus_config import PlusConfig
from pluralign.training.plus_parts import build_rm, build_summarizer, build_updater
from pluralign.training.plus_rewards import pair_margins, plus_rewards, reward_items
from pluralign.training.plus_rows import PlusRow, rm_rows, rows_from_examples, split_pairs
from pluralign.training.precision import use_bf16
from pluralign.training.rm_updater import RMUpdater

# Rows, rewards and the builders have their own modules; importers of these names from here keep working.
__all__ = ["PlusRow", "PlusTrainer", "build_rm", "build_summarizer", "build_updater", "pair_margins", "plus_rewards",
           "reward_items", "rm_rows", "rows_from_examples", "split_pairs"]

log = logging.getLogger(__name__)


class PlusTrainer:
    """Runs the co-adaptation loop; ``train()`` returns the per-step log records."""

    def __init__(self, config: PlusConfig, rows: Sequence[PlusRow], *, summarizer=None, rm=None,
                 accelerator=None):
        if not rows:
            raise ValueError("PlusTrainer: no training contexts")
        self.cfg = config
        self.rows = list(rows)
        self.accelerator = accelerator
        self.rank, self.world = dp.world_of(accelerator)
        self.is_main = self.rank == 0
        device = accelerator.device if accelerator is not None else None
        torch.manual_seed(config.seed)  # same initial weights on every process
        self.summarizer = summarizer if summarizer is not None else build_summarizer(config, device)
        self.rm = rm if rm is not None else build_rm(config, device)
        self.updater = build_updater(config, self.summarizer)
        self.rm_updater = None
        if config.train_rm:
            # One seed for the whole loop: the RM updates shuffle with the loop's seed, not rm.seed.
            self.rm_updater = RMUpdater(self.rm, replace(config.rm, seed=config.seed))
        self._grad_hooks = dp.average_gradients(self.optimizers(), self.world)

        # A fixed RM passed in by the caller only needs ``score(prompts, responses, summaries, dtype=...)``.
        self.score_dtype = "bf16" if use_bf16(config.rm.bf16, getattr(self.rm, "device", "cpu")) else "fp32"
        if self.world > 1:
            torch.manual_seed(config.seed + 7919 * self.rank)  # different rollouts on each process
        self.state = {"step": 0, "epoch": 0, "batch": 0, "warm_started": False}
        self.history: list[dict] = []
        self.out = Path(config.output_dir) if config.output_dir else None
        self._tb = None
        self._length_ref: float | None = None
        if hasattr(self.summarizer, "precompute"):
            self.summarizer.precompute([r.context for r in self.rows])

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer of the loop (summarizer, PPO critic, RM): what data parallelism keeps in sync."""
        opts = [getattr(self.updater, name, None) for name in ("optimizer", "critic_optimizer")]
        if self.rm_updater is not None:
            opts.append(self.rm_updater.optimizer)
        return [o for o in opts if o is not None]

    def replica_checksums(self) -> list[float]:
        """One parameter checksum per process (all equal when the replicas are in sync)."""
        return dp.gather_floats(dp.param_checksum(dp.trained_params(self.optimizers())), self.world)

    # ----- logging / checkpoints -----
    def _log(self, rec: dict) -> None:
        self.history.append(rec)
        if self.out is None or not self.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        if self.cfg.tensorboard:
            if self._tb is None:
                # tensorboard is an optional extra (dev), imported only when this logging is switched on
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out / "tb"))
            for k, v in rec.items():
                if isinstance(v, int | float) and k != "step":
                    self._tb.add_scalar(k, v, rec["step"])

    def save_checkpoint(self, directory: Path) -> None:
        """Both models, the optimisers and the loop state, written to a temp dir then renamed (never half-written).
        Only the main process writes; the others wait for it."""
        if not self.is_main:
            self._barrier()
            return
        self._write_checkpoint(directory)
        self._barrier()

    def _barrier(self) -> None:
        if self.accelerator is not None and self.world > 1:
            self.accelerator.wait_for_everyone()

    def _write_checkpoint(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.summarizer.save_pretrained(tmp / "summarizer")
        if hasattr(self.rm, "save_pretrained"):
            self.rm.save_pretrained(tmp / "rm")
        rm_opt = self.rm_updater.optimizer.state_dict() if self.rm_updater else None
        torch.save({"updater": self.updater.state_dict(), "rm_optimizer": rm_opt,
                    "torch_rng": torch.get_rng_state(), "length_ref": self._length_ref,
                    "summarizer_step": self.summarizer.step}, tmp / "optim.pt")
        (tmp / "state.json").write_text(json.dumps({**self.state, "config": asdict(self.cfg)}, indent=1))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    def latest_checkpoint(self) -> Path | None:
        if self.out is None or not self.out.exists():
            return None
        cks = sorted(self.out.glob("checkpoint-*[0-9]"), key=lambda p: int(p.name.split("-")[1]))
        return cks[-1] if cks else None

    def load_checkpoint(self, directory: Path) -> None:
        if self.cfg.backend == "cpu":
            loaded = CpuSummarizer.from_pretrained(directory / "summarizer", encoder=self.summarizer.encoder)
            self.summarizer.scorer.load_state_dict(loaded.scorer.state_dict())
            self.summarizer.initial = loaded.initial
        else:
            self.summarizer.load_weights(directory / "summarizer")
        if (directory / "rm").exists():
            rm = SummaryConditionedRM.from_pretrained(directory / "rm", device=self.rm.device)
            self.rm.load_state_dict(rm.state_dict())
        extra = torch.load(directory / "optim.pt", weights_only=False)
        self.updater.load_state_dict(extra["updater"])
        if self.rm_updater is not None and extra["rm_optimizer"] is not None:
            self.rm_updater.optimizer.load_state_dict(extra["rm_optimizer"])
        torch.set_rng_state(extra["torch_rng"])
        self._length_ref = extra["length_ref"]
        self.summarizer.step = extra["summarizer_step"]
        self.state = {k: v for k, v in json.loads((directory / "state.json").read_text()).items() if k != "config"}
        if self.world > 1:  # the checkpoint holds the main process's generator: give each process its own again
            torch.manual_seed(self.cfg.seed + 7919 * self.rank + int(self.state["step"]))
        log.info("resumed from %s (step %d)", directory, self.state["step"])

    # ----- the loop -----
    def _batches(self, epoch: int) -> list[list[PlusRow]]:
        """The epoch's rollout batches (same order on every process); each process takes its shard in ``_step``."""
        order = list(range(len(self.rows)))
        random.Random(self.cfg.seed * 1000 + epoch).shuffle(order)
        bs = self.cfg.rollout_batch_size
        return [[self.rows[i] for i in order[k:k + bs]] for k in range(0, len(order), bs)]

    def warm_start(self) -> None:
        """Stabiliser: fit the RM to the untrained summarizer's greedy summaries before any RL."""
        rows = dp.shard(self.rows, self.rank, self.world)
        summaries = self.summarizer.summarize([r.context for r in rows], sample=False)
        pairs = [p for r in rows for p in r.pairs]
        summ = [z for r, z in zip(rows, summaries, strict=True) for _ in r.pairs]
        self._length_ref = dp.global_mean({"w": float(np.mean([word_count(z) for z in summaries]))}, self.world)["w"]
        loss = self._train_rm(pairs, summ, passes=self.cfg.warm_start_rm_epochs,
                              progress="plus: RM warm start" if self.is_main else None)
        self.state["warm_started"] = True
        self._log({"step": 0, "phase": "warm_start", "rm_loss": loss, "summary_words": self._length_ref})

    def train(self) -> list[dict]:
        cfg = self.cfg
        if cfg.resume and (ck := self.latest_checkpoint()) is not None:
            self.load_checkpoint(ck)
        if cfg.warm_start_rm_epochs > 0 and self.rm_updater is not None and not self.state["warm_started"]:
            self.warm_start()
        total = cfg.epochs * len(self._batches(0))
        bar = tqdm(total=total, initial=self.state["step"], desc="plus co-adaptation", unit="step",
                   disable=not self.is_main)
        for epoch in range(self.state["epoch"], cfg.epochs):
            batches = self._batches(epoch)
            for b in range(self.state["batch"] if epoch == self.state["epoch"] else 0, len(batches)):
                rec = self._step(batches[b], epoch)
                self.state.update(step=self.state["step"] + 1, epoch=epoch, batch=b + 1)
                rec["step"] = self.state["step"]
                self._log(rec)
                bar.update(1)
                bar.set_postfix(reward=f"{rec['reward']:.3f}", rm_acc=f"{rec['rm_accuracy']:.2f}")
                if self.out is not None and cfg.save_steps and self.state["step"] % cfg.save_steps == 0:
                    self.save_checkpoint(self.out / f"checkpoint-{self.state['step']}")
            self.state.update(epoch=epoch + 1, batch=0)
        bar.close()
        if self.out is not None:
            self.save_checkpoint(self.out / f"checkpoint-{self.state['step']}")
            self.save_final()
        return self.history

    def _step(self, rows: list[PlusRow], epoch: int) -> dict:
        """One co-adaptation step; ``*_seconds`` in the record say where its time went (rollout, reward, update of
        the summarizer, RM summaries, RM update)."""
        cfg = self.cfg
        t0 = time.time()
        rows = dp.shard(rows, self.rank, self.world)
        contexts = [r.context for r in rows]
        split = [split_pairs(r, cfg.reward_pairs, seed=cfg.seed, step=self.state["step"]) for r in rows]
        reward_rows = [rw for rw, _ in split]
        frozen = not cfg.train_summarizer or (0 < cfg.freeze_summarizer_after <= epoch)
        group = 1 if (frozen or cfg.algo == "ppo") else cfg.group_size
        rec: dict = {"epoch": epoch, "summarizer_frozen": frozen}
        tokens = None
        if frozen:
            summaries = self.summarizer.summarize(contexts, sample=False)
            rewards = plus_rewards(self.rm, reward_rows, summaries, 1, clip=cfg.reward_clip,
                                   max_pairs=cfg.reward_pairs, dtype=self.score_dtype)
            rec.update(kl=0.0, rollout_seconds=round(time.time() - t0, 2))
        else:
            # The greedy summaries the RM trains on (rm_summaries=greedy) come from the same rollout: the LLM writes
            # them on the pre-fill its sampled summaries use, with the summarizer this step starts from.
            rollout = self.summarizer.rollout(contexts, group, greedy=cfg.rm_summaries == "greedy")
            summaries = rollout.summaries
            t1 = time.time()
            rec["rollout_seconds"] = round(t1 - t0, 2)
            if hasattr(rollout, "response_mask"):
                tokens = float(rollout.response_mask.sum(1).float().mean())
            rewards = plus_rewards(self.rm, reward_rows, summaries, group, clip=cfg.reward_clip,
                                   max_pairs=cfg.reward_pairs, dtype=self.score_dtype)
            shaped = rewards
            if cfg.length_coef:
                lengths = torch.tensor([word_count(z) for z in summaries], dtype=torch.float)
                shaped = rewards + length_bonus(lengths, self._length_ref or float(lengths.mean()),
                                                coef=cfg.length_coef)
            t2 = time.time()
            rec.update(self.updater.step(rollout, shaped))
            rec.update(reward_seconds=round(t2 - t1, 2), update_seconds=round(time.time() - t2, 2))
        # The RM trains on the context's other pairs (never this step's reward pairs) conditioned on the same
        # summaries: the first sample of each group, or the greedy summary inference will write
        # (``rm_summaries=greedy``: the RM then learns the summaries it is scored with).
        first = summaries[::group]
        if cfg.rm_summaries == "greedy" and not frozen:
            first = rollout.greedy_summaries
        pairs = [p for _, train_pairs in split for p in train_pairs]
        summ = [z for (_, train_pairs), z in zip(split, first, strict=True) for _ in train_pairs]
        t4 = time.time()
        acc = float("nan")
        if pairs:
            margins = pair_margins(self.rm, pairs, summ, dtype=self.score_dtype)
            acc = float((margins > 0).mean())
        rm_loss = self._train_rm(pairs, summ, passes=cfg.rm_passes) if pairs else float("nan")
        rec["rm_seconds"] = round(time.time() - t4, 2)
        stats = {"reward": float(rewards.mean()), "rm_accuracy": acc, "rm_loss": rm_loss,
                 "summary_words": float(np.mean([word_count(z) for z in summaries])),
                 "copy_rate": mean_copy_rate(summaries, [r.context for r in rows for _ in range(group)])}
        if tokens is not None:
            stats["summary_tokens"] = tokens
        rec.update(dp.global_mean(stats, self.world))
        rec.update(seconds=round(time.time() - t0, 2), contexts_per_process=len(rows))
        return rec

    def _train_rm(self, pairs: Sequence[PreferencePair], summaries: Sequence[str], passes: float,
                  progress: str | None = None) -> float:
        """``passes`` passes of BT steps over (pair, summary) rows; NaN when the RM is frozen."""
        if self.rm_updater is None or passes <= 0:
            return float("nan")
        # Sized from the global number of pairs so every process takes the same number of steps.
        n = dp.global_count(len(pairs), self.world)
        steps = max(1, round(passes * n / (self.cfg.rm.batch_size * self.world)))
        stats = self.rm_updater.train_on(rm_rows(pairs, summaries), steps=steps, progress=progress)
        self.rm.eval()
        return stats.get("loss", float("nan"))

    def save_final(self) -> None:
        """``output_dir/summarizer``, ``output_dir/rm`` and the training users' summaries in ``summaries.jsonl``
        (main process only)."""
        assert self.out is not None
        if not self.is_main:
            self._barrier()
            return
        self.summarizer.save_pretrained(self.out / "summarizer")
        if hasattr(self.rm, "save_pretrained"):
            self.rm.save_pretrained(self.out / "rm")
        summaries = self.summarizer.summarize([r.context for r in self.rows], sample=False)
        store = SummaryStore(self.out / "summaries.jsonl")
        store.record({r.user_id: z for r, z in zip(self.rows, summaries, strict=True)},
                     summarizer_version=self.summarizer.version, step=self.state["step"])
        self._barrier()
