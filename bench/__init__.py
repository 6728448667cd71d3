"""Benchmarks: the engine grid, round latency and memory, with in-process baselines."""
