"""Fast batched sampling of many short completions from a causal LM on CPU.

Sampling summaries, policy rollouts and best-of-N candidates is the cost that dominates PLUS and RLUF training on a
CPU, so this path avoids what plain ``model.generate`` spends time on there:

- each distinct prompt is pre-filled **once**, and its key/value cache copied for the ``n`` samples drawn from it
  (``generate(num_return_sequences=n)`` pre-fills every copy); the leading tokens all prompts of a batch share
  (system prompt, chat header) are pre-filled once for the whole batch;
- the decoding steps write into a preallocated static key/value cache (no growing ``torch.cat`` of the whole cache
  at every step) and read a boolean attention mask kept up to date in place, so no per-step mask building; their
  attention packs grouped-query heads onto their key/value head instead of copying the cache per head group;
- temperature, top-p and the EOS bookkeeping are a few tensor operations per step, not a chain of logits processors,
  and sampling draws one uniform number per row and step (inverse CDF), not one per vocabulary entry;
- prompts are batched by length (less padding), and a batch stops as soon as every sequence has ended.

On a CPU without native bf16 the fp32 matrix products of the pre-fill and of the decoding steps are most of the
remaining time (see BENCHMARKS.md, Generation); ``load_causal_lm(quantize="int8")`` trades exactness for speed there.

Every sequence (row) samples from its own seeded ``torch.Generator``, with its own temperature, top-p and length
limit, so rows of unrelated requests can share a batch (the chat server does this) and a ``seed`` gives the same
completions whatever else shares the batch. ``temperature=0`` is greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import AttentionInterface, DynamicCache, StaticCache
from transformers.integrations.sdpa_attention import sdpa_attention_forward

Messages = list[dict]


@dataclass
class Row:
    """One sequence to sample: which prompt it continues and how. Rows are independent: each has its own
    random stream (``seed``), so a row's completion does not depend on what else shares its batch."""

    prompt: int
    seed: int
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0


def row_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """The random stream of sample ``sample_index`` of prompt ``prompt_index`` under a call's ``seed``."""
    return ((int(seed) * 1_000_003 + prompt_index) * 1_009 + sample_index) % (1 << 62)


def encode_prompts(tokenizer, prompts: Sequence[str] | Sequence[Messages]) -> list[list[int]]:
    """Token ids per prompt: chat messages get the chat template (with the generation prompt); a string is taken as
    already formatted text (no special tokens added)."""
    texts = []
    for p in prompts:
        if isinstance(p, str):
            texts.append(p)
        elif isinstance(p, list | tuple) and all(isinstance(m, dict) for m in p):
            texts.append(tokenizer.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True))
        else:
            raise TypeError(f"a prompt must be a string or a list of chat messages (dicts), got {type(p).__name__}")
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


class _Sampler:
    """Next-token choice for a batch of rows with their own temperature, top-p and random stream.

    Sampling is by inverse CDF: each row draws one uniform number from its own generator per step and takes the
    first token whose cumulative probability exceeds it (one draw per row, not one per vocabulary entry: an
    exponential or Gumbel race over SmolLM2's 49k-token vocabulary cost more per step than the attention);
    greedy rows (temperature 0) take the argmax."""

    def __init__(self, rows: Sequence[Row], vocab: int, device: torch.device):
        self.temperature = torch.tensor([max(r.temperature, 1e-6) for r in rows], device=device)[:, None]
        self.greedy = torch.tensor([r.temperature <= 0 for r in rows], device=device)
        self.all_greedy = bool(self.greedy.all())
        self.top_p = torch.tensor([r.top_p for r in rows], device=device)[:, None]
        self.any_top_p = any(r.top_p < 1.0 for r in rows)
        self.generators = [torch.Generator(device=device).manual_seed(r.seed) for r in rows]
        self.uniform = torch.empty((len(rows), 1), dtype=torch.float64, device=device)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        best = logits.argmax(-1)
        if self.all_greedy:
            return best
        logits = logits.float() / self.temperature
        if self.any_top_p:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            probs = sorted_logits.softmax(-1)
            drop = probs.cumsum(-1) - probs > self.top_p  # keep the smallest set reaching top_p (at least one)
            logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
        cdf = logits.softmax(-1).double().cumsum(-1)  # float64: no rounding drift over the vocabulary
        for i, g in enumerate(self.generators):
            self.uniform[i].uniform_(generator=g)
        # first index whose cumulative probability exceeds u * total (a zero-probability token never qualifies)
        sampled = torch.searchsorted(cdf, self.uniform * cdf[:, -1:], right=True).squeeze(-1)
        sampled = sampled.clamp_(max=logits.shape[-1] - 1)
        return torch.where(self.greedy, best, sampled)


DECODE_ATTENTION = "pluralign_sdpa_gqa_decode"


