"""SummaryConditionedRM: PLUS template, reported truncation, scoring, HF-format round trips, bad checkpoints."""

import copy
import json

import numpy as np
import pytest

from pluralign.models.reward_model import (
    CONFIG_NAME,
    HEAD_NAME,
    PLUS_TEMPLATE,
    RMCheckpointError,
    SummaryConditionedRM,
)
from pluralign.models.tiny import tiny_causal_lm

PROMPTS = ["What pet should I get?", "Describe your morning.", "hi"]
RESPONSES = ["A playful dog that loves long walks.", "Coffee, then a run in the park.", "hello there"]
SUMMARIES = ["I love dogs and hate cats.", None, "Prefers short answers."]


@pytest.fixture(scope="module")
def minilm_rm():
    return SummaryConditionedRM.from_backbone("sentence-transformers/all-MiniLM-L6-v2", max_length=64)


@pytest.fixture
def tiny_rm():
    model, tok = tiny_causal_lm("qwen2", hidden_size=32, layers=1, seed=0)
    return SummaryConditionedRM.from_model(model, tok, max_length=128)


def test_template_and_plain_prompt(minilm_rm, tiny_rm):
    user = minilm_rm.format_user_turn("Q?", "likes dogs")
    assert user == PLUS_TEMPLATE.format(summary="likes dogs", prompt="Q?")
    assert minilm_rm.format_user_turn("Q?", None) == "Q?" and minilm_rm.format_user_turn("Q?", "  ") == "Q?"
    text = tiny_rm.format_input("Q?", "A dog.", "likes dogs")
    assert "<|im_start|>user\nHere is the summary of my preferences" in text
    assert text.endswith("<|im_start|>assistant\nA dog.<|im_end|>\n")
    assert minilm_rm.pooling == "mean" and tiny_rm.pooling == "last"


@pytest.mark.parametrize("which", ["encoder", "decoder"])
def test_truncation_cuts_summary_front_and_is_reported(which, minilm_rm, tiny_rm):
    rm = minilm_rm if which == "encoder" else tiny_rm
    long_summary = " ".join(f"fact{i} about me." for i in range(60)) + " FINALFACT"
    prompts, responses, summaries = ["Which pet?", "Which pet?"], ["A dog, clearly.", "A cat."], [long_summary, None]
    full = rm.count_tokens(prompts, responses, summaries)
    assert full[0] > rm.max_length >= full[1]
    enc = rm.encode(prompts, responses, summaries)
    ids = enc.batch["input_ids"]
    assert ids.shape[1] == rm.max_length
    assert enc.summary_tokens_cut[0] > 0 and enc.summary_tokens_kept[0] > 0
    assert enc.summary_tokens_cut[1] == enc.summary_tokens_kept[1] == 0
    assert enc.prompt_tokens_cut == [0, 0] and enc.response_tokens_cut == [0, 0]
    # everything cut came from the summary: untruncated length minus the cut is what remains
    assert full[0] - enc.summary_tokens_cut[0] == int(enc.batch["attention_mask"][0].sum())
    text = rm.tokenizer.decode(ids[0], skip_special_tokens=True).lower()
    assert "a dog, clearly." in text and "which pet?" in text and "finalfact" in text  # end kept, front cut
    assert "fact0 " not in text


def test_score_is_order_independent_and_bf16_close(minilm_rm):
    s = minilm_rm.score(PROMPTS, RESPONSES, SUMMARIES, batch_size=2)
    one = np.array([minilm_rm.score([p], [r], [z])[0] for p, r, z in zip(PROMPTS, RESPONSES, SUMMARIES, strict=True)])
    np.testing.assert_allclose(s, one, atol=1e-5)
    b = minilm_rm.score(PROMPTS, RESPONSES, SUMMARIES, dtype="bf16")
    assert s.dtype == np.float32 and np.max(np.abs(b - s)) < 0.1
    # the summary changes the input, so it changes the score
    assert minilm_rm.score(PROMPTS[:1], RESPONSES[:1], ["I hate dogs."])[0] != s[0]
    with pytest.raises(ValueError, match="length mismatch"):
        minilm_rm.score(PROMPTS, RESPONSES[:2])


