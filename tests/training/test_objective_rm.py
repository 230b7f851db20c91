"""A helpfulness / safety objective RM fine-tuned end to end on HH-RLHF pairs, and its cache."""

import numpy as np
import pytest

from pluralign.training import objective_rm
from pluralign.training.rm_config import RMConfig


def test_finetuned_objective_trains_once_then_loads_from_its_cache(tmp_path, monkeypatch):
    cfg = RMConfig(max_steps=2, batch_size=4, max_length=64, logging_steps=1)
    rm, acc = objective_rm.finetune_hh_objective("helpful", "sentence-transformers/all-MiniLM-L6-v2", tmp_path,
                                                 n_train=8, n_eval=8, config=cfg)
    assert 0.0 <= acc <= 1.0 and rm.heldout_accuracy == acc
    assert (rm.path / "config.json").exists() and rm.path.parent == tmp_path
    prompts, answers = ["How do I boil an egg?"] * 2, ["Boil it for nine minutes, then cool it.", "No."]
    first = rm(prompts, answers)
    assert first.shape == (2,) and np.isfinite(first).all()

    def no_training(*a, **k):
        raise AssertionError("a cached objective RM was trained again")

    monkeypatch.setattr(objective_rm, "train_reward_model", no_training)
    again, acc2 = objective_rm.finetune_hh_objective("helpful", "sentence-transformers/all-MiniLM-L6-v2", tmp_path,
                                                     n_train=8, n_eval=8, config=cfg)
    assert acc2 == acc and np.allclose(again(prompts, answers), first)
    # other settings are another model: the cache is keyed by them, so this one would train (and here it cannot)
    with pytest.raises(AssertionError, match="trained again"):
        objective_rm.finetune_hh_objective("helpful", "sentence-transformers/all-MiniLM-L6-v2", tmp_path,
                                           n_train=8, n_eval=8, seed=1, config=cfg)
    with pytest.raises(ValueError, match="'helpful' or 'harmless'"):
        objective_rm.finetune_hh_objective("funny", "sentence-transformers/all-MiniLM-L6-v2", tmp_path)
