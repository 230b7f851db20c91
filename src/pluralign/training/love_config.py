"""Configuration of the P[Love] trainer (``pluralign train love``); every field documents itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from pluralign.models.backbone import DEFAULT_BACKBONE


@dataclass
class LoveConfig:
    model: str = field(
        default="linear", metadata={"help": "'linear' (the love-linear baseline: features + logistic head) or 'neural' "
                                            "(a fine-tuned transformer classifier, see neural_backbone)"})
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
        default=False, metadata={"help": "condition on the user's summary, written by `summarizer` from their own "
                                         "earlier reactions (never the simulator's persona)"})
    summarizer: str = field(
        default="cpu", metadata={"help": "who writes the summaries: 'cpu' (the extractive CPU summarizer, zero-shot), "
                                         "'hf:NAME' (an HF causal LM summarizer, e.g. hf:smollm2), a saved summarizer "
                                         "directory, or 'stored' (meta.summary / the user's profile in the records)"})
    summary_blocks: int = field(
        default=4, metadata={"help": "training reactions are cut into this many time blocks; a reaction in block b "
                                     "sees the summary of the user's blocks < b (test reactions: all training blocks)"})
    negatives_per_love: int = field(
        default=1, metadata={"help": "history shown to the summarizer: each loved response paired with up to this "
                                     "many not-loved responses of the same user (nearest in time)"})
    history_loves: int = field(
        default=4, metadata={"help": "history shown to the summarizer: the user's latest N loves (a spammer's burst "
                                     "would otherwise fill it, and every sentence costs an encoder pass)"})
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
    neural_backbone: str = field(
        default=DEFAULT_BACKBONE, metadata={"help": "model=neural: any HF encoder or causal LM by name or local dir "
                                                    "(e.g. smollm2 for SmolLM2-135M-Instruct)"})
    neural_max_length: int = field(default=128, metadata={"help": "model=neural: tokens per (summary+request, "
                                                                  "response) input"})
    epochs: int = field(default=2, metadata={"help": "model=neural: passes over the positives (fresh negatives each)"})
    lr: float = field(default=5e-5, metadata={"help": "model=neural: AdamW learning rate of the transformer body"})
    head_lr: float = field(default=1e-3, metadata={"help": "model=neural: learning rate of the classification head"})
    neural_row_pos_share: float = field(
        default=0.33, metadata={"help": "model=neural: share of positive rows in each epoch (fewer negatives drawn, "
                                        "weighted so the positives' weighted share is still target_pos_share)"})
    train_layers: int = field(
        default=2, metadata={"help": "model=neural: fine-tune only the top N transformer blocks and the head (0 = "
                                     "all); the backward pass stops there, most of a CPU step's cost"})
    train_batch_size: int = field(default=32, metadata={"help": "model=neural: rows per optimizer step"})
    length_aware: bool = field(
        default=False, metadata={"help": "model=neural: a length-only expert's logit joins the network's in training "
                                         "and at inference (the network reads at most neural_max_length tokens, so it "
                                         "cannot tell how long a long response is); not with length_debias"})
    bf16: bool | None = field(
        default=None, metadata={"help": "model=neural: bf16 autocast (none = where the CPU/GPU runs it fast)"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="cpu", metadata={"help": "torch device for the encoder"})

    def __post_init__(self) -> None:
        if self.model not in ("linear", "neural"):
            raise ValueError(f"model must be 'linear' or 'neural', got {self.model!r}")
        if self.summary_blocks < 1:
            raise ValueError(f"summary_blocks must be >= 1, got {self.summary_blocks}")
        if self.length_aware and self.length_debias:
            raise ValueError("length_aware keeps the length expert at inference and length_debias drops it: set one")
