"""Neural P[Love]: Pr(love | user summary, prompt, response) from a fine-tuned transformer classifier.

Why this shape: RLUF's P[Love] is an LLM with a classification head trained with binary cross-entropy. Here any HF
backbone is the body (MiniLM by default, resolved offline; SmolLM2 or any causal LM by name), fine-tuned end to end
with a one-logit head on a pooled representation: mean pooling for encoders (how MiniLM was trained), the last real
token for decoders (how a causal LM summarises its input). The user enters as text: the PLUS summary written from
their own history goes in front of the request, so personalisation needs no per-user parameters and a new user is
scored from their summary alone. The simulator's persona is never an input.

Training data is positive-upsampled (the trainer draws fewer negatives per epoch, see
:mod:`pluralign.training.love_trainer`), so raw outputs are calibrated to the training prior;
:meth:`NeuralLoveModel.predict_proba` shifts the logit to the live base rate, as the linear
:class:`~pluralign.models.love.LoveModel` does. A length-only logistic expert can join the network's logit in two
ways: a product-of-experts length *debias* adds it while training and drops it at inference, so the network learns
what length does not explain and the score carries no length effect; *length-aware* scoring keeps it at inference
too, because the network reads at most ``max_length`` tokens and cannot tell how long a long response is (the linear
model has length features; real raters' reactions do depend on length).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from pluralign.data.text import word_count
from pluralign.models.backbone import DEFAULT_BACKBONE, resolve_backbone
from pluralign.models.llm import is_default_llm, resolve_llm
from pluralign.models.logistic import logit
from pluralign.models.saved_state import read_state, write_state
from pluralign.models.symbol_names import SymbolSpeller
from pluralign.models.text_views import check_aligned, prompt_view, response_view

NEURAL_STATE_FILE = "love_neural.json"
NEURAL_HEAD_FILE = "love_neural_head.pt"
ENCODER_DIR = "encoder"


def resolve_love_backbone(name: str) -> str:
    """A local directory for ``name``: the embedded LLM's aliases and ``.gguf`` files via
    :func:`pluralign.models.llm.resolve_llm`, everything else via the offline backbone resolver."""
    if is_default_llm(name) or str(name).lower().endswith(".gguf"):
        return resolve_llm(name)
    return resolve_backbone(name)


def format_input(prompt: str, response: str, summary: str | None) -> tuple[str, str]:
    """The classifier's two segments: (what the user is like and asked, what the assistant answered).

    The response keeps its opening and closing (sign-offs live at the end), the prompt its last user turn."""
    request = "Request: " + prompt_view(prompt)
    if summary:
        request = "About the user: " + " ".join(summary.split()) + "\n" + request
    return request, response_view(response)


class NeuralLoveModel(nn.Module):
    """Transformer body + one-logit head; see the module docstring. ``personalised=False`` ignores summaries."""

    def __init__(self, backbone: str = DEFAULT_BACKBONE, *, max_length: int = 160, personalised: bool = True,
                 pooling: str = "auto", bf16: bool = False, seed: int = 0, _path: str | None = None):
        super().__init__()

        if pooling not in ("auto", "mean", "last"):
            raise ValueError(f"pooling must be auto, mean or last, got {pooling!r}")
        torch.manual_seed(seed)
        path = _path or resolve_love_backbone(backbone)
        self.backbone = backbone
        self.max_length = max_length
        self.personalised = personalised
        self.bf16 = bf16
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.speller = SymbolSpeller(self.tokenizer)  # emojis as names: MiniLM reads them all as [UNK]
        self.encoder = AutoModel.from_pretrained(path, dtype=torch.float32)
        archs = getattr(self.encoder.config, "architectures", None) or []
        is_decoder = any(a.endswith("ForCausalLM") for a in archs) or bool(getattr(self.encoder.config, "is_decoder",
                                                                                   False))
        self.pooling = ("last" if is_decoder else "mean") if pooling == "auto" else pooling
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.head = nn.Linear(int(self.encoder.config.hidden_size), 1)
        nn.init.normal_(self.head.weight, std=0.02)
        self.train_prior = 0.5
        self.live_prior = 0.5
        # The length-only expert: [intercept, coef_z, coef_z2]; its centred logit joins the network's in training,
        # and at inference too when ``length_kept`` (length-aware), never when it is a debias.
        self.length_expert: list[float] | None = None
        self.length_centre = 0.0
        self.length_kept = False
        self.length_mean, self.length_std = 0.0, 1.0
        self._cache: dict[str, float] = {}

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # --- inputs --------------------------------------------------------------------------------------------------
    def inputs(self, prompts: Sequence[str], responses: Sequence[str],
               summaries: Sequence[str | None] | None = None) -> list[tuple[str, str]]:
        check_aligned(prompts, responses, summaries)
        if summaries is None or not self.personalised:
            summaries = [None] * len(prompts)
        return [format_input(p, r, s) for p, r, s in zip(prompts, responses, summaries, strict=True)]

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
        spell = self.speller.spell
        enc = self.tokenizer([spell(a) for a, _ in pairs], [spell(b) for _, b in pairs], truncation="longest_first",
                             max_length=self.max_length, padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask",
                                                                      "token_type_ids")}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Raw logits (training prior), one per row."""
        kw = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kw).last_hidden_state
        if self.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        else:
            last = attention_mask.sum(1).clamp(min=1) - 1
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(pooled.float()).squeeze(-1)

    # --- length expert (PoE debias) ------------------------------------------------------------------------------
    @staticmethod
    def length_features(responses: Sequence[str], mean: float, std: float) -> np.ndarray:
        """The length expert's inputs: standardised log word count and its centred square (long and short answers
        can both be disliked)."""
        z = (np.log1p([word_count(r) for r in responses]) - mean) / std
        return np.stack([z, z * z - 1.0], axis=1)

    @staticmethod
    def length_stats(responses: Sequence[str]) -> tuple[float, float]:
        """Mean and standard deviation of the log word count: what :meth:`length_features` standardises with."""
        lengths = np.log1p([word_count(r) for r in responses])
        return float(lengths.mean()), float(lengths.std() or 1.0)

    def length_basis(self, responses: Sequence[str]) -> np.ndarray:
        return self.length_features(responses, self.length_mean, self.length_std)

    def length_offset(self, responses: Sequence[str]) -> np.ndarray:
        """The length expert's logit, centred on the training rows; zeros when there is no expert."""
        if self.length_expert is None:
            return np.zeros(len(responses))
        b = np.asarray(self.length_expert, dtype=np.float64)
        return self.length_basis(responses) @ b[1:] - self.length_centre

    # --- inference -----------------------------------------------------------------------------------------------
    @property
    def prior_shift(self) -> float:
        return logit(self.live_prior) - logit(self.train_prior)

    @staticmethod
    def _key(pair: tuple[str, str]) -> str:
        return hashlib.blake2b(("\x00".join(pair)).encode("utf-8"), digest_size=16).hexdigest()

    @torch.no_grad()
    def raw_logits(self, prompts: Sequence[str], responses: Sequence[str],
                   summaries: Sequence[str | None] | None = None, *, batch_size: int = 64,
                   progress: bool = False) -> np.ndarray:
        """Logits calibrated to the training prior (the network's, plus the length expert's when it is kept); each
        unique input runs once through the network (cached until the next update)."""
        pairs = self.inputs(prompts, responses, summaries)
        keys = [self._key(p) for p in pairs]
        todo = list({k: p for k, p in zip(keys, pairs, strict=True) if k not in self._cache}.items())
        if todo:
            was_training = self.training
            self.eval()
            todo.sort(key=lambda kv: len(kv[1][0]) + len(kv[1][1]))  # similar lengths: less padding
            steps = range(0, len(todo), batch_size)
            for i in tqdm(steps, desc=f"P[Love] scoring {len(todo)}", disable=not progress or len(todo) < 2 * batch_size):
                chunk = todo[i:i + batch_size]
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    out = self(**self.tokenize([p for _, p in chunk])).float().cpu().numpy()
                for (k, _), v in zip(chunk, out, strict=True):
                    self._cache[k] = float(v)
            self.train(was_training)
        z = np.array([self._cache[k] for k in keys], dtype=np.float64)
        return z + self.length_offset(responses) if self.length_kept else z

    def clear_cache(self) -> None:
        """Forget cached scores (the trainer calls this after every update)."""
        self._cache.clear()

    def predict_proba(self, prompts: Sequence[str], responses: Sequence[str],
                      summaries: Sequence[str | None] | None = None, *, corrected: bool = True,
                      progress: bool = False) -> np.ndarray:
        """P[Love] per (prompt, response[, summary]); ``corrected`` maps it to the live base rate (the default)."""
        z = self.raw_logits(prompts, responses, summaries, progress=progress)
        if corrected:
            z = z + self.prior_shift
        return 1.0 / (1.0 + np.exp(-z))

    # --- persistence ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"kind": "neural", "backbone": self.backbone, "max_length": self.max_length,
                "personalised": self.personalised, "pooling": self.pooling, "bf16": self.bf16,
                "train_prior": self.train_prior, "live_prior": self.live_prior, "length_expert": self.length_expert,
                "length_centre": self.length_centre, "length_kept": self.length_kept,
                "length_mean": self.length_mean, "length_std": self.length_std}

    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out / ENCODER_DIR)
        self.tokenizer.save_pretrained(out / ENCODER_DIR)
        torch.save(self.head.state_dict(), out / NEURAL_HEAD_FILE)
        write_state(out / NEURAL_STATE_FILE, self.state(), indent=1)  # written last: the save finished
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> NeuralLoveModel:
        p = Path(path)
        s = read_state(p / NEURAL_STATE_FILE, "neural P[Love]")
        m = cls(s["backbone"], max_length=int(s["max_length"]), personalised=bool(s["personalised"]),
                pooling=s["pooling"], bf16=bool(s.get("bf16", False)), _path=str(p / ENCODER_DIR))
        m.head.load_state_dict(torch.load(p / NEURAL_HEAD_FILE, weights_only=True))
        m.train_prior, m.live_prior = float(s["train_prior"]), float(s["live_prior"])
        m.length_expert = s.get("length_expert")
        m.length_centre, m.length_kept = float(s.get("length_centre", 0.0)), bool(s.get("length_kept", False))
        m.length_mean, m.length_std = float(s["length_mean"]), float(s["length_std"])
        m.eval()
        return m


