# cython: language_level=3
"""Python-object <-> array boundary of the scheduling engine."""
