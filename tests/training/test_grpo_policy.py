"""GRPO of a causal LM with LoRA through TRL (tiny model, CPU): several weighted reward functions, CGPO judges,
checkpoints, and answers from each checkpoint; best-of-N through the CLI."""

import json

import numpy as np
import pytest

from pluralign.cli import main
from pluralign.models.love import NgramEncoder
from pluralign.models.tiny import tiny_causal_lm
from pluralign.objectives.judges import LengthJudge
from pluralign.objectives.preference_rm import EmbeddingPairwiseRM, train_hh_objective
from pluralign.objectives.rewards import MultiObjectiveReward, Objective
from pluralign.training.grpo_policy import PolicyCheckpoints, list_checkpoints, train_grpo_policy
from pluralign.training.policy_config import PolicyConfig


def test_grpo_lora_logs_every_objective_and_keeps_checkpoints(tmp_path):
    model, tok = tiny_causal_lm(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chars = lambda p, c: np.array([len(x) for x in c], float)  # noqa: E731
    vowels = lambda p, c: np.array([sum(ch in "aeiou" for ch in x) for x in c], float)  # noqa: E731
    reward = MultiObjectiveReward([Objective("chars", chars, 1.0), Objective("vowels", vowels, 0.5)],
                                  [LengthJudge(min_words=1, max_words=1000)])
    cfg = PolicyConfig(method="grpo", num_generations=2, per_device_train_batch_size=4, max_steps=3,
                       max_completion_length=8, learning_rate=1e-2, beta=0.04, save_steps=2, lora_top_layers=1,
                       lora_r=4, lora_alpha=8, bf16=False)
    run = train_grpo_policy(["hi there", "what pet should I get?", "tell me a joke"], reward, cfg, tmp_path,
                            model=model, tokenizer=tok)
    logs = [h for h in run.log_history if "reward" in h]
    assert len(logs) == 3 and run.train_steps == 3
    for key in ("rewards/chars/mean", "rewards/vowels/mean", "rewards/judges/mean"):
        assert key in logs[0]
    assert sorted(run.checkpoints) == [2, 3] and list_checkpoints(tmp_path) == run.checkpoints
    # LoRA trains adapters only: the base weights are untouched, the adapters moved
    base_after = model.get_base_model().state_dict() if hasattr(model, "get_base_model") else model.state_dict()
    same = [np.allclose(before[k].numpy(), base_after[k].detach().cpu().numpy()) for k in before if k in base_after]
    assert same and all(same)
    pc = PolicyCheckpoints(model=tiny_causal_lm(seed=1)[0], tokenizer=tok)
    ecfg = PolicyConfig(max_completion_length=6, eval_temperature=0.0)
    prompts = ["hi there", "what pet should I get?"]
    base_answers = pc.answers(prompts, None, ecfg)
    trained = pc.answers(prompts, run.checkpoints[3], ecfg)
    assert len(base_answers) == len(trained) == 2
    assert pc.answers(prompts, None, ecfg) == base_answers  # adapters off again: the base model's greedy answers


def test_cgpo_reward_functions_give_no_reward_to_a_failing_completion():
    words = lambda p, c: np.array([len(x.split()) for x in c], float)  # noqa: E731
    reward = MultiObjectiveReward([Objective("words", words, 0.7), Objective("bang", words, 0.3)],
                                  [LengthJudge(min_words=2, max_words=100)])
    reward.fit_normalisation(["q"] * 3, ["a b", "a b c", "a b c d"])
    funcs, weights = reward.trl_reward_funcs()
    names = [f.__name__ for f in funcs]
    assert names == ["words", "bang", "judges", "signoff_rate", "emoji_rate", "repetition"]
    assert weights == [0.7, 0.3, 0.0, 0.0, 0.0, 0.0]
    prompts = [[{"role": "user", "content": "q"}]] * 3
    completions = [[{"role": "assistant", "content": c}] for c in ("one", "a b c", "a b c d e f")]
    w = funcs[0](prompts=prompts, completions=completions)
    assert w[0] == 0.0 and w[1] == pytest.approx(0.5) and 0.5 < w[2] < 1.0  # calibrated in (0, 1); the too-short reply earns nothing
    assert funcs[2](prompts=prompts, completions=completions) == [0.0, 1.0, 1.0]
    # the hack monitors mark the sampled completions that carry the cue, and add nothing to the reward (weight 0)
    hacked = [[{"role": "assistant", "content": c}] for c in ("a b c", "a b c. Bye! Sending love!", "a b \U0001f60a")]
    assert funcs[3](prompts=prompts, completions=hacked) == [0.0, 1.0, 0.0]
    assert funcs[4](prompts=prompts, completions=hacked) == [0.0, 0.0, 1.0]


def test_grpo_rejects_a_batch_that_splits_a_group(tmp_path):
    reward = MultiObjectiveReward([Objective("n", lambda p, c: np.ones(len(c)), 1.0)])
    with pytest.raises(ValueError, match="multiple of num_generations"):
        train_grpo_policy(["hi"], reward, PolicyConfig(num_generations=3, per_device_train_batch_size=4), tmp_path)


def test_best_of_n_cli_with_hh_helpfulness_rm(tmp_path):
    enc = NgramEncoder()
    rm, acc = train_hh_objective("helpful", enc, n_train=None, n_eval=500)
    assert acc > 0.55  # 500 held-out HH-RLHF pairs, trained on all the others (measured 0.60)
    rm.save_pretrained(tmp_path / "help")
    assert np.allclose(EmbeddingPairwiseRM.from_pretrained(tmp_path / "help").coef, rm.coef)
    rows = [{"prompt": "How do I boil an egg?",
             "candidates": ["Put it in boiling water for 9 minutes, then cool it in cold water.", "No.",
                            "Boil it. Bye! Sending love!"]},
            {"prompt": "What is the capital of France?",
             "candidates": ["Paris is the capital of France.", "Paris! Love you, bye!", "I don't know."]}]
    f = tmp_path / "cands.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rc = main(["train", "policy", "--candidates", str(f), "--helpfulness", str(tmp_path / "help"),
               "--out", str(tmp_path / "out"), "--set", "n=3", "--set", "judges=signoff,length"])
    assert rc == 0
    chosen = [json.loads(x)["response"] for x in (tmp_path / "out" / "responses.jsonl").read_text().splitlines()]
    assert len(chosen) == 2 and not any("Sending love" in c or "bye" in c.lower() for c in chosen)
    summary = json.loads((tmp_path / "out" / "rewards.json").read_text())
    assert summary["judge/all_pass"] == 1.0 and "reward/helpfulness" in summary
