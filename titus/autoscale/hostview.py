"""What the autoscaler sees of one host at the start of a step."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional


@dataclass(frozen=True)
class HostView:
    """A host as the autoscaler sees it.

    ``running``: tasks held on the host (launching or running); ``placed_this_round``: whether the
    last scheduling round put a task on it (Fenzo: such a host is not idle even before the task
    shows up as running); ``attributes`` as the agent reported them (``instance_id`` maps the host
    to a cloud instance).
    """

    id: str
    group: str
    zone: str = ""
    running: int = 0
    placed_this_round: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)
    # capacity and what the engine holds on it (for compaction; 0 when unknown)
    cpus: float = 0.0
    memory_mb: float = 0.0
    used_cpus: float = 0.0
    used_memory_mb: float = 0.0

    @property
    def used_fraction(self) -> float:
        """The larger of the CPU and memory fractions in use (0 when capacity is unknown)."""
        cpu = self.used_cpus / self.cpus if self.cpus > 0 else 0.0
        mem = self.used_memory_mb / self.memory_mb if self.memory_mb > 0 else 0.0
        return max(cpu, mem)

    @property
    def idle(self) -> bool:
        """Nothing runs on the host and nothing was placed on it this round."""
        return self.running == 0 and not self.placed_this_round

    @property
    def instance_id(self) -> Optional[str]:
        """The cloud instance behind the host, if the agent reported one."""
        return self.attributes.get("instance_id")
