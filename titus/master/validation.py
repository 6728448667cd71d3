"""Checking a submitted job descriptor against configurable bounds.

``parse_job(data, limits)`` returns a :class:`JobDescriptor` or raises :class:`SpecError`
carrying *every* problem found (not just the first), each with the JSON path of the field
(``container.resources.cpu``) and a message. User text appears in errors only as data (the
``value`` of a problem, or quoted with ``json.dumps``), never as a template.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from titus.boundary import (InputLimits, Problem, SpecError, check_name, check_value, plain_text,
                            safe_value)

from titus.master.budget import check_budget, default_budget
from titus.master.model import CapacityGroupSpec, CapacityUpdate, JobDescriptor
from titus.master.model_constraints import unknown_names


@dataclass
class ValidationLimits:
    """Bounds a job must respect. Every one is a setting of the master (``TITUS_MAX_*``)."""

    max_cpu: float = 64.0
    max_memory_mb: int = 1_048_576
    max_disk_mb: int = 2_097_152
    max_network_mbps: int = 100_000
    max_gpu: int = 16
    max_batch_size: int = 100_000
    # a gang job starts in one scheduling round, so it may not outgrow one (the master lowers
    # this to its ``max_batch``, MasterSettings.job_limits)
    max_gang_size: int = 10_000
    max_service_capacity: int = 100_000
    max_env_bytes: int = 32_768
    max_retries: int = 4_294_967_295  # uint32, as Titus (clients send it for "unlimited")
    max_runtime_limit_sec: int = 30 * 24 * 3600
    max_attribute_bytes: int = 65_536


def _path(loc: tuple) -> str:
    """A JSON path as the boundary writes it: ``hosts[1].ports[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(body)"


def _safe(value: Any) -> Any:
    # Keep a value as JSON data; anything odd becomes its repr (still data, never evaluated).
    return safe_value(value)


_FIELD_FIRST = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\[\]]*): ")


def problems_of_validation(exc: ValidationError) -> list[Problem]:
    """pydantic's errors as problems naming each field (the input echoed only as data).

    A check of the whole object names its field first (``hosts: ...``)."""
    problems = []
    for e in exc.errors(include_url=False):
        message = e["msg"].removeprefix("Value error, ")
        if e["loc"]:
            value = e.get("input") if e.get("type") != "json_invalid" else None
            problems.append(Problem(_path(e["loc"]), message, value))
            continue
        match = _FIELD_FIRST.match(message)
        problems.append(Problem(match.group(1) if match else "(body)",
                                message[match.end():] if match else message))
    return problems



def parse_model(model: type[BaseModel], data: Any, what: str,
                inputs: InputLimits | None = None) -> Any:
    """``model.model_validate(data)``, with errors as a :class:`SpecError`.

    ``data`` is first held to the input bounds (:func:`titus.boundary.check_value`): a body
    decoded by :func:`titus.boundary.decode_json` passes them already, a Python caller's dict
    is checked here."""
    if not isinstance(data, dict):
        raise SpecError([Problem("(body)", "must be a JSON object")], what)
    check_value(data, inputs, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_of_validation(exc), what) from None


def parse_job(data: Any, limits: ValidationLimits | None = None,
              inputs: InputLimits | None = None) -> JobDescriptor:
    """Validate a job descriptor: input bounds, shape, then every bound; all problems reported.

    A job without a ``disruptionBudget`` gets its type's default (``titus.master.budget``),
    stored and echoed back as Titus does.

    Raises :class:`SpecError` (HTTP 400) naming each bad field."""
    limits = limits or ValidationLimits()
    inputs = inputs or InputLimits()
    job = parse_model(JobDescriptor, data, "job descriptor", inputs)
    problems = check_job(job, limits, inputs)
    if problems:
        raise SpecError(problems)
    if job.disruptionBudget is None:
        job.disruptionBudget = default_budget(job.is_batch)
    return job


def _bound(problems, path, value, low, high):
    if value is None:
        return
    if not (low <= value <= high):  # also false for NaN
        problems.append(Problem(path, f"must be between {low} and {high}", _safe(value)))


