"""``titus capacity-groups list|get|set|delete``."""
from __future__ import annotations

import click

from titus.cli import main
from titus.cli.numbers import FINITE
from titus.cli.client import Client, connection_options, print_json, print_table


@main.group("capacity-groups")
def capacity_group():
    """Manage capacity groups (tier, guaranteed resources, limit)."""


def _row(g: dict) -> list:
    res = g.get("resources", {})
    lim = g.get("limit") or {}
    use = g.get("usage") or {}
    return [g["name"], g["tier"], f"{res.get('cpu', 0):g} cpu / {res.get('memoryMB', 0)} MB",
            f"{lim.get('cpu', 0):g} cpu / {lim.get('memoryMB', 0)} MB" if lim else "",
            f"{use.get('cpus', 0):g} cpu / {use.get('memory_mb', 0):g} MB"]


COLUMNS = ["name", "tier", "guaranteed", "limit", "in use"]


@capacity_group.command("list")
@connection_options
def list_groups(url, token, as_json):
    """List capacity groups."""
    items = Client(url, token).request("GET", "/api/v3/capacityGroups")["items"]
    print_json(items) if as_json else print_table("capacity groups", COLUMNS, [_row(g) for g in items])


@capacity_group.command("get")
@click.argument("name")
@connection_options
def get(name, url, token, as_json):
    """Show one capacity group."""
    g = Client(url, token).request("GET", f"/api/v3/capacityGroups/{name}")
    print_json(g) if as_json else print_table("capacity group", COLUMNS, [_row(g)])


@capacity_group.command("set")
@click.argument("name")
@click.option("--tier", type=click.Choice(["Critical", "Flex"]), default="Flex", show_default=True)
@click.option("--cpu", type=FINITE, default=0.0, help="Guaranteed CPUs.")
@click.option("--memory-mb", type=int, default=0, help="Guaranteed memory.")
@click.option("--limit-cpu", type=FINITE, default=None, help="Most CPUs the group may hold.")
@click.option("--limit-memory-mb", type=int, default=None, help="Most memory the group may hold.")
@connection_options
def set_group(name, tier, cpu, memory_mb, limit_cpu, limit_memory_mb, url, token, as_json):
    """Create or replace a capacity group."""
    body = {"name": name, "tier": tier, "resources": {"cpu": cpu, "memoryMB": memory_mb,
                                                      "diskMB": 0, "networkMbps": 0, "gpu": 0}}
    if limit_cpu is not None or limit_memory_mb is not None:
        body["limit"] = {"cpu": limit_cpu or 0, "memoryMB": limit_memory_mb or 0, "diskMB": 0,
                         "networkMbps": 0, "gpu": 0}
    g = Client(url, token).request("PUT", f"/api/v3/capacityGroups/{name}", json=body)
    print_json(g) if as_json else print_table("capacity group", COLUMNS, [_row(g)])


@capacity_group.command("delete")
@click.argument("name")
@connection_options
def delete(name, url, token, as_json):
    """Delete a capacity group."""
    Client(url, token).request("DELETE", f"/api/v3/capacityGroups/{name}")
    print_json({}) if as_json else click.echo(f"deleted {name}")
