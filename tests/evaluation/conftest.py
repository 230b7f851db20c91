"""Shared fixtures: the real simulated pets suite (quick size), split once per session as the bench splits it
(validation users carved out, the truth hidden from examples), and a tiny RM budget."""

import pytest

from pluralign.evaluation.suite_splits import build_simulated_split
from pluralign.training.rm_config import RMConfig


@pytest.fixture(scope="session")
def pets_split():
    return build_simulated_split("pets", seed=0, quick=True)


@pytest.fixture
def tiny_rm():
    """Two optimizer steps on short inputs: enough to exercise every code path in seconds."""
    return RMConfig(max_length=96, max_steps=2, batch_size=4, bf16=False)
