"""Baselines the engine is measured against, run in the same process on the same data."""
