"""A small HTTP client of the master for the CLI: ``--url``/``--token``/``--ca`` (env TITUS_URL,
TITUS_TOKEN, TITUS_CA).

Errors from the master become a ``click.ClickException`` that names each bad field, so the CLI
exits non-zero with a readable message; so does a master that cannot be reached or trusted.
"""
from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Iterator, Optional

import click
import httpx

from titus.protocol import ROLE_HEADER
from titus.tls import TLSConfigError, client_context, describe_failure

DEFAULT_URL = "http://127.0.0.1:7001"
# where ``--ca`` leaves its value in the click context (commands pass only url and token on)
_CA_KEY = "titus.ca"


def command_ca() -> Optional[str]:
    """The ``--ca`` of the running command, if any."""
    context = click.get_current_context(silent=True)
    return context.meta.get(_CA_KEY) if context is not None else None


class Client:
    """Calls to the master's REST API."""

    def __init__(self, url: str = DEFAULT_URL, token: Optional[str] = None,
                 timeout: float | httpx.Timeout = 30.0, ca: Optional[str] = None):
        """``ca``: CA bundle to verify an https master with (default: the command's ``--ca``,
        else the system store)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            verify = client_context(ca or command_ca())
        except TLSConfigError as exc:
            raise click.ClickException(str(exc)) from None
        # several masters (comma separated): any answers (standbys serve reads and forward
        # writes); one that cannot be connected to is passed over for the next
        self.urls = [u.strip().rstrip("/") for u in url.split(",") if u.strip()] or [DEFAULT_URL]
        self.http = httpx.Client(base_url=self.urls[0], headers=headers, timeout=timeout,
                                 verify=verify)

    def unreachable(self, exc: httpx.HTTPError) -> click.ClickException:
        """The error to show for a failed connection, saying so when TLS is the cause."""
        url = str(self.http.base_url).rstrip("/")
        reason = describe_failure(exc, url) or str(exc) or type(exc).__name__
        return click.ClickException(f"cannot reach the master at {url}: {reason}")

    def send(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One call, on the first master that takes the connection (a request that never
        reached a master is safe to send to the next one; a read also when one does not
        answer in time: a stopped master still takes connections) and that is not a standby
        without a leader. ClickException if none can be reached."""
        failure: Optional[httpx.HTTPError] = None
        response = None
        passing = (httpx.ConnectError, httpx.ConnectTimeout) + (
            (httpx.TimeoutException,) if method == "GET" and len(self.urls) > 1 else ())
        for _ in self.urls:
            try:
                response = self.http.request(method, path, **kwargs)
            except (httpx.InvalidURL, UnicodeError) as exc:  # an argument no URL can carry
                raise click.ClickException(f"cannot send this request: {_short(exc)}") from None
            except passing as exc:
                failure = exc
                self._next()
                continue
            except httpx.HTTPError as exc:
                raise self.unreachable(exc) from None
            if response.status_code == 503 and response.headers.get(ROLE_HEADER) == "standby" \
                    and len(self.urls) > 1:
                self._next()
                continue
            return response
        if response is not None:
            return response
        raise self.unreachable(failure) from None

    def _next(self) -> None:
        current = str(self.http.base_url).rstrip("/")
        at = self.urls.index(current) if current in self.urls else -1
        self.http.base_url = self.urls[(at + 1) % len(self.urls)]

    def request(self, method: str, path: str, repeat: int = 1, **kwargs) -> Any:
        """Call the API; return the JSON answer or raise ClickException with the reasons.
        ``repeat`` > 1: send it again, after a pause, while the answer is 503 or 504 (only for
        calls that are safe to repeat: reads, or writes with an ``Idempotency-Key``)."""
        for attempt in range(max(1, repeat)):
            response = self.send(method, path, **kwargs)
            if response.status_code not in (503, 504) or attempt == repeat - 1:
                break
            time.sleep(min(4.0, 0.5 * 2 ** attempt))
        if response.status_code >= 400:
            raise click.ClickException(describe_error(response))
        if not response.content:
            return {}
        return response.json()

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs) -> Iterator[httpx.Response]:
        """A streamed answer (e.g. task logs); connection failures become ClickException."""
        try:
            with self.http.stream(method, path, **kwargs) as response:
                yield response
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise click.ClickException(f"cannot send this request: {_short(exc)}") from None
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None

    def pages(self, path: str, params: dict, limit: Optional[int] = None) -> list:
        """Every item of a paged listing (up to ``limit``)."""
        return self.pages_total(path, params, limit)[0]

    def pages_total(self, path: str, params: dict,
                    limit: Optional[int] = None) -> tuple[list, Optional[int]]:
        """The items of a paged listing (up to ``limit``) and how many the listing holds in
        all (its ``totalItems``; None when the API does not say)."""
        items: list = []
        total: Optional[int] = None
        cursor = ""
        while True:
            query = dict(params, pageSize=min(1000, limit or 1000))
            if cursor:
                query["cursor"] = cursor
            answer = self.request("GET", path, params=query)
            items += answer.get("items", [])
            page = answer.get("pagination", {})
            if total is None and isinstance(page.get("totalItems"), int):
                total = page["totalItems"]
            cursor = page.get("cursor", "")
            if not page.get("hasMore") or not cursor or (limit and len(items) >= limit):
                return (items[:limit] if limit else items), total


