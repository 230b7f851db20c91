"""Tiny decoders: built offline, deterministic, and usable through the chat-template / generate code paths."""

import torch

from pluralign.models.tiny import tiny_causal_lm, tiny_tokenizer


def test_tokenizer_round_trips_any_text_and_has_chat_template():
    tok = tiny_tokenizer()
    text = "I love dogs 🐶 — naïve café"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: nothing unknown
    assert tok.pad_token_id is not None and tok.eos_token == "<|im_end|>" and tok.bos_token is not None
    s = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert s.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_tokenizer_copies_are_independent():
    a = tiny_tokenizer()
    a.padding_side = "left"
    assert tiny_tokenizer().padding_side == "right"


def test_tiny_lm_seeded_and_generates():
    for arch in ("qwen2", "llama"):
        m1, tok = tiny_causal_lm(arch=arch, seed=1)
        m2, _ = tiny_causal_lm(arch=arch, seed=1)
        m3, _ = tiny_causal_lm(arch=arch, seed=2)
        assert m1.config.model_type == arch
        assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))
        assert not all(torch.equal(a, b) for a, b in zip(m1.parameters(), m3.parameters(), strict=True))
        enc = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        out = m1.generate(**enc, max_new_tokens=4, do_sample=False)
        assert out.shape[1] > enc["input_ids"].shape[1]
