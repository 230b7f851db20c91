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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.summarizers.base import word_count
from pluralign.training import distributed as dp
from pluralign.training.plus_config import PlusConfig

log = logging.getLogger(__name__)


@dataclass
class PlusRow:
    """One user context with the pairs its summary is judged on (reward) and the RM trains on."""

    user_id: str
    context: UserRecord
    pairs: list[PreferencePair]


def rows_from_examples(examples: Sequence) -> list[PlusRow]:
    """One row per distinct user context (a user's training examples share it) with all of that user's targets."""
    rows: dict[tuple[str, str], PlusRow] = {}
    for e in examples:
        key = (e.user_id, e.context.model_dump_json())
        if key not in rows:
            rows[key] = PlusRow(e.user_id, e.context, [])
        rows[key].pairs.append(e.target)
    return list(rows.values())


def build_summarizer(cfg: PlusConfig, device: torch.device | None = None):
    """The trainable summarizer named by the config (cpu statement selector, or an hf causal LM)."""
    if cfg.backend == "cpu":
        from pluralign.summarizers.cpu import CpuSummarizer, CpuSummarizerConfig

        return CpuSummarizer(CpuSummarizerConfig(word_budget=cfg.word_budget, temperature=cfg.temperature,
                                                 style_statements=cfg.style_statements), seed=cfg.seed)
    from pluralign.summarizers.hf import HFSummarizer, add_lora
    from pluralign.training.rm_trainer import use_bf16

    kw = dict(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, words=cfg.word_budget, seed=cfg.seed)
    if cfg.summarizer == "tiny":
        from pluralign.models.tiny import tiny_causal_lm

        model, tok = tiny_causal_lm(seed=cfg.seed)
        if cfg.lora_r:
            model = add_lora(model, r=cfg.lora_r, layers=cfg.lora_layers)
        s = HFSummarizer(model, tok, name="tiny", **kw)
    else:
        s = HFSummarizer.from_pretrained(cfg.summarizer, lora_r=cfg.lora_r, lora_layers=cfg.lora_layers,
                                         dtype=cfg.summarizer_dtype, **kw)
    if device is not None:
        s.model.to(device)
    s.bf16 = use_bf16(cfg.summarizer_bf16, s.device)
    return s


def build_rm(cfg: PlusConfig, device: torch.device | None = None):
    from pluralign.models.reward_model import SummaryConditionedRM

    r = cfg.rm
    kw = {"max_length": r.max_length, "pooling": r.pooling, "lora_r": r.lora_r, "lora_alpha": r.lora_alpha,
          "lora_dropout": r.lora_dropout, "seed": cfg.seed}
    if r.backbone == "tiny":
        from pluralign.models.tiny import tiny_causal_lm

        model, tok = tiny_causal_lm(seed=cfg.seed + 1)
        rm = SummaryConditionedRM.from_model(model, tok, backbone_name=None, **kw)
    else:
        rm = SummaryConditionedRM.from_backbone(r.backbone, **kw)
    return rm.to(device) if device is not None else rm


def build_updater(cfg: PlusConfig, summarizer):
    """The summarizer's RL update: PPO (hf), or critic-free group-normalised (GRPO / RLOO)."""
    from pluralign.training.group_rl import SelectionGroupUpdater, TokenGroupUpdater

    if cfg.backend == "cpu":
        return SelectionGroupUpdater(summarizer, lr=cfg.summarizer_lr, mode=cfg.algo, kl_coef=cfg.kl_coef)
    if cfg.algo == "ppo":
        from pluralign.training.ppo import PPOSettings, PPOUpdater

        st = PPOSettings(clip=cfg.clip_range, lam=cfg.gae_lambda, kl_coef=cfg.kl_coef, epochs=cfg.ppo_epochs,
                         minibatch_size=cfg.minibatch_size)
        return PPOUpdater(summarizer, st, lr=cfg.summarizer_lr, critic_lr=cfg.critic_lr)
    return TokenGroupUpdater(summarizer, lr=cfg.summarizer_lr, mode=cfg.algo, clip=cfg.clip_range,
                             kl_coef=cfg.kl_coef, epochs=cfg.ppo_epochs, minibatch_size=cfg.minibatch_size)


def pair_margins(rm, pairs: Sequence[PreferencePair], summaries: Sequence[str | None], *,
                 dtype: str = "fp32") -> np.ndarray:
    """r(x, y_c | z) - r(x, y_r | z) per pair, one summary per pair. Repeated (pair, summary) items are scored once
    (a sharpened policy can sample the same summary more than once in a group)."""
    keys = [(p.prompt, p.chosen, p.rejected, z or "") for p, z in zip(pairs, summaries, strict=True)]
    index: dict[tuple, int] = {}
    first = [index.setdefault(k, len(index)) for k in keys]
    uniq = list(index)
    prompts = [k[0] for k in uniq]
    summ = [k[3] or None for k in uniq] if any(k[3] for k in uniq) else None
    m = (rm.score(prompts, [k[1] for k in uniq], summ, dtype=dtype)
         - rm.score(prompts, [k[2] for k in uniq], summ, dtype=dtype))
    return m[np.asarray(first, dtype=np.int64)] if first else m


