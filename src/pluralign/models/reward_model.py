"""The summary-conditioned reward model r(x, y | z) of PLUS: any HF backbone plus a scalar head.

The user summary z (or any user text: raw in-context examples, a persona, a group label) goes into the first user
turn with the PLUS template, then the response follows:

* decoder LMs (Qwen2, Llama, ...): one chat rendered with the tokenizer's chat template (user turn, assistant turn),
  reward read at the last non-pad token;
* encoders (BERT family, e.g. all-MiniLM-L6-v2, the CPU default): a text pair (conditioned prompt, response),
  mean-pooled (or CLS).

Inputs longer than ``max_length`` are cut in this order: the summary from its front (the end of a context, usually
the most recent part, is kept), then the prompt from its front, then the response from its end. The cut is never
silent: ``encode`` returns per-item counts so baselines such as ICL can report how often and how much was lost.

Checkpoints are plain HF directories: the backbone's own ``save_pretrained`` output (or a peft adapter), the
tokenizer, ``head.safetensors`` and ``pluralign_rm.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

PLUS_TEMPLATE = (
    "Here is the summary of my preferences based on previous conversations: {summary} In the following "
    "conversation, keep this in mind to personalize your response.\n\n{prompt}"
)
CONFIG_NAME = "pluralign_rm.json"
HEAD_NAME = "head.safetensors"
BASE_DIR = "base"  # the frozen base weights of a LoRA model, when they exist nowhere else (e.g. a tiny test model)
FORMAT_VERSION = 1

# Token roles used to decide what to cut. Chat markup and special tokens are fixed; the template's own words
# ("Here is the summary ...") are cut only once the whole summary is gone, when they no longer say anything.
_FIXED, _SUMMARY, _PROMPT, _RESPONSE, _WRAPPER = 0, 1, 2, 3, 4


class RMCheckpointError(ValueError):
    """A reward-model directory is missing a file or holds a corrupt one (the message names which)."""


class RMEncoding(NamedTuple):
    """Model inputs plus an account of what truncation removed, one entry per item."""

    batch: Any  # transformers.BatchEncoding: input_ids, attention_mask[, token_type_ids]
    summary_tokens_kept: list[int]
    summary_tokens_cut: list[int]
    prompt_tokens_cut: list[int]
    response_tokens_cut: list[int]


def _is_encoder(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    causal = getattr(config, "is_decoder", False)
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not causal


class SummaryConditionedRM(nn.Module):
    """Scalar reward r(prompt, response | summary) over an HF backbone (encoder or decoder)."""

    def __init__(
        self,
        backbone,
        tokenizer,
        *,
        backbone_name: str | None = None,
        pooling: str | None = None,
        max_length: int = 256,
        template: str = PLUS_TEMPLATE,
        lora: dict | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("SummaryConditionedRM needs a fast tokenizer (offsets are used to report truncation)")
        if "{summary}" not in template or "{prompt}" not in template:
            raise ValueError("template must contain {summary} and {prompt}")
        if template.index("{summary}") > template.index("{prompt}"):
            raise ValueError("template must place {summary} before {prompt}")
        # A *ForCausalLM / *ForMaskedLM wrapper: keep only the trunk, the LM head is dead weight for a reward model.
        base = getattr(backbone, "base_model", backbone)
        if base is not backbone and not hasattr(backbone, "peft_config"):
            backbone = base
        # A BERT-style pooler is never used (pooling is ours): freeze it so it is not trained, not in the optimizer,
        # and DDP does not wait for gradients it never gets.
        pooler = getattr(getattr(backbone, "base_model", backbone), "pooler", None)
        if isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.backbone_name = backbone_name
        self.template = template
        self.max_length = int(max_length)
        self.lora = dict(lora) if lora else None
        cfg = self.backbone.config
        self.is_encoder = _is_encoder(cfg)
        self.pooling = pooling or ("mean" if self.is_encoder else "last")
        if self.pooling not in ("mean", "cls", "last"):
            raise ValueError(f"pooling must be mean, cls or last, got {self.pooling!r}")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        limit = getattr(cfg, "max_position_embeddings", None)
        if limit and self.max_length > limit:
            raise ValueError(f"max_length={self.max_length} exceeds the backbone's {limit} positions")
        hidden = int(getattr(cfg, "hidden_size", 0) or cfg.d_model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = nn.Linear(hidden, 1)
            nn.init.normal_(self.head.weight, std=1.0 / hidden**0.5)
            nn.init.zeros_(self.head.bias)
        self._skeleton = None if self.is_encoder else self._chat_skeleton()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_backbone(
        cls,
        name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2",
        *,
        max_length: int = 256,
        pooling: str | None = None,
        lora_r: int = 0,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        template: str = PLUS_TEMPLATE,
        seed: int = 0,
        torch_dtype: torch.dtype | None = None,
    ) -> SummaryConditionedRM:
        """A fresh reward model (random head) over a local/offline backbone; ``lora_r > 0`` wraps it with LoRA."""
        from transformers import AutoModel, AutoTokenizer

        from pluralign.models.backbone import resolve_backbone

        path = resolve_backbone(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        backbone = AutoModel.from_pretrained(path, dtype=torch_dtype)
        return cls.from_model(backbone, tokenizer, backbone_name=str(name_or_path), max_length=max_length,
                              pooling=pooling, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                              template=template, seed=seed)

    @classmethod
    def from_model(
        cls,
        model,
        tokenizer,
        *,
        backbone_name: str | None = None,
        max_length: int = 256,
        pooling: str | None = None,
        lora_r: int = 0,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        template: str = PLUS_TEMPLATE,
        seed: int = 0,
    ) -> SummaryConditionedRM:
        """Wrap an already loaded model (e.g. ``tiny_causal_lm()``); ``lora_r > 0`` adds LoRA adapters."""
        lora = None
        base = getattr(model, "base_model", model)
        if lora_r > 0:
            from peft import LoraConfig, get_peft_model

            lora = {"r": int(lora_r), "alpha": int(lora_alpha), "dropout": float(lora_dropout)}
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                base = get_peft_model(base, LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                                                       target_modules="all-linear", bias="none"))
        return cls(base, tokenizer, backbone_name=backbone_name, pooling=pooling, max_length=max_length,
                   template=template, lora=lora, seed=seed)

    # ------------------------------------------------------------------ formatting
    def _chat_skeleton(self) -> tuple[str, str, str]:
        """Split the chat rendering into (before user text, between user and response, after response)."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            return "", "\n\n", tok.eos_token or ""
        u, r = "\x00USER\x00", "\x00RESPONSE\x00"
        text = tok.apply_chat_template([{"role": "user", "content": u}, {"role": "assistant", "content": r}],
                                       tokenize=False)
        if text.count(u) != 1 or text.count(r) != 1:
            raise ValueError("the tokenizer's chat template does not render user/assistant content verbatim")
        a, rest = text.split(u)
        b, c = rest.split(r)
        return a, b, c

    def format_user_turn(self, prompt: str, summary: str | None = None) -> str:
        """The first user turn: the PLUS template when there is a summary, the plain prompt otherwise."""
        if summary is None or not str(summary).strip():
            return prompt
        return self.template.format(summary=summary, prompt=prompt)

    def format_input(self, prompt: str, response: str, summary: str | None = None) -> str:
        """The full text the backbone sees before truncation (for encoders: the pair joined by [SEP])."""
        user = self.format_user_turn(prompt, summary)
        if self.is_encoder:
            sep = self.tokenizer.sep_token or "\n"
            return f"{user} {sep} {response}"
        a, b, c = self._skeleton
        return a + user + b + response + c

    def _spans(self, prompt: str, summary: str | None, offset: int) -> tuple[tuple[int, int], ...]:
        """Character spans (start, end) of the summary, the prompt and the whole user turn, shifted by ``offset``."""
        if summary is None or not str(summary).strip():
            return (0, 0), (offset, offset + len(prompt)), (offset, offset + len(prompt))
        s0 = offset + len(self.template.split("{summary}")[0])
        s1 = s0 + len(summary)
        user = self.template.format(summary=summary, prompt=prompt)
        p1 = offset + len(user) - len(self.template.split("{prompt}")[1])
        return (s0, s1), (p1 - len(prompt), p1), (offset, offset + len(user))

    # ------------------------------------------------------------------ encoding
    def _roles(self, offsets, seq_ids, spans, response_span, response_seq) -> list[int]:
        summary_span, prompt_span, user_span = spans
        roles = []
        for (a, b), sid in zip(offsets, seq_ids, strict=True):
            if sid is None or b <= a:
                roles.append(_FIXED)  # special tokens, or zero-width pieces
            elif response_seq is not None and sid == response_seq:
                roles.append(_RESPONSE)
            elif a < summary_span[1] and b > summary_span[0]:
                roles.append(_SUMMARY)
            elif a < prompt_span[1] and b > prompt_span[0]:
                roles.append(_PROMPT)
            elif response_seq is None and a < response_span[1] and b > response_span[0]:
                roles.append(_RESPONSE)
            elif a < user_span[1] and b > user_span[0]:
                roles.append(_WRAPPER)
            else:
                roles.append(_FIXED)
        return roles

    def _truncate(self, ids: list[int], roles: list[int], extra: list[list[int]], max_length: int):
        """Drop tokens until ``len(ids) <= max_length``: summary front, template words, prompt front, response end."""
        excess = len(ids) - max_length
        drop: set[int] = set()
        cut = {_SUMMARY: 0, _WRAPPER: 0, _PROMPT: 0, _RESPONSE: 0}
        for role, from_end in ((_SUMMARY, False), (_WRAPPER, False), (_PROMPT, False), (_RESPONSE, True)):
            if excess <= 0:
                break
            idx = [i for i, r in enumerate(roles) if r == role]
            if from_end:
                idx = idx[::-1]
            take = idx[:excess]
            drop.update(take)
            cut[role] += len(take)
            excess -= len(take)
        keep = [i for i in range(len(ids)) if i not in drop]
        if len(keep) > max_length:  # only fixed markup left: keep the first token ([CLS]/BOS) and the end
            keep = keep[:1] + keep[len(keep) - max_length + 1:]
        return [ids[i] for i in keep], [[e[i] for i in keep] for e in extra], cut

    def encode(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        summaries: Sequence[str | None] | None = None,
        max_length: int | None = None,
    ) -> RMEncoding:
        """Tokenise a batch (right-padded tensors) and report, per item, summary tokens kept/cut and other cuts."""
        from transformers import BatchEncoding

        prompts, responses, summaries = self._check(prompts, responses, summaries)
        max_length = int(max_length or self.max_length)
        tok = self.tokenizer
        users = [self.format_user_turn(p, s) for p, s in zip(prompts, summaries, strict=True)]
        if self.is_encoder:
            enc = tok(users, list(responses), add_special_tokens=True, return_offsets_mapping=True,
                      truncation=False, verbose=False)
        else:
            texts = [self.format_input(p, r, s) for p, r, s in zip(prompts, responses, summaries, strict=True)]
            enc = tok(texts, add_special_tokens=not bool(getattr(tok, "chat_template", None)),
                      return_offsets_mapping=True, truncation=False, verbose=False)
        specials = set(tok.all_special_ids)
        rows_ids, rows_extra = [], []
        kept, s_cut, p_cut, r_cut = [], [], [], []
        has_tt = self.is_encoder and "token_type_ids" in enc
        for i in range(len(users)):
            if self.is_encoder:
                spans = self._spans(prompts[i], summaries[i], 0)
                roles = self._roles(enc["offset_mapping"][i], enc.sequence_ids(i), spans, (0, 0), 1)
            else:
                a, b, _ = self._skeleton
                spans = self._spans(prompts[i], summaries[i], len(a))
                r0 = len(a) + len(users[i]) + len(b)
                seq_ids = [None if t in specials else 0 for t in enc["input_ids"][i]]
                roles = self._roles(enc["offset_mapping"][i], seq_ids, spans,
                                    (r0, r0 + len(responses[i])), None)
            extra = [enc["token_type_ids"][i]] if has_tt else []
            ids, extra, cut = self._truncate(list(enc["input_ids"][i]), roles, [list(e) for e in extra], max_length)
            n_summary = sum(1 for r in roles if r == _SUMMARY)
            kept.append(n_summary - cut[_SUMMARY])
            s_cut.append(cut[_SUMMARY])
            p_cut.append(cut[_PROMPT])
            r_cut.append(cut[_RESPONSE])
            rows_ids.append(ids)
            rows_extra.append(extra)
        width = max(len(x) for x in rows_ids)
        pad = tok.pad_token_id
        input_ids = torch.full((len(rows_ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows_ids), width), dtype=torch.long)
        for i, ids in enumerate(rows_ids):
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[i, : len(ids)] = 1
        data = {"input_ids": input_ids, "attention_mask": attention}
        if has_tt:
            tt = torch.zeros((len(rows_ids), width), dtype=torch.long)
            for i, extra in enumerate(rows_extra):
                tt[i, : len(extra[0])] = torch.tensor(extra[0], dtype=torch.long)
            data["token_type_ids"] = tt
        return RMEncoding(BatchEncoding(data), kept, s_cut, p_cut, r_cut)

    def count_tokens(
        self, prompts: Sequence[str], responses: Sequence[str], summaries: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Untruncated input length in tokens per item (what the model would read with no ``max_length``)."""
        enc = self.encode(prompts, responses, summaries, max_length=10**9)
        return enc.batch["attention_mask"].sum(dim=1).numpy()

    @staticmethod
    def _check(prompts, responses, summaries):
        if isinstance(prompts, str) or isinstance(responses, str):
            raise TypeError("prompts and responses must be sequences of strings, not a single string")
        prompts, responses = list(prompts), list(responses)
        summaries = [None] * len(prompts) if summaries is None else list(summaries)
        if not (len(prompts) == len(responses) == len(summaries)):
            raise ValueError(f"length mismatch: {len(prompts)} prompts, {len(responses)} responses, "
                             f"{len(summaries)} summaries")
        if not prompts:
            raise ValueError("nothing to encode: empty batch")
        return prompts, responses, summaries

    # ------------------------------------------------------------------ model
    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Rewards, shape (batch,), in float32."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**kwargs).last_hidden_state
        mask = attention_mask.to(hidden.dtype)
        if self.pooling == "mean":
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # last non-pad token, whichever side the padding is on
            pos = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            last = (attention_mask * pos).argmax(dim=1)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(pooled.float()).squeeze(-1)

    def reward(self, prompts, responses, summaries=None) -> torch.Tensor:
        """Differentiable rewards for a batch of texts (used by trainers)."""
        batch = self.encode(prompts, responses, summaries).batch.to(self.device)
        return self(**batch)

    @torch.no_grad()
    def score(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        summaries: Sequence[str | None] | None = None,
        batch_size: int = 64,
        dtype: str = "fp32",
    ) -> np.ndarray:
        """Rewards as a float32 array, in input order; eval mode and no grad; ``dtype="bf16"`` autocasts."""
        if dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
        prompts, responses, summaries = self._check(prompts, responses, summaries)
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
                    r = self(**batch)
                out[idx] = r.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write an HF-format directory: backbone (or adapter), tokenizer, head, ``pluralign_rm.json``."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(d)
        self.tokenizer.save_pretrained(d)
        base_name = None
        if self.lora:
            base_name = self._base_reference()
            if base_name is None:  # base weights exist only in memory: keep a copy so the adapter can be reloaded
                base = self.backbone.get_base_model()  # peft injected its layers here: save the original keys
                clean = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k}
                base.save_pretrained(d / BASE_DIR, state_dict=clean)
        save_file({k: v.detach().float().cpu().contiguous() for k, v in self.head.state_dict().items()},
                  str(d / HEAD_NAME))
        meta = {
            "version": FORMAT_VERSION,
            "backbone": self.backbone_name,
            "base_model": base_name if self.lora else None,
            "is_encoder": self.is_encoder,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "template": self.template,
            "lora": self.lora,
            "hidden_size": int(self.head.in_features),
        }
        (d / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    def _base_reference(self) -> str | None:
        """A name/path from which the LoRA base can be reloaded offline, or None if it only exists in memory."""
        if not self.backbone_name:
            return None
        from pluralign.models.backbone import BackboneNotFoundError, resolve_backbone

        try:
            resolve_backbone(self.backbone_name)
        except BackboneNotFoundError:
            return None
        return self.backbone_name

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device | None = None
                        ) -> SummaryConditionedRM:
        """Load a directory written by ``save_pretrained``; a missing or corrupt file raises ``RMCheckpointError``."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        d = Path(directory)
        if not d.is_dir():
            raise RMCheckpointError(f"{d}: reward-model checkpoint directory does not exist")
        meta_path = d / CONFIG_NAME
        if not meta_path.exists():
            raise RMCheckpointError(f"{meta_path}: missing (not a pluralign reward-model checkpoint)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RMCheckpointError(f"{meta_path}: corrupt JSON ({e})") from None
        for key in ("version", "pooling", "max_length", "template", "hidden_size"):
            if key not in meta:
                raise RMCheckpointError(f"{meta_path}: field '{key}' is missing")
        if meta["version"] > FORMAT_VERSION:
            raise RMCheckpointError(f"{meta_path}: format version {meta['version']} is newer than this pluralign "
                                    f"({FORMAT_VERSION})")
        head_path = d / HEAD_NAME
        if not head_path.exists():
            raise RMCheckpointError(f"{head_path}: missing (the reward head weights)")
        try:
            head_state = load_file(str(head_path))
        except (SafetensorError, OSError, ValueError) as e:
            raise RMCheckpointError(f"{head_path}: corrupt safetensors file ({e})") from None
        if set(head_state) != {"weight", "bias"} or tuple(head_state["weight"].shape) != (1, meta["hidden_size"]):
            raise RMCheckpointError(f"{head_path}: expected weight (1, {meta['hidden_size']}) and bias, got "
                                    f"{ {k: tuple(v.shape) for k, v in head_state.items()} }")
        lora = meta.get("lora")
        required = ["adapter_config.json", "adapter_model.safetensors"] if lora else ["config.json"]
        for name in required:
            if not (d / name).exists():
                raise RMCheckpointError(f"{d / name}: missing (backbone {'adapter' if lora else 'config'})")
        if not lora and not any(d.glob("model*.safetensors")) and not any(d.glob("pytorch_model*.bin")):
            raise RMCheckpointError(f"{d / 'model.safetensors'}: missing (backbone weights)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(d)
        except Exception as e:  # noqa: BLE001 - tokenizers raise many unrelated types on bad files
            raise RMCheckpointError(f"{d}: cannot load the tokenizer (tokenizer.json / tokenizer_config.json): "
                                    f"{e}") from None
        try:
            if lora:
                from peft import PeftModel

                from pluralign.models.backbone import resolve_backbone

                base_dir = d / BASE_DIR
                if base_dir.exists():
                    base_src = str(base_dir)
                elif meta.get("base_model"):
                    base_src = resolve_backbone(meta["base_model"])
                else:
                    raise RMCheckpointError(f"{base_dir}: missing, and {meta_path} names no base model for the "
                                            "LoRA adapter")
                backbone = PeftModel.from_pretrained(AutoModel.from_pretrained(base_src), d, is_trainable=True)
            else:
                backbone = AutoModel.from_pretrained(d)
        except RMCheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - HF raises OSError/ValueError/SafetensorError/... on bad weights
            raise RMCheckpointError(f"{d}: cannot load the backbone weights: {e}") from None
        model = cls(backbone, tokenizer, backbone_name=meta.get("backbone"), pooling=meta["pooling"],
                    max_length=meta["max_length"], template=meta["template"], lora=lora)
        model.head.load_state_dict(head_state)
        if device is not None:
            model.to(device)
        return model
