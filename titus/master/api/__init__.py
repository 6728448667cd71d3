"""REST routers of the master, one module per resource.

To add a resource, write ``api/<name>.py`` with a ``router`` and add one line to ``ROUTERS``.
``observe`` comes before ``jobs`` so ``/jobs/observe`` is not taken for a job id.
"""
from titus.master.api import agents, capacity_groups, jobs, metrics, observe, tasks
from titus.master.api import events, eviction, hosts, instance_groups

ROUTERS = [
    observe.router,
    jobs.router,
    tasks.router,
    events.router,
    agents.router,
    hosts.router,
    eviction.router,
    capacity_groups.router,
    instance_groups.router,
    metrics.router,
]
