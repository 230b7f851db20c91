"""The PLUS reward and RM-side bookkeeping: repeated (pair, summary) items are scored once, in input order, and
``rm_summaries`` decides which summaries the RM trains on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pet_users import make_users
from pluralign.data.schema import PreferencePair
from pluralign.training.plus_config import PlusConfig
from pluralign.training.plus_trainer import PlusRow, PlusTrainer, pair_margins, plus_rewards

pytestmark = pytest.mark.usefixtures("one_thread")


class CountingScorer:
    """r(x, y | z) = (# "cat" in z) * (+1 if y mentions cats else -1) + len(y) / 100; counts scored items."""

    def __init__(self) -> None:
        self.items = 0
        self.dtypes: list[str] = []

    def score(self, prompts, responses, summaries=None, dtype="fp32"):
        self.items += len(prompts)
        self.dtypes.append(dtype)
        summaries = summaries or [""] * len(prompts)
        return np.array([(z or "").count("cat") * (1.0 if "cat" in y else -1.0) + len(y) / 100
                         for y, z in zip(responses, summaries, strict=True)], dtype=np.float32)


def _pairs() -> list[PreferencePair]:
    return [PreferencePair(pair_id="a", prompt="Pet?", chosen="A cat.", rejected="A dog, a big one."),
            PreferencePair(pair_id="b", prompt="Which?", chosen="Dogs.", rejected="cats, clearly")]


def test_pair_margins_scores_each_distinct_item_once_in_input_order():
    a, b = _pairs()
    pairs = [a, b, a, a, b]
    summ = ["likes cat", "likes cat", "likes cat", "", "likes cat"]
    rm = CountingScorer()
    got = pair_margins(rm, pairs, summ, dtype="bf16")
    assert rm.items == 2 * 3  # (a, cat), (b, cat), (a, "") : chosen + rejected each
    assert set(rm.dtypes) == {"bf16"}
    fresh = CountingScorer()
    want = np.array([pair_margins(fresh, [p], [z])[0] for p, z in zip(pairs, summ, strict=True)])
    np.testing.assert_allclose(got, want)
    assert got[0] > 0 and got[3] < got[0]  # the "cat" summary moves the margin, the empty one does not


def test_plus_rewards_average_log_sigmoid_per_sample():
    a, b = _pairs()
    rows = [PlusRow("u", make_users(1, 2)[0], [a, b])]
    summaries = ["likes cat", "likes cat", "", "likes cat cat"]  # one row, group of 4, with a repeat
    rm = CountingScorer()
    r = plus_rewards(rm, rows, summaries, group_size=4)
    assert rm.items == 2 * 2 * 3  # two pairs x three distinct summaries
    m = {z: pair_margins(CountingScorer(), [a, b], [z, z]) for z in set(summaries)}
    want = [float(torch.nn.functional.logsigmoid(torch.tensor(m[z])).mean()) for z in summaries]
    np.testing.assert_allclose(r.numpy(), want, rtol=1e-5)
    assert r[0] == r[1] and len({float(x) for x in r}) == 3


def test_rm_trains_on_greedy_or_sampled_summaries(encoder):
    from pluralign.summarizers.cpu import CpuSummarizer, CpuSummarizerConfig

    users = make_users(4, 6, seed=3)
    rows = [PlusRow(u.user_id, u.model_copy(update={"pairs": u.pairs[:3]}), u.pairs[3:]) for u in users]
    seen = {}
    for mode in ("sampled", "greedy"):
        cfg = PlusConfig(backend="cpu", kl_coef=0.0, reward_pairs=1, epochs=1, rollout_batch_size=4, group_size=4,
                         word_budget=10, train_rm=False,
                         warm_start_rm_epochs=0, rm_summaries=mode, seed=0)
        s = CpuSummarizer(CpuSummarizerConfig(word_budget=10, temperature=5.0), encoder=encoder, seed=0)
        trainer = PlusTrainer(cfg, rows, summarizer=s, rm=CountingScorer())
        got: list[list[str]] = []
        trainer._train_rm = lambda pairs, summ, passes, progress=None, got=got: got.append(list(summ)) or 0.0
        trainer.train()
        per_row = got[0][:: len(rows[0].pairs) - 1]  # one pair of each context went to the reward
        greedy = {r.user_id: z for r, z in zip(rows, s.summarize([r.context for r in rows]), strict=True)}
        seen[mode] = sum(z == greedy[r.user_id] for r, z in zip(trainer._batches(0)[0], per_row, strict=True))
    assert seen["greedy"] == len(rows)
    assert seen["sampled"] < len(rows)  # hot sampling rarely reproduces the greedy summary of every user


def test_reward_pairs_are_never_the_pairs_the_rm_trains_on_in_the_same_step(monkeypatch, encoder):
    """Each step draws a context's reward pairs afresh; the RM trains on the others, and across steps every pair
    serves both roles."""
    from pluralign.summarizers.cpu import CpuSummarizer, CpuSummarizerConfig
    from pluralign.training import plus_trainer

    users = make_users(4, 7, seed=4)
    rows = [PlusRow(u.user_id, u.model_copy(update={"pairs": u.pairs[:3]}), u.pairs[3:]) for u in users]
    cfg = PlusConfig(backend="cpu", kl_coef=0.0, reward_pairs=2, epochs=3, rollout_batch_size=4, group_size=2,
                     word_budget=10, train_rm=False, warm_start_rm_epochs=0, seed=0)
    s = CpuSummarizer(CpuSummarizerConfig(word_budget=10), encoder=encoder, seed=0)
    trainer = PlusTrainer(cfg, rows, summarizer=s, rm=CountingScorer())
    rewarded: list[set[str]] = []
    trained: list[set[str]] = []
    real = plus_trainer.plus_rewards

    def spy_rewards(rm, reward_rows, *a, **kw):
        rewarded.append({p.pair_id for r in reward_rows for p in r.pairs})
        assert all(len(r.pairs) == 2 for r in reward_rows)
        return real(rm, reward_rows, *a, **kw)

    monkeypatch.setattr(plus_trainer, "plus_rewards", spy_rewards)
    trainer._train_rm = lambda pairs, summ, passes, progress=None: trained.append({p.pair_id for p in pairs}) or 0.0
    trainer.train()
    assert len(rewarded) == len(trained) == 3
    for r, t in zip(rewarded, trained, strict=True):
        assert r and t and not r & t
        assert len(r) + len(t) == 4 * 4
    assert len(set().union(*rewarded) & set().union(*trained)) > 0  # roles change from step to step
    assert len({frozenset(r) for r in rewarded}) > 1


def test_split_pairs_keeps_one_pair_for_the_rm_and_gives_a_lone_pair_to_the_reward():
    from pluralign.training.plus_trainer import split_pairs

    a, b = _pairs()
    user = make_users(1, 2)[0]
    reward, train = split_pairs(PlusRow("u", user, [a, b]), 5, seed=0, step=0)
    assert len(reward.pairs) == 1 and len(train) == 1 and {reward.pairs[0].pair_id, train[0].pair_id} == {"a", "b"}
    reward, train = split_pairs(PlusRow("u", user, [a]), 2, seed=0, step=0)
    assert [p.pair_id for p in reward.pairs] == ["a"] and train == []
