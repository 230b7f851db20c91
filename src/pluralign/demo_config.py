"""``DemoConfig``: every knob of ``pluralign demo`` (``configs/demo-cpu.yaml`` writes out its defaults).

The reward models' settings are the nested ``rm`` section (an :class:`RMConfig`, ``--set rm.max_steps=60``); its
defaults are the small run's CPU budget, and :func:`apply_size` moves every knob still at its default to the size
preset (``tiny`` shrinks the run for CI, ``full`` raises the RM budget).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pluralign.training.rm_config import RMConfig


def small_rm_config() -> RMConfig:
    """The RM budget of a small (default) run: the bench's quick budget, fit for 2 CPU cores."""
    return RMConfig(max_length=160, max_steps=30, batch_size=8, lr=1e-4)


@dataclass
class DemoConfig:
    suite: str = field(default="pets", metadata={"help": "simulated suite for the PLUS part (pets, pets-ood, "
                                                         "hh-users, contexts)"})
    polis_dir: str | None = field(default=None, metadata={"help": "run the PLUS part on this folder of Polis "
                                                                   "conversations instead of a simulated suite"})
    size: str = field(default="small", metadata={"help": "tiny (CI smoke test), small (the default, ~15 min on "
                                                          "2 cores) or full"})
    methods: list[str] = field(default_factory=lambda: ["keyword", "bt", "icl", "oracle", "latent", "plus-untrained",
                                                        "plus"],
                               metadata={"help": "personalisation methods to train and compare (keyword: the "
                                                 "non-learned floor every learned method must beat)"})
    rm: RMConfig = field(default_factory=small_rm_config, metadata={
        "help": "the reward models of every RM-based method (an RMConfig section; defaults: the small run's CPU "
                "budget; size=full raises max_length/max_steps/batch_size/lr still at these defaults to 256/300/"
                "16/5e-5, size=tiny sets max_steps 8)"})
    plus_config: str | None = field(default=None, metadata={"help": "YAML PlusConfig for the plus methods (e.g. "
                                                                     "the paper-scale GPU config)"})
    love_users: int = field(default=200, metadata={"help": "users in the simulated reaction log"})
    love_per_user: int = field(default=30, metadata={"help": "reactions per user"})
    base_rate: float = field(default=0.02, metadata={"help": "live love base rate of the simulated users"})
    adversarial_frac: float = field(default=0.1, metadata={"help": "share of adversarial reactors"})
    ab_prompts: int = field(default=30, metadata={"help": "prompts in the fixed A/B prompt set"})
    ab_users: int = field(default=200, metadata={"help": "simulated users reacting in the A/B test"})
    impressions: int = field(default=300, metadata={"help": "impressions per prompt and arm"})
    policy_model: str | None = field(default=None, metadata={"help": "policy LLM (None = SmolLM2-135M-Instruct; "
                                                                     "'tiny' = a tiny random decoder, for CI)"})
    policy_steps: int = field(default=4, metadata={"help": "GRPO steps per policy"})
    policy_tokens: int = field(default=32, metadata={"help": "new tokens per policy answer"})
    policy_train_prompts: int = field(default=8, metadata={"help": "GRPO training prompts"})
    policy_offline_prompts: int = field(default=15, metadata={"help": "prompts P[Love] and the gate score offline"})
    winrate_candidates: int = field(default=4, metadata={"help": "N of best-of-N in the win-rate test"})
    winrate_prompts: int = field(default=3, metadata={"help": "prompts per user in the win-rate test"})
    seed: int = field(default=0, metadata={"help": "seed for everything"})

    @property
    def quick(self) -> bool:
        return self.size in ("tiny", "small")


# Size presets, as dotted keys; each applies only to a knob still at its DemoConfig default.
SIZE_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"love_users": 60, "love_per_user": 20, "ab_prompts": 10, "ab_users": 60, "impressions": 100,
             "policy_model": "tiny", "policy_steps": 2, "policy_tokens": 12, "policy_train_prompts": 4,
             "policy_offline_prompts": 5, "rm.max_steps": 8, "winrate_prompts": 1},
    # The default run fits ~15 minutes on 2 CPU cores: half the GRPO steps and a smaller A/B and offline prompt
    # set than the field defaults, which size=full keeps (the PLUS budget of small: pluralign.demo.SMALL_PLUS).
    "small": {"policy_steps": 2, "ab_prompts": 20, "policy_offline_prompts": 10},
    "full": {"rm.max_length": 256, "rm.max_steps": 300, "rm.batch_size": 16, "rm.lr": 5e-5},
}


def _get(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _with(obj: Any, key: str, value: Any) -> Any:
    head, _, rest = key.partition(".")
    return dataclasses.replace(obj, **{head: _with(getattr(obj, head), rest, value) if rest else value})


def apply_size(cfg: DemoConfig) -> DemoConfig:
    """``cfg`` with its size preset applied to every knob still at its default (a value set to something else
    wins); ``tiny`` is the CI smoke test, ``full`` the full RM budget."""
    if cfg.size not in SIZE_PRESETS:
        raise ValueError(f"size must be tiny, small or full, got {cfg.size!r}")
    defaults = DemoConfig()
    for key, value in SIZE_PRESETS[cfg.size].items():
        if _get(cfg, key) == _get(defaults, key):
            cfg = _with(cfg, key, value)
    return cfg
