"""A master and agents (sim or Docker) as child processes on this machine: ``titus local``, the
integration tests and the benchmarks all start a platform this way.

The master is configured through its ``TITUS_*`` environment variables (store URL, address,
tokens); each agent through ``titus agent`` options. Output of every child goes to a log
file in the working directory, so a failure can be read afterwards.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx

from titus.master.auth import digest

# Runs the ``titus`` command with this interpreter, whether or not its script is on PATH.
_TITUS_MAIN = "import sys; from titus.cli import main; sys.exit(main(prog_name='titus'))"


def titus_command(*args: str) -> list[str]:
    """The argv that runs ``titus <args>`` with the current interpreter."""
    return [sys.executable, "-c", _TITUS_MAIN, *args]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class LocalCluster:
    """One master and any number of sim agents, as child processes.

    ``store_url`` defaults to a SQLite file in ``workdir``; ``master_env`` adds ``TITUS_*``
    settings (e.g. ``{"TITUS_HEARTBEAT_TIMEOUT_SEC": "2"}``).
    """

    def __init__(self, workdir: str | os.PathLike, *, store_url: Optional[str] = None,
                 port: int = 0, token: Optional[str] = None, agent_token: Optional[str] = None,
                 master_env: Optional[dict[str, str]] = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store_url = store_url or f"sqlite:///{self.workdir / 'titus.db'}"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token if token is not None else secrets.token_urlsafe(16)
        self.agent_token = agent_token if agent_token is not None else secrets.token_urlsafe(16)
        self.master_env = dict(master_env or {})
        self.master: Optional[subprocess.Popen] = None
        self.agents: dict[str, subprocess.Popen] = {}
        self.master_starts = 0
        self._stopped_on_purpose: set[str] = set()  # children killed by kill_* (not crashes)

    # -- master --------------------------------------------------------------------------

    def start_master(self, wait: bool = True, timeout: float = 60.0) -> subprocess.Popen:
        """Start ``titus master`` on the store; with ``wait``, return once it answers HTTP.

        RuntimeError if another process already listens on the port: its answers would be
        taken for this master's."""
        if port_taken(self.port):
            raise RuntimeError(f"port {self.port} is already in use (another titus master?); "
                               "pass --port 0 for any free port, or another port")
        env = dict(os.environ)
        env.update({
            "TITUS_STORE_URL": self.store_url, "TITUS_BIND": "127.0.0.1",
            "TITUS_PORT": str(self.port), "TITUS_AGENT_TOKEN": self.agent_token,
            "TITUS_TOKEN_FILE": str(self.write_token_file()), "PYTHONUNBUFFERED": "1",
        })
        env.pop("TITUS_USER_TOKENS", None)
        env.pop("TITUS_TOKEN", None)
        env.update(self.master_env)
        self.master_starts += 1
        self._stopped_on_purpose.discard("master")
        log = open(self.workdir / "master.log", "ab")
        log.write(f"--- master start #{self.master_starts} ---\n".encode())
        log.flush()
        self.master = subprocess.Popen(titus_command("master"), env=env, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=self.workdir,
                                       start_new_session=True)
        log.close()
        if wait:
            self.wait_master_ready(timeout)
        return self.master

    def write_token_file(self) -> Path:
        """The token file of this cluster: its person's token, with every scope of a user and
        of an admin (it is their own cluster). Only digests are written."""
        path = self.workdir / "tokens.yaml"
        path.write_text("tokens:\n"
                        f"  - name: local-admin\n    sha256: {digest(self.token)}\n"
                        "    scopes: [admin]\n")
        path.chmod(0o600)
        return path

    def wait_master_ready(self, timeout: float = 60.0) -> None:
        """Block until the master answers on its port (or raise with its log's tail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.master is not None and self.master.poll() is not None:
                raise RuntimeError(f"titus master exited with {self.master.returncode}:\n"
                                   f"{self.log_tail('master.log')}")
            try:
                response = httpx.get(f"{self.url}/api/v3/jobs", headers=self.headers(),
                                     timeout=2.0)
                if response.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"titus master did not answer at {self.url} within {timeout}s:\n"
                           f"{self.log_tail('master.log')}")

    def kill_master(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the master (SIGKILL: a crash) and wait for it to end."""
        if self.master is not None and self.master.poll() is None:
            self._stopped_on_purpose.add("master")
            self.master.send_signal(sig)
            self.master.wait(timeout=30)

    # -- agents --------------------------------------------------------------------------

    def start_agent(self, name: str, *, hosts: int = 1, cpus: Optional[float] = 16.0,
                    memory_mb: Optional[float] = 65536.0, zones: tuple[str, ...] = (),
                    launch_log: bool = True, extra_args: tuple[str, ...] = (),
                    masters: tuple[str, ...] = (),
                    env: Optional[dict[str, str]] = None,
                    runtime: str = "sim") -> subprocess.Popen:
        """Start ``titus agent --runtime sim`` standing for ``hosts`` simulated hosts
        (``masters``: the master URLs it follows; default this cluster's master). ``env``
        adds variables (e.g. ``TITUS_SIM_JOURNAL``). ``runtime="docker"``: an agent running
        tasks as containers of the local Docker engine, standing for this one machine
        (``cpus``/``memory_mb`` None: the machine's own)."""
        args = ["agent", "--master", ",".join(masters or (self.url,)), "--runtime", runtime,
                "--agent-id", name, "--log-level", "WARNING"]
        if runtime == "sim":
            args += ["--hosts", str(hosts)]
        if cpus is not None:
            args += ["--cpus", str(cpus)]
        if memory_mb is not None:
            args += ["--memory-mb", str(memory_mb)]
        for zone in zones:
            args += ["--zone", zone]
        if launch_log and runtime == "sim":
            args += ["--launch-log", str(self.launch_log_path(name))]
        args += list(extra_args)
        env = dict(os.environ, **(env or {}), TITUS_AGENT_TOKEN=self.agent_token,
                   PYTHONUNBUFFERED="1")
        # agents keep their credentials with the cluster unless told where
        env.setdefault("TITUS_AGENT_STATE_DIR", str(self.workdir / "agent-state"))
        self._stopped_on_purpose.discard(name)
        log = open(self.workdir / f"agent-{name}.log", "ab")
        self.agents[name] = subprocess.Popen(titus_command(*args), env=env, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.workdir,
                                             start_new_session=True)
        log.close()
        return self.agents[name]

    def launch_log_path(self, name: str) -> Path:
        """The file where agent ``name`` logs every launch."""
        return self.workdir / f"launches-{name}.log"

    def launched_task_ids(self) -> list[str]:
        """Every task id any agent launched, once per launch (duplicates mean a double launch)."""
        ids = []
        for path in sorted(self.workdir.glob("launches-*.log")):
            ids += [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
        return ids

    def kill_agent(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to an agent and wait for it to end."""
        process = self.agents.get(name)
        if process is not None and process.poll() is None:
            self._stopped_on_purpose.add(name)
            process.send_signal(sig)
            process.wait(timeout=30)

    # -- all -----------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Authorization header for user API calls."""
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client for the master's REST API, authenticated as a user."""
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=timeout)

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The last lines of a child's log file."""
        path = self.workdir / name
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def crashed(self) -> list[str]:
        """Names of children that exited on their own (``master`` or agent names); those
        stopped with ``kill_master``/``kill_agent`` are not counted."""
        dead = [name for name, process in self.agents.items()
                if process.poll() is not None and name not in self._stopped_on_purpose]
        if self.master is not None and self.master.poll() is not None \
                and "master" not in self._stopped_on_purpose:
            dead.insert(0, "master")
        return dead

    def stop(self, timeout: float = 10.0) -> None:
        """Stop agents (they deregister), then the master."""
        for process in self.agents.values():
            if process.poll() is None:
                process.terminate()
        for process in self.agents.values():
            _stop_process(process, timeout)
        if self.master is not None:
            _stop_process(self.master, timeout)

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
