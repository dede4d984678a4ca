"""Benchmarks: printed tables, each with a naive baseline measured in the same run."""
