"""Tables of the master's store (SQLAlchemy Core metadata).

Live jobs and tasks sit in ``jobs``/``tasks``; a finished job moves with its tasks to
``archive_jobs``/``archive_tasks`` (same columns). Each task state has its own timestamp
column, so a state change writes a few columns and never rewrites a JSON blob.

These are the live tables the code reads and writes. The database gets them from the migrations
in titus/master/migrations/versions/: a change here needs a new revision there (docs/store.md),
and SCHEMA_VERSION set to it.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# The migration revision these tables match (also written to meta.schema on upgrade).
# The release before migrations wrote "2" there.
SCHEMA_VERSION = "0008"


def _job_columns():
    return [
        Column("id", String(64), primary_key=True),
        Column("seq", Integer, nullable=False),  # submission order
        Column("state", String(16), nullable=False),
        Column("reason_code", String(32), nullable=False, default=""),
        Column("reason_message", Text, nullable=False, default=""),
        Column("descriptor", Text, nullable=False),  # JSON, as echoed (capacity kept current)
        Column("accepted_at", Float, nullable=False),
        Column("kill_initiated_at", Float),
        Column("finished_at", Float),
        Column("submitted_by", String(255), nullable=False, default=""),  # its principal
    ]


def _task_columns():
    return [
        # creation order: the primary key (updates address rows by it, the fastest path)
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("id", String(64), nullable=False),
        Column("job_id", String(64), nullable=False),
        Column("idx", Integer, nullable=False),  # the task index in its job
        Column("state", String(16), nullable=False),
        Column("reason_code", String(32), nullable=False, default=""),
        Column("reason_message", Text, nullable=False, default=""),
        Column("kill_reason", String(32), nullable=False, default=""),
        Column("host_id", String(255), nullable=False, default=""),
        Column("agent_id", String(255), nullable=False, default=""),
        Column("ports", String(255), nullable=False, default=""),  # comma separated
        Column("resubmit_of", String(64), nullable=False, default=""),
        Column("resubmit_number", Integer, nullable=False, default=0),
        Column("system_resubmit_number", Integer, nullable=False, default=0),
        Column("exit_code", Integer),
        Column("retry_at", Float, nullable=False, default=0.0),
        Column("accepted_at", Float, nullable=False),
        Column("launched_at", Float),
        Column("start_initiated_at", Float),
        Column("started_at", Float),
        Column("kill_initiated_at", Float),
        Column("finished_at", Float),
        # quick failures in a row of this index before this task (crash-loop back-off)
        Column("consecutive_failures", Integer, nullable=False, default=0),
        # launch orders sent for this task (a re-send after its agent came back adds one)
        Column("launch_attempts", Integer, nullable=False, default=0),
        # a relocation's replacement: the id of the task it takes over from ("" otherwise)
        Column("relocates", String(64), nullable=False, default=""),
    ]


jobs = Table("jobs", metadata, *_job_columns())
tasks = Table("tasks", metadata, *_task_columns(), Index("ix_tasks_job", "job_id"))
archive_jobs = Table("archive_jobs", metadata, *_job_columns())
archive_tasks = Table("archive_tasks", metadata, *_task_columns(),
                      Index("ix_archive_tasks_job", "job_id"))

agents = Table(
    "agents", metadata,
    Column("id", String(255), primary_key=True),
    Column("runtime", String(32), nullable=False, default=""),
    Column("address", String(1024), nullable=False, default=""),
    Column("hosts", Text, nullable=False),  # JSON list of HostInfo
    Column("registered_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    # SHA-256 of the agent's own credential ("" before it had one)
    Column("credential_sha256", String(64), nullable=False, default=""),
)

capacity_groups = Table(
    "capacity_groups", metadata,
    Column("name", String(255), primary_key=True),
    Column("tier", String(16), nullable=False),
    Column("spec", Text, nullable=False),  # JSON, as echoed
)

events = Table(
    "events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("entity_id", String(255), nullable=False, default=""),
    Column("data", Text, nullable=False, default=""),
    Index("ix_events_entity", "entity_id", "seq"),  # one entity's events, in order
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("scope", String(128), primary_key=True),  # who sent it (a principal)
    Column("key", String(255), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_idempotency_created", "created_at"),
)

# The lease of the leading master (one row, name "master"; titus.master.lease) and one row per
# epoch ever taken.
leader_lease = Table(
    "leader_lease", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),  # the leading master's instance id
    Column("url", Text, nullable=False),  # where it serves
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", Float, nullable=False),  # seconds, on the database's clock
)

leader_epochs = Table(
    "leader_epochs", metadata,
    Column("epoch", BigInteger, primary_key=True, autoincrement=False),
    Column("holder", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("acquired_at", Float, nullable=False),
)

# Every disruption the platform caused (an eviction, or a relocation begun), so the budgets'
# rates and relocation limits hold across a restart and a failover (titus.master.budget).
# One row per task: a task is disrupted at most once.
disruptions = Table(
    "disruptions", metadata,
    Column("task_id", String(64), primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("idx", Integer, nullable=False),  # the task index in its job
    Column("kind", String(16), nullable=False),  # "evicted" | "relocated"
    Column("at", Float, nullable=False),
    Column("actor", String(255), nullable=False, default=""),  # the principal, or "drain"
    Index("ix_disruptions_job", "job_id", "at"),
)

# Hosts an operator (or the autoscaler) drains: they take no new task and their tasks are
# moved off at the pace the budgets allow (titus.master.relocation).
drained_hosts = Table(
    "drained_hosts", metadata,
    Column("host_id", String(255), primary_key=True),
    Column("since", Float, nullable=False),
    Column("deadline", Float),  # batch tasks still there then are killed (None: never)
    Column("actor", String(255), nullable=False, default=""),  # who asked
)

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

JOB_COLUMNS = tuple(c.name for c in jobs.columns)
TASK_COLUMNS = tuple(c.name for c in tasks.columns)
