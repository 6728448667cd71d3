"""Prometheus metrics of the autoscaler (default registry, served at ``/metrics``)."""
from prometheus_client import Counter, Gauge

ACTIONS = Counter(
    "titus_autoscale_actions",
    "Scaling actions taken, by instance group, direction (up, down, terminate) and reason.",
    ["group", "direction", "reason"],
)
HOSTS_CHANGED = Counter(
    "titus_autoscale_hosts",
    "Hosts asked for (up), chosen for removal (down) or terminated, by group and direction.",
    ["group", "direction"],
)
IDLE_HOSTS = Gauge("titus_autoscale_idle_hosts", "Idle hosts per instance group.", ["group"])
DRAINING_HOSTS = Gauge(
    "titus_autoscale_draining_hosts", "Hosts disabled for removal, waiting to be empty.", ["group"]
)
SHORTFALL_HOSTS = Gauge(
    "titus_autoscale_shortfall_hosts", "New hosts the last trial placement asked for.", ["group"]
)
SHORTFALL_SECONDS = Gauge(
    "titus_autoscale_shortfall_seconds", "Time the last shortfall evaluation took."
)

GROUP_ERRORS = Counter(
    "titus_autoscale_group_errors",
    "Steps in which an instance group's provider calls failed (the group is retried later).",
    ["group"],
)
GROUP_FAILING = Gauge(
    "titus_autoscale_group_failing", "1 while an instance group's steps fail, else 0.", ["group"]
)

ALL = (ACTIONS, HOSTS_CHANGED, IDLE_HOSTS, DRAINING_HOSTS, SHORTFALL_HOSTS, SHORTFALL_SECONDS,
       GROUP_ERRORS, GROUP_FAILING)


def register_into(registry) -> None:
    """Also expose the autoscaler's metrics through ``registry`` (e.g. an app's own)."""
    for metric in ALL:
        try:
            registry.register(metric)
        except ValueError:  # already there
            pass