def check_job(job: JobDescriptor, limits: ValidationLimits,
              inputs: InputLimits | None = None) -> list[Problem]:
    """Every problem with an already well-shaped descriptor."""
    inputs = inputs or InputLimits()
    problems: list[Problem] = []
    check_name(problems, "applicationName", job.applicationName, inputs)
    if job.capacityGroup:
        check_name(problems, "capacityGroup", job.capacityGroup, inputs)
    c = job.container
    if not c.image.name.strip():
        problems.append(Problem("container.image.name", "must not be empty"))
    if c.image.tag and c.image.digest:
        problems.append(Problem("container.image", "give a tag or a digest, not both"))
    r = c.resources
    if not (0 < r.cpu <= limits.max_cpu):
        problems.append(Problem("container.resources.cpu",
                                f"must be > 0 and <= {limits.max_cpu}", _safe(r.cpu)))
    _bound(problems, "container.resources.memoryMB", r.memoryMB, 1, limits.max_memory_mb)
    _bound(problems, "container.resources.diskMB", r.diskMB, 0, limits.max_disk_mb)
    _bound(problems, "container.resources.networkMbps", r.networkMbps, 0, limits.max_network_mbps)
    _bound(problems, "container.resources.gpu", r.gpu, 0, limits.max_gpu)
    env_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in c.env.items())
    if env_bytes > limits.max_env_bytes:
        problems.append(Problem("container.env",
                                f"is {env_bytes} bytes, more than {limits.max_env_bytes}"))
    for key in c.env:
        if not key or "=" in key or not plain_text(key) or any(ch.isspace() for ch in key):
            problems.append(Problem("container.env", "invalid variable name", key))
    # argv and the environment reach the container as C strings: a NUL cannot get there
    for key, value in c.env.items():
        if "\x00" in value:
            problems.append(Problem(f"container.env.{key}", "must not hold a NUL character"))
    argv = [("container.entryPoint", c.entryPoint), ("container.command", c.command)]
    if c.healthCheck is not None:
        argv.append(("container.healthCheck.command", c.healthCheck.command))
    for path, words in argv:
        problems += [Problem(f"{path}[{i}]", "must not hold a NUL character", word)
                     for i, word in enumerate(words) if "\x00" in word]
    for path, text in (("container.image.name", c.image.name), ("container.image.tag", c.image.tag),
                       ("container.image.digest", c.image.digest)):
        if text and (not plain_text(text) or any(ch.isspace() for ch in text)):
            problems.append(Problem(path, "must be printable, without spaces", text))
        elif text and not IMAGE_PARTS[path].fullmatch(text):
            problems.append(Problem(path, IMAGE_WORDS[path], text[:300]))
    attr_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in job.attributes.items())
    if attr_bytes > limits.max_attribute_bytes:
        problems.append(Problem("attributes", f"more than {limits.max_attribute_bytes} bytes"))
    for kind in ("hardConstraints", "softConstraints"):
        for name in unknown_names(getattr(c, kind).constraints):
            # The name is data: quoted with json.dumps, never used as a template.
            problems.append(Problem(f"container.{kind}.constraints",
                                    "unknown constraint name " + json.dumps(name), name))
    if c.killGracePeriodSeconds is not None:
        _bound(problems, "container.killGracePeriodSeconds", c.killGracePeriodSeconds, 0, 3600)
    if c.healthCheck is not None:
        if not c.healthCheck.command:
            problems.append(Problem("container.healthCheck.command", "must not be empty"))
        _bound(problems, "container.healthCheck.intervalSec", c.healthCheck.intervalSec, 0.1, 3600)
        _bound(problems, "container.healthCheck.timeoutSec", c.healthCheck.timeoutSec, 0.1, 3600)
        _bound(problems, "container.healthCheck.retries", c.healthCheck.retries, 0, 100)
    if (job.batch is None) == (job.service is None):
        problems.append(Problem("batch", "exactly one of batch or service must be given"))
    if job.batch is not None:
        b = job.batch
        _bound(problems, "batch.size", b.size, 1,
               min(limits.max_batch_size, limits.max_gang_size) if b.gangScheduling else limits.max_batch_size)
        _bound(problems, "batch.runtimeLimitSec", b.runtimeLimitSec, 0, limits.max_runtime_limit_sec)
        problems += check_retry(b.retryPolicy, "batch.retryPolicy", limits)
    if job.service is not None:
        cap = job.service.capacity
        for name in ("min", "desired", "max"):
            _bound(problems, f"service.capacity.{name}", getattr(cap, name), 0,
                   limits.max_service_capacity)
        if not (cap.min <= cap.desired <= cap.max):
            problems.append(Problem("service.capacity", "must satisfy min <= desired <= max",
                                    {"min": cap.min, "desired": cap.desired, "max": cap.max}))
        problems += check_retry(job.service.retryPolicy, "service.retryPolicy", limits)
    if job.disruptionBudget is not None:
        problems += check_budget(job.disruptionBudget, job.batch is not None)
    return problems