def _assert_round_trip(rm, path):
    rm.save_pretrained(path)
    for name in (CONFIG_NAME, HEAD_NAME, "tokenizer.json"):
        assert (path / name).exists()
    loaded = SummaryConditionedRM.from_pretrained(path)
    np.testing.assert_array_equal(rm.score(PROMPTS, RESPONSES, SUMMARIES), loaded.score(PROMPTS, RESPONSES, SUMMARIES))
    return loaded


def test_round_trip_encoder(minilm_rm, tmp_path):
    rm = copy.deepcopy(minilm_rm)
    rm.head.bias.data += 0.5  # a non-default head must survive too
    loaded = _assert_round_trip(rm, tmp_path / "rm")
    assert loaded.max_length == 64 and loaded.pooling == "mean" and not loaded.lora


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_round_trip_tiny_decoder(arch, tmp_path):
    model, tok = tiny_causal_lm(arch, hidden_size=32, layers=1, seed=3)
    _assert_round_trip(SummaryConditionedRM.from_model(model, tok, max_length=96), tmp_path / arch)


def test_round_trip_lora(minilm_rm, tmp_path):
    model, tok = tiny_causal_lm("qwen2", hidden_size=32, layers=1, seed=4)
    rm = SummaryConditionedRM.from_model(model, tok, lora_r=4, max_length=96)
    trainable = [n for n, p in rm.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in trainable) and not any("embed_tokens" in n for n in trainable)
    for n, p in rm.named_parameters():  # make the adapter non-trivial (B starts at zero)
        if "lora_B" in n:
            p.data.normal_(0, 0.1)
    loaded = _assert_round_trip(rm, tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter_model.safetensors").exists() and (tmp_path / "lora" / "base").is_dir()
    assert loaded.lora["r"] == 4
    # an adapter over a named backbone stores only the adapter and the name
    enc = SummaryConditionedRM.from_backbone("minilm", lora_r=2, max_length=64)
    _assert_round_trip(enc, tmp_path / "lora-minilm")
    assert not (tmp_path / "lora-minilm" / "base").exists()
    assert not (tmp_path / "lora-minilm" / "model.safetensors").exists()


def test_bad_checkpoints_fail_clearly(tiny_rm, tmp_path):
    good = tmp_path / "good"
    tiny_rm.save_pretrained(good)
    with pytest.raises(RMCheckpointError, match="does not exist"):
        SummaryConditionedRM.from_pretrained(tmp_path / "nope")

    def broken(name, action):
        d = tmp_path / name
        d.mkdir()
        for f in good.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        action(d)
        return d

    cases = [
        ("no-meta", lambda d: (d / CONFIG_NAME).unlink(), f"{CONFIG_NAME}: missing"),
        ("bad-meta", lambda d: (d / CONFIG_NAME).write_text("{not json"), f"{CONFIG_NAME}: corrupt JSON"),
        ("meta-field", lambda d: (d / CONFIG_NAME).write_text(json.dumps({"version": 1})), "field 'pooling'"),
        ("no-head", lambda d: (d / HEAD_NAME).unlink(), f"{HEAD_NAME}: missing"),
        ("bad-head", lambda d: (d / HEAD_NAME).write_bytes(b"garbage"), f"{HEAD_NAME}: corrupt"),
        ("no-weights", lambda d: (d / "model.safetensors").unlink(), "model.safetensors: missing"),
        ("bad-weights", lambda d: (d / "model.safetensors").write_bytes(b"\0" * 64), "cannot load the backbone"),
        ("no-config", lambda d: (d / "config.json").unlink(), "config.json: missing"),
    ]
    for name, action, message in cases:
        with pytest.raises(RMCheckpointError, match=message):
            SummaryConditionedRM.from_pretrained(broken(name, action))
