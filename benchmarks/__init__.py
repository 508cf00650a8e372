"""Benchmarks: `python -m benchmarks.googlenet --device cpu|gpu` (see README)."""
