"""Transfer: answers of a real (tiny) chat model with the user's summary in the system prompt vs without, judged by
the simulated user's utility, with user-level CIs; the same seed for every condition, so equal summaries tie."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pet_users import make_users
from pluralign.data.splits import Example
from pluralign.evaluation.seed_stats import aggregate_seeds
from pluralign.evaluation.transfer import chat_messages, transfer_eval, win_rate_items, win_rate_result

pytestmark = pytest.mark.usefixtures("one_thread")


class LetterJudge:
    """Ground truth of a simulated user: utility = number of "o" in the answer."""

    def utility(self, prompt: str, response: str) -> float:
        return float(response.count("o"))


class LetterRM:
    def score(self, prompts, responses, summaries=None, **_):
        return np.array([r.count("o") for r in responses], dtype=float)


class FittedPlus:
    """What transfer_eval reads of a fitted ``plus`` method: a LoRA summarizer, its RM, its two kinds of summary."""

    name = "plus"

    def __init__(self, trained: str, zero_shot: str):
        from pluralign.models.tiny import tiny_causal_lm
        from pluralign.summarizers.hf import HFSummarizer, add_lora

        model, tok = tiny_causal_lm(seed=0)
        self.summarizer = HFSummarizer(add_lora(model, r=4), tok, max_new_tokens=8)
        self.model = LetterRM()
        self.trained, self.zero_shot = trained, zero_shot

    def conditionings(self, examples):
        return [self.trained] * len(examples)

    def initial_summaries(self, examples):
        return [self.zero_shot] * len(examples)


def _examples(n_users: int = 4) -> list[Example]:
    out = []
    for u in make_users(n_users, 4, seed=2):
        ctx = u.model_copy(update={"pairs": u.pairs[:2]})
        out += [Example(u.user_id, ctx, p, "new-users") for p in u.pairs[2:]]
    return out


def test_equal_summaries_tie_and_every_record_has_a_user_level_ci():
    exs = _examples()
    judges = {e.user_id: LetterJudge() for e in exs}
    plus = FittedPlus("likes dogs", "likes dogs")
    blind = type("Blind", (), {"model": LetterRM()})()
    items: dict = {}
    recs, shown = transfer_eval("t", plus, exs, judges, blind=blind, seed=0, prompts_per_user=2, best_of=3,
                                max_new_tokens=6, items=items)
    by = {r.metric: r for r in recs}
    assert set(by) >= {"transfer_win_rate", "transfer_win_rate_vs_untrained", "best_of_n_win_rate"}
    vs_zero = by["transfer_win_rate_vs_untrained"]
    assert math.isnan(vs_zero.value) and by["transfer_win_rate_vs_untrained_ties"].value == 1.0
    assert all(r.ci_unit == "user" and r.n_users == 4 for r in recs)
    assert shown and shown[0]["summary"] == "likes dogs"
    assert set(items) == {"transfer_win_rate", "transfer_win_rate_vs_untrained", "best_of_n_win_rate"}
    assert items["transfer_win_rate_vs_untrained"]["new-users"] == {"user_ids": [], "values": []}  # all ties


def test_win_rate_counts_decided_pairs_and_resamples_users():
    recs = win_rate_result("t", "plus", "transfer_win_rate", [1, 1, -1, 0, 1, 1], ["a", "a", "b", "b", "c", "c"])
    assert recs[0].value == 0.8 and recs[0].n == 5 and recs[0].n_users == 3
    assert recs[0].ci_low <= 0.8 <= recs[0].ci_high
    assert recs[1].metric == "transfer_win_rate_ties" and abs(recs[1].value - 1 / 6) < 1e-9


def test_win_rates_pool_over_seeds_with_a_user_level_ci():
    """Per-seed decided outcomes pool like accuracy: the mean of the per-seed rates, users redrawn within seeds."""
    seeds = {0: ([1, 1, -1, 0, 1, 1], list("aabbcc")), 1: ([-1, -1, 1, 1, 0, -1], list("ddeeff"))}
    per_seed = {s: win_rate_result("t", "plus", "transfer_win_rate", o, u, seed=s) for s, (o, u) in seeds.items()}
    per_seed_items = {s: {"transfer_win_rate": {"plus": {"new-users": win_rate_items(o, u)}}}
                      for s, (o, u) in seeds.items()}
    for s in seeds:
        vals = per_seed_items[s]["transfer_win_rate"]["plus"]["new-users"]["values"]
        assert abs(np.mean(vals) - per_seed[s][0].value) < 1e-12
    pooled = {r.metric: r for r in aggregate_seeds("t", per_seed, per_seed_items)}["transfer_win_rate"]
    assert abs(pooled.value - (0.8 + 0.4) / 2) < 1e-12 and pooled.seeds == [0, 1]
    assert pooled.ci_unit == "user" and pooled.n_users == 6 and pooled.ci_low < pooled.value < pooled.ci_high


def test_the_summary_goes_in_the_system_prompt_only_when_there_is_one():
    with_z = chat_messages("Which pet?", "Loves rabbits; wants short answers.")
    assert "Loves rabbits" in with_z[0]["content"] and with_z[1] == {"role": "user", "content": "Which pet?"}
    assert "summary" not in chat_messages("Which pet?", None)[0]["content"]
    assert chat_messages("Which pet?", "  ")[0] == chat_messages("Which pet?", None)[0]
