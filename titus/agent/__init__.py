"""The agent: runs tasks on one host (or, with the sim runtime, many simulated hosts)."""
