"""The CPU statement-selection summarizer: readable, within budget, exact log-probs, and RL raises its reward."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from pluralign.data.schema import Conversation, Message, PreferencePair, UserRecord
from pluralign.summarizers.cpu import (
    LONGER,
    SHORTER,
    WITH_EMOJIS,
    CpuSummarizer,
    CpuSummarizerConfig,
    SelectionRollout,
    extract_statements,
    style_contrasts,
)
from pluralign.training.group_rl import SelectionGroupUpdater, group_advantages

pytestmark = pytest.mark.usefixtures("one_thread")


def test_statements_are_readable_and_shared_filler_is_dropped(pet_users):
    u = pet_users[0]  # a dog lover
    sts = extract_statements(u)
    texts = [s.text for s in sts]
    assert any(t.startswith("Prefers: ") and "og" in t for t in texts)
    assert any(t.startswith("Dislikes: ") for t in texts)
    bodies = {s.body for s in sts if s.kind == "prefers"} & {s.body for s in sts if s.kind == "dislikes"}
    assert not bodies  # filler that sits on both sides says nothing about the user
    other = UserRecord(user_id="x", profile="I am a nurse. I work nights.",
                       conversations=[Conversation(conversation_id="c", messages=[
                           Message(role="user", content="How do I sleep during the day?"),
                           Message(role="assistant", content="Use blackout curtains.")])])
    kinds = {s.kind for s in extract_statements(other)}
    assert kinds == {"asked", "says"}


def test_style_statements_say_which_form_the_user_chose(encoder):
    base = "Cats are quiet and clean."
    long = base + " They also sleep for most of the day, which suits anyone who works long hours away from home."
    assert style_contrasts(long, base) == [LONGER]
    assert style_contrasts(base, long) == [SHORTER]
    assert style_contrasts("Cats are great \U0001f60a\U0001f431", "Cats are great") == [WITH_EMOJIS]
    assert style_contrasts("Cats are quiet.", "Dogs are loud.") == []  # same form: content, not style
    pairs = [PreferencePair(pair_id=f"p{i}", prompt="Tell me about cats", chosen=base, rejected=long)
             for i in range(3)]
    user = UserRecord(user_id="u", pairs=pairs)
    styled = [s for s in extract_statements(user) if s.body == SHORTER]
    assert len(styled) == 1 and styled[0].count == 3 and styled[0].text == "Prefers: shorter, more concise answers."
    assert not any(s.body == SHORTER for s in extract_statements(user, style=False))
    plain = CpuSummarizer(CpuSummarizerConfig(style_statements=False), encoder=encoder)
    assert "concise" in CpuSummarizer(encoder=encoder).summarize([user])[0]
    assert "concise" not in plain.summarize([user])[0]


def test_summaries_respect_word_budget_and_sampling_varies(pet_users, encoder):
    s = CpuSummarizer(CpuSummarizerConfig(word_budget=20), encoder=encoder, seed=1)
    greedy = s.summarize(pet_users[:4])
    assert all(0 < len(z.split()) <= 20 for z in greedy)
    assert greedy == s.summarize(pet_users[:4])  # deterministic
    samples = {s.summarize(pet_users[:1], sample=True)[0] for _ in range(8)}
    assert len(samples) > 1


def test_plackett_luce_log_probs_sum_to_one():
    logits = torch.tensor([0.3, -1.0, 2.0])
    total = sum(math.exp(float(CpuSummarizer._sequence_logp(logits, list(p))))
                for p in itertools.permutations(range(3)))
    assert abs(total - 1.0) < 1e-5


def test_group_advantages():
    r = torch.tensor([1.0, 0.0, 2.0, 2.0])
    adv = group_advantages(r, 2)
    assert torch.allclose(adv[:2], torch.tensor([0.7071, -0.7071]), atol=1e-3) and torch.allclose(adv[2:], torch.zeros(2))
    assert torch.allclose(group_advantages(r, 2, mode="rloo"), torch.tensor([1.0, -1.0, 0.0, 0.0]))


def test_rl_raises_reward_of_mentioning_cats(pet_users, encoder, tmp_path):
    """A fixed reward (share of summary statements about cats): the policy learns to put them in."""
    s = CpuSummarizer(CpuSummarizerConfig(word_budget=12), encoder=encoder, seed=0)
    up = SelectionGroupUpdater(s, lr=0.05)

    def reward(ro: SelectionRollout) -> torch.Tensor:
        return torch.tensor([z.lower().count("cat") + z.lower().count("kitten") for z in ro.summaries], dtype=torch.float)

    torch.manual_seed(0)
    curve = []
    for _ in range(25):
        ro = s.rollout(pet_users, group_size=4)
        r = reward(ro)
        curve.append(float(r.mean()))
        up.step(ro, r)
    assert sum(curve[-5:]) / 5 > sum(curve[:5]) / 5 + 0.3, curve
    s.save_pretrained(tmp_path / "s")
    again = CpuSummarizer.from_pretrained(tmp_path / "s", encoder=encoder)
    assert again.summarize(pet_users[:3]) == s.summarize(pet_users[:3]) and again.version == s.version
