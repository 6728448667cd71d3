"""``titus instance-groups list|get|create|update|delete|rules|actions``."""
from __future__ import annotations

import click

from titus.cli import main
from titus.cli.numbers import FINITE
from titus.cli.client import Client, connection_options, print_json, print_table
from titus.cli.show import age, when

COLUMNS = ["name", "type", "lifecycle", "hosts", "idle", "rule", "last action"]
ACTION_COLUMNS = ["at", "direction", "reason", "count", "hosts"]


@main.group("instance-groups")
def instance_groups():
    """Manage instance groups and their autoscale rules; show scaling actions."""


def _rule_text(rule) -> str:
    if not rule:
        return ""
    return (f"idle {rule['min_idle']}-{rule['max_idle']} {rule['cooldown_sec']:g}s"
            + (f", size {rule.get('min_size')}-{rule.get('max_size')}"
               if rule.get("min_size") is not None or rule.get("max_size") is not None else ""))


def _last_action(actions) -> str:
    if not actions:
        return ""
    a = actions[-1]
    ago = age(a.get("at"), seconds=True)
    return f"{a['direction']} {a['count']} ({a['reason']})" + (f", {ago} ago" if ago else "")


def _row(g: dict) -> list:
    s = g.get("status") or {}
    t = g["instance_type"]
    hosts = f"{s.get('size', s.get('registered', 0))} of {g['min_size']}-{g['max_size']}"
    # instance states: requested (not joined yet), draining, terminating; pending only for
    # providers that cannot list their instances
    states = ("requested", "draining", "terminating") if "requested" in s else ("pending", "draining")
    extra = [f"{s[k]} {k}" for k in states if s.get(k)]
    if s.get("error"):
        extra.append(f"FAILING: {s['error'][:80]}")
    return [g["name"], f"{t['name']} {t['cpus']:g}cpu", g["lifecycle"],
            hosts + (f" ({', '.join(extra)})" if extra else ""), s.get("idle", 0),
            _rule_text(g.get("rule")), _last_action(g.get("actions"))]


def _show(g: dict, as_json: bool) -> None:
    print_json(g) if as_json else print_table("instance group", COLUMNS, [_row(g)])


@instance_groups.command("list")
@connection_options
def list_groups(url, token, as_json):
    """List instance groups with their sizes, idle hosts and last scaling action."""
    items = Client(url, token).request("GET", "/api/v3/instanceGroups")["items"]
    print_json(items) if as_json else print_table("instance groups", COLUMNS, [_row(g) for g in items])


@instance_groups.command("get")
@click.argument("name")
@connection_options
def get(name, url, token, as_json):
    """Show one instance group."""
    _show(Client(url, token).request("GET", f"/api/v3/instanceGroups/{name}"), as_json)


def _spec(instance_type, cpus, memory_mb, disk_mb, network_mbps, gpu, tier, zones, lifecycle,
          min_size, max_size) -> dict:
    body: dict = {}
    if instance_type is not None:
        if cpus is None and memory_mb is None:
            body["instance_type"] = instance_type  # the master's provider describes it (EC2)
        else:
            body["instance_type"] = {"name": instance_type, "cpus": cpus or 0, "memory_mb": memory_mb or 0,
                                     "disk_mb": disk_mb or 0, "network_mbps": network_mbps or 0,
                                     "gpu": gpu or 0}
    for key, value in (("tier", tier), ("lifecycle", lifecycle), ("min_size", min_size),
                       ("max_size", max_size)):
        if value is not None:
            body[key] = value
    if zones:
        body["zones"] = [z for value in zones for z in value.split(",") if z.strip()]
    return body


