"""A small HTTP client of the master for the CLI: ``--url``/``--token`` (env TITUS_URL, TITUS_TOKEN).

Errors from the master become a ``click.ClickException`` that names each bad field, so the CLI
exits non-zero with a readable message.
"""
from __future__ import annotations

import json
from typing import Any, Optional

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:7001"


class Client:
    """Calls to the master's REST API."""

    def __init__(self, url: str = DEFAULT_URL, token: Optional[str] = None, timeout: float = 30.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs) -> Any:
        """Call the API; return the JSON answer or raise ClickException with the reasons."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the master at {self.http.base_url}: {exc}")
        if response.status_code >= 400:
            raise click.ClickException(describe_error(response))
        if not response.content:
            return {}
        return response.json()

    def pages(self, path: str, params: dict, limit: Optional[int] = None) -> list:
        """Every item of a paged listing (up to ``limit``)."""
        items: list = []
        cursor = ""
        while True:
            query = dict(params, pageSize=min(1000, limit or 1000))
            if cursor:
                query["cursor"] = cursor
            answer = self.request("GET", path, params=query)
            items += answer.get("items", [])
            page = answer.get("pagination", {})
            cursor = page.get("cursor", "")
            if not page.get("hasMore") or not cursor or (limit and len(items) >= limit):
                return items[:limit] if limit else items


def describe_error(response: httpx.Response) -> str:
    """One readable message for an error answer, naming every bad field."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:500]}"
    if isinstance(body, dict) and body.get("problems"):
        lines = [f"HTTP {response.status_code}: {body.get('error', 'rejected')}"]
        for p in body["problems"]:
            value = f" (got {json.dumps(p['value'])})" if "value" in p else ""
            lines.append(f"  {p['field']}: {p['message']}{value}")
        return "\n".join(lines)
    detail = body.get("detail") or body.get("error") if isinstance(body, dict) else body
    return f"HTTP {response.status_code}: {detail}"


def connection_options(func):
    """Add ``--url``, ``--token`` and ``--json`` to a command."""
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")(func)
    func = click.option("--token", envvar="TITUS_TOKEN", default=None,
                        help="User token (env TITUS_TOKEN).")(func)
    func = click.option("--url", envvar="TITUS_URL", default=DEFAULT_URL, show_default=True,
                        help="Master URL (env TITUS_URL).")(func)
    return func


def print_json(data) -> None:
    """JSON to stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    """A rich table for people."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)
