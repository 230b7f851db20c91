"""The batched sampling path on a tiny random Llama: greedy equals ``model.generate``, seeds make rows repeatable
whatever shares their batch, samples of a prompt share its pre-fill, EOS and per-row limits end rows."""

from __future__ import annotations

import contextlib

import pytest
import torch

from pluralign.models.generation import (
    Row,
    encode_prompts,
    generate_texts,
    row_seed,
    sample_rows,
    sample_tokens,
)
from pluralign.models.tiny import tiny_causal_lm

PROMPTS = [[{"role": "user", "content": "I love cats and dogs"}], [{"role": "user", "content": "hi"}],
           [{"role": "user", "content": "Please explain how photosynthesis works in simple terms."}]]


@pytest.fixture(scope="module")
def lm():
    model, tok = tiny_causal_lm(arch="llama", seed=0)
    with torch.no_grad():  # weights far from zero, so greedy decoding is not one repeated token
        gen = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.ndim == 1 else 0.0))
    return model.eval(), tok


def test_greedy_matches_generate_on_a_left_padded_batch(lm):
    model, tok = lm
    ids = encode_prompts(tok, PROMPTS)
    ours = sample_tokens(model, ids, temperature=0, max_new_tokens=10, eos_token_id=None,
                         pad_token_id=tok.pad_token_id)
    tok.padding_side = "left"
    enc = tok([tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in PROMPTS],
              return_tensors="pt", padding=True, add_special_tokens=False)
    ref = model.generate(**enc, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=None)
    for i in range(len(PROMPTS)):
        assert ours[i] == [ref[i, enc["input_ids"].shape[1]:].tolist()]
    assert len({tuple(o[0]) for o in ours}) > 1  # not a degenerate model


def test_seed_gives_the_same_samples_whatever_the_batch(lm):
    model, tok = lm
    a = generate_texts(model, tok, PROMPTS, n=3, max_new_tokens=8, seed=7, batch_size=16)
    b = generate_texts(model, tok, PROMPTS, n=3, max_new_tokens=8, seed=7, batch_size=3)
    c = generate_texts(model, tok, PROMPTS[1:], n=3, max_new_tokens=8, seed=7)
    assert a == b and [len(x) for x in a] == [3, 3, 3]
    assert len(set(a[0])) > 1  # the n samples of a prompt differ
    assert a != generate_texts(model, tok, PROMPTS, n=3, max_new_tokens=8, seed=8)
    assert c[0] != a[1] or c[1] != a[2]  # prompt indices are part of the stream ...
    torch.manual_seed(3)
    d = generate_texts(model, tok, PROMPTS, max_new_tokens=8)
    torch.manual_seed(3)
    assert generate_texts(model, tok, PROMPTS, max_new_tokens=8) == d  # ... and seed=None follows torch's RNG


def test_top_p_near_zero_is_greedy_and_sampling_follows_temperature(lm):
    model, tok = lm
    greedy = generate_texts(model, tok, PROMPTS, max_new_tokens=8, temperature=0)
    assert generate_texts(model, tok, PROMPTS, max_new_tokens=8, top_p=1e-6, seed=1) == greedy
    assert generate_texts(model, tok, PROMPTS, max_new_tokens=8, temperature=1e-4, seed=1) == greedy
    assert generate_texts(model, tok, PROMPTS, max_new_tokens=8, temperature=1.5, seed=1) != greedy


def test_eos_and_per_row_limits_end_rows(lm):
    model, tok = lm
    ids = encode_prompts(tok, PROMPTS[:1])
    first = sample_tokens(model, ids, temperature=0, max_new_tokens=4, eos_token_id=None)[0][0]
    stopped = sample_tokens(model, ids, temperature=0, max_new_tokens=4, eos_token_id=first[1])[0][0]
    assert stopped == first[:2]  # ends on the EOS, which is kept
    assert sample_tokens(model, ids, temperature=0, max_new_tokens=4, eos_token_id=first[1],
                         stop_at_eos=False)[0][0] == first
    rows = [Row(0, row_seed(0, 0, 0), 2, 0.0), Row(0, row_seed(0, 0, 1), 5, 1.0, 0.9)]
    out = sample_rows(model, ids, rows, eos_token_id=None)
    assert out[0] == first[:2] and len(out[1]) == 5
    with pytest.raises(ValueError, match="grouped by prompt"):
        sample_rows(model, ids * 2, [Row(1, 0), Row(0, 0)])
    with pytest.raises(ValueError, match="top_p"):
        sample_tokens(model, ids, top_p=0)


