"""Revisions of the store's schema, one module each (``<revision>_<slug>.py``)."""
