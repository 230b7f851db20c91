"""Simulated users with known ground truth: personas, pairwise choices, love reactions, adversaries, suites."""
