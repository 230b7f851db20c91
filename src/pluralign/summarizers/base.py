"""The summarizer contract shared by every backend, and the PLUS summarizer prompt.

A summarizer turns a user's visible history (a :class:`UserRecord` used as context) into a short text summary that a
:class:`~pluralign.models.reward_model.SummaryConditionedRM` reads. The prompt ends with "Start your response with
##Summary" and the summary is the text after the last "##Summary", as in the PLUS authors' data format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pluralign.data.schema import UserRecord

SUMMARY_MARKER = "##Summary"

INSTRUCTION = (
    "Above is the history of one user. Write a short summary (under {words} words) of what this user prefers and "
    "dislikes in responses, so that another assistant can personalise its answers for them. "
    "Start your response with " + SUMMARY_MARKER
)


@runtime_checkable
class Summarizer(Protocol):
    """What the trainer, the bench methods and the CLI need from a summarizer."""

    version: str

    def summarize(self, contexts: Sequence[UserRecord], *, sample: bool = False) -> list[str]:
        """One summary per context; ``sample=False`` is the deterministic (greedy) summary used at inference."""
        ...


def _clip(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 3].rstrip() + "..."


def render_context(user: UserRecord, *, max_pairs: int = 8, max_conversations: int = 8,
                   max_chars: int = 400) -> str:
    """The user's own history as plain text: labelled pairs, then past conversations, then their self-description."""
    parts: list[str] = []
    for i, p in enumerate(user.pairs[:max_pairs], start=1):
        parts.append(f"### Comparison {i}\nPrompt: {_clip(p.prompt, max_chars)}\n"
                     f"Preferred response: {_clip(p.chosen, max_chars)}\n"
                     f"Rejected response: {_clip(p.rejected, max_chars)}")
    for i, c in enumerate(user.conversations[:max_conversations], start=1):
        turns = "\n".join(f"{m.role}: {_clip(m.content, max_chars)}" for m in c.messages)
        parts.append(f"### Past conversation {i}\n{turns}")
    if user.profile:
        parts.append(f"### The user describes themselves\n{_clip(user.profile, 2 * max_chars)}")
    if not parts:
        parts.append("### (this user has no history yet)")
    return "\n\n".join(parts)


def build_summarizer_prompt(user: UserRecord, *, words: int = 50, max_pairs: int = 8) -> str:
    """The summarizer's input for one user: their rendered history, then the instruction ending with the marker."""
    return render_context(user, max_pairs=max_pairs) + "\n\n" + INSTRUCTION.format(words=words)


def extract_summary(text: str) -> str:
    """The text after the last "##Summary" (the whole text when the marker is missing), stripped of a leading ':'."""
    idx = text.rfind(SUMMARY_MARKER)
    body = text[idx + len(SUMMARY_MARKER):] if idx >= 0 else text
    return body.strip().lstrip(":").strip()

