"""What a frozen encoder sees of a conversation: the request (the last user turn) and the response's opening and
closing, clipped so that a short encoder window keeps sign-offs and the actual question."""

from __future__ import annotations

from collections.abc import Sequence


def clip_words(text: str, head: int, tail: int) -> str:
    """The first ``head`` and last ``tail`` words of ``text``: closings (sign-offs) survive a short encoder window."""
    w = text.split()
    if len(w) <= head + tail:
        return text
    return " ".join(w[:head]) + " ... " + " ".join(w[-tail:]) if tail else " ".join(w[:head])


def last_user_turn(prompt: str) -> str:
    """The final human turn of an HH-style dialogue ("Human: ... Assistant: ..."), else the prompt itself."""
    i = prompt.rfind("Human:")
    return prompt[i + len("Human:"):].strip() if i >= 0 else prompt


def prompt_view(prompt: str) -> str:
    """What the encoder sees of a prompt: the last user turn, clipped (the request, not the whole history)."""
    return clip_words(last_user_turn(prompt), 40, 0)


def response_view(response: str) -> str:
    """What the encoder sees of a response: its opening and its closing."""
    return clip_words(response, 48, 16)


def check_aligned(prompts: Sequence[str], responses: Sequence[str], summaries: Sequence | None = None) -> None:
    """One response (and one summary, when given) per prompt, else a ValueError saying which lengths differ."""
    if len(prompts) != len(responses):
        raise ValueError(f"prompts ({len(prompts)}) and responses ({len(responses)}) differ in length")
    if summaries is not None and len(summaries) != len(prompts):
        raise ValueError(f"summaries ({len(summaries)}) and prompts ({len(prompts)}) differ in length")
