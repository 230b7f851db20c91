"""The reward model on TRL's RewardTrainer: learns a toy preference, uses the summary, resumes exactly, validates
its rows; the PLUS inner-loop update optimises the same loss as the Trainer."""

import copy
import random
import shutil

import numpy as np
import pytest
import torch

from pluralign.config import load_config
from pluralign.data.schema import UserRecord
from pluralign.models.reward_model import SummaryConditionedRM
from pluralign.models.tiny import tiny_causal_lm
from pluralign.summarizers.store import SummaryStore, summaries_for
from pluralign.training.rm_config import RMConfig
from pluralign.training.rm_data import validate_rows
from pluralign.training.rm_trainer import build_trainer, reward_config, train_reward_model
from pluralign.training.rm_updater import RMUpdater, evaluate_pairs, pair_loss

ADJ = ["friendly", "small", "fluffy", "quiet", "playful", "old", "young", "lazy", "clever", "curious", "big"]
PLACES = ["garden", "kitchen", "park", "house", "yard", "street", "beach", "farm", "city", "forest"]
PROMPTS = ["Tell me about an animal.", "Describe a pet.", "What did you see today?", "Write one sentence."]


def pet_rows(n, seed, prefer="dog", summary=None):
    rng = random.Random(seed)
    other = {"dog": "cat", "cat": "dog"}[prefer]

    def resp(animal):
        return f"A {rng.choice(ADJ)} {animal} is in the {rng.choice(PLACES)}."

    return [{"prompt": rng.choice(PROMPTS), "chosen": resp(prefer), "rejected": resp(other), "summary": summary}
            for _ in range(n)]


@pytest.fixture(scope="module")
def base_rm():
    return SummaryConditionedRM.from_backbone("minilm", max_length=64, seed=0)


def test_learns_toy_preference(base_rm):
    rm = copy.deepcopy(base_rm)
    held_out = pet_rows(64, seed=1)
    before = evaluate_pairs(rm, held_out)["accuracy"]
    metrics = train_reward_model(rm, pet_rows(96, seed=0), RMConfig(max_steps=12, batch_size=8, logging_steps=4),
                                 eval_rows=held_out)
    assert 0.25 < before < 0.75  # untrained: near chance
    assert metrics["eval_accuracy"] > 0.9 and metrics["steps"] == 12 and metrics["pairs_seen"] == 96
    assert metrics["history"][0]["train_loss"] > metrics["history"][-1]["train_loss"]


@pytest.mark.parametrize("metric", ["accuracy", "loss"])
def test_keep_best_ends_on_the_best_validation_check(base_rm, metric):
    """Held-out users who prefer the other animal: every step makes the validation accuracy and loss worse, so
    ``keep_best`` must end with the first check's weights, and early stopping must cut the budget short."""
    train, held_out = pet_rows(64, seed=3, prefer="dog"), pet_rows(24, seed=4, prefer="cat")
    cfg = dict(max_steps=8, batch_size=8, lr=1e-4, eval_steps=2, logging_steps=2, bucket_size=0, best_metric=metric)
    kept = copy.deepcopy(base_rm)
    m = train_reward_model(kept, train, RMConfig(**cfg, keep_best=True), eval_rows=held_out)
    losses = [e["eval_loss"] for e in m["eval_history"]]
    accuracies = [e["eval_accuracy"] for e in m["eval_history"]]
    assert [e["step"] for e in m["eval_history"]] == [2, 4, 6, 8] and losses == sorted(losses)
    assert accuracies == sorted(accuracies, reverse=True)  # ties keep the earlier check
    assert m["best_step"] == 2 and m["steps"] == 8
    assert m["eval_loss"] == pytest.approx(losses[0], rel=1e-4)  # the final model is the step-2 one
    assert evaluate_pairs(kept, held_out)["loss"] < losses[-1]

    stopped = train_reward_model(copy.deepcopy(base_rm), train,
                                 RMConfig(**cfg, keep_best=True, early_stopping_patience=1), eval_rows=held_out)
    assert stopped["steps"] == 4 and stopped["best_step"] == 2
    with pytest.raises(ValueError, match="needs keep_best"):
        RMConfig(early_stopping_patience=2)
    with pytest.raises(ValueError, match="best_metric"):
        RMConfig(best_metric="auroc")
    args = reward_config(RMConfig(**cfg, keep_best=True), "unused", has_eval=True)
    assert args.metric_for_best_model == f"eval_{metric}" and args.greater_is_better == (metric == "accuracy")


