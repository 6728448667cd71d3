"""Checking a submitted job descriptor against configurable bounds.

``parse_job(data, limits)`` returns a :class:`JobDescriptor` or raises :class:`SpecError`
carrying *every* problem found (not just the first), each with the JSON path of the field
(``container.resources.cpu``) and a message. User text appears in errors only as data (the
``value`` of a problem, or quoted with ``json.dumps``), never as a template.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

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
    max_service_capacity: int = 100_000
    max_env_bytes: int = 32_768
    max_retries: int = 4_294_967_295  # uint32, as Titus (clients send it for "unlimited")
    max_runtime_limit_sec: int = 30 * 24 * 3600
    max_attribute_bytes: int = 65_536


@dataclass
class Problem:
    """One bad field: its JSON path, what is wrong, and the value (as data)."""

    field: str
    message: str
    value: Any = None

    def wire(self) -> dict:
        """JSON-ready form."""
        out = {"field": self.field, "message": self.message}
        if self.value is not None:
            out["value"] = self.value
        return out


class SpecError(ValueError):
    """A request body was refused; ``problems`` names every bad field."""

    def __init__(self, problems: list[Problem], what: str = "job descriptor"):
        self.problems = problems
        self.what = what
        super().__init__(f"invalid {what}: " + "; ".join(f"{p.field}: {p.message}" for p in problems))

    def wire(self) -> dict:
        """The HTTP 400 body."""
        return {"error": f"invalid {self.what}", "problems": [p.wire() for p in self.problems]}


def _path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(body)"


def _safe(value: Any) -> Any:
    # Keep a value as JSON data; anything odd becomes its repr (still data, never evaluated).
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _from_pydantic(exc: ValidationError) -> list[Problem]:
    return [Problem(_path(e["loc"]), e["msg"], _safe(e.get("input"))) for e in exc.errors()]


def parse_model(model: type[BaseModel], data: Any, what: str) -> Any:
    """``model.model_validate(data)``, with errors as a :class:`SpecError`."""
    if not isinstance(data, dict):
        raise SpecError([Problem("(body)", "must be a JSON object")], what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_from_pydantic(exc), what) from None


def parse_job(data: Any, limits: ValidationLimits | None = None) -> JobDescriptor:
    """Validate a job descriptor: shape first, then every bound; all problems reported."""
    limits = limits or ValidationLimits()
    job = parse_model(JobDescriptor, data, "job descriptor")
    problems = check_job(job, limits)
    if problems:
        raise SpecError(problems)
    return job


def _bound(problems, path, value, low, high):
    if value is None:
        return
    if not (low <= value <= high):  # also false for NaN
        problems.append(Problem(path, f"must be between {low} and {high}", _safe(value)))


def check_job(job: JobDescriptor, limits: ValidationLimits) -> list[Problem]:
    """Every problem with an already well-shaped descriptor."""
    problems: list[Problem] = []
    if not job.applicationName.strip():
        problems.append(Problem("applicationName", "must not be empty"))
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
        if not key or "=" in key or "\0" in key:
            problems.append(Problem("container.env", "invalid variable name", key))
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
        _bound(problems, "batch.size", b.size, 1, limits.max_batch_size)
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
    return problems


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


def parse_capacity_update(data: Any, limits: ValidationLimits | None = None) -> CapacityUpdate:
    """Validate a ``PUT /jobs/{id}/instances`` body (bounds only; the job checks the rest)."""
    limits = limits or ValidationLimits()
    update = parse_model(CapacityUpdate, data, "capacity")
    problems: list[Problem] = []
    for name in ("min", "desired", "max"):
        _bound(problems, name, getattr(update, name), 0, limits.max_service_capacity)
    if problems:
        raise SpecError(problems, "capacity")
    return update


TIERS = ("Critical", "Flex")


def parse_capacity_group(data: Any) -> CapacityGroupSpec:
    """Validate a capacity group: a name, a known tier, non-negative resources."""
    group = parse_model(CapacityGroupSpec, data, "capacity group")
    problems: list[Problem] = []
    if not group.name.strip():
        problems.append(Problem("name", "must not be empty"))
    if group.tier not in TIERS:
        problems.append(Problem("tier", "must be Critical or Flex", group.tier))
    for part in ("resources", "limit"):
        res = getattr(group, part)
        if res is None:
            continue
        for name in ("cpu", "memoryMB", "diskMB", "networkMbps", "gpu"):
            value = getattr(res, name)
            if not (value >= 0):
                problems.append(Problem(f"{part}.{name}", "must be >= 0", _safe(value)))
    if problems:
        raise SpecError(problems, "capacity group")
    return group
