"""The ``hf`` summarizer: any HF causal LM with a chat template (Qwen2.5-3B-Instruct in the paper; on CPU the
embedded default, SmolLM2-135M-Instruct, when no model is named).

The PLUS prompt goes in as the first user turn; the assistant turn is pre-filled with "##Summary" (the format the
prompt asks for, so even an untrained or tiny model produces a parseable summary) and a summary is sampled up to
``max_new_tokens`` with :mod:`pluralign.models.generation` (shared pre-fill of a user's group, static KV cache).
:meth:`HFSummarizer.rollout` keeps the token ids and masks that PPO / GRPO updates need
(:mod:`pluralign.training.ppo`, :mod:`pluralign.training.group_rl`); LoRA comes from peft.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, load_peft_weights, set_peft_model_state_dict
from transformers import AutoModelForCausalLM, AutoTokenizer

from pluralign.data.schema import UserRecord
from pluralign.models.backbone import BackboneNotFoundError
from pluralign.models.generation import eos_ids, sample_tokens
from pluralign.models.llm import DEFAULT_LLM, resolve_dtype, resolve_llm
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
    greedy_summaries: list[str] | None = None  # one per context, when the rollout was asked for them


def sequence_logprobs(model, query_ids: torch.Tensor, query_mask: torch.Tensor, response_ids: torch.Tensor,
                      response_mask: torch.Tensor, *, temperature: float = 1.0, return_hidden: bool = False,
                      group_size: int = 1):
    """Per-token log-probabilities of ``response_ids`` (and the hidden states that predicted them, for a critic).

    ``group_size > 1``: rows come in groups of that many samples of one query (a GRPO group), so each query is
    run once and its keys/values are shared by the group's responses (:func:`_shared_query_logprobs`)."""
    if group_size > 1 and not return_hidden:
        return _shared_query_logprobs(model, query_ids, query_mask, response_ids, response_mask,
                                      temperature=temperature, group_size=group_size)
    input_ids = torch.cat([query_ids, response_ids], dim=1)
    attn = torch.cat([query_mask, response_mask], dim=1)
    pos = _positions(attn)
    r = response_ids.shape[1]
    # Only the positions that predict response tokens need the LM head: on CPU, with a 49k-token vocabulary and
    # ~500-token prompts, logits over the whole prompt cost most of the update's time and gigabytes of memory.
    out = model(input_ids=input_ids, attention_mask=attn, position_ids=pos, output_hidden_states=return_hidden,
                logits_to_keep=r + 1)
    q = query_ids.shape[1]
    logp = _token_logprobs(out.logits[:, :-1], response_ids, temperature)
    if return_hidden:
        return logp, out.hidden_states[-1][:, q - 1:-1]
    return logp


