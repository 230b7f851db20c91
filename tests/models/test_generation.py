"""The batched sampling path on a tiny random Llama: greedy equals ``model.generate``, seeds make rows repeatable
whatever shares their batch, samples of a prompt share its pre-fill, EOS and per-row limits end rows."""

from __future__ import annotations

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
