"""``titus token new``: make a token and the line of a token file that grants it scopes."""
from __future__ import annotations

import click

from titus.cli import main
from titus.master.auth import AGENT_PREFIX, SCOPES, digest, new_token


@main.group("token")
def token_group():
    """Tokens of the master (docs/security.md)."""


@token_group.command("new")
@click.option("--name", required=True, help="The principal's name (jobs record who submitted "
                                            "them).")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(SCOPES), help="read, user, admin or agent (repeatable).")
def new(name, scopes):
    """Print a new random token, then the entry to add under ``tokens:`` in the token file.

    Only the entry's SHA-256 goes into the file; give the token itself to its holder."""
    if name.startswith(AGENT_PREFIX) or not name.strip():
        raise click.BadParameter("a non-empty name not starting with 'agent:'", param_hint="--name")
    token = new_token()
    click.echo(token)
    click.echo(f"  - name: {name}\n    sha256: {digest(token)}\n    scopes: [{', '.join(scopes)}]",
               err=True)
