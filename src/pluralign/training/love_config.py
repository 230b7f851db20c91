"""Configuration of the P[Love] trainer (``pluralign train love``); every field documents itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from pluralign.models.backbone import DEFAULT_BACKBONE


@dataclass
class LoveConfig:
    backbone: str = field(
        default="ngram", metadata={"help": "'ngram' (hashed n-grams, CPU default) or a HF encoder id / local dir "
                                           f"(frozen, mean-pooled, e.g. {DEFAULT_BACKBONE})"})
    max_length: int = field(default=128, metadata={"help": "encoder truncation length in tokens"})
    embedding_cache: str | None = field(
        default=None, metadata={"help": "npz file caching encoder embeddings across runs (none = in-memory only)"})
    batch_size: int = field(default=64, metadata={"help": "encoder batch size"})
    reaction_kind: str = field(default="love", metadata={"help": "which Reaction.kind counts as the binary signal"})
    target_pos_share: float = field(
        default=0.1, metadata={"help": "upsample positives to this share of training data (paper: 0.1)"})
    live_base_rate: float | None = field(
        default=None, metadata={"help": "live love rate for the prior-shift correction (default: train rate)"})
    C: float = field(default=1.0, metadata={"help": "inverse L2 strength of the logistic head"})
    test_fraction: float = field(
        default=0.2, metadata={"help": "latest share of reactions (by timestamp) held out as the chrono test split"})
    views: bool = field(
        default=True, metadata={"help": "n-gram encoder: add opening/closing windows, symbol counts and a squared "
                                        "length term (false = the earlier whole-text bag + log length)"})
    personalised: bool = field(
        default=False, metadata={"help": "condition on the user's summary (profile, or persona text for sim users)"})
    length_debias: bool = field(
        default=False, metadata={"help": "remove the response-length effect from the score (see debias_method)"})
    debias_method: str = field(
        default="poe", metadata={"help": "with length_debias: 'joint' (length basis fitted with the rest, held at its "
                                         "mean at inference) or 'poe' (a length-only expert fitted first and used as a "
                                         "fixed offset in training, dropped at inference)"})
    defence: bool = field(
        default=True, metadata={"help": "down-weight users whose reactions carry no or inverse signal (adversarial.py)"})
    defence_folds: int = field(default=3, metadata={"help": "user folds for the cross-fitted reference model"})
    defence_rounds: int = field(default=2, metadata={"help": "re-fit rounds of the user reliability weights"})
    honest_prior: float = field(default=0.8, metadata={"help": "prior probability that a user reacts honestly"})
    inverter_share: float = field(
        default=0.5, metadata={"help": "share of the non-honest prior on inverters (content reversed) vs random "
                                       "reactors (0 = no inverter hypothesis)"})
    positive_cap: int = field(
        default=20, metadata={"help": "a user's loves count at most this many in total (spam cap; 0 = off)"})
    burst_window_s: float = field(
        default=60.0, metadata={"help": "loves by one user within this many seconds form a burst (share one weight)"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="cpu", metadata={"help": "torch device for the encoder"})
