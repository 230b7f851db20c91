"""The summary-conditioned reward model r(x, y | z) of PLUS: any HF backbone plus a scalar head, as a
``transformers.PreTrainedModel``.

Decoders (Qwen2, Llama, ...) read the reward at the last non-pad token, encoders (BERT family, e.g.
all-MiniLM-L6-v2, the CPU default) mean-pool (or take CLS). What the model reads (the PLUS template, chat or
text-pair rendering, truncation that is reported, never silent) is :mod:`pluralign.models.rm_inputs`.

Checkpoints are the library's: ``save_pretrained`` writes ``config.json`` (a :class:`SummaryConditionedRMConfig`
holding the backbone's config), ``model.safetensors`` (backbone, LoRA adapters if any, and head) and the tokenizer;
``from_pretrained`` reads them back, and the RewardTrainer's ``checkpoint-<step>`` directories are the same format.
Directories of the earlier format (``pluralign_rm.json`` + ``head.safetensors``) still load
(:mod:`pluralign.models.rm_checkpoint`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from pluralign.models import rm_checkpoint
from pluralign.models.backbone import resolve_backbone
from pluralign.models.rm_checkpoint import MODEL_TYPE, is_encoder_config
from pluralign.models.rm_inputs import PLUS_TEMPLATE, RMEncoding, RMInputs, check_texts

__all__ = ["PLUS_TEMPLATE", "RMEncoding", "SummaryConditionedRM", "SummaryConditionedRMConfig"]


class SummaryConditionedRMConfig(PretrainedConfig):
    """The reward model's settings beside its backbone's own config (``backbone_config``).

    ``max_input_length`` is the token budget of one (summary, prompt, response) input (``max_length`` is a
    generation setting to the library, so it is not used as a model-config key). ``spell_symbols``: characters the
    tokenizer reads as unknown (emojis, for MiniLM) reach the model as their Unicode names."""

    model_type = MODEL_TYPE

    def __init__(self, backbone_config: Any = None, backbone_name: str | None = None, pooling: str = "mean",
                 max_input_length: int = 256, template: str = PLUS_TEMPLATE, lora: dict | None = None,
                 is_encoder: bool = True, spell_symbols: bool = True, **kwargs) -> None:
        if isinstance(backbone_config, dict):
            backbone_config = AutoConfig.for_model(**backbone_config)
        self.backbone_config = backbone_config
        self.backbone_name = backbone_name
        if pooling not in ("mean", "cls", "last"):
            raise ValueError(f"pooling must be mean, cls or last, got {pooling!r}")
        self.pooling = pooling
        self.max_input_length = int(max_input_length)
        self.template = template
        self.lora = dict(lora) if lora else None
        self.is_encoder = bool(is_encoder)
        self.spell_symbols = bool(spell_symbols)
        kwargs["num_labels"] = 1  # one scalar reward per sequence (what TRL's RewardTrainer checks)
        super().__init__(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if isinstance(self.backbone_config, PretrainedConfig):
            out["backbone_config"] = self.backbone_config.to_dict()
        return out

    @property
    def hidden_size(self) -> int:
        cfg = self.backbone_config
        return int(getattr(cfg, "hidden_size", 0) or cfg.d_model)


def _lora_wrap(backbone, lora: dict, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(backbone, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"],
                                                   lora_dropout=lora["dropout"], target_modules="all-linear",
                                                   bias="none"))


class SummaryConditionedRM(PreTrainedModel):
    """Scalar reward r(prompt, response | summary) over an HF backbone (encoder or decoder).

    ``forward`` follows the sequence-classification convention (``logits`` of shape (batch, 1)), so TRL's
    ``RewardTrainer`` trains it as is; :meth:`rewards` and :meth:`score` are the text-level entry points.
    """

    config_class = SummaryConditionedRMConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: SummaryConditionedRMConfig, backbone=None, tokenizer=None, seed: int = 0) -> None:
        super().__init__(config)
        if backbone is None:  # from_pretrained: the weights are loaded after construction
            backbone = AutoModel.from_config(config.backbone_config)
            if config.lora:
                backbone = _lora_wrap(backbone, config.lora, seed)
        else:  # already initialised (pretrained) weights: post_init must not touch them
            for m in backbone.modules():
                m._is_hf_initialized = True
        self.backbone = backbone
        self.freeze_untrained()
        hidden = config.hidden_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = nn.Linear(hidden, 1)
            nn.init.normal_(self.head.weight, std=1.0 / hidden**0.5)
            nn.init.zeros_(self.head.bias)
        self.head._is_hf_initialized = True
        self.inputs: RMInputs | None = None
        if tokenizer is not None:
            self.set_tokenizer(tokenizer)
        self.post_init()

    def freeze_untrained(self) -> None:
        """Only LoRA adapters train in a LoRA model; a BERT-style pooler never does (pooling is ours): frozen, it is
        not in the optimizer and DDP does not wait for gradients it never gets."""
        if self.config.lora:
            for name, p in self.backbone.named_parameters():
                p.requires_grad_("lora_" in name)
        pooler = getattr(getattr(self.backbone, "base_model", self.backbone), "pooler", None)
        if isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)

    def _init_weights(self, module) -> None:  # every weight is set in __init__ or loaded from a checkpoint
        return

    def set_tokenizer(self, tokenizer) -> None:
        """Attach the tokenizer the model reads with (``from_pretrained`` does this from the same directory)."""
        self.inputs = RMInputs(tokenizer, is_encoder=self.config.is_encoder, max_length=self.config.max_input_length,
                               template=self.config.template, spell_symbols=self.config.spell_symbols)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_backbone(cls, name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2", *, max_length: int = 256,
                      pooling: str | None = None, lora_r: int = 0, lora_alpha: int = 16, lora_dropout: float = 0.05,
                      template: str = PLUS_TEMPLATE, seed: int = 0, torch_dtype: torch.dtype | None = None
                      ) -> SummaryConditionedRM:
        """A fresh reward model (random head) over a local/offline backbone; ``lora_r > 0`` wraps it with LoRA."""
        path = resolve_backbone(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        backbone = AutoModel.from_pretrained(path, dtype=torch_dtype)
        return cls.from_model(backbone, tokenizer, backbone_name=str(name_or_path), max_length=max_length,
                              pooling=pooling, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                              template=template, seed=seed)

    @classmethod
    def from_model(cls, model, tokenizer, *, backbone_name: str | None = None, max_length: int = 256,
                   pooling: str | None = None, lora_r: int = 0, lora_alpha: int = 16, lora_dropout: float = 0.05,
                   template: str = PLUS_TEMPLATE, seed: int = 0) -> SummaryConditionedRM:
        """Wrap an already loaded model (e.g. ``tiny_causal_lm()``); ``lora_r > 0`` adds LoRA adapters."""
        # A *ForCausalLM / *ForMaskedLM wrapper: keep only the trunk, the LM head is dead weight for a reward model.
        base = getattr(model, "base_model", model)
        encoder = is_encoder_config(base.config)
        limit = getattr(base.config, "max_position_embeddings", None)
        if limit and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the backbone's {limit} positions")
        lora = {"r": int(lora_r), "alpha": int(lora_alpha), "dropout": float(lora_dropout)} if lora_r > 0 else None
        config = SummaryConditionedRMConfig(
            backbone_config=base.config, backbone_name=backbone_name, pooling=pooling or ("mean" if encoder else
                                                                                          "last"),
            max_input_length=max_length, template=template, lora=lora, is_encoder=encoder)
        config.dtype = base.dtype
        backbone = _lora_wrap(base, lora, seed) if lora else base
        return cls(config, backbone=backbone, tokenizer=tokenizer, seed=seed)

    # ------------------------------------------------------------------ reading
    @property
    def tokenizer(self):
        return self._inputs().tokenizer

    @property
    def max_length(self) -> int:
        """Token budget of one input; settable (e.g. to score longer contexts than the model trained on)."""
        return self.config.max_input_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.config.max_input_length = int(value)
        if self.inputs is not None:
            self.inputs.max_length = int(value)

    def _inputs(self) -> RMInputs:
        if self.inputs is None:
            raise RuntimeError("no tokenizer attached: load with from_pretrained or call set_tokenizer()")
        return self.inputs

    def encode(self, prompts: Sequence[str], responses: Sequence[str], summaries: Sequence[str | None] | None = None,
               max_length: int | None = None) -> RMEncoding:
        """Right-padded model inputs plus per-item truncation counts (see :mod:`pluralign.models.rm_inputs`)."""
        return self._inputs().encode(prompts, responses, summaries, max_length)

    def count_tokens(self, prompts: Sequence[str], responses: Sequence[str],
                     summaries: Sequence[str | None] | None = None) -> np.ndarray:
        """Untruncated input length in tokens per item (what the model would read with no ``max_length``)."""
        items = self._inputs().tokenize(prompts, responses, summaries, max_length=10**9)
        return np.array([len(x) for x in items.input_ids])

    # ------------------------------------------------------------------ model
    def forward(self, input_ids, attention_mask, token_type_ids=None, **_: Any) -> SequenceClassifierOutput:
        """``logits``: rewards of shape (batch, 1), float32. Extra keys of a trainer batch (``margin``) are ignored."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**kwargs).last_hidden_state
        mask = attention_mask.to(hidden.dtype)
        if self.config.pooling == "mean":
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        elif self.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # last non-pad token, whichever side the padding is on
            pos = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            last = (attention_mask * pos).argmax(dim=1)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return SequenceClassifierOutput(logits=self.head(pooled.float()))

    def rewards(self, prompts, responses, summaries=None) -> torch.Tensor:
        """Differentiable rewards, shape (batch,), for a batch of texts."""
        batch = self.encode(prompts, responses, summaries).batch.to(self.device)
        return self(**batch).logits.squeeze(-1)

    @torch.no_grad()
    def score(self, prompts: Sequence[str], responses: Sequence[str], summaries: Sequence[str | None] | None = None,
              batch_size: int = 64, dtype: str = "fp32") -> np.ndarray:
        """Rewards as a float32 array, in input order; eval mode and no grad; ``dtype="bf16"`` autocasts."""
        if dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
        prompts, responses, summaries = check_texts(prompts, responses, summaries)
        # Sorting by length keeps padding low; the output is put back in input order.
        order = np.argsort([len(p) + len(r) + len(s or "") for p, r, s in zip(prompts, responses, summaries,
                                                                             strict=True)], kind="stable")
        out = np.empty(len(prompts), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start: start + batch_size]
                batch = self.encode([prompts[i] for i in idx], [responses[i] for i in idx],
                                    [summaries[i] for i in idx]).batch.to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
                    r = self(**batch).logits.squeeze(-1)
                out[idx] = r.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """The library's ``save_pretrained`` plus the tokenizer, so the directory is complete on its own."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.inputs is not None:
            self.inputs.tokenizer.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args,
                        device: str | torch.device | None = None, **kwargs) -> SummaryConditionedRM:
        """The library's ``from_pretrained`` with the tokenizer attached; a missing, corrupt or incomplete file
        raises ``RMCheckpointError`` naming it (a model is never silently half-initialised)."""
        model = rm_checkpoint.load(cls, pretrained_model_name_or_path, *args, **kwargs)
        return model.to(device) if device is not None else model


AutoConfig.register(SummaryConditionedRMConfig.model_type, SummaryConditionedRMConfig, exist_ok=True)
AutoModel.register(SummaryConditionedRMConfig, SummaryConditionedRM, exist_ok=True)
