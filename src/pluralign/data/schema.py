"""The one data model for user feedback.

A feedback file is JSONL with one :class:`UserRecord` per line: who the user is and everything they left behind
(labelled preference pairs, unlabelled conversations, reactions), plus optional evaluation targets. Every other
format is converted into this one (``pluralign.data.converters``) and every trainer reads it.

Simulated records carry their ground truth (``p_chosen``, ``p_true``, ``persona``) so oracle metrics are computable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1

Role = Literal["system", "user", "assistant"]
MetaValue = str | int | float | bool | None


class _Strict(BaseModel):
    """Unknown fields are errors: a typo in a field name must not silently drop data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, validate_assignment=False)


class Message(_Strict):
    role: Role
    content: str


class PreferencePair(_Strict):
    """The user preferred ``chosen`` over ``rejected`` as a reply to ``prompt``."""

    pair_id: str = Field(min_length=1)
    prompt: str
    chosen: str
    rejected: str
    topic: str | None = Field(None, description="prompt / conversation group id; the unit held out by `new-topics`")
    timestamp: float | None = Field(None, description="seconds since the epoch; used by the `chrono` split")
    p_chosen: float | None = Field(None, ge=0.0, le=1.0, description="true P(chosen > rejected), simulated data only")
    meta: dict[str, MetaValue] = Field(default_factory=dict)

    @field_validator("chosen", "rejected")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a non-empty response text")
        return v


class Conversation(_Strict):
    """An unlabelled past conversation: what the user asked about and how they phrased it."""

    conversation_id: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    topic: str | None = None
    timestamp: float | None = None
    meta: dict[str, MetaValue] = Field(default_factory=dict)


class Reaction(_Strict):
    """A reaction of the user to one response (a love, a thumbs-up, a Polis vote...).

    ``value`` is 1.0/0.0 for binary reactions (love / no love), -1/0/1 for votes, or any graded score.
    """

    reaction_id: str = Field(min_length=1)
    prompt: str
    response: str
    kind: str = Field(min_length=1, description="e.g. love, +1, -1, red_flag, vote")
    value: float
    item_id: str | None = Field(None, description="id of the response item (e.g. Polis comment id)")
    topic: str | None = None
    timestamp: float | None = None
    p_true: float | None = Field(None, ge=0.0, le=1.0, description="true probability of the reaction (simulated)")
    meta: dict[str, MetaValue] = Field(default_factory=dict)


class UserRecord(_Strict):
    """One user and their history. One JSON object per line of a feedback file."""

    user_id: str = Field(min_length=1)
    profile: str | None = Field(None, description="free-text self-description written by the user")
    demographics: dict[str, str] = Field(default_factory=dict)
    group: str | None = Field(None, description="a real opinion-group label (e.g. Polis group-id)")
    persona: str | None = Field(None, description="ground-truth persona text (simulated users only)")
    source: str | None = Field(None, description="where the record came from (converter / simulator name)")
    pairs: list[PreferencePair] = Field(default_factory=list)
    conversations: list[Conversation] = Field(default_factory=list)
    reactions: list[Reaction] = Field(default_factory=list)
    targets: list[PreferencePair] = Field(
        default_factory=list, description="held-out evaluation pairs (never shown to a model as context)"
    )
    meta: dict[str, MetaValue] = Field(default_factory=dict)

    def n_items(self) -> int:
        return len(self.pairs) + len(self.conversations) + len(self.reactions) + len(self.targets)
