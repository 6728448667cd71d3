"""Which environment variables of a job are secret, and their redaction in what is shown.

A job's ``container.env`` reaches its container unchanged (the launch order is built from the
stored descriptor), but every view of the job — the REST API, the observe stream, the CLI —
shows the value of a secret variable as :data:`REDACTED`. A variable is secret when

- its name matches the master's ``secret_env_pattern`` (a regular expression searched in the
  name; by default any name containing PASSWORD, SECRET, TOKEN or KEY, in any case), or
- the job names it in ``container.attributes["titus.secretEnv"]`` (comma separated names;
  Titus keeps unknown container attributes, so a Titus client can send it as it is).

Only values are hidden: names stay visible, so a user can see which variables a job has.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Annotated, Any, Optional

from pydantic import AfterValidator

DEFAULT_SECRET_ENV_PATTERN = r"(?i)(PASSWORD|SECRET|TOKEN|KEY)"
SECRET_ENV_ATTRIBUTE = "titus.secretEnv"
REDACTED = "<redacted>"


@functools.lru_cache(maxsize=16)
def _matcher(pattern: str) -> Optional[re.Pattern]:
    # compiled once per pattern: views are rendered far more often than settings change
    return re.compile(pattern) if pattern else None


def check_pattern(pattern: str) -> str:
    """``pattern`` if it is a valid regular expression (a bad one fails at startup, not when
    the first job is shown)."""
    try:
        _matcher(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


# The type of the ``secret_env_pattern`` setting: "" means no name is secret by its name alone.
SecretEnvPattern = Annotated[str, AfterValidator(check_pattern)]


def listed_names(attributes: Any) -> set[str]:
    """The names a job lists in its container attribute ``titus.secretEnv``."""
    if not isinstance(attributes, Mapping):
        return set()
    listed = attributes.get(SECRET_ENV_ATTRIBUTE)
    if not isinstance(listed, str):
        return set()
    return {name.strip() for name in listed.split(",") if name.strip()}


def secret_names(env: Mapping[str, Any], attributes: Any, pattern: str) -> set[str]:
    """The names in ``env`` whose values are secret, by ``pattern`` or by the job's list."""
    matcher = _matcher(pattern)
    listed = listed_names(attributes)
    return {name for name in env
            if name in listed or (matcher is not None and matcher.search(name))}


def redact_descriptor(wire: Any, pattern: str) -> Any:
    """``wire`` (a job descriptor as JSON data) with every secret env value replaced by
    :data:`REDACTED`. The input is never changed: the objects on the path to ``env`` are
    copied; anything else is shared. Data of another shape is returned as it is."""
    container = wire.get("container") if isinstance(wire, dict) else None
    env = container.get("env") if isinstance(container, dict) else None
    if not isinstance(env, dict) or not env:
        return wire
    hidden = secret_names(env, container.get("attributes"), pattern)
    if not hidden:
        return wire
    env = {name: REDACTED if name in hidden else value for name, value in env.items()}
    return {**wire, "container": {**container, "env": env}}


def redact_job_view(job: Any, pattern: str) -> Any:
    """A job view (``{"id", "jobDescriptor", ...}``) with its secret env values redacted."""
    if not isinstance(job, dict) or "jobDescriptor" not in job:
        return job
    return {**job, "jobDescriptor": redact_descriptor(job["jobDescriptor"], pattern)}
