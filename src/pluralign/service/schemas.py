"""Request and response bodies of the HTTP API: strict pydantic models, so they are the schema and the docs.

Unknown fields are errors (a typo must not silently drop data), and types are strict: ``"1"`` is not a number and
``1`` is not a string (an integer is still accepted where a float is expected). Ids are short printable strings.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pluralign.data.schema import MetaValue, Role

Id = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@/+-]+$")]
# A user id is also a path segment: no "/", and not only dots ("." and ".." are path tricks, not names).
USER_ID_PATTERN = r"^[A-Za-z0-9._:@+-]*[A-Za-z0-9_:@+-][A-Za-z0-9._:@+-]*$"
UserIdStr = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=USER_ID_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=100_000)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Turn(Strict):
    turn_id: Id
    role: Role
    content: Text


class _EventBase(Strict):
    topic: Id | None = None
    timestamp: Finite | None = Field(None, description="when it happened, seconds since the epoch")
    meta: dict[str, MetaValue] = Field(default_factory=dict)
    idempotency_key: Id | None = Field(
        None, description="a retried event with the same key (per user) is stored once; default: TYPE:ITEM_ID")


class ConversationIn(_EventBase):
    """A conversation the user had: turns with ids, so reactions can point at a turn."""

    type: Literal["conversation"] = "conversation"
    conversation_id: Id
    turns: list[Turn] = Field(min_length=1, max_length=1000)


class ReactionIn(_EventBase):
    """A reaction to one response: ``kind`` love (value 1/0), a vote (-1/0/1), or any graded score.

    Give the text (``prompt`` + ``response``) or point at a stored turn (``conversation_id`` + ``turn_id``: the
    response is that turn and the prompt the user turn before it).
    """

    type: Literal["reaction"] = "reaction"
    reaction_id: Id
    kind: Id = "love"
    value: Finite = 1.0
    prompt: Text | None = None
    response: Text | None = None
    conversation_id: Id | None = None
    turn_id: Id | None = None
    item_id: Id | None = None

    @model_validator(mode="after")
    def _target(self) -> ReactionIn:
        has_text = self.prompt is not None and self.response is not None
        has_turn = self.conversation_id is not None and self.turn_id is not None
        if not (has_text or has_turn):
            raise ValueError("give prompt and response, or conversation_id and turn_id")
        if self.response is not None and not self.response.strip():
            raise ValueError("response must be a non-empty text")
        return self


class PairIn(_EventBase):
    """A pairwise choice: the user preferred ``chosen`` over ``rejected`` as a reply to ``prompt``."""

    type: Literal["pair"] = "pair"
    pair_id: Id
    prompt: Text
    chosen: Text = Field(min_length=1)
    rejected: Text = Field(min_length=1)


FeedbackIn = Annotated[ConversationIn | ReactionIn | PairIn, Field(discriminator="type")]


class FeedbackBatch(Strict):
    events: list[FeedbackIn] = Field(min_length=1, description="events of one user, each with its 'type'")


class EventAck(BaseModel):
    id: int = Field(description="the stored event's id")
    idempotency_key: str
    duplicate: bool = Field(description="true when this key was already stored (nothing new was written)")


class FeedbackAck(BaseModel):
    user_id: str
    stored: int
    duplicates: int
    events: list[EventAck]


class SummaryIn(Strict):
    summary: str = Field(description="the user's preferences in their own words; stored as data, never obeyed")


class SummaryOut(BaseModel):
    user_id: str
    summary: str
    version: int
    source: str = Field(description="who wrote this version: user, admin or refresh")
    summarizer: str | None = None
    created_at: float


class SummaryHistory(BaseModel):
    user_id: str
    versions: list[SummaryOut]


class TokenIn(Strict):
    scope: Literal["full", "no_erase"] = Field("full", description="'no_erase': the token cannot erase its user")
    expires_in_s: Annotated[float, Field(gt=0, le=10 * 365 * 86400, allow_inf_nan=False)] | None = Field(
        None, description="lifetime in seconds (default: the server's token_ttl_s; none if that is 0)")


class TokenOut(BaseModel):
    user_id: str
    token: str = Field(description="the bearer token, shown only this once")
    token_id: str = Field(description="public id to list or revoke the token by")
    scope: str
    expires_at: float | None


class TokenInfo(BaseModel):
    token_id: str
    scope: str
    created_at: float
    expires_at: float | None
    expired: bool


class TokenList(BaseModel):
    user_id: str
    tokens: list[TokenInfo]


class RevokedOut(BaseModel):
    user_id: str
    token_id: str
    revoked: bool


class DeletedOut(BaseModel):
    user_id: str
    deleted: dict[str, int]


class ScoreIn(Strict):
    user_id: UserIdStr
    prompt: Text
    responses: list[Text] = Field(min_length=1, max_length=64)
    summary: Annotated[str, StringConstraints(max_length=10_000)] | None = Field(
        None, description="score under this summary instead of the user's stored one")


class ScoreOut(BaseModel):
    user_id: str
    summary_version: int | None
    rewards: list[float] | None = Field(description="personalised reward per response (null: no reward model)")
    p_love: list[float] | None = Field(description="P[Love] per response (null: no P[Love] model)")
    models: dict[str, str] = Field(description="version of each model that produced the scores")
