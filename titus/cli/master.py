"""``titus master``: run the control plane."""
from __future__ import annotations

import click

from titus.cli import main
from titus.cli.numbers import FINITE


@main.command("master")
@click.option("--store", "store_url", envvar="TITUS_STORE_URL", default=None,
              help="Store URL: sqlite:///path (default sqlite:///titus-master.db) or "
                   "postgresql+psycopg://user:pass@host/db.")
@click.option("--bind", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 7001).")
@click.option("--token", "tokens", multiple=True,
              help="A user token (repeatable; env TITUS_TOKEN, or TITUS_USER_TOKENS comma "
                   "separated).")
@click.option("--agent-token", default=None, envvar="TITUS_AGENT_TOKEN",
              help="The agents' bootstrap token: agents join with it and get their own.")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of named tokens and their scopes (env TITUS_TOKEN_FILE; "
                   "docs/security.md).")
@click.option("--insecure", is_flag=True, default=None,
              help="Run without any token: every caller may do everything (env "
                   "TITUS_INSECURE=1).")
@click.option("--heartbeat-timeout", type=FINITE, default=None,
              help="Seconds of agent silence before its tasks are lost (default 10).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None,
              help="Serve HTTPS with this PEM certificate (chain); needs --tls-key "
                   "(env TITUS_TLS_CERT).")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None,
              help="The certificate's PEM private key (env TITUS_TLS_KEY).")
@click.option("--agent-ca", type=click.Path(), default=None,
              help="CA bundle to verify agents' https addresses with when reading task logs "
                   "(env TITUS_AGENT_CA; default: the system store).")
@click.option("--advertise-url", default=None,
              help="URL other masters and agents reach this one at (env TITUS_ADVERTISE_URL; "
                   "default http(s)://bind:port).")
@click.option("--lease-sec", type=FINITE, default=None,
              help="Leader lease on a shared PostgreSQL store (env TITUS_LEASE_SEC, default 6): "
                   "a standby takes over about this long after the leader stops.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def master_command(store_url, bind, port, tokens, agent_token, token_file, insecure,
                   heartbeat_timeout, tls_cert, tls_key, agent_ca, advertise_url, lease_sec,
                   log_level):
    """Run the Titus master: REST API, scheduling loop and reconciler on one store.

    Every setting can also come from the environment (TITUS_STORE_URL, TITUS_PORT, ...; see
    docs/master.md). A master restarted on the same store picks up where it stopped.
    Started several times on one PostgreSQL store, one master leads and the others stand by
    (docs/ha.md).
    """
    from pydantic import ValidationError

    from titus.master.config import MasterSettings
    from titus.master.server import AuthConfigError, StoreUnavailable, serve
    from titus.tls import TLSConfigError

    try:
        settings = MasterSettings.from_env(
            store_url=store_url, bind=bind, port=port, user_tokens=list(tokens) or None,
            agent_token=agent_token, token_file=token_file, insecure=insecure,
            heartbeat_timeout_sec=heartbeat_timeout,
            tls_cert=tls_cert, tls_key=tls_key, agent_ca=agent_ca, advertise_url=advertise_url,
            lease_sec=lease_sec)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                           for e in exc.errors())
        raise click.ClickException(f"invalid master settings: {fields}")
    try:
        serve(settings, log_level=log_level)
    except (StoreUnavailable, TLSConfigError, AuthConfigError) as exc:
        raise click.ClickException(str(exc))