# Docker's image reference grammar (distribution/reference): the agent hands the name to the
# engine's API, which puts it in a URL path; "../../containers/x" walked out of /images.
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*" \
          r"(?::[0-9]{1,5})?|\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_PARTS = {
    "container.image.name": re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*",
                                       re.ASCII),
    "container.image.tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII),
    "container.image.digest": re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
                                         r":[0-9a-fA-F]{1,256}", re.ASCII),
}
IMAGE_WORDS = {
    "container.image.name": "must be a Docker image name: lowercase path components of "
                            "letters, digits and . _ - separators, after an optional "
                            "registry host[:port]/ (e.g. alpine, org/app, "
                            "registry.example.com:5000/org/app)",
    "container.image.tag": "must be a Docker tag: up to 128 letters, digits, _ . - "
                           "(not starting with . or -)",
    "container.image.digest": "must be a Docker digest: ALGORITHM:HEX (e.g. sha256:...)",
}


def check_retry(policy, path: str, limits: ValidationLimits) -> list[Problem]:
    """Problems with a retry policy: at most one kind, retries and delays in bounds."""
    problems: list[Problem] = []
    kinds = [k for k in ("immediate", "delayed", "exponentialBackOff") if getattr(policy, k)]
    if len(kinds) > 1:
        problems.append(Problem(path, "give one of immediate, delayed, exponentialBackOff", kinds))
    for kind in kinds:
        spec = getattr(policy, kind)
        _bound(problems, f"{path}.{kind}.retries", spec.retries, 0, limits.max_retries)
        for name in ("initialDelayMs", "delayMs", "maxDelayIntervalMs"):
            if hasattr(spec, name):
                _bound(problems, f"{path}.{kind}.{name}", getattr(spec, name), 0, 24 * 3600 * 1000)
    return problems


def parse_capacity_update(data: Any, limits: ValidationLimits | None = None,
                          inputs: InputLimits | None = None) -> CapacityUpdate:
    """Validate a ``PUT /jobs/{id}/instances`` body (bounds only; the job checks the rest)."""
    limits = limits or ValidationLimits()
    update = parse_model(CapacityUpdate, data, "capacity", inputs)
    problems: list[Problem] = []
    for name in ("min", "desired", "max"):
        _bound(problems, name, getattr(update, name), 0, limits.max_service_capacity)
    if problems:
        raise SpecError(problems, "capacity")
    return update


TIERS = ("Critical", "Flex")


MAX_GROUP_QUANTITY = 1e15  # far beyond any fleet; keeps sums exact in float64


def parse_capacity_group(data: Any, inputs: InputLimits | None = None) -> CapacityGroupSpec:
    """Validate a capacity group: a name, a known tier, finite non-negative resources.

    Raises :class:`SpecError` (HTTP 400) naming each bad field; nothing is stored before."""
    inputs = inputs or InputLimits()
    group = parse_model(CapacityGroupSpec, data, "capacity group", inputs)
    problems: list[Problem] = []
    check_name(problems, "name", group.name, inputs)
    if group.tier not in TIERS:
        problems.append(Problem("tier", "must be Critical or Flex", group.tier))
    for part in ("resources", "limit"):
        res = getattr(group, part)
        if res is None:
            continue
        for name in ("cpu", "memoryMB", "diskMB", "networkMbps", "gpu"):
            value = getattr(res, name)
            if not (0 <= value <= MAX_GROUP_QUANTITY):  # also false for NaN
                problems.append(Problem(f"{part}.{name}",
                                        f"must be between 0 and {MAX_GROUP_QUANTITY:g}",
                                        _safe(value)))
    if group.limit is not None and not problems:
        for name in ("cpu", "memoryMB", "diskMB", "networkMbps", "gpu"):
            cap, guaranteed = getattr(group.limit, name), getattr(group.resources, name)
            if 0 < cap < guaranteed:
                problems.append(Problem(f"limit.{name}", f"is below the guaranteed "
                                                         f"resources.{name} ({guaranteed})", cap))
    if problems:
        raise SpecError(problems, "capacity group")
    return group
