"""``titus hosts``: the hosts agents registered, with capacity and usage."""
from __future__ import annotations

from titus.cli import main
from titus.cli.client import Client, connection_options, print_json, print_table


@main.command("hosts")
@connection_options
def hosts(url, token, as_json):
    """List hosts: agent, zone, CPUs and memory used/total, task count."""
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
                     "yes" if h["active"] else "no"])
    print_table("hosts", ["host", "agent", "zone", "cpus", "memory MB", "tasks", "active"], rows)
