"""Published facts about production cluster traces that the workload generator is built from.

Each constant names its source. Values that are our own choices (not trace facts) live in
``WorkloadSpec`` as knobs with defaults, and docs/benchmarks.md says which is which.
"""
from __future__ import annotations

# Google cluster trace 2011 (Reiss, Tumanov, Ganger, Katz, Kozuch: "Heterogeneity and dynamicity
# of clouds at scale", SoCC 2012, table of machine configurations). Capacities are normalised to
# the largest machine (1.0 cpu, 1.0 memory). Shares are of the ~12,500 machines; the four shapes
# below cover ~98% of them, the remaining rare shapes are folded in proportionally.
# (name, normalised cpu, normalised memory, share of machines)
GOOGLE_2011_MACHINE_SHAPES: tuple[tuple[str, float, float, float], ...] = (
    ("half-half", 0.50, 0.50, 0.53),
    ("half-quarter", 0.50, 0.25, 0.31),
    ("half-three-quarters", 0.50, 0.75, 0.08),
    ("full-full", 1.00, 1.00, 0.06),
)

# Google cluster trace 2019 (Tirmazi et al.: "Borg: the Next Generation", EuroSys 2020): the
# job-size distribution is extremely heavy-tailed -- the top 1% of jobs ("hogs") consume over
# 99% of the resources, while most jobs ("mice") are small.
GOOGLE_2019_TOP_1PCT_JOBS_RESOURCE_SHARE = 0.99

# Both traces: a task's request is small beside a machine (most tasks ask for a few percent of
# the largest machine's cpu and memory), so many tasks share each machine.
TASKS_SMALL_BESIDE_MACHINE = True
