"""Autoscaling inside the master: stored groups and rules, and the step run periodically.

Settings come from the environment, like the master's own (``TITUS_AUTOSCALE_*``):

- ``PROVIDER``: ``none`` (default: groups and rules are kept and shown, nothing is scaled),
  ``local`` (agent processes on this machine) or ``ec2`` (Auto Scaling groups);
- ``INTERVAL_SEC``: seconds between steps (default 5);
- ``COMPACT_BELOW``: drain a host whose CPU and memory are both used below this fraction, when
  its tasks fit elsewhere, to remove it (default 0: off; ``titus.autoscale.compact``);
- ``PROVISION_TIMEOUT_SEC``: an instance whose agent has not joined this long after it was
  first seen is terminated and asked for again after a back-off (default 900, as Kubernetes'
  cluster autoscaler's ``max-node-provision-time``);
- local: ``LOCAL_RUNTIME`` (``sim`` | ``docker``), ``MASTER_URL`` (default: the master's own
  bind address and port), ``WORKDIR`` (agent logs);
- ec2: ``EC2_REGION``, ``EC2_ENDPOINT_URL``, ``EC2_IMAGE_ID``, ``EC2_PREFIX``.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Optional

from titus.autoscale.autoscaler import Autoscaler, ScaleAction
from titus.autoscale.groups import InstanceGroup, InstanceGroupRegistry
from titus.autoscale.master_cluster import MasterCluster
from titus.autoscale.persist import AutoscaleTables
from titus.autoscale.rules import AutoscaleRule, RuleBook, check_rule_fits

log = logging.getLogger("titus.autoscale")


def provider_from_env(settings, env: Optional[dict] = None):
    """The provider the ``TITUS_AUTOSCALE_*`` variables ask for, or None."""
    env = dict(os.environ if env is None else env)
    kind = env.get("TITUS_AUTOSCALE_PROVIDER", "none").strip().lower()
    if kind in ("", "none"):
        return None
    if kind == "local":
        from titus.autoscale.providers.local import LocalProvider

        host = settings.bind if settings.bind not in ("0.0.0.0", "::") else "127.0.0.1"
        url = env.get("TITUS_AUTOSCALE_MASTER_URL") or f"http://{host}:{settings.port}"
        return LocalProvider(url, runtime=env.get("TITUS_AUTOSCALE_LOCAL_RUNTIME", "sim"),
                             token=settings.agent_token, workdir=env.get("TITUS_AUTOSCALE_WORKDIR"))
    if kind == "ec2":
        from titus.autoscale.providers.ec2 import Ec2Provider

        return Ec2Provider(region=env.get("TITUS_AUTOSCALE_EC2_REGION"),
                           endpoint_url=env.get("TITUS_AUTOSCALE_EC2_ENDPOINT_URL"),
                           image_id=env.get("TITUS_AUTOSCALE_EC2_IMAGE_ID"),
                           prefix=env.get("TITUS_AUTOSCALE_EC2_PREFIX", "titus-"))
    raise ValueError(f"TITUS_AUTOSCALE_PROVIDER: must be none, local or ec2, got {kind!r}")


class AutoscaleService:
    """Instance groups, rules and the autoscaler of one master."""

    def __init__(self, master, provider=None, interval_sec: float = 5.0):
        self.master = master
        self.provider = provider
        self.interval_sec = interval_sec
        self.tables = AutoscaleTables(master.store.engine, master.ledger.transaction)
        groups, rules = self.tables.load()
        self.groups = InstanceGroupRegistry(groups)
        self.rules = RuleBook(self.groups)
        for rule in rules:
            try:
                self.rules.set(rule)
            except ValueError as exc:  # a rule that no longer fits its group is dropped
                log.warning("ignoring stored rule of %s: %s", rule.group, exc)
        self.cluster = MasterCluster(master)
        self.autoscaler = Autoscaler(
            self.groups, self.rules, provider or _NoProvider(), self.cluster, clock=master.now,
            on_action=self._publish, ledger=self.tables, on_error=self._publish_error,
            provision_timeout_sec=float(os.environ.get("TITUS_AUTOSCALE_PROVISION_TIMEOUT_SEC",
                                                       15 * 60)),
            compact_below=float(os.environ.get("TITUS_AUTOSCALE_COMPACT_BELOW", 0.0)))
        # Hosts chosen for removal before a restart stay off from their first registration on.
        self.cluster.disable_hosts(sorted(self.autoscaler.all_draining()))
        self.lock = threading.RLock()
        self._halt = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.last_error = ""

    # ------------------------------------------------------------------ management
    def put_group(self, group: InstanceGroup) -> InstanceGroup:
        """Create or replace a group (stored first); its rule must still fit it."""
        with self.lock:
            rule = self.rules.get(group.name)
            if rule is not None:
                check_rule_fits(rule, group)
            if self.provider is not None:
                self.provider.ensure_group(group)
            self.tables.save_group(group)
            self.groups.put(group)
            return group

    def delete_group(self, name: str) -> InstanceGroup:
        """Remove a group and its rule; ``KeyError`` if unknown."""
        with self.lock:
            group = self.groups.get(name)
            self.tables.delete_group(name)
            self.rules.remove(name)
            return self.groups.delete(group.name)

    def set_rule(self, rule: AutoscaleRule) -> AutoscaleRule:
        """Add or replace a group's rule (checked against its group, stored first)."""
        with self.lock:
            if rule.group not in self.groups:
                raise ValueError(f"group: instance group {rule.group!r} is not known")
            check_rule_fits(rule, self.groups.get(rule.group))
            self.tables.save_rule(rule)
            return self.rules.set(rule)

    def delete_rule(self, group: str) -> None:
        """Remove a group's rule (the group stops scaling)."""
        with self.lock:
            self.tables.delete_rule(group)
            self.rules.remove(group)

    # ------------------------------------------------------------------ stepping
    def step(self) -> list[ScaleAction]:
        """One autoscaler step on a snapshot of the master."""
        hosts, waiting = self.cluster.snapshot()
        with self.lock:
            if self.provider is None:
                return []
            return self.autoscaler.step(hosts, unplaced=waiting)

    def view(self) -> list[dict]:
        """Every group with its rule, its numbers (from a fresh snapshot) and recent actions."""
        hosts, _ = self.cluster.snapshot()
        with self.lock:
            out = []
            status = {s.group: s.to_dict() for s in self.autoscaler.status()}
            for group in self.groups:
                members = [h for h in hosts if h.group == group.name]
                rule = self.rules.get(group.name)
                numbers = status.get(group.name, {})
                numbers.update({"registered": len(members), "idle": sum(1 for h in members if h.idle),
                                "draining": len(self.autoscaler.draining(group.name))})
                out.append({
                    **group.model_dump(mode="json"),
                    "rule": rule.model_dump(mode="json") if rule else None,
                    "status": numbers,
                    "actions": [a.to_dict() for a in self.autoscaler.recent_actions(group.name)[-20:]],
                })
            return out

    def start(self) -> None:
        """Run steps every ``interval_sec`` on a background thread (only with a provider)."""
        if self.provider is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="titus-autoscaler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop stepping; a local provider's agents are stopped too."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        stop_all = getattr(self.provider, "stop_all", None)
        if stop_all is not None:
            stop_all()

    def _run(self) -> None:
        while not self._halt.wait(self.interval_sec):
            try:
                self.step()
                self.last_error = ""
            except Exception as exc:  # keep stepping; the next step retries
                self.last_error = str(exc)
                log.exception("autoscaler step failed")

    def _publish_error(self, group: str, error: str, retry_at: float) -> None:
        """A group's step failed: an event of its own (``autoscaleGroupError``)."""
        self.master.publish("autoscaleGroupError",
                            lambda: {"group": group, "error": error, "retryAt": retry_at})

    def _publish(self, action: ScaleAction) -> None:
        log.info("autoscale %s %s by %d (%s) %s", action.group, action.direction, action.count,
                 action.reason, ",".join(action.hosts))
        self.master.publish("autoscaleAction", action.to_dict)


class _NoProvider:
    """Stands in when no provider is configured: nothing is ever scaled."""

    def ensure_group(self, group) -> None:
        """Nothing to do."""

    def desired(self, group) -> int:
        """Nothing asked for."""
        return 0

    def grow(self, group, count: int) -> int:
        """Refuse: there is nowhere to get hosts from."""
        raise RuntimeError("no autoscaling provider is configured (TITUS_AUTOSCALE_PROVIDER)")

    def terminate(self, group, hosts) -> None:
        """Refuse: there is nothing to terminate with."""
        raise RuntimeError("no autoscaling provider is configured (TITUS_AUTOSCALE_PROVIDER)")
