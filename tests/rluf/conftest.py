"""Shared fixtures: a small simulated reaction log and a tiny random-weight BERT encoder.

The tiny encoder keeps P[Love] tests fast on a shared 2-core machine while exercising the real HF code path
(any backbone works); mean-pooled random token embeddings are still a bag-of-words projection, so lexical cues
like sign-offs and emojis remain learnable. MiniLM itself is exercised in test_policy.py and the bench suite.
"""

import pytest


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from pluralign.models.backbone import resolve_backbone

    tok = AutoTokenizer.from_pretrained(resolve_backbone("sentence-transformers/all-MiniLM-L6-v2"))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=96, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=96, max_position_embeddings=256)
    torch.manual_seed(0)
    model = BertModel(cfg)
    d = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="session")
def reaction_log():
    from pluralign.sim import simulate_reaction_log

    return simulate_reaction_log(n_users=80, per_user=30, adversarial_frac=0.3, base_rate=0.05, seed=3)


@pytest.fixture(scope="session")
def honest_log():
    """No adversaries and a 15% love rate: enough positives in a small log for P[Love] to learn."""
    from pluralign.sim import simulate_reaction_log

    return simulate_reaction_log(n_users=60, per_user=30, adversarial_frac=0.0, base_rate=0.15, seed=4)
