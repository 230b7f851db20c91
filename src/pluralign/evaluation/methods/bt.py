"""``bt``: the Bradley–Terry reward model with no user information (everyone is assumed to want the same thing)."""

from __future__ import annotations

from pluralign.evaluation.methods.base import ConditionedRMMethod


class BradleyTerryMethod(ConditionedRMMethod):
    name = "bt"