@pytest.mark.slow
def test_summary_flips_the_prediction(base_rm, tmp_path):
    rm = copy.deepcopy(base_rm)
    cats, dogs = "I love cats.", "I love dogs."
    train = pet_rows(80, 0, "dog", dogs) + pet_rows(80, 1, "cat", cats)
    metrics = train_reward_model(rm, train, RMConfig(max_steps=30, batch_size=16, lr=1e-4, logging_steps=10))
    assert metrics["train_accuracy"] > 0.8
    probe = pet_rows(32, 5, "dog")
    prompts = [r["prompt"] for r in probe]
    dog_resp, cat_resp = [r["chosen"] for r in probe], [r["rejected"] for r in probe]
    m_dogs = rm.score(prompts, dog_resp, [dogs] * 32) - rm.score(prompts, cat_resp, [dogs] * 32)
    m_cats = rm.score(prompts, dog_resp, [cats] * 32) - rm.score(prompts, cat_resp, [cats] * 32)
    assert (m_dogs > 0).mean() > 0.9 and (m_cats < 0).mean() > 0.9

    # Summaries as a product: the RM reads the summary in force in the store, so a person's edit that reverses
    # the stated preference reverses the predicted choice for that user (no retraining).
    store = SummaryStore(tmp_path / "summaries.jsonl")
    users = [UserRecord(user_id=f"u{i}") for i in range(len(prompts))]
    store.record({u.user_id: dogs for u in users}, summarizer_version="test", step=0)

    def margins() -> np.ndarray:
        z = summaries_for(users, None, store)
        return rm.score(prompts, dog_resp, z) - rm.score(prompts, cat_resp, z)

    assert (margins() > 0).mean() > 0.9
    for u in users:
        store.edit(u.user_id, cats, author=u.user_id)
    assert (margins() < 0).mean() > 0.9
    assert store.get("u0").summary == cats and len(store.history("u0")) == 2


def test_resume_continues_at_the_right_step(tmp_path):
    def fresh():  # same seed, same weights; everything else must come from the checkpoint
        model, tok = tiny_causal_lm("qwen2", hidden_size=32, layers=1, seed=0)
        return SummaryConditionedRM.from_model(model, tok, max_length=96)

    rows = pet_rows(48, seed=2)
    cfg = dict(max_steps=6, batch_size=8, lr=1e-3, logging_steps=1, bf16=False)
    full = fresh()
    train_reward_model(full, rows, RMConfig(**cfg))

    out = tmp_path / "run"
    train_reward_model(fresh(), rows, RMConfig(**cfg, output_dir=str(out), save_steps=3))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "model.safetensors"):
        assert (out / "checkpoint-3" / name).exists()
    assert (out / "model.safetensors").exists() and (out / "train_results.json").exists()
    from_ckpt = SummaryConditionedRM.from_pretrained(out / "checkpoint-3")  # a checkpoint is a model directory
    assert np.isfinite(from_ckpt.score(["Describe a pet."], ["A dog."])).all()

    shutil.rmtree(out / "checkpoint-6")  # as if the run had stopped during step 4
    resumed = fresh()
    m = train_reward_model(resumed, rows, RMConfig(**cfg, output_dir=str(out), save_steps=3,
                                                   resume_from_checkpoint="latest"))
    assert m["steps"] == 6 and m["pairs_seen"] == 3 * 8 and [h["step"] for h in m["history"]] == [1, 2, 3, 4, 5, 6]
    changed = False
    for (n, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=n)
        changed |= not torch.equal(a, fresh().state_dict()[n]) if n == "head.weight" else False
    assert changed  # training did move the weights, so equality above is meaningful


