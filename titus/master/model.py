"""The job descriptor, wire-compatible with Titus's REST v3 JSON (the protobuf JSON mapping).

What real Titus clients send is accepted as it stands:

- names are camelCase (``applicationName``, ``memoryMB``, ``runtimeLimitSec`` ...);
- 64-bit integers may arrive as strings (``"runtimeLimitSec": "3600"``) and are echoed back as
  strings, as the protobuf JSON mapping does;
- the image is ``{name, tag}`` or ``{name, digest}``;
- constraints are ``{"constraints": {name: value}}`` with Titus's names, case-insensitive;
- every field Titus has and this platform does not act on is kept and echoed back
  (``extra="allow"`` on every object), never rejected.

Additions of this platform (optional, ignored by Titus clients):

- ``container.healthCheck`` ``{command: [..], intervalSec, timeoutSec, retries}``: a command run
  inside the container; a service task reported unhealthy for longer than the master's
  ``unhealthy_replace_sec`` is replaced.
- ``container.killGracePeriodSeconds``: seconds between SIGTERM and SIGKILL when a task is
  killed (default 10).

``disruptionBudget`` is Titus's ``JobDisruptionBudget`` (one policy, one rate, time windows);
its meaning, bounds and the default of each job type are in ``titus.master.budget``.

Checks of bounds (cpu, memory, size, env bytes ...) live in ``titus.master.validation``.
"""
from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import (BaseModel, StrictBool, BeforeValidator, ConfigDict, Field, PlainSerializer,
                      ValidationInfo, field_validator, model_validator)

from titus.boundary import no_bool_for_number

# An integer the protobuf JSON mapping writes as a string (uint64/int64 fields).
Int64 = Annotated[int, PlainSerializer(lambda v: str(v), return_type=str, when_used="json")]


