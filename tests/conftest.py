"""Shared pytest setup.

Hypothesis profiles: ``ci`` (the default) is derandomized so a run is reproducible anywhere;
``dev`` explores new random cases on each run. Choose with ``HYPOTHESIS_PROFILE=dev``.

Containers: every container this session creates carries the label ``titus.test_session=<id>``
(runtimes and agent processes take it from ``TITUS_DOCKER_LABELS``; tests that create
containers themselves use ``tests.docker.helpers.session_labels``). At the end of the session any container
still carrying it is reported, removed, and fails the run: the suite leaves nothing behind.

Parallel runs (pytest-xdist, ``-n 2 --dist loadgroup`` as in the README): the workers share
the session id (the controller makes it and checks for leftovers once all have finished);
each worker keeps agent state in a directory of its own and has a PostgreSQL database of its
own (``tests/postgres_db.py``). Some tests run one after another on one worker (``GROUPS``
below): those of the Docker engine, the chaos trials, the API fuzzing.

Scheduler fixtures: ``scheduler_cls`` runs a test once against the native engine
(``titus.Scheduler``) and once against the plain-Python twin (``ReferenceScheduler``), so both
are held to docs/semantics.md; ``make_scheduler`` builds one with hosts already added.
"""
import os
import tempfile
import uuid

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# "gw0", "gw1", ... in a pytest-xdist worker; None in a run without workers (or the controller)
WORKER = os.environ.get("PYTEST_XDIST_WORKER") or None

# Agents keep their credential in a state directory: never the home directory in tests.
# A worker inherits the controller's choice and keeps its own directory beneath it.
os.environ.setdefault("TITUS_AGENT_STATE_DIR", tempfile.mkdtemp(prefix="titus-agent-state-"))
if WORKER and os.environ["TITUS_AGENT_STATE_DIR"]:
    os.environ["TITUS_AGENT_STATE_DIR"] = os.path.join(os.environ["TITUS_AGENT_STATE_DIR"],
                                                       WORKER)

SESSION_LABEL = "titus.test_session"
# One id for the whole run: xdist workers inherit the controller's.
SESSION_ID = os.environ.get("TITUS_TEST_SESSION_ID") or uuid.uuid4().hex[:12]
os.environ["TITUS_TEST_SESSION_ID"] = SESSION_ID
# Inherited by agent processes; other sessions on the same engine have their own id.
os.environ["TITUS_DOCKER_LABELS"] = f"{SESSION_LABEL}={SESSION_ID}"

# Work that one xdist worker runs as a whole, one test after another (``--dist loadgroup``),
# by node id prefix: the tests of the Docker engine (one restarts dockerd, which would break
# a container test running beside it), the chaos trials (one throwaway PostgreSQL cluster for
# them all) and the API fuzzing (its module checks the number of cases it sent in all).
# Handed out first, in this order: the Docker tests (mostly waiting) and the chaos trials
# (timers of a few seconds) start at once, side by side, on the two workers.
GROUPS = {"tests/docker/": "docker", "tests/chaos/test_chaos.py": "chaos",
          "tests/master/test_openapi_fuzz.py": "openapi-fuzz"}


def group_of(nodeid: str):
    """The group of a test (None: it may run on any worker)."""
    return next((group for prefix, group in GROUPS.items() if nodeid.startswith(prefix)), None)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown without it
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups above (decided by the controller from node ids),
    handed out before any other test.

    xdist 3.8 groups by ``xdist_group`` marks through the node id, which pytest 9.2 no longer
    lets it change (pytest-xdist issue 1386): the marks would be ignored without a word."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Grouped(LoadGroupScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            self.indexes = {}  # node -> node id -> its indexes in the node's collection
            self.ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or super()._split_scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            # Every item of a node id, not only its first: under pytest 9.2 the items
            # schemathesis makes (one per API operation) all have the node id of their
            # function, and xdist sends one index per node id: the fuzzing would cover one
            # operation instead of every one.
            if not self.ordered:  # the first call: the whole queue is there
                self.ordered = True
                for group in reversed(list(GROUPS.values())):
                    if group in self.workqueue:
                        self.workqueue.move_to_end(group, last=False)
            scope, work_unit = self.workqueue.popitem(last=False)
            self.assigned_work.setdefault(node, {})[scope] = work_unit
            if node not in self.indexes:
                self.indexes[node] = {}
                for index, nodeid in enumerate(self.registered_collections[node]):
                    self.indexes[node].setdefault(nodeid, []).append(index)
            node.send_runtest_some([index for nodeid, done in work_unit.items() if not done
                                    for index in self.indexes[node][nodeid]])

    return Grouped(config, log)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a container of this session is left on the engine (then remove it).

    In an xdist worker: nothing (the other worker's containers may still run); the controller
    checks once every worker has finished."""
    if WORKER:
        return
    try:
        import docker

        client = docker.from_env(timeout=10)
        left = client.containers.list(ignore_removed=True,
            all=True, filters={"label": f"{SESSION_LABEL}={SESSION_ID}"})
    except Exception:  # no engine here: nothing can be left on it
        return
    if not left:
        return
    names = ", ".join(f"{c.name} ({c.status}, agent {c.labels.get('titus.agent_id')})"
                      for c in left)
    for container in left:
        try:
            container.remove(force=True)
        except Exception:
            pass
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"containers left behind by the tests (now removed): {names}",
                            red=True)
    session.exitstatus = 1


def engine_class():
    """The native engine's scheduler class."""
    from titus import Scheduler

    return Scheduler


def reference_class():
    """The plain-Python twin's scheduler class."""
    from titus.scheduler.reference import ReferenceScheduler

    return ReferenceScheduler


SCHEDULER_CLASSES = {"engine": engine_class, "reference": reference_class}


@pytest.fixture(params=list(SCHEDULER_CLASSES))
def scheduler_cls(request):
    """A scheduler class: the native engine, then the reference twin."""
    return SCHEDULER_CLASSES[request.param]()


@pytest.fixture
def make_scheduler(scheduler_cls):
    """Build a scheduler of the class under test: ``make_scheduler(hosts, fitness=..., ...)``."""

    def make(hosts=(), **options):
        scheduler = scheduler_cls(**options)
        if hosts:
            scheduler.add_hosts(list(hosts))
        return scheduler

    return make
