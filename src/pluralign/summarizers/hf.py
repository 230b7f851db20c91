"""The ``hf`` summarizer: any HF causal LM with a chat template (Qwen2.5-3B-Instruct in the paper).

The PLUS prompt goes in as the first user turn; the assistant turn is pre-filled with "##Summary" (the format the
prompt asks for, so even an untrained or tiny model produces a parseable summary) and a summary is sampled up to
``max_new_tokens``. :meth:`HFSummarizer.rollout` keeps the token ids and masks that PPO / GRPO updates need
(:mod:`pluralign.training.ppo`, :mod:`pluralign.training.group_rl`); LoRA comes from peft.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pluralign.data.schema import UserRecord
from pluralign.summarizers.base import SUMMARY_MARKER, build_summarizer_prompt, extract_summary

META = "hf_summarizer.json"


@dataclass
class TokenRollout:
    """Sampled summaries as tokens: left-padded queries, right-padded responses (mask ends at the first EOS)."""

    contexts: list[UserRecord]
    group_size: int
    summaries: list[str]
    query_ids: torch.Tensor
    query_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor


def sequence_logprobs(model, query_ids: torch.Tensor, query_mask: torch.Tensor, response_ids: torch.Tensor,
                      response_mask: torch.Tensor, *, temperature: float = 1.0, return_hidden: bool = False):
    """Per-token log-probabilities of ``response_ids`` (and the hidden states that predicted them, for a critic)."""
    input_ids = torch.cat([query_ids, response_ids], dim=1)
    attn = torch.cat([query_mask, response_mask], dim=1)
    pos = (attn.cumsum(1) - 1).clamp(min=0)  # left padding: positions as generate() computed them
    out = model(input_ids=input_ids, attention_mask=attn, position_ids=pos, output_hidden_states=return_hidden)
    q = query_ids.shape[1]
    logits = out.logits[:, q - 1:-1].float() / temperature
    logp = torch.log_softmax(logits, dim=-1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    if return_hidden:
        return logp, out.hidden_states[-1][:, q - 1:-1]
    return logp


class HFSummarizer:
    """Summaries sampled from a causal LM after the PLUS prompt; trainable by PPO or group RL."""

    backend = "hf"

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 1.0,
                 words: int = 50, name: str = "hf", seed: int = 0):
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.words = words
        self.name = name
        self.step = 0
        self.seed = seed
        self._ref = None

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, lora_r: int = 0, lora_alpha: int = 16,
                        dtype: str | None = None, **kwargs) -> HFSummarizer:
        """Load a model directory / cached HF id, or a directory written by :meth:`save_pretrained` (LoRA adapters
        included); ``lora_r > 0`` wraps a plain model with a fresh peft LoRA adapter."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from pluralign.models.backbone import resolve_backbone

        path = Path(resolve_backbone(name_or_path)) if not Path(name_or_path).is_dir() else Path(name_or_path)
        meta = json.loads((path / META).read_text()) if (path / META).exists() else {}
        torch_dtype = getattr(torch, dtype) if dtype else None
        if (path / "adapter_config.json").exists():
            from peft import PeftModel

            base = path / "base" if (path / "base").exists() else resolve_backbone(meta["base"])
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
            model = PeftModel.from_pretrained(model, str(path), is_trainable=True)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
            if lora_r > 0:
                model = add_lora(model, r=lora_r, alpha=lora_alpha)
        tok = AutoTokenizer.from_pretrained(path)
        settings = {k: meta[k] for k in ("max_new_tokens", "temperature", "top_p", "words") if k in meta}
        self = cls(model, tok, name=meta.get("base", str(name_or_path)), **{**settings, **kwargs})
        self.step = int(meta.get("step", 0))
        return self

    def load_weights(self, directory: str | Path) -> None:
        """Load weights saved by :meth:`save_pretrained` into this (same-architecture) model, in place."""
        d = Path(directory)
        if hasattr(self.model, "peft_config"):
            from peft import load_peft_weights, set_peft_model_state_dict

            set_peft_model_state_dict(self.model, load_peft_weights(str(d), device=str(self.device)))
        else:
            from transformers import AutoModelForCausalLM

            self.model.load_state_dict(AutoModelForCausalLM.from_pretrained(d).state_dict())

    @property
    def version(self) -> str:
        h = hashlib.sha1(f"{self.name}:{self.step}".encode()).hexdigest()[:8]
        return f"hf:{Path(self.name).name}@step{self.step}-{h}"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def reference_logprobs(self, rollout: TokenRollout) -> torch.Tensor:
        """Log-probs under the frozen initial summarizer: the adapter switched off under LoRA, else a frozen copy."""
        args = (rollout.query_ids, rollout.query_mask, rollout.response_ids, rollout.response_mask)
        with torch.no_grad():
            if hasattr(self.model, "disable_adapter"):
                with self.model.disable_adapter():
                    return sequence_logprobs(self.model, *args, temperature=self.temperature)
            if self._ref is None:
                self._ref = copy.deepcopy(self.model).eval().requires_grad_(False)
            return sequence_logprobs(self._ref, *args, temperature=self.temperature)

    def _queries(self, contexts: Sequence[UserRecord]) -> list[str]:
        out = []
        for u in contexts:
            chat = [{"role": "user", "content": build_summarizer_prompt(u, words=self.words)}]
            text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            out.append(text + SUMMARY_MARKER + "\n")
        return out

    @torch.no_grad()
    def _generate(self, queries: list[str], sample: bool):
        enc = self.tokenizer(queries, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        was_training = self.model.training
        self.model.eval()
        gen_kwargs = dict(max_new_tokens=self.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                          eos_token_id=self.tokenizer.eos_token_id)
        if sample:
            gen_kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=0)
        else:
            gen_kwargs.update(do_sample=False)
        out = self.model.generate(**enc, **gen_kwargs)
        self.model.train(was_training)
        response = out[:, enc["input_ids"].shape[1]:]
        is_eos = response == self.tokenizer.eos_token_id
        after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0  # keep the EOS itself, drop what follows
        mask = (~after_eos).long()
        texts = self.tokenizer.batch_decode(response * mask + self.tokenizer.pad_token_id * (1 - mask),
                                            skip_special_tokens=True)
        summaries = [extract_summary(SUMMARY_MARKER + "\n" + t) for t in texts]
        return enc["input_ids"], enc["attention_mask"], response, mask, summaries

    def summarize(self, contexts: Sequence[UserRecord], *, sample: bool = False, batch_size: int = 8) -> list[str]:
        out: list[str] = []
        for i in range(0, len(contexts), batch_size):
            out += self._generate(self._queries(contexts[i:i + batch_size]), sample)[4]
        return out

    def rollout(self, contexts: Sequence[UserRecord], group_size: int = 1) -> TokenRollout:
        """``group_size`` sampled summaries per context, context-major."""
        queries = [q for q in self._queries(contexts) for _ in range(group_size)]
        q_ids, q_mask, r_ids, r_mask, summaries = self._generate(queries, sample=True)
        return TokenRollout(list(contexts), group_size, summaries, q_ids, q_mask, r_ids, r_mask)

    def save_pretrained(self, out_dir: str | Path) -> None:
        """HF directory (full model or LoRA adapter) + tokenizer + sampling settings; a LoRA base that exists only
        in memory (e.g. a tiny test model) is saved under ``base/`` so the directory reloads on its own."""
        out = Path(out_dir)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        if hasattr(self.model, "peft_config"):
            from pluralign.models.backbone import BackboneNotFoundError, resolve_backbone

            try:
                resolve_backbone(self.name)
            except BackboneNotFoundError:
                self.model.get_base_model().save_pretrained(out / "base")
        meta = {"backend": "hf", "base": self.name, "step": self.step, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "words": self.words}
        (out / META).write_text(json.dumps(meta, indent=1))


def add_lora(model, *, r: int = 16, alpha: int = 32, dropout: float = 0.0):
    """Wrap a causal LM with a LoRA adapter on all linear projections (peft)."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)
