"""The PLUS reward and RM-side bookkeeping: repeated (pair, summary) items are scored once, in input order, and
``rm_summaries`` decides which summaries the RM trains on."""

from __future__ import annotations

import numpy as np
import torch
from conftest import make_users

from pluralign.data.schema import PreferencePair
from pluralign.training.plus_config import PlusConfig
from pluralign.training.plus_trainer import PlusRow, PlusTrainer, pair_margins, plus_rewards


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
        cfg = PlusConfig(epochs=1, rollout_batch_size=4, group_size=4, word_budget=10, train_rm=False,
                         warm_start_rm_epochs=0, rm_summaries=mode, seed=0)
        s = CpuSummarizer(CpuSummarizerConfig(word_budget=10, temperature=5.0), encoder=encoder, seed=0)
        trainer = PlusTrainer(cfg, rows, summarizer=s, rm=CountingScorer())
        got: list[list[str]] = []
        trainer._train_rm = lambda pairs, summ, passes, progress=None, got=got: got.append(list(summ)) or 0.0
        trainer.train()
        per_row = got[0][:: len(rows[0].pairs)]
        greedy = {r.user_id: z for r, z in zip(rows, s.summarize([r.context for r in rows]), strict=True)}
        seen[mode] = sum(z == greedy[r.user_id] for r, z in zip(trainer._batches(0)[0], per_row, strict=True))
    assert seen["greedy"] == len(rows)
    assert seen["sampled"] < len(rows)  # hot sampling rarely reproduces the greedy summary of every user