def transformer_layers(encoder: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of an HF body (BERT-like ``encoder.layer``, Llama-like ``layers``, GPT-2's
    ``h``); a clear error for an architecture this does not know."""
    for path in ("encoder.layer", "layers", "h", "transformer.h", "model.layers"):
        obj = encoder
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj):
            return obj
    raise ValueError(f"{type(encoder).__name__}: cannot find its transformer blocks to fine-tune the top ones; set "
                     "train_layers=0 to train every layer")


def freeze_below(model: NeuralLoveModel, train_layers: int) -> int:
    """Train only the top ``train_layers`` blocks (and the head, and any final norm): the backward pass stops there,
    which is most of the cost of fine-tuning on a CPU. 0 trains everything. Returns the trainable parameter count."""
    if train_layers > 0:
        layers = transformer_layers(model.encoder)
        for p in model.encoder.parameters():
            p.requires_grad_(False)
        for block in list(layers)[-train_layers:]:
            for p in block.parameters():
                p.requires_grad_(True)
        for name in ("norm", "final_layer_norm", "ln_f"):
            mod = getattr(model.encoder, name, None)
            if isinstance(mod, nn.Module):
                for p in mod.parameters():
                    p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def is_neural_love_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / NEURAL_STATE_FILE).exists()


def init_head_bias(model: NeuralLoveModel, prior: float) -> None:
    """Start the head at the training prior, so the first steps learn content rather than the base rate."""
    with torch.no_grad():
        model.head.bias.fill_(math.log(prior / (1 - prior)))
