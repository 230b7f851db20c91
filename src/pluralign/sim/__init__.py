"""Simulated users with known ground truth: personas, pairwise choices, love reactions, adversaries, suites.

- ``features``: transparent response features and the ground-truth scorers ``helpfulness``, ``safety``,
  ``has_signoff``, ``emoji_count`` and the use-case ``segment`` of a prompt.
- ``personas``: :class:`Persona` (ground-truth text + linear utility over named features), :func:`make_persona`.
- ``users``: :class:`SimulatedUser` (``p_prefer``, ``choose``, ``p_love``, ``react``; kinds normal / random /
  inverter / spammer), intercept and temperature calibration.
- ``responses``: real responses from the shared data, pet templates, rule-based variants.
- ``suites``: :func:`build_suite` for ``pets``, ``pets-ood``, ``hh-users``, ``contexts``.
- ``reactions``: :func:`simulate_reaction_log`, :func:`reaction_population`, :func:`react`, :func:`ab_test`,
  :func:`signoff_ab`; ``config``: :class:`ReactionLogConfig` (``pluralign simulate reactions --config``).
"""

from pluralign.sim.config import ReactionLogConfig
from pluralign.sim.features import (
    SEGMENTS,
    emoji_count,
    has_signoff,
    helpfulness,
    response_features,
    safety,
    segment,
)
from pluralign.sim.personas import Persona, make_persona
from pluralign.sim.reactions import (
    ABOutcome,
    ReactionBatch,
    ab_test,
    react,
    reaction_population,
    signoff_ab,
    simulate_reaction_log,
)
from pluralign.sim.suite import Suite, bayes_accuracy, population_accuracy
from pluralign.sim.suites import SUITES, build_suite
from pluralign.sim.users import KINDS, SimulatedUser, calibrate_intercept, calibrate_temperature

__all__ = [
    "KINDS", "SEGMENTS", "SUITES", "ABOutcome", "Persona", "ReactionBatch", "ReactionLogConfig", "SimulatedUser",
    "Suite", "ab_test",
    "bayes_accuracy", "build_suite", "calibrate_intercept", "calibrate_temperature", "emoji_count", "has_signoff",
    "helpfulness", "make_persona", "population_accuracy", "react", "reaction_population", "response_features",
    "safety", "segment", "signoff_ab", "simulate_reaction_log",
]
