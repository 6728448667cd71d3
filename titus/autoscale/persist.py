"""Instance groups, autoscale rules and draining hosts in the master's database (their own
tables).

Each group/rule row holds the validated spec as JSON, so the tables never need a migration when
a field is added. A change is written here before memory follows it. Draining hosts are kept
so that a restarted master goes on draining them instead of placing new work on hosts already
chosen for removal.

The tables are created by the store's migrations (titus/master/migrations, run when a Store
opens the database), not here: a change to them needs a new revision there.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from sqlalchemy import Column, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from titus.autoscale.groups import InstanceGroup
from titus.autoscale.rules import AutoscaleRule

log = logging.getLogger("titus.autoscale.persist")

metadata = MetaData()
instance_groups = Table(
    "instance_groups", metadata,
    Column("name", String(128), primary_key=True),
    Column("spec", Text, nullable=False),
)
autoscale_rules = Table(
    "autoscale_rules", metadata,
    Column("group_name", String(128), primary_key=True),
    Column("spec", Text, nullable=False),
)
draining_hosts = Table(
    "autoscale_draining_hosts", metadata,
    Column("host_id", String(255), primary_key=True),
    Column("group_name", String(128), nullable=False),
    Column("reason", String(64), nullable=False),
)


class AutoscaleTables:
    """Loads and saves instance groups and rules."""

    def __init__(self, engine: Engine, transaction: Optional[Callable] = None):
        """The tables on the master's store ``engine`` (a Store opened on it has created them:
        its migrations). Reads use ``engine``; writes go through ``transaction`` — the master's
        one door to its store (``Master.ledger.transaction``), a context manager yielding an
        object with ``conn`` — and without one the tables are read only."""
        self.engine = engine
        self._transaction = transaction

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        if self._transaction is None:
            raise RuntimeError("these autoscale tables were opened read only")
        with self._transaction() as tx:
            yield tx.conn

    def load(self) -> tuple[list[InstanceGroup], list[AutoscaleRule]]:
        """Every stored group and rule; one an older release stored that cannot be read back
        is logged and skipped (left in the store), never a reason not to start."""
        with self.engine.connect() as conn:
            group_rows = conn.execute(select(instance_groups).order_by(instance_groups.c.name))
            groups = _readable(group_rows, InstanceGroup, "instance group", "name")
            rule_rows = conn.execute(select(autoscale_rules).order_by(autoscale_rules.c.group_name))
            rules = _readable(rule_rows, AutoscaleRule, "autoscale rule", "group_name")
        return groups, rules

    def save_group(self, group: InstanceGroup) -> None:
        """Insert or replace a group."""
        self._upsert(instance_groups, instance_groups.c.name, group.name,
                     {"name": group.name, "spec": group.model_dump_json()})

    def delete_group(self, name: str) -> None:
        """Remove a group and its rule."""
        with self._begin() as conn:
            conn.execute(delete(autoscale_rules).where(autoscale_rules.c.group_name == name))
            conn.execute(delete(instance_groups).where(instance_groups.c.name == name))

    def save_rule(self, rule: AutoscaleRule) -> None:
        """Insert or replace a rule."""
        self._upsert(autoscale_rules, autoscale_rules.c.group_name, rule.group,
                     {"group_name": rule.group, "spec": json.dumps(rule.model_dump())})

    def delete_rule(self, group: str) -> None:
        """Remove a group's rule."""
        with self._begin() as conn:
            conn.execute(delete(autoscale_rules).where(autoscale_rules.c.group_name == group))

    # ------------------------------------------------------------------ draining hosts
    def load_draining(self) -> dict[str, dict[str, str]]:
        """Group -> {host id -> reason} of every host being drained."""
        out: dict[str, dict[str, str]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(draining_hosts).order_by(draining_hosts.c.host_id)):
                out.setdefault(r.group_name, {})[r.host_id] = r.reason
        return out

    def add_draining(self, group: str, host_ids, reason: str) -> None:
        """Note hosts chosen for removal (a host noted before keeps its first reason)."""
        with self._begin() as conn:
            known = {r.host_id for r in conn.execute(
                select(draining_hosts.c.host_id).where(draining_hosts.c.host_id.in_(list(host_ids))))}
            rows = [{"host_id": h, "group_name": group, "reason": reason}
                    for h in host_ids if h not in known]
            if rows:
                conn.execute(insert(draining_hosts), rows)

    def remove_draining(self, host_ids) -> None:
        """Forget hosts that were terminated or are gone."""
        host_ids = list(host_ids)
        if host_ids:
            with self._begin() as conn:
                conn.execute(delete(draining_hosts).where(draining_hosts.c.host_id.in_(host_ids)))

    def _upsert(self, table, key_col, key, row: dict) -> None:
        with self._begin() as conn:
            if conn.execute(update(table).where(key_col == key).values(**row)).rowcount == 0:
                conn.execute(insert(table), [row])


def _readable(rows, model, kind: str, key: str) -> list:
    out = []
    for row in rows:
        try:
            out.append(model.model_validate_json(row.spec))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            log.error("skipped the stored %s %s: it cannot be read back (%s)", kind,
                      ascii(getattr(row, key))[:80], str(exc).splitlines()[0][:200])
    return out
