"""Fault injection for tests and benchmarks: a Docker engine that can be made unreachable
(:mod:`tests.faults.engine_proxy`) and AWS calls that fail on demand
(:mod:`tests.faults.aws`)."""