class WireModel(BaseModel):
    """Base of every wire object: unknown fields are kept and echoed, names are camelCase.

    An explicit ``null`` for a known field means "not set" (the default applies), as in the
    protobuf JSON mapping; ``true``/``false`` for a number is refused (as that mapping does).
    """

    # finite numbers only: no store column and no strict JSON client can hold NaN or inf
    model_config = ConfigDict(extra="allow", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        return no_bool_for_number(cls, value, info)

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(v is None for v in data.values()):
            data = {k: v for k, v in data.items() if v is not None or k not in cls.model_fields}
        return data


def _scalar_text(value: Any) -> Any:
    # Titus maps hold strings; a client writing 1 or true means "1" / "true".
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _text_map(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _scalar_text(v) for k, v in data.items()}
    return data


TextMap = Annotated[dict[str, str], BeforeValidator(_text_map)]


class Owner(WireModel):
    """Who owns the job."""

    teamEmail: str = ""


class Image(WireModel):
    """A container image: ``name`` with a ``tag`` or a ``digest``."""

    name: str = ""
    tag: Optional[str] = None
    digest: Optional[str] = None

    def reference(self) -> str:
        """The image as Docker names it: ``name@digest`` or ``name:tag`` (tag ``latest`` if none)."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"


class ContainerResources(WireModel):
    """What one task of the job needs. Defaults apply when a field is absent."""

    cpu: float = 1.0
    memoryMB: int = 512
    diskMB: int = 0
    networkMbps: int = 0
    gpu: int = 0


class SecurityProfile(WireModel):
    """IAM role and security groups of the container."""

    iamRole: Optional[str] = None
    securityGroups: list[str] = Field(default_factory=list)


class Constraints(WireModel):
    """Titus's constraint map: ``{"constraints": {"uniqueHost": "true"}}``."""

    constraints: dict[str, str] = Field(default_factory=dict)
    expression: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _values_as_strings(cls, data: Any) -> Any:
        # Titus values are strings; a client sending true/1 means the same thing.
        if isinstance(data, dict) and isinstance(data.get("constraints"), dict):
            data = {**data, "constraints": _text_map(data["constraints"])}
        return data


class HealthCheck(WireModel):
    """A command run inside the container to judge its health."""

    command: list[str] = Field(default_factory=list)
    intervalSec: float = 10.0
    timeoutSec: float = 5.0
    retries: int = 3


class Container(WireModel):
    """The container every task of the job runs."""

    image: Image = Field(default_factory=Image)
    entryPoint: list[str] = Field(default_factory=list)
    command: list[str] = Field(default_factory=list)
    env: TextMap = Field(default_factory=dict)
    resources: ContainerResources = Field(default_factory=ContainerResources)
    securityProfile: SecurityProfile = Field(default_factory=SecurityProfile)
    attributes: TextMap = Field(default_factory=dict)
    hardConstraints: Constraints = Field(default_factory=Constraints)
    softConstraints: Constraints = Field(default_factory=Constraints)
    healthCheck: Optional[HealthCheck] = None
    killGracePeriodSeconds: Optional[float] = None


class ImmediateRetry(WireModel):
    """Resubmit at once."""

    retries: int = 0


class DelayedRetry(WireModel):
    """Resubmit after ``initialDelayMs`` the first time, then after ``delayMs``."""

    initialDelayMs: Int64 = 0
    delayMs: Int64 = 0
    retries: int = 0


class ExponentialBackOffRetry(WireModel):
    """Resubmit after ``initialDelayMs * 2^(n-1)``, capped at ``maxDelayIntervalMs``."""

    initialDelayMs: Int64 = 0
    maxDelayIntervalMs: Int64 = 0
    retries: int = 0


class RetryPolicy(WireModel):
    """One of ``immediate``, ``delayed``, ``exponentialBackOff`` (none: no retries)."""

    immediate: Optional[ImmediateRetry] = None
    delayed: Optional[DelayedRetry] = None
    exponentialBackOff: Optional[ExponentialBackOffRetry] = None


class BatchJobSpec(WireModel):
    """A batch job: ``size`` tasks that each run to completion.

    ``gangScheduling`` (our extension beside Titus's fields; ``true`` or ``false`` only): the
    job's first tasks are placed all together or none (one engine gang, docs/semantics.md
    "Gangs"); a retry of a failed member is placed on its own.
    """

    size: int = 1
    runtimeLimitSec: Int64 = 0
    retryPolicy: RetryPolicy = Field(default_factory=RetryPolicy)
    retryOnRuntimeLimit: bool = False
    gangScheduling: Optional[StrictBool] = None  # absent: echoed as absent


class Capacity(WireModel):
    """A service job's task count: ``min <= desired <= max``."""

    min: int = 0
    desired: int = 0
    max: int = 0


class ServiceJobSpec(WireModel):
    """A service job: ``capacity.desired`` tasks kept running."""

    capacity: Capacity = Field(default_factory=Capacity)
    enabled: bool = True
    retryPolicy: RetryPolicy = Field(default_factory=RetryPolicy)


class SelfManagedPolicy(WireModel):
    """The owner moves its tasks itself; after ``relocationTimeMs`` the platform's default
    budget of the job type applies."""

    relocationTimeMs: Int64 = 0


class AvailabilityPercentageLimit(WireModel):
    """At least this percentage of the desired tasks stays healthy."""

    percentageOfHealthyContainers: float = 0.0


class UnhealthyTasksLimit(WireModel):
    """At most this many tasks may be unhealthy (or moving) at once."""

    limitOfUnhealthyContainers: int = 0


class RelocationLimit(WireModel):
    """Each task index may be moved at most this many times (batch jobs)."""

    limit: int = 0


class RateUnlimited(WireModel):
    """No limit on how fast tasks are moved (the policy still applies)."""


class RatePercentagePerHour(WireModel):
    """At most this percentage of the desired tasks moved in any hour."""

    maxPercentageOfContainersRelocatedInHour: float = 0.0


class RatePerInterval(WireModel):
    """At most ``limitPerInterval`` tasks moved in any ``intervalMs``."""

    intervalMs: Int64 = 0
    limitPerInterval: int = 0


class RatePercentagePerInterval(WireModel):
    """At most ``percentageLimitPerInterval`` percent of the desired tasks moved in any
    ``intervalMs``."""

    intervalMs: Int64 = 0
    percentageLimitPerInterval: float = 0.0


class HourlyTimeWindow(WireModel):
    """Hours of a day, ``startHour`` included, ``endHour`` excluded (0..24)."""

    startHour: int = 0
    endHour: int = 24


class TimeWindow(WireModel):
    """When tasks may be moved: these ``days`` (all if none), these hours (all day if none),
    in ``timeZone`` (UTC if none)."""

    days: list[str] = Field(default_factory=list)
    hourlyTimeWindows: list[HourlyTimeWindow] = Field(default_factory=list)
    timeZone: Optional[str] = None


class DisruptionBudget(WireModel):
    """Titus's ``JobDisruptionBudget``: one policy, at most one rate (none: unlimited) and
    optional time windows."""

    selfManaged: Optional[SelfManagedPolicy] = None
    availabilityPercentageLimit: Optional[AvailabilityPercentageLimit] = None
    unhealthyTasksLimit: Optional[UnhealthyTasksLimit] = None
    relocationLimit: Optional[RelocationLimit] = None
    rateUnlimited: Optional[RateUnlimited] = None
    ratePercentagePerHour: Optional[RatePercentagePerHour] = None
    ratePerInterval: Optional[RatePerInterval] = None
    ratePercentagePerInterval: Optional[RatePercentagePerInterval] = None
    timeWindows: Optional[list[TimeWindow]] = None


class JobDescriptor(WireModel):
    """A job as submitted (``POST /api/v3/jobs``)."""

    applicationName: str = ""
    owner: Owner = Field(default_factory=Owner)
    capacityGroup: str = ""
    attributes: TextMap = Field(default_factory=dict)
    container: Container = Field(default_factory=Container)
    batch: Optional[BatchJobSpec] = None
    service: Optional[ServiceJobSpec] = None
    disruptionBudget: Optional[DisruptionBudget] = None

    @property
    def is_batch(self) -> bool:
        """True for a batch job, False for a service job."""
        return self.batch is not None

    def wire(self) -> dict:
        """The descriptor as JSON-ready data, unknown fields included, 64-bit ints as strings."""
        return self.model_dump(mode="json", exclude_none=True)


class CapacityUpdate(WireModel):
    """``PUT /api/v3/jobs/{id}/instances`` body: any of min, desired, max."""

    min: Optional[int] = None
    desired: Optional[int] = None
    max: Optional[int] = None


class GroupResources(ContainerResources):
    """Amounts of a capacity group: every resource absent is 0 (no job defaults)."""

    cpu: float = 0.0
    memoryMB: int = 0


class CapacityGroupSpec(WireModel):
    """A capacity group: its tier and the resources guaranteed to it (and an optional limit).

    ``resources`` and ``limit`` use the container resource names (cpu, memoryMB, diskMB,
    networkMbps, gpu); an absent resource is 0. A group may never hold more than its
    ``limit``; a limit of 0 (or absent) on a resource leaves that resource unlimited.
    """

    name: str = ""
    tier: str = "Flex"
    resources: GroupResources = Field(default_factory=GroupResources)
    limit: Optional[GroupResources] = None
    # Our extension: whether the group's Critical-tier tasks may preempt Flex-tier tasks when
    # they fit nowhere (absent: yes for Critical; no effect on a Flex group). docs/preemption.md
    preemption: Optional[StrictBool] = None