def _decode_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """SDPA for a decoding step (one query token per row) with grouped-query heads packed onto their key/value
    head: ``(rows, kv_heads, group, dim)`` queries against the cached keys as they are. transformers' CPU SDPA path
    instead copies every cached key and value ``group`` times per layer and step when a mask is given (SmolLM2: 9
    query heads on 3 key/value heads), which is most of a decoding step's attention time at batch 16. Same
    arithmetic; anything else (pre-fill, no grouping) goes to transformers' SDPA unchanged."""
    rows, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if q_len != 1 or kv_heads == heads or module.training:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    packed = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(rows, heads, 1, dim).transpose(1, 2).contiguous(), None


def _register_decode_attention() -> None:
    AttentionInterface.register(DECODE_ATTENTION, _decode_attention)


@contextmanager
def _packed_gqa_decoding(model):
    """Decoding steps use :func:`_decode_attention` where the model runs transformers' SDPA (restored after)."""
    config = model.config
    if getattr(config, "_attn_implementation", None) != "sdpa":
        yield
        return
    _register_decode_attention()
    config._attn_implementation = DECODE_ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"


def _static_cache_from(model, prefill_cache, repeats: torch.Tensor, max_len: int):
    """A static cache of ``max_len`` positions holding the pre-filled keys/values, prompt ``i``'s row repeated
    ``repeats[i]`` times (the samples of a prompt share its pre-fill)."""
    cache = StaticCache(config=model.config, max_cache_len=max_len)
    same = bool((repeats == 1).all())
    for layer, filled in zip(cache.layers, prefill_cache.layers, strict=True):
        keys, values = filled.keys, filled.values
        if not same:
            keys, values = keys.repeat_interleave(repeats, 0), values.repeat_interleave(repeats, 0)
        layer.update(keys, values)
    return cache


def shared_prefix_length(prompt_ids: Sequence[Sequence[int]], minimum: int = 16) -> int:
    """How many leading tokens every prompt has in common (each keeps at least one token of its own, whose logits
    start its completion); 0 when fewer than ``minimum`` are shared or there is a single prompt."""
    if len(prompt_ids) < 2:
        return 0
    first, limit = prompt_ids[0], min(len(p) for p in prompt_ids) - 1
    k = 0
    while k < limit and all(p[k] == first[k] for p in prompt_ids[1:]):
        k += 1
    return k if k >= minimum else 0


def _prefill(model, prompt_ids: Sequence[Sequence[int]], pad_token_id: int, share_prefix: bool, device):
    """Pre-fill every prompt: ``(cache, mask, positions, next-token logits)``, one row per prompt.

    The tokens all prompts share (a system prompt, an instruction, a chat template's header) are pre-filled once,
    at batch 1, and the rest of each prompt, left-padded, attends to that shared part; the cache layout is then
    ``[shared prefix | left-padded own tokens]`` and ``mask`` marks the real positions."""
    b = len(prompt_ids)
    shared = shared_prefix_length(prompt_ids) if share_prefix else 0
    cache = DynamicCache(config=model.config)
    if shared:
        model(input_ids=torch.tensor([list(prompt_ids[0][:shared])], dtype=torch.long, device=device),
              past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(b)
    own = [p[shared:] for p in prompt_ids]
    width = max(len(p) for p in own)
    input_ids = torch.full((b, width), pad_token_id, dtype=torch.long, device=device)
    mask = torch.ones((b, shared + width), dtype=torch.long, device=device)
    for i, p in enumerate(own):  # left padding: the last prompt token sits at the same column for all
        input_ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[i, shared:shared + width - len(p)] = 0
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions[:, shared:], past_key_values=cache,
                use_cache=True, logits_to_keep=1)
    return cache, mask, positions, out.logits[:, -1]


