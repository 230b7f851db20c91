"""Metrics, benchmark suites, the release gate, simulated A/B tests and reports."""
