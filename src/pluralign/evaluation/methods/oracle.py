"""``oracle``: the RM conditioned on the user's true persona text (simulated suites only): an upper reference.

The persona never travels in a user's context (:func:`pluralign.data.splits.hide_truth` removes it); the bench
hands the split's :class:`~pluralign.data.splits.GroundTruth` to this method alone, through :meth:`use_truth`.

As the ceiling it is, it trains on every labelled pair the training users left: their training targets and the pairs
in their contexts (it conditions on the persona, so a context pair is not in view when it is scored). On
full ``attributes`` (seed 0) that is 2,916 training targets plus 2,549 context pairs, the latter in the context
pool's wording of every meaning.
"""

from __future__ import annotations

from typing import Any

from pluralign.data.splits import Example, GroundTruth
from pluralign.evaluation.methods.base import ConditionedRMMethod


class OracleMethod(ConditionedRMMethod):
    name = "oracle"
    reads_truth = True
    trains_on_context_pairs = True

    def __init__(self, truth: GroundTruth | None = None, **kw: Any):
        super().__init__(**kw)
        self.truth = truth

    def use_truth(self, truth: GroundTruth | None) -> None:
        """The hidden side of the split (the bench calls this; nothing else reads it)."""
        self.truth = truth

    def conditioning(self, example: Example) -> str | None:
        persona = self.truth.persona_of(example.user_id) if self.truth is not None else None
        if not persona:
            raise ValueError(f"oracle: no ground-truth persona for user {example.user_id!r} (simulated suites "
                             "only; it comes from the split's truth table, never from the user's context)")
        return persona
