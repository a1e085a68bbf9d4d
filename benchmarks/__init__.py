"""Benchmarks and the outside judges: run from the repository root as ``python -m benchmarks.NAME`` (see
benchmarks/RESULTS.md); the tests import their measures."""
