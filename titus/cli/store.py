"""``titus store``: the master's store schema (where it is, upgrading it).

``titus master`` upgrades its store when it starts; these commands do it (or show what it would
do) by hand, for instance before a rolling restart. See docs/store.md.
"""
from __future__ import annotations

import os

import click

from titus.cli import main

_STORE_OPTION = click.option(
    "--store", "store_url", envvar="TITUS_STORE_URL", default=None,
    help="Store URL (default: TITUS_STORE_URL, else the master's default "
         "sqlite:///titus-master.db).")


def _sqlite_file(url: str):
    """The file of a SQLite URL (None: not SQLite, or in memory)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def _open(url: str, write: bool):
    """An engine on the store, or None for a SQLite file that does not exist yet (reading
    must not create it)."""
    from sqlalchemy import create_engine

    from titus.master.store import make_engine

    path = _sqlite_file(url)
    if path is not None and not write:
        if not os.path.exists(path):
            return None
        return create_engine(url)  # no WAL/pragma changes for a read
    return make_engine(url)


def _held(url: str):
    """The SQLite file of ``url`` if another process (a running master) holds it, else None."""
    from titus.master.store import sqlite_file, sqlite_in_use

    path = sqlite_file(url)
    return path if path is not None and sqlite_in_use(path) else None


def _plan(url: str, write: bool = False):
    from titus.master import migrations as M
    from titus.master.store import snapshot_engine

    held = _held(url)
    if held is not None:  # a master holds the file alone: read the file as of its checkpoint
        click.echo(f"note: a running master holds {held}; read from the file as of its last "
                   "checkpoint (a master checkpoints its schema when it starts)", err=True)
    engine = snapshot_engine(held) if held is not None else _open(url, write)
    if engine is None:
        return M.Plan(state=M.FRESH, current=None, head=M.head(), steps=M.revisions()), None
    try:
        return M.current(engine), engine
    except M.StoreSchemaError as exc:
        raise click.ClickException(str(exc))
    finally:
        engine.dispose()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL: as given
        return url


def _store_url(store_url):
    from titus.master.migrations import default_store_url

    return store_url or default_store_url()


def _print_plan(url: str, plan, engine, label: str = "current") -> None:
    click.echo(f"store:   {_redacted(url)}" + ("" if engine is not None or _sqlite_file(url) is None
                                             else " (no database file yet)"))
    click.echo(f"{label + ':':<8} {plan.describe_current()}")
    click.echo(f"head:    {plan.head}")


@main.group("store")
def store_group():
    """The master's store: its schema revision, and upgrades (titus master also upgrades
    its store when it starts)."""


@store_group.command("current")
@_STORE_OPTION
def current_command(store_url):
    """Show the store's schema revision and this release's newest one."""
    url = _store_url(store_url)
    try:
        plan, engine = _plan(url)
    except click.ClickException:
        raise
    except Exception as exc:  # unreachable database, bad URL ...
        raise click.ClickException(f"cannot open the store {_redacted(url)}: "
                                   f"{type(exc).__name__}: {exc}".splitlines()[0])
    _print_plan(url, plan, engine)
    click.echo("up to date" if plan.up_to_date else f"{len(plan.steps)} revision(s) to apply "
               "(titus store upgrade)")


@store_group.command("upgrade")
@_STORE_OPTION
@click.option("--dry-run", is_flag=True,
              help="Print the current revision and the revisions an upgrade would apply; "
                   "change nothing.")
@click.option("--sql", "show_sql", is_flag=True,
              help="With --dry-run: also print the SQL of those revisions (Alembic offline mode).")
def upgrade_command(store_url, dry_run, show_sql):
    """Upgrade the store's schema to this release's newest revision, in one transaction
    (what titus master does at start)."""
    from titus.master import migrations as M

    url = _store_url(store_url)
    if show_sql and not dry_run:
        raise click.UsageError("--sql goes with --dry-run")
    engine = None
    try:
        if dry_run:
            plan, engine = _plan(url)
        else:
            if _held(url) is not None:
                raise click.ClickException(
                    f"the store {_redacted(url)} is in use by a running master (it holds the "
                    "SQLite file): stop it first, or let it upgrade the store when it starts")
            engine = _open(url, write=True)
            plan = M.upgrade(engine)
    except click.ClickException:
        raise
    except M.StoreSchemaError as exc:
        raise click.ClickException(str(exc))
    except Exception as exc:  # unreachable database, bad URL ...
        raise click.ClickException(f"cannot open the store {_redacted(url)}: "
                                   f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        if engine is not None:
            engine.dispose()
    _print_plan(url, plan, engine, label="current" if dry_run else "was")
    if plan.up_to_date:
        click.echo("up to date: nothing to do")
        return
    if plan.state == M.LEGACY:
        made = (f"; creates {', '.join(plan.missing_tables)}" if plan.missing_tables else "")
        click.echo(f"adopts the schema {M.LEGACY_SCHEMA} store as {M.BASELINE} "
                   f"(keeps its tables{made})")
    click.echo("would apply:" if dry_run else "applied:")
    for step in plan.steps:
        click.echo(f"  {step}")
    if dry_run and show_sql:
        click.echo(M.offline_sql(url, plan), nl=False)
