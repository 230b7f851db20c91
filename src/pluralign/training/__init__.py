"""Trainers, each beside its config dataclass: reward model, P[Love], PLUS co-adaptation, policy optimisation."""
