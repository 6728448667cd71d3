"""Sample Titus v3 job files, used by ``titus local --sample`` and the README.

Each file is a job descriptor exactly as Titus's REST v3 API takes it (JSON or YAML). The
``TITUS_SIM_*`` variables drive the ``sim`` runtime: how long a task runs and its exit code.
"""
from __future__ import annotations

from importlib import resources

import yaml


def sample_files() -> list[str]:
    """Names of the bundled sample job files, sorted."""
    return sorted(entry.name for entry in resources.files(__package__).iterdir()
                  if entry.name.endswith((".json", ".yaml", ".yml")))


def load_sample(name: str) -> dict:
    """One sample job descriptor, parsed (YAML is a superset of JSON)."""
    return yaml.safe_load(resources.files(__package__).joinpath(name).read_text("utf-8"))


def load_samples() -> dict[str, dict]:
    """Every sample job descriptor by file name."""
    return {name: load_sample(name) for name in sample_files()}
