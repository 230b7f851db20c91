"""The hf RL plumbing end to end: a tiny random causal-LM summarizer, trained by the PLUS loop on CPU against a
fixed reward that pays for the letter "o" (as in "dog", the attribute the user prefers) in the summary, measurably
raises its reward."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pluralign.data.schema import PreferencePair, UserRecord
from pluralign.training.plus_config import PlusConfig
from pluralign.training.plus_trainer import PlusRow, PlusTrainer

pytestmark = pytest.mark.usefixtures("one_thread")


class AttributeScorer:
    """A fixed reward model: r(x, y | z) = (# of "o" in z) / 2 * (+1 if y is about dogs else -1). A random tiny
    model rarely spells a whole word, so the reward pays for a letter of it."""

    def score(self, prompts, responses, summaries=None, dtype="fp32"):
        summaries = summaries or [""] * len(prompts)
        return np.array([(z or "").lower().count("o") / 2 * (1.0 if "dog" in y.lower() else -1.0)
                         for y, z in zip(responses, summaries, strict=True)], dtype=np.float32)


def _rows(n: int = 8) -> list[PlusRow]:
    pair = PreferencePair(pair_id="p", prompt="Pet?", chosen="A dog.", rejected="A cat.")
    return [PlusRow(f"u{i}", UserRecord(user_id=f"u{i}", profile="I like pets."), [pair]) for i in range(n)]


def _train(tmp_path, **kw) -> list[dict]:
    cfg = PlusConfig(backend="hf", summarizer="tiny", max_new_tokens=10, train_rm=False, warm_start_rm_epochs=0,
                     rollout_batch_size=8, minibatch_size=32, kl_coef=0.01, output_dir=str(tmp_path / "run"), **kw)
    trainer = PlusTrainer(cfg, _rows(), rm=AttributeScorer())
    return [h for h in trainer.train() if "reward" in h]


def test_grpo_raises_reward_of_tiny_hf_summarizer(tmp_path):
    hist = _train(tmp_path, algo="grpo", group_size=4, summarizer_lr=1e-2, epochs=14, lora_r=0)
    r = [h["reward"] for h in hist]
    assert np.mean(r[-3:]) > np.mean(r[:3]) + 0.1, r
    assert all(k in hist[-1] for k in ("reward", "rm_accuracy", "summary_words", "kl"))
    assert hist[-1]["kl"] > 0  # the policy moved away from the frozen initial model and the KL is measured


def test_ppo_raises_reward_and_checkpoint_resumes(tmp_path):
    hist = _train(tmp_path, algo="ppo", summarizer_lr=1e-2, critic_lr=1e-3, ppo_epochs=2,
                  epochs=16, save_steps=8, lora_r=0)
    r = [h["reward"] for h in hist]
    assert np.mean(r[-4:]) > np.mean(r[:4]) + 0.05, r
    run = tmp_path / "run"
    assert (run / "checkpoint-8" / "summarizer" / "hf_summarizer.json").exists()
    assert (run / "summarizer" / "model.safetensors").exists()
    lines = (run / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 16
    # resume with two more epochs: starts at step 16, not from scratch
    cfg = PlusConfig(backend="hf", summarizer="tiny", max_new_tokens=10, train_rm=False, warm_start_rm_epochs=0,
                     rollout_batch_size=8, algo="ppo", epochs=18, output_dir=str(run), resume=True, lora_r=0)
    trainer = PlusTrainer(cfg, _rows(), rm=AttributeScorer())
    more = trainer.train()
    assert [h["step"] for h in more] == [17, 18]
    assert trainer.summarizer.step == 18


@pytest.mark.parametrize("bad", [{"algo": "ppo", "backend": "cpu"}, {"algo": "grpo", "group_size": 1}])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="PlusConfig"):
        PlusConfig(**bad)


def test_lora_on_top_layers_only_trains_those_layers_and_keeps_the_initial_model():
    from pluralign.models.tiny import tiny_causal_lm
    from pluralign.summarizers.hf import HFSummarizer, add_lora

    model, tok = tiny_causal_lm(layers=3, seed=0)
    s = HFSummarizer(add_lora(model, r=4, layers=1), tok, max_new_tokens=6)
    trainable = {n.split(".layers.")[1].split(".")[0] for n, p in s.model.named_parameters() if p.requires_grad}
    assert trainable == {"2"}
    users = [r.context for r in _rows(2)]
    before = s.summarize(users, initial=True)
    for p in s.model.parameters():
        if p.requires_grad:
            p.data.normal_(0, 0.5)  # a trained adapter
    assert s.summarize(users, initial=True) == before  # the adapter switched off: the zero-shot summarizer
    assert s.summarize(users) != before


def test_group_logprobs_run_each_history_once_and_match_row_by_row():
    """The GRPO update runs a group's shared history once; log-probs and LoRA gradients equal the row-by-row ones
    (histories of different lengths, left-padded; summaries of different lengths, right-padded)."""
    import torch

    from pluralign.models.tiny import tiny_causal_lm
    from pluralign.summarizers.hf import HFSummarizer, add_lora, sequence_logprobs

    model, tok = tiny_causal_lm(layers=2, seed=0)
    s = HFSummarizer(add_lora(model, r=4), tok, max_new_tokens=8)
    for p in s.model.parameters():
        if p.requires_grad:
            p.data.normal_(0, 0.3)  # a trained adapter, so its gradients are not trivially zero
    users = [UserRecord(user_id="a", profile="I like pets."),
             UserRecord(user_id="b", profile="I like pets a lot more than anything else, dogs most of all.")]
    torch.manual_seed(0)
    ro = s.rollout(users, group_size=3)
    assert ro.query_mask[0].sum() < ro.query_mask[3].sum()  # the two histories differ in length
    for row, end in ((1, 5), (4, 2)):  # summaries that stopped early: right padding after their EOS
        ro.response_ids[row, end:], ro.response_mask[row, end:] = tok.pad_token_id, 0
    args = (ro.query_ids, ro.query_mask, ro.response_ids, ro.response_mask)
    params = [p for p in s.model.parameters() if p.requires_grad]

    def run(group_size):
        s.model.zero_grad()
        logp = sequence_logprobs(s.model, *args, group_size=group_size)
        (logp * ro.response_mask).sum().backward()
        return logp.detach(), [p.grad.clone() for p in params]

    (rows, rows_grad), (groups, groups_grad) = run(1), run(3)
    mask = ro.response_mask.bool()
    torch.testing.assert_close(groups[mask], rows[mask], atol=1e-4, rtol=1e-4)
    for a, b in zip(groups_grad, rows_grad, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
    with pytest.raises(ValueError, match="groups of 2"):
        sequence_logprobs(s.model, *args, group_size=2)


def test_rollout_writes_the_greedy_summary_beside_the_samples():
    """The RM's greedy summaries come out of the rollout (one pre-fill per user) and are the summaries inference
    writes; asking for them leaves the sampled summaries as they were."""
    import torch

    from pluralign.models.tiny import tiny_causal_lm
    from pluralign.summarizers.hf import HFSummarizer

    model, tok = tiny_causal_lm(layers=2, seed=0)
    s = HFSummarizer(model, tok, max_new_tokens=6)
    users = [r.context for r in _rows(3)]
    users[1].profile = "I like cats, and long answers with many details."
    torch.manual_seed(1)
    plain = s.rollout(users, group_size=2)
    torch.manual_seed(1)
    both = s.rollout(users, group_size=2, greedy=True)
    assert plain.greedy_summaries is None
    assert both.summaries == plain.summaries and torch.equal(both.response_ids, plain.response_ids)
    assert both.greedy_summaries == s.summarize(users)
