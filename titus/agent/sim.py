"""The ``sim`` runtime: tasks that only pretend to run, so the platform works without Docker.

How long a task "runs" and how it exits, in this order of precedence:

1. ``TITUS_SIM_DURATION_SEC`` (seconds) and ``TITUS_SIM_EXIT_CODE`` in the job's env, each
   when given;
2. else what a simple command in the entry point and command would do
   (:mod:`titus.agent.sim_command`): ``/bin/sleep 1h`` runs an hour, ``sh -c "sleep 1; exit 1"``
   a second and then fails, ``exit 3`` fails at once;
3. else :data:`DEFAULT_DURATION_SEC` (0) and exit code 0.

Exit code 0 finishes ``normal``, anything else ``failed``. On a kill it receives SIGTERM and exits after ``TITUS_SIM_KILL_DELAY_SEC``
(default 0), or is SIGKILLed when the grace period runs out first; either way it finishes
``killed``.

One timer thread and one heap of deadlines serve every task, so a single process can hold
hundreds of thousands of simulated tasks. Sim tasks live in memory only: they do not survive
a restart of the agent (the master then reports them lost).

Journal (opt-in, for the chaos suite): with ``TITUS_SIM_JOURNAL=/path/file.jsonl`` in the
agent's environment every start and end of a task is appended as one JSON line, so a checker
can prove from the agents' own side that no host was over-committed and no task ran on two
hosts at once. Lines: ``{"ev": "boot", "pid", "mono", "wall"}`` when the runtime starts;
``{"ev": "start", "task", "job", "index", "host", "cpus", "mem", "disk", "net", "gpu",
"epoch", "mono", "wall"}`` (``epoch``: the launch order's, 0 when no master led);
``{"ev": "end", "task", "host", "reason", "exit", "mono", "wall"}`` (reason ``removed`` when a
running task was removed); ``{"ev": "close", ...}`` on a clean stop. ``mono`` is
``time.monotonic()``, one clock for every process on the machine.
"""
from __future__ import annotations

import heapq
import json
import os
import threading
import time
from typing import Iterator, Optional, TextIO

from titus.agent.runtime import Emit, Runtime, TaskStatus
from titus.agent.sim_command import MAX_SLEEP_SEC, simulate
from titus.protocol import LaunchOrder

DURATION_ENV = "TITUS_SIM_DURATION_SEC"
EXIT_CODE_ENV = "TITUS_SIM_EXIT_CODE"
KILL_DELAY_ENV = "TITUS_SIM_KILL_DELAY_SEC"
JOURNAL_ENV = "TITUS_SIM_JOURNAL"

# How long a task runs with neither TITUS_SIM_DURATION_SEC nor a command the sim understands.
DEFAULT_DURATION_SEC = 0.0
# The timer never sleeps longer than this at once (a 10-year "sleep inf" is still a deadline).
_LONGEST_WAIT_SEC = 3600.0

SIGTERM_EXIT_CODE = 143
SIGKILL_EXIT_CODE = 137


class SimSpecError(ValueError):
    """A sim task's env asks for something impossible (e.g. a negative duration)."""


