"""Fixtures shared across test folders: tiny two-type user sets (`pet_users.make_users`), the MiniLM sentence
encoder, a tiny random-weight BERT encoder, small simulated reaction logs, and a one-thread torch setting.

Every fixture here is lazy: a test folder pays only for the fixtures its tests request.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from pet_users import make_users
from pluralign.data.schema import UserRecord
from pluralign.models.backbone import resolve_backbone
from pluralign.sim import simulate_reaction_log
from pluralign.summarizers.cpu import SentenceEncoder


@pytest.fixture(scope="session")
def pet_users() -> list[UserRecord]:
    return make_users()


@pytest.fixture(scope="session")
def encoder():
    return SentenceEncoder()


@pytest.fixture(scope="session")
def one_thread():
    """The CI box has 2 cores shared by many jobs: one intra-op thread avoids OpenMP spin contention."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    """A tiny random-weight BERT encoder with MiniLM's tokenizer, saved to tmp.

    It keeps P[Love] tests fast on a shared 2-core machine while exercising the real HF code path (any backbone
    works); mean-pooled random token embeddings are still a bag-of-words projection, so lexical cues like sign-offs
    and emojis remain learnable. MiniLM itself is exercised in training/test_grpo_policy.py and the bench suite.
    """
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
    """A small simulated reaction log with 30% adversarial users and a 5% love rate."""
    return simulate_reaction_log(n_users=80, per_user=30, adversarial_frac=0.3, base_rate=0.05, seed=3)


@pytest.fixture(scope="session")
def honest_log():
    """No adversaries and a 15% love rate: enough positives in a small log for P[Love] to learn."""
    return simulate_reaction_log(n_users=60, per_user=30, adversarial_frac=0.0, base_rate=0.15, seed=4)
