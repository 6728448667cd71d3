"""``titus hosts [list|drain|undrain]``: the hosts agents registered, and draining them."""
from __future__ import annotations

import click

from titus.cli import main
from titus.cli.numbers import Finite
from titus.cli.client import Client, connection_options, print_json, print_table


def _drain_text(h: dict) -> str:
    drain = h.get("drain")
    if not drain:
        return ""
    return "draining" + (" (deadline)" if drain.get("deadline") is not None else "")


def _list(url, token, as_json) -> None:
    items = Client(url, token).request("GET", "/api/v3/hosts")["items"]
    if as_json:
        print_json(items)
        return
    rows = []
    for h in items:
        used = h.get("used") or {}
        rows.append([h["id"], h["agentId"], h["attributes"].get("zone", ""),
                     f"{used.get('cpus', 0):g}/{h['cpus']:g}",
                     f"{used.get('memory_mb', 0):g}/{h['memoryMB']:g}", h["tasks"],
                     "yes" if h["active"] else "no", _drain_text(h)])
    print_table("hosts", ["host", "agent", "zone", "cpus", "memory MB", "tasks", "active",
                          "drain"], rows)


@main.group("hosts", invoke_without_command=True)
@connection_options
@click.pass_context
def hosts(ctx, url, token, as_json):
    """List hosts: agent, zone, CPUs and memory used/total, task count, drain state."""
    if ctx.invoked_subcommand is None:
        _list(url, token, as_json)


@hosts.command("list")
@connection_options
def list_hosts(url, token, as_json):
    """List hosts (as ``titus hosts``)."""
    _list(url, token, as_json)


@hosts.command("drain")
@click.argument("host_ids", nargs=-1, required=True)
@click.option("--deadline", "deadline", type=Finite(0, 30 * 24 * 3600), default=None,
              help="Seconds from now after which batch tasks still on the host are killed "
                   "(and run elsewhere without spending retries).")
@connection_options
def drain(host_ids, deadline, url, token, as_json):
    """Drain hosts (admin): no new tasks land on them; service tasks move off as their
    disruption budgets allow, batch tasks finish (or are moved at --deadline)."""
    client = Client(url, token)
    params = {"deadlineSec": deadline} if deadline is not None else {}
    _look_up(client, host_ids)
    out = []
    for h in host_ids:  # each said as it is done: a failure later leaves no doubt
        out.append(client.request("PUT", f"/api/v3/hosts/{h}/drain", params=params))
        if not as_json:
            click.echo(f"{out[-1]['id']}: draining, {out[-1]['tasks']} tasks left")
    if as_json:
        print_json(out)


def _look_up(client, host_ids) -> None:
    """Every host read first, so a mistyped one (404, named) changes none of them; before,
    the hosts ahead of it were drained without a word and those after it were not."""
    for h in dict.fromkeys(host_ids):
        client.request("GET", f"/api/v3/hosts/{h}/drain")


@hosts.command("undrain")
@click.argument("host_ids", nargs=-1, required=True)
@connection_options
def undrain(host_ids, url, token, as_json):
    """Stop draining hosts (admin): tasks may land on them again."""
    client = Client(url, token)
    _look_up(client, host_ids)
    out = []
    for h in host_ids:
        out.append(client.request("DELETE", f"/api/v3/hosts/{h}/drain"))
        if not as_json:
            click.echo(f"{out[-1]['id']}: "
                       f"{'draining' if out[-1]['draining'] else 'not draining'}")
    if as_json:
        print_json(out)
