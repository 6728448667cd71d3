"""Shared pytest setup.

Hypothesis profiles: ``ci`` (the default) is derandomized so a run is reproducible anywhere;
``dev`` explores new random cases on each run. Choose with ``HYPOTHESIS_PROFILE=dev``.

Containers: every container this session creates carries the label ``titus.test_session=<id>``
(runtimes and agent processes take it from ``TITUS_DOCKER_LABELS``; tests that create
containers themselves use ``tests.docker.helpers.session_labels``). At the end of the session any container
still carrying it is reported, removed, and fails the run: the suite leaves nothing behind.

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

# Agents keep their credential in a state directory: never the home directory in tests.
os.environ.setdefault("TITUS_AGENT_STATE_DIR", tempfile.mkdtemp(prefix="titus-agent-state-"))

SESSION_LABEL = "titus.test_session"
SESSION_ID = uuid.uuid4().hex[:12]
# Inherited by agent processes; other sessions on the same engine have their own id.
os.environ["TITUS_DOCKER_LABELS"] = f"{SESSION_LABEL}={SESSION_ID}"


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a container of this session is left on the engine (then remove it)."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        left = client.containers.list(
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
