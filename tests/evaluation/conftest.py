"""Shared fixtures: the real simulated pets suite (quick size), split once per session, and a tiny RM budget."""

import pytest

from pluralign.data.splits import make_splits
from pluralign.sim import build_suite
from pluralign.training.rm_config import RMConfig


@pytest.fixture(scope="session")
def pets_split():
    suite = build_suite("pets", seed=0, quick=True)
    return make_splits(suite.users, seed=0, context_size=3, seen_eval_frac=0.3)


@pytest.fixture
def tiny_rm():
    """Two optimizer steps on short inputs: enough to exercise every code path in seconds."""
    return RMConfig(max_length=96, max_steps=2, batch_size=4, bf16=False)
