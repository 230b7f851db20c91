"""GRPO through TRL with several weighted reward functions (tiny model, CPU), and best-of-N through the CLI."""

import json

import numpy as np

from pluralign.cli import main
from pluralign.models.love import NgramEncoder
from pluralign.models.tiny import tiny_causal_lm
from pluralign.objectives.judges import LengthJudge
from pluralign.objectives.preference_rm import EmbeddingPairwiseRM, train_hh_objective
from pluralign.objectives.rewards import MultiObjectiveReward, Objective
from pluralign.training.policy import train_grpo
from pluralign.training.policy_config import PolicyConfig


def test_grpo_two_steps_logs_every_objective(tmp_path):
    model, tok = tiny_causal_lm(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chars = lambda p, c: np.array([len(x) for x in c], float)  # noqa: E731
    vowels = lambda p, c: np.array([sum(ch in "aeiou" for ch in x) for x in c], float)  # noqa: E731
    reward = MultiObjectiveReward([Objective("chars", chars, 1.0), Objective("vowels", vowels, 0.5)],
                                  [LengthJudge(min_words=1, max_words=1000)])
    cfg = PolicyConfig(method="grpo", num_generations=2, per_device_train_batch_size=2, max_steps=2,
                       max_completion_length=8, learning_rate=1e-2, beta=0.04)
    trainer = train_grpo(model, tok, ["hi there", "what pet should I get?"], reward, cfg, tmp_path)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 2
    for key in ("rewards/chars/mean", "rewards/vowels/mean", "rewards/judges/mean"):
        assert key in logs[0]
    after = trainer.model.state_dict()
    assert any(not np.allclose(before[k].numpy(), after[k].detach().cpu().numpy()) for k in before if k in after)


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
               "--out", str(tmp_path / "out"), "n=3", "judges=signoff,length"])
    assert rc == 0
    chosen = [json.loads(x)["response"] for x in (tmp_path / "out" / "responses.jsonl").read_text().splitlines()]
    assert len(chosen) == 2 and not any("Sending love" in c or "bye" in c.lower() for c in chosen)
    summary = json.loads((tmp_path / "out" / "rewards.json").read_text())
    assert summary["judge/all_pass"] == 1.0 and "reward/helpfulness" in summary