def _short(exc: BaseException) -> str:
    """An exception in one line of at most 200 characters (never a whole huge argument)."""
    if isinstance(exc, UnicodeError):
        return "an argument is not valid Unicode (a lone surrogate?)"
    return " ".join(str(exc).split())[:200] or type(exc).__name__


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


def _remember_ca(context: click.Context, _param, value: Optional[str]) -> Optional[str]:
    if value:
        context.meta[_CA_KEY] = value
    return value


def ca_option(func):
    """Add ``--ca FILE`` (env TITUS_CA); :class:`Client` verifies the master against it."""
    return click.option("--ca", envvar="TITUS_CA", default=None, expose_value=False,
                        callback=_remember_ca,
                        type=click.Path(exists=True, readable=True),
                        help="CA bundle (PEM file or directory) to verify an https master "
                             "with (env TITUS_CA; default: the system store).")(func)


def connection_options(func):
    """Add ``--url``, ``--token``, ``--ca`` and ``--json`` to a command."""
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")(func)
    func = ca_option(func)
    func = click.option("--token", envvar="TITUS_TOKEN", default=None,
                        help="User token (env TITUS_TOKEN).")(func)
    func = click.option("--url", envvar="TITUS_URL", default=DEFAULT_URL, show_default=True,
                        help="Master URL, or several comma separated (env TITUS_URL).")(func)
    return func


def print_more(shown: int, total: Optional[int], what: str) -> None:
    """The line under a cut listing: how many more there are and how to see them."""
    if total is not None and total > shown:
        click.echo(f"{total - shown} more {what}; use --limit {total} (or --json) to see "
                   "them all")


def print_json(data) -> None:
    """JSON to stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def print_table(title: str, columns: list[str], rows: list[list],
                keep: tuple[str, ...] = ("id", "job", "host", "task", "name", "agent")) -> None:
    """A rich table for people. Columns named in ``keep`` (ids) are never cut nor wrapped:
    the table is as wide as they need, even past the terminal's width or when the output is
    not a terminal (where rich would otherwise assume 80 columns), so an id can always be
    copied whole."""
    import shutil

    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    from titus.cli.show import printable

    cells = [["" if v is None else printable(str(v)) for v in row] for row in rows]
    for i, column in enumerate(columns):
        if column in keep:
            widest = max([len(column)] + [len(r[i]) for r in cells])
            table.add_column(column, no_wrap=True, min_width=widest)
        else:
            table.add_column(column)
    for row in cells:
        table.add_row(*row)
    # the narrowest the table can be: kept columns whole, the others at their longest word
    need = sum(max([len(c)] + [len(r[i]) for r in cells]) if c in keep else
               max([len(c)] + [max((len(w) for w in r[i].split()), default=0) for r in cells])
               for i, c in enumerate(columns)) + 3 * len(columns) + 1
    console = Console()
    terminal = shutil.get_terminal_size((120, 24)).columns if console.is_terminal else 160
    Console(width=max(terminal, need)).print(table)
