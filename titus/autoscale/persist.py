"""Instance groups and autoscale rules in the master's database (their own two tables).

Each row holds the validated spec as JSON, so the tables never need a migration when a field
is added. A change is written here before memory follows it.
"""
from __future__ import annotations

import json

from sqlalchemy import Column, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.engine import Engine

from titus.autoscale.groups import InstanceGroup
from titus.autoscale.rules import AutoscaleRule

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


class AutoscaleTables:
    """Loads and saves instance groups and rules."""

    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    def load(self) -> tuple[list[InstanceGroup], list[AutoscaleRule]]:
        """Every stored group and rule."""
        with self.engine.connect() as conn:
            groups = [InstanceGroup.model_validate_json(r.spec)
                      for r in conn.execute(select(instance_groups).order_by(instance_groups.c.name))]
            rules = [AutoscaleRule.model_validate_json(r.spec)
                     for r in conn.execute(select(autoscale_rules).order_by(autoscale_rules.c.group_name))]
        return groups, rules

    def save_group(self, group: InstanceGroup) -> None:
        """Insert or replace a group."""
        self._upsert(instance_groups, instance_groups.c.name, group.name,
                     {"name": group.name, "spec": group.model_dump_json()})

    def delete_group(self, name: str) -> None:
        """Remove a group and its rule."""
        with self.engine.begin() as conn:
            conn.execute(delete(autoscale_rules).where(autoscale_rules.c.group_name == name))
            conn.execute(delete(instance_groups).where(instance_groups.c.name == name))

    def save_rule(self, rule: AutoscaleRule) -> None:
        """Insert or replace a rule."""
        self._upsert(autoscale_rules, autoscale_rules.c.group_name, rule.group,
                     {"group_name": rule.group, "spec": json.dumps(rule.model_dump())})

    def delete_rule(self, group: str) -> None:
        """Remove a group's rule."""
        with self.engine.begin() as conn:
            conn.execute(delete(autoscale_rules).where(autoscale_rules.c.group_name == group))

    def _upsert(self, table, key_col, key, row: dict) -> None:
        with self.engine.begin() as conn:
            if conn.execute(update(table).where(key_col == key).values(**row)).rowcount == 0:
                conn.execute(insert(table), [row])
