"""Fast batched sampling of many short completions from a causal LM on CPU.

Sampling summaries, policy rollouts and best-of-N candidates is the cost that dominates PLUS and RLUF training on a
CPU, so this path avoids what plain ``model.generate`` spends time on there:

- each distinct prompt is pre-filled **once**, and its key/value cache copied for the ``n`` samples drawn from it
  (``generate(num_return_sequences=n)`` pre-fills every copy);
- the decoding steps write into a preallocated static key/value cache (no growing ``torch.cat`` of the whole cache
  at every step) and read a boolean attention mask kept up to date in place, so no per-step mask building;
- temperature, top-p and the EOS bookkeeping are a few tensor operations per step, not a chain of logits processors;
- prompts are batched by length (less padding), and a batch stops as soon as every sequence has ended.

Sampling uses a ``torch.Generator`` seeded per call, so ``seed`` gives the same completions whatever else runs in the
process. ``temperature=0`` is greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

Messages = list[dict]


@dataclass
class SampledBatch:
    """Completions of one batch as tokens: ``tokens[i]`` is sequence ``i``'s new tokens (the EOS kept when it
    stopped), ``prompt_index[i]`` the prompt it continues."""

    tokens: list[list[int]]
    prompt_index: list[int]


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


def _sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None):
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keep the smallest set whose mass reaches top_p (at least one)
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter_(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _static_cache_from(model, prefill_cache, repeats: int, max_len: int):
    """A static cache of ``max_len`` positions holding the pre-filled keys/values, each row repeated ``repeats``
    times (the n samples of a prompt share its pre-fill)."""
    from transformers import StaticCache

    cache = StaticCache(config=model.config, max_cache_len=max_len)
    for layer, filled in zip(cache.layers, prefill_cache.layers, strict=True):
        keys, values = filled.keys, filled.values
        if repeats > 1:
            keys, values = keys.repeat_interleave(repeats, 0), values.repeat_interleave(repeats, 0)
        layer.update(keys, values)
    return cache


@torch.inference_mode()
def sample_batch(model, prompt_ids: Sequence[Sequence[int]], *, n: int = 1, max_new_tokens: int = 64,
                 temperature: float = 1.0, top_p: float = 1.0, generator: torch.Generator | None = None,
                 eos_token_id: int | Sequence[int] | None = None, pad_token_id: int = 0,
                 stop_at_eos: bool = True) -> SampledBatch:
    """``n`` completions for each of ``prompt_ids`` (one forward batch of ``len(prompt_ids) * n`` sequences)."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    b, width = len(prompt_ids), max(len(p) for p in prompt_ids)
    if min(len(p) for p in prompt_ids) == 0:
        raise ValueError("every prompt needs at least one token")
    input_ids = torch.full((b, width), pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros((b, width), dtype=torch.long, device=device)
    for i, p in enumerate(prompt_ids):  # left padding: the last prompt token sits at the same column for all
        input_ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p):] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)

    prefill = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=prefill,
                use_cache=True, logits_to_keep=1)
    logits = out.logits[:, -1]
    total = width + max_new_tokens
    cache = _static_cache_from(model, prefill, n, total)
    del prefill, out
    if n > 1:
        logits = logits.repeat_interleave(n, 0)
        mask = mask.repeat_interleave(n, 0)
        positions = positions.repeat_interleave(n, 0)
    rows = b * n
    # The decode steps' mask, (rows, 1, 1, total) booleans: passed as a ready 4-D mask, so no mask is built per step.
    attend = torch.zeros((rows, 1, 1, total), dtype=torch.bool, device=device)
    attend[:, 0, 0, :width] = mask.bool()
    next_pos = positions[:, -1:] + 1

    eos = torch.tensor([] if eos_token_id is None else
                       ([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)), device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    generated = torch.full((rows, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    steps = 0
    for step in range(max_new_tokens):
        token = _sample_next(logits, temperature, top_p, generator)
        token = token.masked_fill(finished, pad_token_id)
        generated[:, step] = token
        steps = step + 1
        if stop_at_eos and eos.numel():
            finished |= torch.isin(token, eos)
            if bool(finished.all()):
                break
        if step + 1 == max_new_tokens:
            break
        attend[:, 0, 0, width + step] = True
        out = model(input_ids=token[:, None], attention_mask=attend, position_ids=next_pos, past_key_values=cache,
                    use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1]
        next_pos += 1

    tokens = []
    for row in generated[:, :steps].tolist():
        if stop_at_eos and eos.numel():
            for j, t in enumerate(row):
                if t in eos.tolist():
                    row = row[: j + 1]
                    break
        tokens.append(row)
    return SampledBatch(tokens, [i for i in range(b) for _ in range(n)])


def sample_tokens(model, prompt_ids: Sequence[Sequence[int]], *, n: int = 1, max_new_tokens: int = 64,
                  temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None, batch_size: int = 16,
                  eos_token_id: int | Sequence[int] | None = None, pad_token_id: int = 0,
                  stop_at_eos: bool = True) -> list[list[list[int]]]:
    """``n`` completions (token ids, EOS kept) per prompt, prompts batched by length ``batch_size`` sequences at a
    time; the result is in prompt order."""
    if n < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"n, max_new_tokens and batch_size must be >= 1 (got {n}, {max_new_tokens}, {batch_size})")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    if next(model.parameters()).device.type != "cpu":
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(generator.initial_seed())
    was_training = model.training
    model.eval()
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]), reverse=True)
    per_batch = max(1, batch_size // n)
    result: list[list[list[int]]] = [[] for _ in prompt_ids]
    try:
        for start in range(0, len(order), per_batch):
            chunk = order[start:start + per_batch]
            batch = sample_batch(model, [prompt_ids[i] for i in chunk], n=n, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, generator=generator,
                                 eos_token_id=eos_token_id, pad_token_id=pad_token_id, stop_at_eos=stop_at_eos)
            for tokens, k in zip(batch.tokens, batch.prompt_index, strict=True):
                result[chunk[k]].append(tokens)
    finally:
        model.train(was_training)
    return result


def generate_texts(model, tokenizer, prompts: Sequence[str] | Sequence[Messages], *, n: int = 1,
                   max_new_tokens: int = 64, temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                   batch_size: int = 16, stop_at_eos: bool = True) -> list[list[str]]:
    """``n`` sampled completions per prompt as text (special tokens dropped); ``temperature=0`` is greedy.

    A prompt is a list of chat messages (the chat template is applied, with the generation prompt) or an already
    formatted string.
    """
    ids = encode_prompts(tokenizer, prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    out = sample_tokens(model, ids, n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                        seed=seed, batch_size=batch_size, eos_token_id=eos, pad_token_id=pad or 0,
                        stop_at_eos=stop_at_eos)
    return [tokenizer.batch_decode(seqs, skip_special_tokens=True) if seqs else [] for seqs in out]