def test_inverse_cdf_sampling_follows_the_distribution():
    from pluralign.models.generation import _Sampler

    probs = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])
    logits = probs.clamp_min(1e-30).log()[None].repeat(2, 1)
    logits[:, -1] = float("-inf")
    sampler = _Sampler([Row(0, 11), Row(0, 12, top_p=0.7)], vocab=5, device=torch.device("cpu"))
    draws = torch.stack([sampler(logits) for _ in range(4000)])
    freq = torch.bincount(draws[:, 0], minlength=5).float() / len(draws)
    assert torch.allclose(freq, probs, atol=0.03), freq  # ~4 standard errors at n = 4000
    assert set(draws[:, 1].tolist()) == {0, 1}  # top-p 0.7 keeps the two tokens that reach it
    again = _Sampler([Row(0, 11), Row(0, 12, top_p=0.7)], vocab=5, device=torch.device("cpu"))
    assert torch.equal(torch.stack([again(logits) for _ in range(4000)]), draws)  # seeded per row


def test_shared_prefix_and_packed_decoding_attention_are_the_same_computation(lm):
    from pluralign.models import generation

    model, tok = lm
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # grouped-query heads to pack
    ids = encode_prompts(tok, PROMPTS)
    shared = generation.shared_prefix_length(ids)
    assert shared >= 16 and all(p[:shared] == ids[0][:shared] for p in ids)  # the chat template's header
    assert generation.shared_prefix_length(ids[:1]) == 0 and generation.shared_prefix_length([[1, 2], [1, 3]]) == 0
    kw = dict(max_new_tokens=8, eos_token_id=None, pad_token_id=tok.pad_token_id)
    fast = sample_tokens(model, ids, n=2, seed=5, **kw)
    plain = sample_tokens(model, ids, n=2, seed=5, share_prefix=False, **kw)
    assert fast == plain
    # a decoding step through the packed attention gives transformers' SDPA logits
    rows = [Row(i, 0, 3, 0.0) for i in range(len(ids))]
    calls = []
    original = generation._decode_attention

    def counting(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out[0])
        return out

    generation._decode_attention = counting
    try:
        packed = sample_rows(model, ids, rows, eos_token_id=None, pad_token_id=tok.pad_token_id)
    finally:
        generation._decode_attention = original
    assert len(calls) == 2 * model.config.num_hidden_layers and model.config._attn_implementation == "sdpa"
    unpacked = generation._packed_gqa_decoding
    generation._packed_gqa_decoding = lambda m: contextlib.nullcontext()
    try:
        reference = sample_rows(model, ids, rows, eos_token_id=None, pad_token_id=tok.pad_token_id)
    finally:
        generation._packed_gqa_decoding = unpacked
    assert packed == reference and len({tuple(r) for r in reference}) > 1


def test_int8_quantised_model_samples_repeatably_close_to_fp32():
    import copy

    from pluralign.models.llm import quantize_int8

    model, tok = tiny_causal_lm(arch="llama", seed=0)
    model.eval()
    q = quantize_int8(copy.deepcopy(model))
    fp32_left = {n.rsplit(".", 1)[-1] for n, m in q.named_modules() if type(m) is torch.nn.Linear}
    assert fp32_left == {"down_proj", "lm_head"}
    assert not any(type(m) is torch.nn.Linear for m in quantize_int8(copy.deepcopy(model), keep_fp32=()).modules())
    a = generate_texts(q, tok, PROMPTS, n=2, max_new_tokens=8, seed=3)
    assert a == generate_texts(q, tok, PROMPTS, n=2, max_new_tokens=8, seed=3)
    assert all(len(t) == 2 and all(isinstance(x, str) for x in t) for t in a) and any(x for t in a for x in t)
    ids = torch.tensor([encode_prompts(tok, PROMPTS[:1])[0]])
    with torch.inference_mode():
        ref, got = model(input_ids=ids).logits, q(input_ids=ids).logits
    assert (got - ref).abs().max() < 0.1 * ref.abs().max()
    with pytest.raises(ValueError, match="fp32"):
        quantize_int8(copy.deepcopy(model).to(torch.bfloat16))
