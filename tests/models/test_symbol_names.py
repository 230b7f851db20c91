"""Symbols MiniLM's vocabulary cannot read (emojis) reach every MiniLM consumer as their Unicode names: the
sentence encoder, the neural P[Love] (the reward model is checked in test_reward_model.py)."""

import numpy as np
from transformers import AutoTokenizer

from pluralign.models.backbone import resolve_backbone
from pluralign.models.love_neural import NeuralLoveModel
from pluralign.models.sentence_encoder import INPUT_VERSION, SentenceEncoder
from pluralign.models.symbol_names import SymbolSpeller


def test_speller_names_only_what_the_tokenizer_cannot_read():
    tok = AutoTokenizer.from_pretrained(resolve_backbone("sentence-transformers/all-MiniLM-L6-v2"))
    spell = SymbolSpeller(tok).spell
    assert spell("Thanks 😊🎉") == "Thanks  :smiling face with smiling eyes:  :party popper: "
    assert spell("Bye! Sending love! ❤️") == "Bye! Sending love!  :heavy black heart: \ufe0f"
    assert spell("naïve café, 日本, ™ → •") == "naïve café, 日本, ™ → •"
    assert spell("plain ascii :)") == "plain ascii :)"
    assert tok.unk_token not in tok.tokenize(spell("🎉✨👍🌟😄🙂🤖"))


def test_neural_love_tells_emojis_apart(tiny_encoder_dir):
    m = NeuralLoveModel(tiny_encoder_dir, max_length=48)
    ids = m.tokenize([("Request: plans?", "Go hiking. 😊🎉"), ("Request: plans?", "Go hiking. 👍")])["input_ids"]
    assert m.tokenizer.unk_token_id not in ids.flatten().tolist()
    assert ids[0].tolist() != ids[1].tolist()


def test_sentence_encoder_tells_emojis_apart_and_ignores_a_cache_from_before(encoder, tmp_path):
    a, b = encoder.encode(["Go hiking. 😊🎉", "Go hiking. 👍"])
    assert float(a @ b) < 0.999  # as [UNK] both were the same input: cosine 1
    path = tmp_path / "cache.npz"
    np.savez(path, keys=np.array(["k"]), vectors=np.zeros((1, 384), np.float32), backbone=encoder.backbone,
             max_length=encoder.max_length)  # written before INPUT_VERSION existed
    assert SentenceEncoder(cache_path=path)._cache == {}
    np.savez(path, keys=np.array(["k"]), vectors=np.zeros((1, 384), np.float32), backbone=encoder.backbone,
             max_length=encoder.max_length, input_version=INPUT_VERSION)
    assert list(SentenceEncoder(cache_path=path)._cache) == ["k"]
