"""``/metrics``: Prometheus metrics of the master (queue depth, round latency, tasks by state,
tasks backing off)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from titus.master.api.errors import UNSERVABLE
from titus.master.api.security import require_read
from titus.master.lag import METER

router = APIRouter(tags=["metrics"])


class _StateCollector:
    """Reads live numbers from the node's current master at scrape time."""

    def __init__(self, node, admission=None):
        self.node = node
        self.admission = admission

    @property
    def master(self):
        return self.node.master

    def collect(self):
        n = self.master.counts()
        tasks = GaugeMetricFamily("titus_tasks", "Live tasks by state", labels=["state"])
        for state, count in sorted(n["tasks"].items()):
            tasks.add_metric([state], count)
        yield tasks
        yield GaugeMetricFamily("titus_queue_depth", "Tasks waiting for placement",
                                value=n["queued"])
        yield GaugeMetricFamily("titus_jobs", "Live jobs", value=n["jobs"])
        yield GaugeMetricFamily("titus_agents", "Known agents", value=n["agents"])
        yield GaugeMetricFamily("titus_hosts", "Hosts in the engine", value=n["hosts"])
        yield GaugeMetricFamily("titus_tasks_backing_off",
                                "Waiting tasks held back by a restart delay (crash-loop back-off "
                                "or retry policy)", value=self.master.queries.backing_off())
        yield GaugeMetricFamily("titus_store_skipped_rows",
                                "Stored rows that could not be read back (skipped, left in "
                                "the store)", value=len(self.master.state.skipped.rows))
        yield GaugeMetricFamily("titus_master_leader", "1 while this master leads, else 0",
                                value=1 if self.node.role == "leader" else 0)
        yield GaugeMetricFamily("titus_master_epoch", "The leader's epoch as this master knows it",
                                value=self.node.epoch)
        stale = self.node.staleness
        yield GaugeMetricFamily("titus_master_staleness_seconds",
                                "Age of the data this master serves (0 on the leader)",
                                value=stale if stale != float("inf") else -1)
        if self.admission is not None:
            yield GaugeMetricFamily("titus_requests_inflight",
                                    "User requests being served (admission)",
                                    value=self.admission.inflight)
            yield GaugeMetricFamily("titus_requests_waiting",
                                    "User requests waiting for admission",
                                    value=self.admission.waiting)
            yield CounterMetricFamily("titus_requests_rejected",
                                      "User requests answered 429 by admission",
                                      value=self.admission.rejected)
        yield GaugeMetricFamily("titus_master_lag_seconds",
                                "The master's own accumulated lag (time it could not run)",
                                value=METER.total)
        yield CounterMetricFamily("titus_unservable_values",
                                  "Responses whose values no client could read (replaced)",
                                  value=UNSERVABLE.count)


def install_metrics(app, node, admission=None) -> CollectorRegistry:
    """A registry for this app's node (whichever master it serves now), fed by the leader's
    scheduling loop."""
    registry = CollectorRegistry()
    registry.register(_StateCollector(node, admission))
    latency = Histogram("titus_scheduling_round_seconds", "Engine time per scheduling round",
                        registry=registry,
                        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                 1.0, 2.5, 5.0, 10.0))
    offered = Counter("titus_scheduling_offered_tasks", "Tasks offered to the engine",
                      registry=registry)
    placed = Counter("titus_scheduling_placed_tasks", "Tasks placed by the engine",
                     registry=registry)

    def observe(seconds: float, n_offered: int, n_placed: int) -> None:
        latency.observe(seconds)
        offered.inc(n_offered)
        placed.inc(n_placed)

    node.master.on_round(observe)
    node.on_master.append(lambda master: master.on_round(observe))
    app.state.metrics_registry = registry
    return registry


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(require_read)])
def metrics(request: Request):
    """Prometheus text exposition."""
    return Response(generate_latest(request.app.state.metrics_registry),
                    media_type=CONTENT_TYPE_LATEST)
