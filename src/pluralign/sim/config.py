"""Configuration of simulated reaction logs (``pluralign simulate reactions --config``); every field documents itself."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReactionLogConfig:
    n_users: int = field(default=200, metadata={"help": "number of simulated users (honest and adversarial)"})
    per_user: int = field(default=40, metadata={"help": "responses shown to each user over the period"})
    base_rate: float = field(
        default=0.02, metadata={"help": "honest users' mean P(love) on the log (calibrated exactly; 0.01-0.10)"})
    adversarial_frac: float = field(default=0.1, metadata={"help": "share of adversarial users"})
    adversary_kinds: list[str] = field(
        default_factory=lambda: ["random", "inverter", "spammer"],
        metadata={"help": "adversary kinds, assigned in turn: random, inverter, spammer"})
    signoff_share: float = field(
        default=0.1, metadata={"help": "share of shown responses ending with an affectionate sign-off (the cue)"})
    susceptible_frac: float = field(
        default=0.4, metadata={"help": "about this share of users love the sign-off cue (mostly warm-register ones)"})
    days: float = field(default=28.0, metadata={"help": "length of the logged period in days"})
    love_scale: float = field(
        default=0.4, metadata={"help": "weight of the persona utility in the love logit (higher = less noise)"})
    seed: int = field(default=0, metadata={"help": "random seed (same seed, same log)"})