def test_incremental_updates_on_in_memory_rows(base_rm):
    rm = copy.deepcopy(base_rm)
    updater = RMUpdater(rm, RMConfig(batch_size=8, lr=1e-4))
    held_out = pet_rows(32, seed=9)
    before = evaluate_pairs(rm, held_out)["loss"]
    for k in range(3):  # the PLUS loop: fresh rows (new summaries) each round
        stats = updater.train_on(pet_rows(16, seed=20 + k, summary=f"round {k}"), steps=2)
        assert set(stats) >= {"loss", "accuracy", "grad_norm"}
    assert updater.steps == 6 and evaluate_pairs(rm, held_out)["loss"] < before


def test_config_maps_onto_reward_config(tmp_path):
    cfg = RMConfig(lr=2e-4, batch_size=4, grad_accum=2, max_steps=0, epochs=2, warmup_ratio=0.2, bucket_size=8,
                   center_rewards_coef=0.01, save_steps=5, save_total_limit=0, bf16=False)
    args = reward_config(cfg, str(tmp_path))
    assert (args.learning_rate, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2e-4, 4, 2)
    assert args.max_steps == -1 and args.num_train_epochs == 2 and args.warmup_steps == 0.2
    assert args.lr_scheduler_type == "cosine" and args.center_rewards_coefficient == 0.01
    assert args.train_sampling_strategy == "group_by_length" and args.save_steps == 5
    assert args.save_total_limit is None and not args.bf16 and not args.gradient_checkpointing
    assert args.disable_dropout and not reward_config(RMConfig(disable_dropout=False), str(tmp_path)).disable_dropout
    assert reward_config(RMConfig(bucket_size=0), str(tmp_path)).train_sampling_strategy == "random"


def test_inner_loop_loss_is_the_trainers(base_rm, tmp_path):
    """The PLUS inner loop's loss equals RewardTrainer.compute_loss on the same rows (margins and centring too)."""
    rm = copy.deepcopy(base_rm)
    rows = [{**r, "margin": 0.5 * (i % 3)} for i, r in enumerate(pet_rows(8, seed=6, summary="I love dogs."))]
    cfg = RMConfig(batch_size=8, center_rewards_coef=0.01, margin=0.25, bf16=False, bucket_size=0)
    trainer = build_trainer(rm, validate_rows(rows), cfg, output_dir=str(tmp_path))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    rm.eval()  # no dropout, so both forwards see the same network
    theirs = trainer.compute_loss(rm, dict(batch))
    ours, stats = pair_loss(rm, rows, margin=cfg.margin, center_rewards_coef=cfg.center_rewards_coef)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert 0.0 <= stats["accuracy"] <= 1.0


def test_bad_rows_and_config_fail_clearly():
    with pytest.raises(ValueError, match="row 1: field 'rejected' is missing"):
        validate_rows([{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a"}])
    with pytest.raises(ValueError, match="f.jsonl line 7: field 'margin'"):
        validate_rows([{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "x"}], "f.jsonl", [7])
    with pytest.raises(ValueError, match="field 'chosen' is empty"):
        validate_rows([{"prompt": "p", "chosen": " ", "rejected": "b"}])
    with pytest.raises(ValueError, match="report_to"):
        RMConfig(report_to="mlflow")
    cfg = load_config(RMConfig, None, ["lr=2e-4", "lora_r=8", "bf16=false"])
    assert cfg.lr == 2e-4 and cfg.lora_r == 8 and cfg.bf16 is False


def test_margin_field_is_used(base_rm):
    rm = copy.deepcopy(base_rm)
    rows = pet_rows(8, seed=4)
    plain = evaluate_pairs(rm, rows)["loss"]
    with_margin = evaluate_pairs(rm, [{**r, "margin": 2.0} for r in rows])["loss"]
    assert with_margin > plain
    assert np.isfinite(plain)
