"""``group``: the RM conditioned on a real opinion-group label (e.g. the Polis ``group-id``) and nothing else."""

from __future__ import annotations

from pluralign.data.splits import Example
from pluralign.evaluation.methods.base import ConditionedRMMethod


def group_text(group: str | None) -> str | None:
    return f"I belong to opinion group {group}" if group not in (None, "") else None


class GroupLabelMethod(ConditionedRMMethod):
    """Users without a group label get no conditioning (the model falls back to its population reward)."""

    name = "group"

    def conditioning(self, example: Example) -> str | None:
        return group_text(example.context.group)
