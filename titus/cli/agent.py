"""``titus agent``: run an agent that joins a master and runs its tasks."""
from __future__ import annotations

import logging
import signal
import time

import click
from pydantic import ValidationError

from titus.cli import main
from titus.cli.numbers import Finite
from titus.protocol import MAX_QUANTITY


def _parse_attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--attribute")
        attributes[key.strip()] = value
    return attributes


def _zones(values: tuple[str, ...]) -> list[str]:
    return [zone for value in values for zone in value.split(",") if zone.strip()]


@main.command("agent")
@click.option("--master", "master_url", envvar="TITUS_MASTER_URL",
              default="http://127.0.0.1:7001", show_default=True, help="Master URL, or several comma separated: the agent follows the leader.")
@click.option("--token", "agent_token", envvar="TITUS_AGENT_TOKEN", default=None,
              help="Agent token the master expects (env TITUS_AGENT_TOKEN).")
@click.option("--ca", envvar="TITUS_CA", default=None, type=click.Path(exists=True),
              help="CA bundle (PEM file or directory) to verify an https master with "
                   "(env TITUS_CA; default: the system store).")
@click.option("--agent-id", envvar="TITUS_AGENT_ID", default=None,
              help="Stable agent id (default: hostname plus a random suffix).")
@click.option("--runtime", type=click.Choice(["sim", "docker"]), default="sim",
              show_default=True, help="Where tasks run.")
@click.option("--hosts", type=click.IntRange(min=1), default=1, show_default=True,
              help="Simulated hosts this agent stands for (sim only).")
@click.option("--zone", "zones", multiple=True,
              help="Zone(s) to spread hosts over; repeat or comma-separate.")
@click.option("--cpus", type=Finite(min=0, max=MAX_QUANTITY), default=None, help="CPUs per host.")
@click.option("--memory-mb", type=Finite(min=0, max=MAX_QUANTITY), default=None, help="Memory per host.")
@click.option("--disk-mb", type=Finite(min=0, max=MAX_QUANTITY), default=100_000.0, show_default=True)
@click.option("--network-mbps", type=Finite(min=0, max=MAX_QUANTITY), default=10_000.0,
              show_default=True)
@click.option("--gpu", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--instance-type", default="m5.4xlarge", show_default=True)
@click.option("--instance-group", default="default", show_default=True)
@click.option("--imds-endpoint", envvar="TITUS_IMDS_ENDPOINT", default="",
              help="Docker only: EC2 instance metadata to take zone, instance type and id from "
                   "(on EC2: http://169.254.169.254); they win over the flags when it answers.")
@click.option("--attribute", "attributes", multiple=True, metavar="KEY=VALUE",
              help="Extra host attribute; repeatable.")
@click.option("--listen-host", default="127.0.0.1", show_default=True,
              help="Address of the agent's own HTTP server (task logs).")
@click.option("--listen-port", type=click.IntRange(0, 65535), default=0,
              help="Port of the agent's HTTP server (0: any free port).")
@click.option("--advertise-url", default=None, help="URL the master should use to reach us.")
@click.option("--no-server", is_flag=True, help="Do not start the agent's HTTP server.")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]), default="missing",
              show_default=True, envvar="TITUS_AGENT_PULL",
              help="Docker only: pull images always, only when missing from the host, or "
                   "never. Registry credentials come from Docker's own config "
                   "(~/.docker/config.json, or $DOCKER_CONFIG; `docker login` writes it).")
@click.option("--launch-log", type=click.Path(dir_okay=False), default=None,
              help="Sim only: append one line per launched task to this file.")
@click.option("--max-backoff-sec", type=Finite(min=0.1), default=2.0, show_default=True,
              help="Longest pause between attempts while the master is unreachable.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Where the agent keeps its own credential across restarts (env "
                   "TITUS_AGENT_STATE_DIR; default ~/.local/state/titus).")
@click.option("--log-level", default="INFO", show_default=True)
def agent(master_url, agent_token, ca, agent_id, runtime, hosts, zones, cpus, memory_mb, disk_mb,
          network_mbps, gpu, instance_type, instance_group, imds_endpoint, attributes, listen_host,
          listen_port, advertise_url, no_server, pull, launch_log, max_backoff_sec, state_dir,
          log_level):
    """Join a master and run the tasks it places on this agent's host(s)."""
    from titus.agent.agent import Agent
    from titus.agent.config import AgentConfig, make_runtime, runtime_routers
    from titus.agent.server import AgentServer, create_app
    from titus.log_setup import quiet_http_clients

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_http_clients(log_level)
    settings = {
        "master_url": master_url, "agent_token": agent_token, "ca": ca, "runtime": runtime,
        "hosts": hosts, "cpus": cpus, "memory_mb": memory_mb, "disk_mb": disk_mb,
        "network_mbps": network_mbps, "gpu": gpu, "instance_type": instance_type,
        "instance_group": instance_group, "imds_endpoint": imds_endpoint,
        "attributes": _parse_attributes(attributes),
        "listen_host": listen_host, "listen_port": listen_port,
        "advertise_url": advertise_url, "serve": not no_server, "launch_log": launch_log,
        "pull": pull,
        "max_backoff_sec": max_backoff_sec,
    }
    if agent_id:
        settings["agent_id"] = agent_id
    if state_dir is not None:
        settings["state_dir"] = state_dir
    if zones:
        settings["zones"] = _zones(zones)
    try:
        config = AgentConfig(**settings)
        host_infos = config.build_hosts()
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None

    server = AgentServer(config.listen_host, config.listen_port,
                         config.advertise_url) if config.serve else None
    try:
        runtime_impl = make_runtime(config, address=server.url if server else "")
    except Exception as exc:  # no docker SDK, no daemon, no permission ...
        if server is not None:
            server.stop()
        raise click.ClickException(f"cannot start the {runtime} runtime: "
                                   f"{type(exc).__name__}: {exc}") from None
    if server is not None:
        server.start(create_app(runtime_impl, runtime_routers(runtime_impl), config.agent_id))
    node = Agent(config, runtime_impl, address=server.url if server else "", hosts=host_infos)

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    node.start()
    click.echo(f"agent {config.agent_id}: {len(host_infos)} host(s), runtime {runtime}, "
               f"master {config.master_url}" + (f", serving {server.url}" if server else ""),
               err=True)
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        node.stop()
        if server is not None:
            server.stop()
