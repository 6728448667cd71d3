"""Behaviour, property and differential tests of the scheduling API (docs/semantics.md)."""
