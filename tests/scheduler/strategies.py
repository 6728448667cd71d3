"""Hypothesis strategies for random clusters, tasks, constraints and scheduler options.

Quantities come from small sets of values so that exact fits, full hosts and score ties happen
often (the cases where two implementations most easily drift apart), with a few inexact
decimals (0.1, 0.3) so that floating-point order matters too.
"""
from __future__ import annotations

from hypothesis import strategies as st

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task, TaskClass

ZONES = ("a", "b", "c")
RACKS = ("r1", "r2")
JOBS = (None, "j1", "j2", "j3")
GROUPS = (None, "g1", "g2")
LABELS = ("x", "y", "z")
FITNESS_NAMES = (
    "cpu_binpack", "memory_binpack", "network_binpack", "cpu_mem_binpack", "cpu_mem_network_binpack",
    "cpu_spread", "memory_spread", "network_spread", "cpu_mem_spread", "cpu_mem_network_spread",
    "cpu_mem_fewest_hosts",
)

host_cpus = st.sampled_from([0, 1, 2, 3, 4, 8, 8.25, 16, 15.5, 0.5, 1.3])
host_memory = st.sampled_from([0, 512, 1024, 4096, 8192, 8000, 1000.5])
host_disk = st.sampled_from([0, 100, 1000])
host_network = st.sampled_from([0, 100, 1000])
task_cpus = st.sampled_from([0, 0.1, 0.25, 0.3, 0.5, 1, 1, 2, 3])
task_memory = st.sampled_from([0, 100, 256, 512, 1024, 0.1])
task_disk = st.sampled_from([0, 0, 10, 100])
task_network = st.sampled_from([0, 0, 10, 100])


@st.composite
def port_ranges(draw):
    """None, one or two small inclusive ranges (possibly out of order, possibly adjacent)."""
    n = draw(st.integers(0, 2))
    ranges = []
    for _ in range(n):
        lo = draw(st.sampled_from([80, 100, 104, 31000, 65530]))
        ranges.append((lo, lo + draw(st.integers(0, 4))))
    return ranges


@st.composite
def near_twin_hosts(draw, max_size=16):
    """Hosts that differ only slightly (zones aside): scores nearly tie, so tie-breaking and the
    order of floating-point operations decide."""
    n = draw(st.integers(2, max_size))
    return [Host(f"h{i}", cpus=draw(st.sampled_from([8, 8.000001, 8.5, 7.9, 12])),
                 memory_mb=draw(st.sampled_from([8192, 8191.99, 8200, 12288])),
                 network_mbps=draw(st.sampled_from([1000, 999.9, 1500])),
                 ports=[(100, 100 + draw(st.integers(0, 3)))],
                 attributes={"zone": draw(st.sampled_from(ZONES))})
            for i in range(n)]


@st.composite
def hosts(draw, id_prefix="h", min_size=1, max_size=8):
    """A list of heterogeneous hosts with unique ids ``<prefix>0``, ``<prefix>1``, ..."""
    n = draw(st.integers(min_size, max_size))
    out = []
    for i in range(n):
        attributes = {}
        if draw(st.integers(0, 5)):  # most hosts have a zone
            attributes["zone"] = draw(st.sampled_from(ZONES))
        if draw(st.booleans()):
            attributes["rack"] = draw(st.sampled_from(RACKS))
        scalars = {"gpu": draw(st.sampled_from([0, 1, 2, 4]))} if draw(st.booleans()) else {}
        if draw(st.integers(0, 5)) == 0:
            scalars["fpga"] = draw(st.sampled_from([1, 2]))
        sets = {}
        for name in draw(st.sampled_from([(), (), ("eni",), ("eni",), ("efa",), ("efa", "eni")])):
            sets[name] = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        out.append(Host(f"{id_prefix}{i}", cpus=draw(host_cpus), memory_mb=draw(host_memory),
                        disk_mb=draw(host_disk), network_mbps=draw(host_network), ports=draw(port_ranges()),
                        scalars=scalars, attributes=attributes, resource_sets=sets))
    return out


# Hostnames a constraint may name: some exist in most clusters (h0.., n0-0..), one never does.
HOSTNAMES = ("h0", "h1", "h2", "h3", "n0-0", "n1-1", "nowhere")
ATTR_VALUES = {"zone": ZONES + ("d",), "rack": RACKS, "hostname": HOSTNAMES}


def _value_constraint(attr):
    # every spelling of "one of these values": values=[...], or a list, tuple or set as the value
    spell = st.sampled_from([lambda vs: HostAttrValue(attr, values=vs), lambda vs: HostAttrValue(attr, list(vs)),
                             lambda vs: HostAttrValue(attr, tuple(vs)), lambda vs: HostAttrValue(attr, set(vs))])
    values = st.lists(st.sampled_from(ATTR_VALUES[attr]), min_size=1, max_size=2, unique=True)
    return st.tuples(spell, values).map(lambda sv: sv[0](sv[1]))


# Built once: hypothesis validates a strategy object on first use, which is costly per draw.
CONSTRAINTS = st.one_of(
    st.one_of(*[_value_constraint(a) for a in sorted(ATTR_VALUES)]),
    st.sampled_from(["hostname", "zone", "rack"]).map(UniqueHostAttr),
    st.just(ExclusiveHost()),
    st.builds(BalancedHostAttr, st.sampled_from(["zone", "rack", "hostname"]), st.integers(1, 4)),
)


