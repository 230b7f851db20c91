"""Reward combination, judges (rules, safety) and reward-hacking monitors."""
