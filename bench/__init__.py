"""Benchmarks: run as modules (`python -m bench.projections`), never as timed tests."""
