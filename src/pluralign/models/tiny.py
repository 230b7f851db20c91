"""Tiny randomly initialised decoders and a locally built tokenizer, for tests and CPU smoke runs.

Nothing here touches the Hugging Face Hub: the tokenizer is a byte-level BPE trained in-process on a small built-in
corpus (so any text encodes, no unknown tokens), wrapped in ``PreTrainedTokenizerFast`` with Qwen-style special
tokens and chat template, so code written for Qwen2.5-Instruct (``apply_chat_template``, eos/pad handling) runs
unchanged against these models. The weights are random: outputs are gibberish, the code paths are real.
"""

from __future__ import annotations

import copy
import functools
from typing import Literal

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

# Qwen2.5's template, trimmed to what we use (system/user/assistant turns, generation prompt); no tool calls.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

# Enough varied English for the BPE to learn common words and the words our simulated suites use.
_CORPUS = """
Here is the summary of my preferences based on previous conversations. In the following conversation, keep this in
mind to personalize your response. You are a helpful assistant. The user prefers short, direct answers.
I love cats. I love dogs. My dog likes long walks in the park; my cat sleeps on the sofa all day.
What pet should I get? A dog is loyal and playful. A cat is quiet and independent. Birds sing, fish swim.
Please explain how photosynthesis works in simple terms. Plants turn sunlight, water and carbon dioxide into sugar.
Summarize this article about the economy. Prices rose by three percent while wages grew more slowly.
Write a polite email to my landlord about the broken heater. Thank you for your help, best regards.
Start your response with ##Summary. The user likes humour, detailed code examples, and safety warnings.
Could you recommend a book? I enjoy science fiction, history, poetry and travel stories.
How do I sort a list in Python? Use sorted(items) or items.sort(key=len, reverse=True).
Bye! Sending love! Have a wonderful day, take care and talk soon.
Is it safe to mix bleach and ammonia? No, never: it releases toxic chloramine gas.
The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 10 100 1000.
yes no maybe because however therefore although which what when where why who how
"""


@functools.lru_cache(maxsize=1)
def _build_tokenizer(vocab_size: int):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is ever out of vocabulary
        show_progress=False,
    )
    lines = [line for line in _CORPUS.strip().splitlines() if line.strip()]
    tok.train_from_iterator(lines * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
        padding_side="right",
    )


def tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with pad/eos/bos and a Qwen-style chat template.

    Built once per process and vocabulary size; each call returns an independent copy so callers may change
    ``padding_side`` etc. without affecting others.
    """
    return copy.deepcopy(_build_tokenizer(vocab_size))


def tiny_causal_lm(
    arch: Literal["qwen2", "llama"] = "qwen2",
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    heads: int = 4,
    vocab_size: int = 512,
):
    """Return ``(model, tokenizer)``: a randomly initialised ``Qwen2ForCausalLM`` / ``LlamaForCausalLM``.

    Same seed, same weights. Token ids (pad/eos/bos) are wired into the config and generation config, so
    ``model.generate`` stops on ``<|im_end|>`` and pads with ``<|pad|>``.
    """
    if hidden_size % heads:
        raise ValueError(f"hidden_size={hidden_size} must be divisible by heads={heads}")
    tokenizer = tiny_tokenizer(vocab_size)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    if arch == "qwen2":
        config, cls = Qwen2Config(**common), Qwen2ForCausalLM
    elif arch == "llama":
        config, cls = LlamaConfig(**common), LlamaForCausalLM
    else:
        raise ValueError(f"arch must be 'qwen2' or 'llama', got {arch!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model, tokenizer