@torch.inference_mode()
def sample_rows(model, prompt_ids: Sequence[Sequence[int]], rows: Sequence[Row], *,
                eos_token_id: int | Sequence[int] | None = None, pad_token_id: int = 0,
                stop_at_eos: bool = True, share_prefix: bool = True) -> list[list[int]]:
    """New tokens for every row (the EOS kept when it stopped there), in one forward batch of ``len(rows)``.

    ``rows`` must be grouped by prompt (all rows of prompt 0, then of prompt 1, ...), every prompt used.
    ``share_prefix`` pre-fills the leading tokens common to all prompts once (the same computation, done once)."""
    device = next(model.parameters()).device
    b = len(prompt_ids)
    if min(len(p) for p in prompt_ids) == 0:
        raise ValueError("every prompt needs at least one token")
    counts = [0] * b
    for r in rows:
        counts[r.prompt] += 1
    if [r.prompt for r in rows] != [i for i in range(b) for _ in range(counts[i])] or 0 in counts:
        raise ValueError("rows must be grouped by prompt, in prompt order, and use every prompt")
    repeats = torch.tensor(counts, device=device)
    prefill, mask, positions, logits = _prefill(model, prompt_ids, pad_token_id, share_prefix, device)
    width = mask.shape[1]
    longest = max(r.max_new_tokens for r in rows)
    total = width + longest
    cache = _static_cache_from(model, prefill, repeats, total)
    del prefill
    if len(rows) > b:
        logits = logits.repeat_interleave(repeats, 0)
        mask = mask.repeat_interleave(repeats, 0)
        positions = positions.repeat_interleave(repeats, 0)
    n_rows = len(rows)
    sampler = _Sampler(rows, logits.shape[-1], device)
    # The decoding steps' mask, (rows, 1, 1, total) booleans, passed as a ready 4-D mask and updated in place:
    # no mask is built per step.
    attend = torch.zeros((n_rows, 1, 1, total), dtype=torch.bool, device=device)
    attend[:, 0, 0, :width] = mask.bool()
    next_pos = positions[:, -1:] + 1
    limit = torch.tensor([r.max_new_tokens for r in rows], device=device)
    eos = torch.tensor([] if eos_token_id is None else
                       ([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)), device=device,
                       dtype=torch.long)
    finished = torch.zeros(n_rows, dtype=torch.bool, device=device)
    stopped = torch.zeros(n_rows, dtype=torch.bool, device=device)  # ended on an EOS (kept) rather than a limit
    generated = torch.full((n_rows, longest), pad_token_id, dtype=torch.long, device=device)
    steps = 0
    with _packed_gqa_decoding(model):
        for step in range(longest):
            token = sampler(logits).masked_fill(finished, pad_token_id)
            generated[:, step] = token
            steps = step + 1
            if stop_at_eos and eos.numel():
                hit = torch.isin(token, eos) & ~finished
                stopped |= hit
                finished |= hit
            finished |= limit <= steps
            if step + 1 == longest or bool(finished.all()):
                break
            attend[:, 0, 0, width + step] = True
            out = model(input_ids=token[:, None], attention_mask=attend, position_ids=next_pos, past_key_values=cache,
                        use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1]
            next_pos += 1

    eos_set = set(eos.tolist())
    tokens = []
    for row, r, did_stop in zip(generated[:, :steps].tolist(), rows, stopped.tolist(), strict=True):
        row = row[: r.max_new_tokens]
        if did_stop:
            row = row[: next(j for j, t in enumerate(row) if t in eos_set) + 1]
        tokens.append(row)
    return tokens


def sample_tokens(model, prompt_ids: Sequence[Sequence[int]], *, n: int = 1, max_new_tokens: int = 64,
                  temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None, batch_size: int = 16,
                  eos_token_id: int | Sequence[int] | None = None, pad_token_id: int = 0,
                  stop_at_eos: bool = True, share_prefix: bool = True,
                  with_greedy: bool = False) -> list[list[list[int]]]:
    """``n`` completions (token ids, EOS kept) per prompt, in prompt order; prompts are batched by length,
    ``batch_size`` sequences at a time. The completions depend on ``seed`` only, not on ``batch_size`` or the other
    prompts; ``seed=None`` draws the seed from torch's global generator (so ``torch.manual_seed`` makes a run
    repeatable). ``with_greedy`` adds a greedy completion after each prompt's ``n`` (it shares their pre-fill)."""
    if n < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"n, max_new_tokens and batch_size must be >= 1 (got {n}, {max_new_tokens}, {batch_size})")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if seed is None:
        seed = int(torch.randint(0, 1 << 62, (1,)).item())
    was_training = model.training
    model.eval()
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]), reverse=True)
    per_prompt = n + int(with_greedy)
    per_batch = max(1, batch_size // per_prompt)
    result: list[list[list[int]]] = [[] for _ in prompt_ids]
    try:
        for start in range(0, len(order), per_batch):
            chunk = order[start:start + per_batch]
            rows = [Row(k, row_seed(seed, i, j), max_new_tokens, temperature if j < n else 0.0,
                        top_p if j < n else 1.0) for k, i in enumerate(chunk) for j in range(per_prompt)]
            tokens = sample_rows(model, [prompt_ids[i] for i in chunk], rows, eos_token_id=eos_token_id,
                                 pad_token_id=pad_token_id, stop_at_eos=stop_at_eos, share_prefix=share_prefix)
            for row, toks in zip(rows, tokens, strict=True):
                result[chunk[row.prompt]].append(toks)
    finally:
        model.train(was_training)
    return result


def eos_ids(model, tokenizer) -> list[int]:
    """The ids that end a completion: the model's generation config, else the tokenizer's EOS."""
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos or [])


def pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


def generate_texts(model, tokenizer, prompts: Sequence[str] | Sequence[Messages], *, n: int = 1,
                   max_new_tokens: int = 64, temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                   batch_size: int = 16, stop_at_eos: bool = True) -> list[list[str]]:
    """``n`` sampled completions per prompt as text (special tokens dropped); ``temperature=0`` is greedy.

    A prompt is a list of chat messages (the chat template is applied, with the generation prompt) or an already
    formatted string.
    """
    ids = encode_prompts(tokenizer, prompts)
    out = sample_tokens(model, ids, n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                        seed=seed, batch_size=batch_size, eos_token_id=eos_ids(model, tokenizer),
                        pad_token_id=pad_id(tokenizer), stop_at_eos=stop_at_eos)
    return [tokenizer.batch_decode(seqs, skip_special_tokens=True) if seqs else [] for seqs in out]
