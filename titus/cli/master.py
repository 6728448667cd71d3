"""``titus master``: run the control plane."""
from __future__ import annotations

import click

from titus.cli import main


@main.command("master")
@click.option("--store", "store_url", envvar="TITUS_STORE_URL", default=None,
              help="Store URL: sqlite:///path (default sqlite:///titus-master.db) or "
                   "postgresql+psycopg://user:pass@host/db.")
@click.option("--bind", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 7001).")
@click.option("--token", "tokens", multiple=True,
              help="User token allowed to write (repeatable; env TITUS_USER_TOKENS, comma "
                   "separated). None: no authentication.")
@click.option("--agent-token", default=None, envvar="TITUS_AGENT_TOKEN",
              help="Token agents must present.")
@click.option("--heartbeat-timeout", type=float, default=None,
              help="Seconds of agent silence before its tasks are lost (default 10).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def master_command(store_url, bind, port, tokens, agent_token, heartbeat_timeout, log_level):
    """Run the Titus master: REST API, scheduling loop and reconciler on one store.

    Every setting can also come from the environment (TITUS_STORE_URL, TITUS_PORT, ...; see
    docs/master.md). A master restarted on the same store picks up where it stopped.
    """
    from pydantic import ValidationError

    from titus.master.config import MasterSettings
    from titus.master.server import StoreUnavailable, serve

    try:
        settings = MasterSettings.from_env(
            store_url=store_url, bind=bind, port=port, user_tokens=list(tokens) or None,
            agent_token=agent_token, heartbeat_timeout_sec=heartbeat_timeout)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                           for e in exc.errors())
        raise click.ClickException(f"invalid master settings: {fields}")
    try:
        serve(settings, log_level=log_level)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc))
