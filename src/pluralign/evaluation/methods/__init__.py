"""Personalisation methods compared by ``pluralign bench``: one module per method, listed in :mod:`.registry`.

Every method has ``name``, ``fit(train, seed, validation)``, ``score_pairs(examples) -> margins`` (> 0 means the
model predicts ``chosen``) and ``tokens_per_pair(examples)``; optionally ``extra_metrics(examples) -> {metric:
value}``. Tuning choices read ``validation`` (users carved out of training), never a test split. Only a method with
``use_truth(truth)`` (``oracle``) is handed the split's hidden ground truth; ``keyword`` is the non-learned floor.
"""

from pluralign.evaluation.methods.base import PersonalisationMethod
from pluralign.evaluation.methods.registry import METHODS, available_methods, make_method

__all__ = ["METHODS", "PersonalisationMethod", "available_methods", "make_method"]
