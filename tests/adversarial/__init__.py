"""Adversarial probes: faults and hostile input, each reproduced as a test (issue 13)."""