def _env_float(env: dict[str, str], name: str) -> float:
    raw = env.get(name, "0")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SimSpecError(f"{name} must be a number of seconds >= 0, got {raw!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise SimSpecError(f"{name} must be a number of seconds >= 0, got {raw!r}")
    return value


def _env_int(env: dict[str, str], name: str) -> int:
    # an exit status is 0..255 (what a process can return and Docker reports); anything
    # else would be a status the master refuses, and with it every report of the agent
    raw = env.get(name, "0")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or not 0 <= value <= 255:
        raise SimSpecError(f"{name} must be an exit code from 0 to 255, got {raw[:40]!r}")
    return value


def plan(order: LaunchOrder) -> tuple[float, int]:
    """(seconds to run, exit code) of a launch order: the ``TITUS_SIM_*`` env where given,
    else the command's own (:func:`titus.agent.sim_command.simulate`), else the defaults.
    SimSpecError for an env value that is not a valid duration or exit code."""
    from_env = {name: name in order.env for name in (DURATION_ENV, EXIT_CODE_ENV)}
    command = None
    if not all(from_env.values()):
        command = simulate(list(order.entry_point) + list(order.command))
    if from_env[DURATION_ENV]:
        duration = min(MAX_SLEEP_SEC, _env_float(order.env, DURATION_ENV))
    else:
        duration = command.duration_sec if command is not None else DEFAULT_DURATION_SEC
    if from_env[EXIT_CODE_ENV]:
        exit_code = _env_int(order.env, EXIT_CODE_ENV)
    else:
        exit_code = command.exit_code if command is not None else 0
    return duration, exit_code


class _SimTask:
    """One simulated task: what it was asked to do and where it stands."""

    __slots__ = ("task_id", "job_id", "host_id", "state", "ends_at", "exit_code",
                 "reason", "message", "kill_delay", "generation", "started_wall",
                 "finished_wall")

    def __init__(self, order: LaunchOrder, ends_at: float, exit_code: int, kill_delay: float):
        self.task_id = order.task_id
        self.job_id = order.job_id
        self.host_id = order.host_id
        self.state = "Started"
        self.ends_at = ends_at
        self.exit_code = exit_code
        self.reason = "normal" if exit_code == 0 else "failed"
        self.message = f"exited with code {exit_code}"
        self.kill_delay = kill_delay
        self.generation = 0  # bumped when the deadline moves, so stale heap entries are skipped
        self.started_wall = time.time()
        self.finished_wall = 0.0

    def status(self) -> TaskStatus:
        """The task's current state as the agent reports it."""
        finished = self.state == "Finished"
        return TaskStatus(
            task_id=self.task_id,
            state=self.state,
            reason=self.reason if finished else "",
            message=self.message if finished else "",
            exit_code=self.exit_code if finished else None,
            timestamp=self.finished_wall if finished else self.started_wall,
            host_id=self.host_id,
        )


class SimRuntime(Runtime):
    """Simulated containers driven by one timer thread.

    ``launch_log``: optional path; every launch appends ``task_id job_id host_id time`` as one
    line, so tests can prove no task was launched twice. ``journal``: optional path of the
    JSON-lines journal described in the module docstring (default: ``TITUS_SIM_JOURNAL``).
    """

    name = "sim"

    def __init__(self, launch_log: Optional[str] = None, journal: Optional[str] = None):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tasks: dict[str, _SimTask] = {}
        self._deadlines: list[tuple[float, int, int, str]] = []  # (ends_at, seq, generation, id)
        self._seq = 0
        self._emit: Optional[Emit] = None
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._launch_log: Optional[TextIO] = (
            open(launch_log, "a", buffering=1, encoding="utf-8") if launch_log else None
        )
        journal = journal if journal is not None else os.environ.get(JOURNAL_ENV)
        self._journal: Optional[TextIO] = (
            open(journal, "a", buffering=1, encoding="utf-8") if journal else None
        )

    # -- Runtime interface -------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Begin the timer thread; status changes go to ``emit``."""
        self._emit = emit
        self._note({"ev": "boot", "pid": os.getpid()})
        self._thread = threading.Thread(target=self._run_timer, name="sim-timer", daemon=True)
        self._thread.start()

    def launch(self, order: LaunchOrder) -> None:
        """Start a simulated task; a second launch of a task already held is ignored.

        Only the job's ``TITUS_SIM_*`` variables matter here (read from ``order.env``); no
        container environment is ever built for a simulated task."""
        now = time.monotonic()
        try:
            duration, exit_code = plan(order)
            kill_delay = _env_float(order.env, KILL_DELAY_ENV)
        except SimSpecError as exc:
            self._emit_now(TaskStatus(task_id=order.task_id, state="Finished", reason="failed",
                                      message=str(exc), exit_code=None,
                                      timestamp=time.time(), host_id=order.host_id))
            return
        task = _SimTask(order, now + duration, exit_code, kill_delay)
        with self._lock:
            if order.task_id in self._tasks:
                return
            self._tasks[order.task_id] = task
            self._note({"ev": "start", "task": task.task_id, "job": task.job_id,
                        "index": order.task_index, "host": task.host_id, "cpus": order.cpus,
                        "mem": order.memory_mb, "disk": order.disk_mb,
                        "net": order.network_mbps, "gpu": order.gpu,
                        "epoch": getattr(order, "epoch", None)})
        if self._launch_log is not None:
            self._launch_log.write(f"{order.task_id} {order.job_id} {order.host_id} "
                                   f"{time.time():.6f}\n")
        self._emit_now(TaskStatus(task_id=task.task_id, state="StartInitiated",
                                  timestamp=task.started_wall, host_id=task.host_id))
        self._emit_now(task.status())
        # only now may the timer end it: Finished must never be reported before Started
        with self._lock:
            if task.state != "Finished" and self._tasks.get(task.task_id) is task:
                self._push_deadline(task)

    def kill(self, task_id: str, grace_sec: float) -> None:
        """SIGTERM the task; it exits after its kill delay, or at ``grace_sec`` at the latest."""
        now = time.monotonic()
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise KeyError(task_id)
            if task.state == "Finished":
                return
            grace = max(0.0, float(grace_sec))
            if task.kill_delay <= grace:
                exit_at, exit_code, how = now + task.kill_delay, SIGTERM_EXIT_CODE, "SIGTERM"
            else:
                exit_at, exit_code, how = now + grace, SIGKILL_EXIT_CODE, "SIGKILL after grace"
            if exit_at >= task.ends_at:
                return  # it ends on its own before the kill takes effect
            task.ends_at = exit_at
            task.exit_code = exit_code
            task.reason = "killed"
            task.message = f"killed ({how})"
            if exit_at > now:
                self._push_deadline(task)
                return
            status = self._finish(task)
        self._emit_now(status)

    def list(self) -> list[TaskStatus]:
        """The latest state of every task held (running and finished, until removed)."""
        with self._lock:
            return [task.status() for task in self._tasks.values()]

    def remove(self, task_id: str) -> None:
        """Forget the task (a running one just disappears, as a deleted container would)."""
        with self._lock:
            task = self._tasks.pop(task_id, None)
            if task is not None and task.state != "Finished":
                self._note({"ev": "end", "task": task_id, "host": task.host_id,
                            "reason": "removed", "exit": None})
            self._changed.notify_all()

    def logs(self, task_id: str, follow: bool = False) -> Iterator[bytes]:
        """A sim task's output: a start line, and with ``follow`` a finish line once it ends."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise KeyError(task_id)
        return self._log_lines(task, follow)

    def close(self) -> None:
        """Stop the timer thread and close the launch log."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._launch_log is not None:
            self._launch_log.close()
            self._launch_log = None
        with self._lock:
            self._note({"ev": "close", "pid": os.getpid()})
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # -- internals -----------------------------------------------------------------------

    def _log_lines(self, task: _SimTask, follow: bool) -> Iterator[bytes]:
        yield (f"sim task {task.task_id} of job {task.job_id} started on host "
               f"{task.host_id}\n").encode()
        with self._lock:
            while follow and task.state != "Finished" and not self._closed \
                    and self._tasks.get(task.task_id) is task:
                self._changed.wait(timeout=1.0)
            finished = task.state == "Finished"
            line = f"sim task {task.task_id} finished: {task.reason}, {task.message}\n"
        if finished:
            yield line.encode()

    def _push_deadline(self, task: _SimTask) -> None:
        """Queue the task's (new) end; callers hold the lock."""
        task.generation += 1
        self._seq += 1
        heapq.heappush(self._deadlines, (task.ends_at, self._seq, task.generation, task.task_id))
        if self._deadlines[0][1] == self._seq:
            self._changed.notify_all()  # the earliest deadline moved: wake the timer

    def _finish(self, task: _SimTask) -> TaskStatus:
        """Mark the task finished; callers hold the lock and emit the result after."""
        task.state = "Finished"
        task.finished_wall = time.time()
        task.generation += 1
        self._note({"ev": "end", "task": task.task_id, "host": task.host_id,
                    "reason": task.reason, "exit": task.exit_code})
        self._changed.notify_all()
        return task.status()

    def _note(self, record: dict) -> None:
        """Append one journal line (callers hold the lock, which keeps lines in order)."""
        if self._journal is not None:
            record["mono"] = round(time.monotonic(), 6)
            record["wall"] = round(time.time(), 6)
            self._journal.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _run_timer(self) -> None:
        while True:
            due: list[TaskStatus] = []
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                while self._deadlines and self._deadlines[0][0] <= now:
                    _, _, generation, task_id = heapq.heappop(self._deadlines)
                    task = self._tasks.get(task_id)
                    if task is not None and task.generation == generation \
                            and task.state != "Finished":
                        due.append(self._finish(task))
                if not due:
                    wait = (min(_LONGEST_WAIT_SEC, self._deadlines[0][0] - now)
                            if self._deadlines else None)
                    self._changed.wait(timeout=wait)
            for status in due:
                self._emit_now(status)

    def _emit_now(self, status: TaskStatus) -> None:
        if self._emit is not None:
            self._emit(status)