def _shared_query_logprobs(model, query_ids: torch.Tensor, query_mask: torch.Tensor, response_ids: torch.Tensor,
                           response_mask: torch.Tensor, *, temperature: float, group_size: int) -> torch.Tensor:
    """:func:`sequence_logprobs` for groups of samples of one query, each query run once.

    A user's history is long (~900 tokens on the attributes suite) and a summary short (~70), so running the query
    once per group instead of once per sample cuts a group-of-4 forward (and backward) to about a third. Gradients
    reach the query's keys/values through the repeated cache, as they would through separate rows."""
    n, g = query_ids.shape[0], group_size
    if n % g:
        raise ValueError(f"{n} rows are not whole groups of {g}")
    q_ids, q_mask = query_ids[::g], query_mask[::g]
    if not (torch.equal(query_ids, q_ids.repeat_interleave(g, 0))
            and torch.equal(query_mask, q_mask.repeat_interleave(g, 0))):
        raise ValueError(f"rows are not groups of {g} samples of one query each")
    out = model(input_ids=q_ids, attention_mask=q_mask, position_ids=_positions(q_mask),
                use_cache=True, logits_to_keep=1)
    logits = out.logits[:, -1:].repeat_interleave(g, 0)  # predicts each response's first token
    if response_ids.shape[1] > 1:
        cache = out.past_key_values
        cache.batch_repeat_interleave(g)
        attn = torch.cat([query_mask, response_mask[:, :-1]], dim=1)
        pos = _positions(attn)[:, query_ids.shape[1]:]
        rest = model(input_ids=response_ids[:, :-1], attention_mask=attn, position_ids=pos, past_key_values=cache,
                     use_cache=True)
        logits = torch.cat([logits, rest.logits], dim=1)
    return _token_logprobs(logits, response_ids, temperature)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch, as generate() computes them (padding sits at 0)."""
    return (mask.cumsum(1) - 1).clamp(min=0)


def _token_logprobs(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(ids) under ``logits`` (one row of logits per token, the one that predicts it) at ``temperature``."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)


class HFSummarizer:
    """Summaries sampled from a causal LM after the PLUS prompt; trainable by PPO or group RL."""

    backend = "hf"

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 1.0,
                 words: int = 50, name: str = "hf", seed: int = 0, bf16: bool = False, batch_size: int = 16):
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
        self.bf16 = bf16
        self.batch_size = batch_size  # sequences per sampling batch
        self._ref = None

    def autocast(self):
        """bf16 autocast around rollouts, log-probs and updates when ``bf16`` (weights stay in their dtype)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def initial_model(self):
        """A context in which ``self.model`` is the frozen initial summarizer (the LoRA adapter switched off)."""
        if hasattr(self.model, "disable_adapter"):
            return self.model.disable_adapter()
        if self.step == 0:
            return contextlib.nullcontext()
        raise RuntimeError("the initial summarizer is only kept under LoRA (the adapter is switched off); "
                           "a fully fine-tuned model no longer has it")

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, *, lora_r: int = 0, lora_alpha: int = 16,
                        lora_layers: int = 0, dtype: str | None = None, **kwargs) -> HFSummarizer:
        """Load a model directory / cached HF id / ``.gguf`` file (default: the embedded SmolLM2-135M-Instruct), or a
        directory written by :meth:`save_pretrained` (LoRA adapters included); ``lora_r > 0`` wraps a plain model
        with a fresh peft LoRA adapter (on the top ``lora_layers`` blocks when > 0). ``dtype``: a torch dtype name or ``auto`` (bf16 where the CPU multiplies it
        natively); default fp32."""
        name_or_path = name_or_path or DEFAULT_LLM
        path = Path(name_or_path) if Path(name_or_path).is_dir() else Path(resolve_llm(name_or_path))
        meta = json.loads((path / META).read_text()) if (path / META).exists() else {}
        torch_dtype = resolve_dtype(dtype) if dtype else None
        if (path / "adapter_config.json").exists():
            base = path / "base" if (path / "base").exists() else resolve_llm(meta["base"])
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
            model = PeftModel.from_pretrained(model, str(path), is_trainable=True)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
            if lora_r > 0:
                model = add_lora(model, r=lora_r, alpha=lora_alpha, layers=lora_layers)
        tok = AutoTokenizer.from_pretrained(path)
        settings = {k: meta[k] for k in ("max_new_tokens", "temperature", "top_p", "words") if k in meta}
        self = cls(model, tok, name=meta.get("base", str(name_or_path)), **{**settings, **kwargs})
        self.step = int(meta.get("step", 0))
        return self

    def load_weights(self, directory: str | Path) -> None:
        """Load weights saved by :meth:`save_pretrained` into this (same-architecture) model, in place."""
        d = Path(directory)
        if hasattr(self.model, "peft_config"):
            set_peft_model_state_dict(self.model, load_peft_weights(str(d), device=str(self.device)))
        else:
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
        kw = {"temperature": self.temperature, "group_size": rollout.group_size}
        with torch.no_grad(), self.autocast():
            if hasattr(self.model, "disable_adapter"):
                with self.model.disable_adapter():
                    return sequence_logprobs(self.model, *args, **kw)
            if self._ref is None:
                self._ref = copy.deepcopy(self.model).eval().requires_grad_(False)
            return sequence_logprobs(self._ref, *args, **kw)

    def _queries(self, contexts: Sequence[UserRecord]) -> list[str]:
        out = []
        for u in contexts:
            chat = [{"role": "user", "content": build_summarizer_prompt(u, words=self.words)}]
            text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            out.append(text + SUMMARY_MARKER + "\n")
        return out

    def _generate(self, queries: list[str], sample: bool, n: int = 1, with_greedy: bool = False):
        """Sample ``n`` summaries per query (the group shares the query's pre-fill); ``with_greedy`` also writes each
        query's greedy summary on the same pre-fill (returned last, one per query)."""
        prompt_ids = self.tokenizer(queries, add_special_tokens=False)["input_ids"]
        pad = self.tokenizer.pad_token_id
        eos = eos_ids(self.model, self.tokenizer)
        if self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        seed = int(torch.randint(0, 1 << 62, (1,)).item())  # from the global generator: torch.manual_seed repeats it
        # No bf16 autocast here: under autocast Llama's rotary step turns the keys back to fp32 while the values
        # stay bf16, and the static KV cache of the sampler needs one dtype. Log-probs and updates do autocast.
        out = sample_tokens(self.model, prompt_ids, n=n, max_new_tokens=self.max_new_tokens,
                            temperature=self.temperature if sample else 0.0, top_p=self.top_p if sample else 1.0,
                            seed=seed, batch_size=max(self.batch_size, n + int(with_greedy)), eos_token_id=eos,
                            pad_token_id=pad, with_greedy=with_greedy)
        greedy = [self._summary_text(rs.pop()) for rs in out] if with_greedy else None
        responses = [r for rs in out for r in rs]
        queries_ids = [q for q in prompt_ids for _ in range(n)]
        width, length = max(map(len, queries_ids)), max(1, max(map(len, responses)))
        q_ids = torch.full((len(responses), width), pad, dtype=torch.long)
        q_mask = torch.zeros_like(q_ids)
        r_ids = torch.full((len(responses), length), pad, dtype=torch.long)
        r_mask = torch.zeros_like(r_ids)
        for i, (q, r) in enumerate(zip(queries_ids, responses, strict=True)):
            q_ids[i, width - len(q):], q_mask[i, width - len(q):] = torch.tensor(q), 1  # left-padded queries
            if r:
                r_ids[i, :len(r)], r_mask[i, :len(r)] = torch.tensor(r), 1  # right-padded, the EOS included
        summaries = [self._summary_text(r) for r in responses]
        device = self.device
        return q_ids.to(device), q_mask.to(device), r_ids.to(device), r_mask.to(device), summaries, greedy

    def _summary_text(self, tokens: list[int]) -> str:
        return extract_summary(SUMMARY_MARKER + "\n" + self.tokenizer.decode(tokens, skip_special_tokens=True))

    def summarize(self, contexts: Sequence[UserRecord], *, sample: bool = False, batch_size: int = 64,
                  initial: bool = False) -> list[str]:
        """One summary per context (greedy unless ``sample``); ``initial`` asks the frozen initial summarizer (the
        zero-shot summaries the RL-trained ones are compared with)."""
        out: list[str] = []
        with self.initial_model() if initial else contextlib.nullcontext():
            for i in range(0, len(contexts), batch_size):
                out += self._generate(self._queries(contexts[i:i + batch_size]), sample)[4]
        return out

    def rollout(self, contexts: Sequence[UserRecord], group_size: int = 1, greedy: bool = False) -> TokenRollout:
        """``group_size`` sampled summaries per context, context-major; ``greedy`` also writes each context's greedy
        summary (``greedy_summaries``) on the same pre-fill, as :meth:`summarize` would."""
        *tensors, summaries, greedy_summaries = self._generate(self._queries(contexts), True, n=group_size,
                                                               with_greedy=greedy)
        return TokenRollout(list(contexts), group_size, summaries, *tensors, greedy_summaries=greedy_summaries)

    def save_pretrained(self, out_dir: str | Path) -> None:
        """HF directory (full model or LoRA adapter) + tokenizer + sampling settings; a LoRA base that exists only
        in memory (e.g. a tiny test model) is saved under ``base/`` so the directory reloads on its own."""
        out = Path(out_dir)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        if hasattr(self.model, "peft_config"):
            try:
                resolve_llm(self.name)
            except BackboneNotFoundError:
                self.model.get_base_model().save_pretrained(out / "base")
        meta = {"backend": "hf", "base": self.name, "step": self.step, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "words": self.words}
        (out / META).write_text(json.dumps(meta, indent=1))


def add_lora(model, *, r: int = 16, alpha: int = 32, dropout: float = 0.0, layers: int = 0):
    """Wrap a causal LM with a LoRA adapter on all linear projections (peft); ``layers > 0`` puts it only on the top
    ``layers`` transformer blocks, so the backward pass stops there (the cheap setting on CPU)."""
    targets: str | list[str] = "all-linear"
    extra = {}
    n = int(model.config.get_text_config().num_hidden_layers)
    if 0 < layers < n:
        # peft takes a layer subset only with named modules: every linear projection inside the blocks.
        targets = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                          if isinstance(m, torch.nn.Linear) and ".layers." in name})
        extra = {"layers_to_transform": list(range(n - layers, n)), "layers_pattern": "layers"}
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM",
                     **extra)
    return get_peft_model(model, cfg)
