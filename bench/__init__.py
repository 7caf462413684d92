"""Benchmarks, and the tutorial recipe they measure Punctual against."""
