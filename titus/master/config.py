"""Settings of the master, from defaults, the environment (``TITUS_<NAME>``) and the CLI.

Every field below can be set by an environment variable named ``TITUS_`` + the field name in
upper case (``TITUS_STORE_URL``, ``TITUS_HEARTBEAT_TIMEOUT_SEC``, ``TITUS_MAX_CPU`` ...).
Token lists are comma separated. ``TITUS_TOKEN`` also works for a single user token.
"""
from __future__ import annotations

import os
from dataclasses import fields, replace
from typing import Optional

from pydantic import BaseModel, Field

from titus.boundary import InputLimits
from titus.master.roles import RoleMap
from titus.master.secret_env import DEFAULT_SECRET_ENV_PATTERN, SecretEnvPattern
from titus.master.validation import ValidationLimits


class MasterSettings(BaseModel):
    """How the master runs."""

    store_url: str = "sqlite:///titus-master.db"
    bind: str = "127.0.0.1"
    port: int = 7001
    # HTTPS: a PEM certificate chain and its key (both or neither; titus.tls)
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    # CA bundle to verify agents' https addresses with (task logs); None: the system store
    agent_ca: Optional[str] = None
    # Bearer tokens allowed to write (POST/PUT/DELETE); none: no authentication.
    user_tokens: list[str] = Field(default_factory=list)
    # Token agents must present; None: agents are not authenticated.
    agent_token: Optional[str] = None
    # YAML file of named tokens with scopes (titus.master.auth.load_token_file)
    token_file: Optional[str] = None
    # serve without any token (every caller may do everything): must be asked for
    insecure: bool = False
    # job submissions per principal: a token bucket (rate per second, burst); 0 turns it off
    submit_rate_per_sec: float = 50.0
    submit_burst: int = 200
    # concurrent /observe streams per principal
    max_observe_streams: int = 8
    # user requests served at once (0: no limit), how many more may wait for a slot, and for
    # how long; beyond that 429 with Retry-After (titus.master.api.admission). Agents' calls,
    # health probes and metrics are never counted.
    max_inflight_requests: int = Field(default=16, ge=0)
    admission_queue: int = Field(default=256, ge=0)
    admission_wait_sec: float = Field(default=0.2, ge=0.0, le=60.0)

    # Several masters on one PostgreSQL store: one leads by a lease this long in the store
    # (titus.master.lease); a standby takes over within about that long after the leader
    # stops renewing. advertise_url is where the others forward writes and send agents
    # (default: http(s)://bind:port). A standby re-reads the store every standby_refresh_sec
    # (or twice as long as a re-read takes, if that is longer).
    lease_sec: float = Field(default=6.0, ge=1.0, le=300.0)
    advertise_url: Optional[str] = None
    standby_refresh_sec: float = Field(default=1.0, gt=0.0, le=300.0)

    heartbeat_interval_sec: float = 0.5
    heartbeat_timeout_sec: float = 10.0
    schedule_interval_sec: float = 0.1
    reconcile_interval_sec: float = 0.5
    max_batch: int = 10_000  # tasks per scheduling round (smaller rounds hold the lock less)
    # Rows of the event log (audit trail) kept; the reconciler deletes older ones every
    # events_trim_interval_sec. 0 keeps everything.
    events_keep: int = 1_000_000
    events_trim_interval_sec: float = 60.0
    fitness: str = "cpu_mem_binpack"
    # "interleave_jobs" spreads each job's tasks through a round (fewer hosts on mixed machine
    # shapes); "given" keeps the queue's order, which is what decides who waits when capacity
    # is short.
    task_order: str = "given"
    # Stop looking at hosts for a task once one scores at least this (None: always the best
    # host). On thousands of hosts 0.6 places ~10x faster while still filling used hosts first.
    good_enough: Optional[float] = None
    # Host attributes handed to the engine: those job constraints match on (availabilityZone and
    # zoneBalance -> zone, machineType -> instance_type). A constraint on another attribute
    # (machineId -> instance_id, one value per host) is given to the engine as the set of
    # matching host ids instead, which costs it far less than one attribute value per host.
    engine_attributes: list[str] = Field(default_factory=lambda: ["zone", "instance_type"])
    # Service jobs spread their tasks over hosts and zones (soft constraints, as Kubernetes'
    # default topology spread) unless the job sets the attribute titus.spread=false; batch
    # jobs bin-pack. False: nothing spreads unless the job sets titus.spread=true.
    default_spread: bool = True

    # stuck-state timeouts: a task longer than this in the state is ended
    launched_timeout_sec: float = 300.0
    start_initiated_timeout_sec: float = 600.0
    kill_initiated_timeout_sec: float = 300.0
    unhealthy_replace_sec: float = 60.0  # a service task unhealthy this long is replaced
    max_system_retries: int = 100
    # Crash-loop back-off: an index failing soon after start waits base, 2 x base, ... up to
    # max before each restart; a healthy run of reset seconds clears it; base 0 turns it off.
    # Kubernetes' CrashLoopBackOff: 10 s doubling to 5 min, reset after 10 min running; its
    # ReduceDefaultCrashLoopBackOffDecay (1.33) starts at 1 s, as here: a one-off failure costs
    # a second, a task that never runs still ends up restarting once per 5 min.
    crash_backoff_base_sec: float = 1.0
    crash_backoff_max_sec: float = 300.0
    crash_backoff_reset_sec: float = 600.0
    # KillOrder is repeated after this if the agent still reports the task running
    kill_resend_sec: float = 5.0

    limits: ValidationLimits = Field(default_factory=ValidationLimits)
    # bounds on any input whatever its schema (body bytes, depth, string bytes ...):
    # TITUS_INPUT_<NAME>, see titus.boundary and docs/limits.md
    input: InputLimits = Field(default_factory=InputLimits)
    # how long a job submission's Idempotency-Key is remembered
    idempotency_keep_sec: float = 24 * 3600.0
    # env var names whose values views show redacted (a regex searched in the name; "" none);
    # a job adds its own in container.attributes["titus.secretEnv"] (titus.master.secret_env)
    secret_env_pattern: SecretEnvPattern = DEFAULT_SECRET_ENV_PATTERN
    # IAM roles a job may ask for, by submitter and by capacity group (JSON text in the
    # environment); a name not listed is not restricted; unset: any role (titus.master.roles)
    iam_roles_by_user: RoleMap = Field(default_factory=dict)
    iam_roles_by_capacity_group: RoleMap = Field(default_factory=dict)

    model_config = {"arbitrary_types_allowed": True}

    @property
    def own_url(self) -> str:
        """Where this master serves, as other masters and agents should reach it."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "", "::") else self.bind
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}"

    def job_limits(self) -> ValidationLimits:
        """The bounds a submitted job must respect: ``limits``, with a gang job's size at most
        ``max_batch`` (a gang starts in one scheduling round or never)."""
        return replace(self.limits, max_gang_size=min(self.limits.max_gang_size, self.max_batch))

    @classmethod
    def from_env(cls, env: Optional[dict] = None, **overrides) -> "MasterSettings":
        """Settings from ``TITUS_*`` variables, then ``overrides`` (None values ignored)."""
        env = dict(os.environ if env is None else env)
        values: dict = {}
        for name, info in cls.model_fields.items():
            if name in ("limits", "input"):
                continue
            raw = env.get("TITUS_" + name.upper())
            if raw is None:
                continue
            if name in ("user_tokens", "engine_attributes"):
                values[name] = [t.strip() for t in raw.split(",") if t.strip()]
            else:
                values[name] = raw
        if "user_tokens" not in values and env.get("TITUS_TOKEN"):
            values["user_tokens"] = [env["TITUS_TOKEN"]]
        limits = ValidationLimits()
        for f in fields(ValidationLimits):
            raw = env.get("TITUS_" + f.name.upper())
            if raw is not None:
                setattr(limits, f.name, type(getattr(limits, f.name))(float(raw)))
        values["limits"] = limits
        values["input"] = InputLimits.from_env(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
