"""SummaryConditionedRM: PLUS template, reported truncation, scoring, the library's save/load round trips, the
earlier checkpoint format, bad checkpoints."""

import copy
import json

import numpy as np
import pytest
from safetensors.torch import save_file
from transformers import AutoModel, PreTrainedModel

from pluralign.models.reward_model import PLUS_TEMPLATE, SummaryConditionedRM, SummaryConditionedRMConfig
from pluralign.models.rm_checkpoint import LEGACY_CONFIG, LEGACY_HEAD, RMCheckpointError
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
    user = minilm_rm.inputs.format_user_turn("Q?", "likes dogs")
    assert user == PLUS_TEMPLATE.format(summary="likes dogs", prompt="Q?")
    assert minilm_rm.inputs.format_user_turn("Q?", None) == "Q?" and minilm_rm.inputs.format_user_turn("Q?", "  ") == "Q?"
    text = tiny_rm.inputs.format_input("Q?", "A dog.", "likes dogs")
    assert "<|im_start|>user\nHere is the summary of my preferences" in text
    assert text.endswith("<|im_start|>assistant\nA dog.<|im_end|>\n")
    assert minilm_rm.config.pooling == "mean" and tiny_rm.config.pooling == "last"


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
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (path / name).exists()
    assert json.loads((path / "config.json").read_text())["model_type"] == SummaryConditionedRMConfig.model_type
    loaded = SummaryConditionedRM.from_pretrained(path)
    assert isinstance(loaded, PreTrainedModel) and not loaded.training
    np.testing.assert_allclose(rm.score(PROMPTS, RESPONSES, SUMMARIES), loaded.score(PROMPTS, RESPONSES, SUMMARIES),
                               atol=1e-5, rtol=1e-5)
    assert [n for n, p in rm.named_parameters() if p.requires_grad] == \
        [n for n, p in loaded.named_parameters() if p.requires_grad]
    return loaded


def test_round_trip_encoder(minilm_rm, tmp_path):
    rm = copy.deepcopy(minilm_rm)
    rm.head.bias.data += 0.5  # a non-default head must survive too
    loaded = _assert_round_trip(rm, tmp_path / "rm")
    assert loaded.max_length == 64 and loaded.config.pooling == "mean" and not loaded.config.lora
    # the library's own loader reads it too (the config type is registered with the Auto classes)
    auto = AutoModel.from_pretrained(tmp_path / "rm")
    assert isinstance(auto, SummaryConditionedRM) and auto.head.bias.item() == pytest.approx(rm.head.bias.item())


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
    assert loaded.config.lora["r"] == 4  # one self-contained directory: base weights, adapters and head


def _legacy_dir(rm, d):
    """A directory in the format written before the model was a PreTrainedModel."""
    d.mkdir()
    rm.backbone.save_pretrained(d)
    rm.tokenizer.save_pretrained(d)
    save_file({k: v.contiguous() for k, v in rm.head.state_dict().items()}, str(d / LEGACY_HEAD))
    meta = {"version": 1, "backbone": None, "base_model": None, "is_encoder": rm.config.is_encoder,
            "pooling": rm.config.pooling, "max_length": rm.max_length, "template": rm.config.template, "lora": None,
            "hidden_size": rm.head.in_features}
    (d / LEGACY_CONFIG).write_text(json.dumps(meta))
    return d