def constraints():
    """Any of the four constraint kinds, with arguments that sometimes match nothing."""
    return CONSTRAINTS


HARD_LISTS = st.lists(CONSTRAINTS, max_size=2)
SOFT_LISTS = st.lists(CONSTRAINTS, max_size=3)


@st.composite
def task_shapes(draw):
    """What a Task and a TaskClass share: job, group, constraints, ports, resource sets."""
    return dict(
        job=draw(st.sampled_from(JOBS)),
        group=draw(st.sampled_from(GROUPS)),
        hard=draw(HARD_LISTS) if draw(st.integers(0, 2)) == 0 else [],  # hard ones are rarer
        soft=draw(SOFT_LISTS),
        ports=draw(st.sampled_from([0, 0, 0, 1, 2])),
        resource_sets={name: draw(st.sampled_from(LABELS))
                       for name in draw(st.sampled_from([(), (), (), (), ("eni",), ("efa",), ("eni", "efa")]))},
    )


@st.composite
def demands(draw):
    """cpus, memory_mb, disk_mb, network_mbps and scalars of one task."""
    scalars = {"gpu": draw(st.sampled_from([1, 2]))} if draw(st.integers(0, 4)) == 0 else {}
    if draw(st.integers(0, 9)) == 0:
        scalars["fpga"] = 1
    return dict(cpus=draw(task_cpus), memory_mb=draw(task_memory), disk_mb=draw(task_disk),
                network_mbps=draw(task_network), scalars=scalars)


@st.composite
def tasks(draw, ids):
    """Tasks with the given ids, random demand and random shape."""
    return [Task(tid, **draw(demands()), **draw(task_shapes())) for tid in ids]


@st.composite
def job_tasks(draw, ids):
    """Tasks as jobs make them: each task belongs to one of 1-3 jobs, and a job's tasks share
    demand, group and constraints (so co-task rules such as BalancedHostAttr really bite)."""
    jobs = []
    for name in draw(st.lists(st.sampled_from(JOBS[1:]), min_size=1, max_size=3, unique=True)):
        shape = {**draw(task_shapes()), "job": name}
        jobs.append((draw(demands()), shape))
    picks = draw(st.lists(st.integers(0, len(jobs) - 1), min_size=len(ids), max_size=len(ids)))
    return [Task(tid, **jobs[k][0], **jobs[k][1]) for tid, k in zip(ids, picks)]


def some_tasks(ids):
    """Either independent random tasks or job-shaped ones."""
    return st.one_of(tasks(ids), job_tasks(ids))


def task_class_of(task: Task) -> TaskClass:
    """The TaskClass a task's row points at in ``schedule_arrays``."""
    return TaskClass(job=task.job, group=task.group, hard=tuple(task.hard), soft=tuple(task.soft),
                     ports=task.ports, resource_sets=dict(task.resource_sets))


fitness_specs = st.one_of(
    st.sampled_from(FITNESS_NAMES),
    st.dictionaries(st.sampled_from(FITNESS_NAMES), st.sampled_from([0, 0.5, 1, 2, 3]), min_size=1, max_size=3)
    .filter(lambda mix: sum(mix.values()) > 0),
)

group_limit_specs = st.one_of(
    st.none(),
    st.fixed_dictionaries({
        "g1": st.fixed_dictionaries({"cpus": st.sampled_from([0.5, 1, 2, 4, 0.3])}),
        "g2": st.fixed_dictionaries({"memory_mb": st.sampled_from([512, 2048]), "gpu": st.sampled_from([0, 1])}),
    }),
)


@st.composite
def scheduler_options(draw):
    """Constructor options: fitness, good_enough, group limits, seed, task order."""
    return dict(
        fitness=draw(fitness_specs),
        good_enough=draw(st.one_of(st.none(), st.sampled_from([0.0, 0.3, 0.55, 0.6, 0.65, 0.7, 0.8, 1.0]))),
        group_limits=draw(group_limit_specs),
        seed=draw(st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1))),
        task_order=draw(st.sampled_from(["given", "given", "interleave_jobs"])),
    )


PRIORITIES = (-1, 0, 0, 1, 2, 5)


@st.composite
def gang_tasks(draw, ids):
    """Tasks (independent or job-shaped) of which some are in gangs ``ga``/``gb`` (a gang's
    members share a priority; members need not follow each other), with random priorities."""
    base = draw(some_tasks(ids))
    gang_prio = {g: draw(st.sampled_from(PRIORITIES)) for g in ("ga", "gb")}
    out = []
    for t in base:
        gang = draw(st.sampled_from([None, None, "ga", "gb"]))
        prio = gang_prio[gang] if gang else draw(st.sampled_from(PRIORITIES))
        out.append(Task(**{**t.__dict__, "gang": gang, "priority": prio}))
    return out


def gang_class_of(task: Task, gang: bool = False) -> TaskClass:
    """The TaskClass of a task's row, with the task's priority, in a gang if ``gang``."""
    return TaskClass(job=task.job, group=task.group, hard=tuple(task.hard), soft=tuple(task.soft),
                     ports=task.ports, resource_sets=dict(task.resource_sets), gang=gang,
                     priority=task.priority)


quota_specs = st.dictionaries(st.sampled_from(JOBS[1:]), st.sampled_from([0, 1, 2, 5]), max_size=3)
