"""``icl``: the user's raw context as the RM's conditioning text (the PLUS paper's ICL baseline).

The context is every labelled pair ("Prompt: … Preferred response: … Rejected response: …"), then past conversations,
then the self-description, rendered by :func:`pluralign.summarizers.base.render_context` with no per-field clipping,
so the only cut is the reward model's own truncation to its ``max_length`` (the front of the context goes first,
the most recent part is kept). That cut is counted: :meth:`InContextMethod.extra_metrics` reports
``truncated_share`` (pairs where any context token was cut) and ``tokens_cut_per_pair`` (context tokens cut,
both responses' inputs counted, like ``tokens_per_pair``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pluralign.data.splits import Example
from pluralign.evaluation.methods.base import ConditionedRMMethod
from pluralign.summarizers.base import render_context

_NO_LIMIT = 10**9


def render_icl_context(example: Example) -> str:
    return render_context(example.context, max_pairs=_NO_LIMIT, max_conversations=_NO_LIMIT, max_chars=_NO_LIMIT)


class InContextMethod(ConditionedRMMethod):
    name = "icl"

    def conditioning(self, example: Example) -> str | None:
        return render_icl_context(example)

    def extra_metrics(self, examples: Sequence[Example]) -> dict[str, float]:
        if not examples:
            return {}
        _, cut = self.input_stats(examples)
        return {**super().extra_metrics(examples), "truncated_share": float((cut > 0).mean()),
                "tokens_cut_per_pair": float(cut.mean())}