def test_earlier_format_still_loads(tiny_rm, tmp_path):
    tiny_rm.head.bias.data += 0.25
    loaded = SummaryConditionedRM.from_pretrained(_legacy_dir(tiny_rm, tmp_path / "old"))
    np.testing.assert_allclose(tiny_rm.score(PROMPTS, RESPONSES, SUMMARIES),
                               loaded.score(PROMPTS, RESPONSES, SUMMARIES), atol=1e-5)
    loaded.save_pretrained(tmp_path / "new")  # and saves in the current format
    assert not (tmp_path / "new" / LEGACY_CONFIG).exists()
    np.testing.assert_allclose(SummaryConditionedRM.from_pretrained(tmp_path / "new").score(PROMPTS, RESPONSES),
                               loaded.score(PROMPTS, RESPONSES), atol=1e-5)
    d = _legacy_dir(tiny_rm, tmp_path / "old-no-head")
    (d / LEGACY_HEAD).unlink()
    with pytest.raises(RMCheckpointError, match=f"{LEGACY_HEAD}: missing"):
        SummaryConditionedRM.from_pretrained(d)


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

    def edit_config(d, **changes):
        meta = json.loads((d / "config.json").read_text())
        meta.update(changes)
        for k in [k for k, v in changes.items() if v is None]:
            del meta[k]
        (d / "config.json").write_text(json.dumps(meta))

    def drop_head(d):  # a weights file without the head: never silently re-initialised
        from safetensors.torch import load_file

        state = {k: v for k, v in load_file(str(d / "model.safetensors")).items() if not k.startswith("head.")}
        save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})

    cases = [
        ("no-config", lambda d: (d / "config.json").unlink(), "config.json: missing"),
        ("bad-config", lambda d: (d / "config.json").write_text("{not json"), "config.json: corrupt JSON"),
        ("other-model", lambda d: edit_config(d, model_type="bert"), "not a pluralign reward model"),
        ("config-field", lambda d: edit_config(d, pooling=None), "field 'pooling'"),
        ("no-weights", lambda d: (d / "model.safetensors").unlink(), "model.safetensors: missing"),
        ("bad-weights", lambda d: (d / "model.safetensors").write_bytes(b"\0" * 64), "cannot load the model weights"),
        ("no-head", drop_head, "missing_keys.*head.weight"),
        ("no-tokenizer", lambda d: (d / "tokenizer.json").unlink() or (d / "tokenizer_config.json").unlink(),
         "cannot load the tokenizer"),
    ]
    for name, action, message in cases:
        with pytest.raises(RMCheckpointError, match=message):
            SummaryConditionedRM.from_pretrained(broken(name, action))


def test_emojis_reach_an_encoder_as_names_not_as_unknown_tokens(minilm_rm):
    """MiniLM's WordPiece vocabulary reads every emoji as [UNK]: spelled out, 😊🎉 and 👍 are different inputs."""
    tok = minilm_rm.tokenizer
    assert tok.tokenize("😊🎉") == tok.tokenize("👍") == [tok.unk_token]  # why the spelling exists
    loved, liked, none = (minilm_rm.encode(["Plans?"], [f"Go hiking.{e}"], ["Loves emojis."]).batch["input_ids"][0]
                          for e in (" 😊🎉", " 👍", ""))
    assert tok.unk_token_id not in loved.tolist() and tok.unk_token_id not in liked.tolist()
    assert loved.tolist() != liked.tolist() and len(loved) > len(none)
    assert "smiling face with smiling eyes" in tok.decode(loved)
    # characters the vocabulary reads are left alone
    assert minilm_rm.inputs.speller.spell("café ™ 日本") == "café ™ 日本"


def test_spelled_summaries_are_still_cut_from_their_front(minilm_rm):
    summary = "🎉 " * 80 + "likes short answers"
    enc = minilm_rm.encode(["Q?"], ["A."], [summary], max_length=48)
    assert len(enc.batch["input_ids"][0]) == 48 and enc.summary_tokens_cut[0] > 0
    assert "likes short answers" in minilm_rm.tokenizer.decode(enc.batch["input_ids"][0])


def test_a_byte_level_tokenizer_reads_emojis_and_its_texts_are_unchanged(tiny_rm):
    assert tiny_rm.inputs.speller.spell("Go hiking 😊🎉") == "Go hiking 😊🎉"
    ids = tiny_rm.encode(["Q?"], ["Go hiking 😊"]).batch["input_ids"][0].tolist()
    assert ids == tiny_rm.tokenizer(tiny_rm.inputs.format_input("Q?", "Go hiking 😊"), add_special_tokens=False)[
        "input_ids"]


def test_symbol_spelling_can_be_switched_off_and_is_saved(minilm_rm, tmp_path):
    rm = copy.deepcopy(minilm_rm)
    rm.config.spell_symbols = False
    rm.set_tokenizer(rm.tokenizer)
    assert rm.tokenizer.unk_token_id in rm.encode(["Q?"], ["Hi 😊"]).batch["input_ids"][0].tolist()
    rm.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["spell_symbols"] is False
    assert SummaryConditionedRM.from_pretrained(tmp_path).inputs.speller is None