def reward_items(rows: Sequence[PlusRow], summaries: Sequence[str], group_size: int, max_pairs: int = 4
                 ) -> tuple[list[PreferencePair], list[str], list[int]]:
    """The (pair, summary) items a rollout's reward is scored on, and the sample each belongs to: up to
    ``max_pairs`` of the row's pairs per sample. ``summaries`` is context-major (``group_size`` per row)."""
    pairs, summ, owner = [], [], []
    for j, z in enumerate(summaries):
        for p in rows[j // group_size].pairs[:max_pairs]:
            pairs.append(p)
            summ.append(z)
            owner.append(j)
    return pairs, summ, owner


def split_pairs(row: PlusRow, n_reward: int, *, seed: int, step: int) -> tuple[PlusRow, list[PreferencePair]]:
    """This step's reward pairs (a row holding them) and RM training pairs of one context: a fresh shuffle per
    (seed, step, user) puts ``n_reward`` pairs on the reward side (at most all but one) and the rest on the RM side,
    so the summarizer is never rewarded on a pair the RM is fitting in the same step, and every pair serves both
    roles across steps. A context with a single pair gives it to the reward and trains the RM on nothing."""
    order = list(range(len(row.pairs)))
    random.Random(f"{seed}:{step}:{row.user_id}").shuffle(order)
    k = 1 if len(order) <= 1 else min(n_reward, len(order) - 1)
    reward = PlusRow(row.user_id, row.context, [row.pairs[i] for i in order[:k]])
    return reward, [row.pairs[i] for i in order[k:]]


def plus_rewards(rm, rows: Sequence[PlusRow], summaries: Sequence[str], group_size: int, *, clip: float = 10.0,
                 max_pairs: int = 4, dtype: str = "fp32") -> torch.Tensor:
    """R(z) = clip(log sigma(margin), -clip, clip), averaged over up to ``max_pairs`` of the row's pairs.

    ``summaries`` is context-major: ``group_size`` consecutive samples per row.
    """
    pairs, summ, owner = reward_items(rows, summaries, group_size, max_pairs)
    r = F.logsigmoid(torch.from_numpy(pair_margins(rm, pairs, summ, dtype=dtype)).float()).clamp(-clip, clip)
    out = torch.zeros(len(summaries)).index_add_(0, torch.tensor(owner), r)
    counts = torch.zeros(len(summaries)).index_add_(0, torch.tensor(owner), torch.ones(len(owner)))
    return out / counts.clamp(min=1)


def rm_rows(pairs: Sequence[PreferencePair], summaries: Sequence[str | None]) -> list[dict]:
    """In-memory rows for :class:`pluralign.training.rm_trainer.RMUpdater`."""
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "summary": z or None}
            for p, z in zip(pairs, summaries, strict=True)]


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
            from pluralign.training.rm_trainer import RMUpdater

            # One seed for the whole loop: the RM updates shuffle with the loop's seed, not rm.seed.
            self.rm_updater = RMUpdater(self.rm, replace(config.rm, seed=config.seed))
        self._grad_hooks = dp.average_gradients(self.optimizers(), self.world)
        from pluralign.training.rm_trainer import use_bf16

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
        from pluralign.models.reward_model import SummaryConditionedRM

        if self.cfg.backend == "cpu":
            from pluralign.summarizers.cpu import CpuSummarizer

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
        from pluralign.summarizers.copying import mean_copy_rate

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
            rollout = self.summarizer.rollout(contexts, group)
            summaries = rollout.summaries
            t1 = time.time()
            rec["rollout_seconds"] = round(t1 - t0, 2)
            if hasattr(rollout, "response_mask"):
                tokens = float(rollout.response_mask.sum(1).float().mean())
            rewards = plus_rewards(self.rm, reward_rows, summaries, group, clip=cfg.reward_clip,
                                   max_pairs=cfg.reward_pairs, dtype=self.score_dtype)
            shaped = rewards
            if cfg.length_coef:
                from pluralign.training.group_rl import length_bonus

                lengths = torch.tensor([word_count(z) for z in summaries], dtype=torch.float)
                shaped = rewards + length_bonus(lengths, self._length_ref or float(lengths.mean()),
                                                coef=cfg.length_coef)
            t2 = time.time()
            rec.update(self.updater.step(rollout, shaped))
            rec.update(reward_seconds=round(t2 - t1, 2), update_seconds=round(time.time() - t2, 2))
        # The RM trains on the context's other pairs (never this step's reward pairs) conditioned on the same
        # summaries: the first sample of each group, or the greedy summary inference will write
        # (``rm_summaries=greedy``: the RM then learns the summaries it is scored with).
        t3 = time.time()
        first = summaries[::group]
        if cfg.rm_summaries == "greedy" and not frozen:
            first = self.summarizer.summarize(contexts, sample=False)
        pairs = [p for _, train_pairs in split for p in train_pairs]
        summ = [z for (_, train_pairs), z in zip(split, first, strict=True) for _ in train_pairs]
        rec["rm_summary_seconds"] = round(time.time() - t3, 2)
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
        from pluralign.summarizers.store import SummaryStore

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
