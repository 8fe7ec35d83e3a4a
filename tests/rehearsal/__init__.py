"""Helpers of the CPU rehearsal of the paper study (config/paper.yaml on small local mirrors)."""