def _group_options(func):
    for option in reversed([
        click.option("--instance-type", default=None, help="Instance type name (e.g. m5.4xlarge)."),
        click.option("--cpus", type=FINITE, default=None, help="CPUs per host (else asked of EC2)."),
        click.option("--memory-mb", type=FINITE, default=None, help="Memory per host."),
        click.option("--disk-mb", type=FINITE, default=None),
        click.option("--network-mbps", type=FINITE, default=None),
        click.option("--gpu", type=int, default=None),
        click.option("--tier", type=click.Choice(["Flex", "Critical"]), default=None),
        click.option("--zone", "zones", multiple=True, help="Zone(s); repeat or comma-separate."),
        click.option("--lifecycle", type=click.Choice(["Active", "PhasedOut", "Inactive"]), default=None),
        click.option("--min-size", type=int, default=None),
        click.option("--max-size", type=int, default=None),
    ]):
        func = option(func)
    return func


@instance_groups.command("create")
@click.argument("name")
@_group_options
@connection_options
def create(name, instance_type, cpus, memory_mb, disk_mb, network_mbps, gpu, tier, zones,
           lifecycle, min_size, max_size, url, token, as_json):
    """Create an instance group."""
    body = {"name": name, **_spec(instance_type, cpus, memory_mb, disk_mb, network_mbps, gpu, tier,
                                  zones, lifecycle, min_size, max_size)}
    _show(Client(url, token).request("POST", "/api/v3/instanceGroups", json=body), as_json)


@instance_groups.command("update")
@click.argument("name")
@_group_options
@connection_options
def update(name, instance_type, cpus, memory_mb, disk_mb, network_mbps, gpu, tier, zones,
           lifecycle, min_size, max_size, url, token, as_json):
    """Change fields of an instance group: lifecycle, sizes, zones, type."""
    body = _spec(instance_type, cpus, memory_mb, disk_mb, network_mbps, gpu, tier, zones, lifecycle,
                 min_size, max_size)
    _show(Client(url, token).request("PUT", f"/api/v3/instanceGroups/{name}", json=body), as_json)


@instance_groups.command("delete")
@click.argument("name")
@connection_options
def delete(name, url, token, as_json):
    """Delete an instance group and its rule."""
    Client(url, token).request("DELETE", f"/api/v3/instanceGroups/{name}")
    print_json({}) if as_json else click.echo(f"deleted {name}")


@instance_groups.command("rules")
@click.argument("name")
@click.option("--min-idle", type=int, default=None, help="Fewest idle hosts to keep.")
@click.option("--max-idle", type=int, default=None, help="Most idle hosts to keep.")
@click.option("--min-size", type=int, default=None)
@click.option("--max-size", type=int, default=None)
@click.option("--cooldown-sec", type=FINITE, default=None)
@click.option("--delete", "remove", is_flag=True, help="Remove the rule (the group stops scaling).")
@connection_options
def rules(name, min_idle, max_idle, min_size, max_size, cooldown_sec, remove, url, token, as_json):
    """Show or set a group's autoscale rule (given options are changed, others kept)."""
    client = Client(url, token)
    if remove:
        client.request("DELETE", f"/api/v3/instanceGroups/{name}/rule")
        print_json({}) if as_json else click.echo(f"removed the rule of {name}")
        return
    group = client.request("GET", f"/api/v3/instanceGroups/{name}")
    changes = {k: v for k, v in (("min_idle", min_idle), ("max_idle", max_idle), ("min_size", min_size),
                                 ("max_size", max_size), ("cooldown_sec", cooldown_sec)) if v is not None}
    if changes:
        group = client.request("PUT", f"/api/v3/instanceGroups/{name}/rule",
                               json={**(group.get("rule") or {}), **changes, "group": name})
    _show(group, as_json)


@instance_groups.command("actions")
@click.argument("name")
@connection_options
def actions(name, url, token, as_json):
    """Recent scaling actions of a group, oldest first."""
    items = Client(url, token).request("GET", f"/api/v3/instanceGroups/{name}/actions")["items"]
    if as_json:
        print_json(items)
        return
    rows = [[f"{when(a['at'], seconds=True)} ({age(a['at'], seconds=True)} ago)", a["direction"],
             a["reason"], a["count"], ",".join(a["hosts"])] for a in items]
    print_table(f"scaling actions of {name}", ACTION_COLUMNS, rows)
