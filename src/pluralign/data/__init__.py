"""Data: the feedback schema, JSONL / HF datasets IO, validation, converters and splits."""

from pluralign.data.schema import Conversation, Message, PreferencePair, Reaction, UserRecord

__all__ = ["Conversation", "Message", "PreferencePair", "Reaction", "UserRecord"]
