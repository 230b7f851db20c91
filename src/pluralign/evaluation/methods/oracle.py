"""``oracle``: the RM conditioned on the user's true persona text (simulated suites only): an upper reference."""

from __future__ import annotations

from pluralign.data.splits import Example
from pluralign.evaluation.methods.base import ConditionedRMMethod


class OracleMethod(ConditionedRMMethod):
    name = "oracle"

    def conditioning(self, example: Example) -> str | None:
        if not example.context.persona:
            raise ValueError(f"oracle: user {example.user_id!r} has no ground-truth persona (simulated suites only)")
        return example.context.persona
