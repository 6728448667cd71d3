"""The web UI's routes: pages, sign-in and sign-out (not part of ``/openapi.json``).

``/`` is the job list; ``/ui/jobs/{id}``, ``/ui/tasks/{id}``, ``/ui/hosts``,
``/ui/capacity-groups`` and ``/ui/instance-groups`` the other pages. Each page needs the
``read`` scope, from a session (``titus.master.ui.sessions``), a bearer token, or no token
at all on a master without tokens (``--insecure``); without one it shows the sign-in form.
Pages only read; every action (kill, scale) is a call of the REST API from ``static/ui.js``
with the session cookie and its CSRF header, checked there like any other call.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.requests import ClientDisconnect

from titus import states
from titus.boundary import unicode_ok
from titus.master.api.deps import master_of
from titus.master.api.instance_groups import service_of
from titus.master.api.security import bearer, caller, tokens_of
from titus.master.auth import ANONYMOUS, READ, Principal
from titus.master.errors import NotFound
from titus.master.ui import params, reads
from titus.master.ui.render import page
from titus.master.ui.sessions import COOKIE, Session

router = APIRouter(include_in_schema=False)

SIGNIN_BODY_BYTES = 8192  # a form with a token and a path


class Viewer:
    """Who looks at a page: the principal, their session (None with a bearer token or on a
    master without tokens) and whether the master has tokens at all."""

    def __init__(self, who: Principal, session: Optional[Session], secured: bool):
        self.who, self.session, self.secured = who, session, secured

    @property
    def csrf(self) -> str:
        """The session's CSRF value for the page's actions ("" without a session)."""
        return self.session.csrf if self.session is not None else ""

    def context(self, request: Request, nav: str) -> dict:
        """What every page's frame needs."""
        return {"who": self.who, "csrf": self.csrf, "secured": self.secured,
                "signed_in": self.session is not None, "nav": nav,
                "can_write": self.who.can("user"), "path": request.url.path}


def viewer(request: Request) -> Optional[Viewer]:
    """The viewer of a page, or None (show the sign-in form). 403 for a credential without
    the ``read`` scope (an agent's)."""
    book = tokens_of(request)
    if not book.enabled:
        return Viewer(ANONYMOUS, None, False)
    sessions = request.app.state.sessions
    if bearer(request) is None:
        session = sessions.session_of(request)
        if session is None:
            return None
        return Viewer(session.principal, session, True)
    who = caller(request)  # 401 for a bad bearer token
    if not who.can(READ):
        raise HTTPException(403, "this token lacks the 'read' scope")
    return Viewer(who, None, True)


def signin_page(request: Request, error: str = "", status: int = 200,
                target: Optional[str] = None) -> Response:
    """The sign-in form; after signing in the browser goes to ``target`` (default: back to
    this page)."""
    if target is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = safe_next(target)
    return page("signin.html", status=status, error=error, next=target, nav="",
                who=None, csrf="", secured=True, signed_in=False, can_write=False)


def safe_next(target: str) -> str:
    """A path on this master to go back to after signing in (``/`` for anything else, so a
    link cannot send a signed-in browser to another site)."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or len(target) > 2048 or not unicode_ok(target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("/ui/sign"):
        return "/"
    return target


def _render(request: Request, nav: str, template: str, build) -> Response:
    """``template`` with ``build(principal)``'s data, the sign-in form without a viewer, or
    a 404 page when the job or task asked for does not exist."""
    who = viewer(request)
    if who is None:
        return signin_page(request)
    try:
        data = build(who.who)
    except NotFound as exc:
        return page("missing.html", status=404, what=str(exc), **who.context(request, nav))
    return page(template, **data, **who.context(request, nav))


# -- pages --------------------------------------------------------------------------------
@router.get("/")
def jobs_page(request: Request, state: Optional[str] = None, owner: Optional[str] = None,
              group: Optional[str] = None, limit: Optional[str] = None):
    """The job list: live jobs (or archived with ``state=Finished``), newest first, filtered
    by state, owner and capacity group; new jobs appear as they are submitted."""
    state = params.choice("state", state, states.JOB_STATES)
    owner = params.text("owner", owner)
    group = params.text("group", group)
    size = params.count("limit", limit, reads.JOB_LIMIT, 1, 5000)
    filters = {"state": state or "", "owner": owner or "", "group": group or ""}
    who = viewer(request)
    if who is None:
        return signin_page(request)
    data = reads.job_list(master_of(request), state, owner, group, size)
    return page("jobs.html", filters=filters, **data, **who.context(request, "jobs"))


@router.get("/ui/jobs/{job_id}")
def job_detail(request: Request, job_id: str):
    """One job: descriptor, tasks, status history, events; kill and scale for its owner."""
    master = master_of(request)
    return _render(request, "jobs", "job.html", lambda who: reads.job_page(master, job_id, who))


@router.get("/ui/tasks/{task_id}")
def task_detail(request: Request, task_id: str):
    """One task: placement, ports, resources, status history, why it waits, its log's tail."""
    master = master_of(request)
    return _render(request, "jobs", "task.html",
                   lambda who: reads.task_page(master, task_id, who))


@router.get("/ui/hosts")
def hosts_page(request: Request, resource: Optional[str] = None):
    """Hosts by zone, coloured by the utilisation of one resource."""
    names = [engine for engine, _, _ in reads.RESOURCES]
    chosen = params.choice("resource", resource, names, "cpus")
    master = master_of(request)
    return _render(request, "hosts", "hosts.html", lambda _: reads.host_map(master, chosen))


@router.get("/ui/capacity-groups")
def capacity_groups_page(request: Request):
    """Capacity groups: guarantee, limit, usage and share."""
    master = master_of(request)
    return _render(request, "capacity", "capacity_groups.html",
                   lambda _: reads.capacity_groups(master))


@router.get("/ui/instance-groups")
def instance_groups_page(request: Request):
    """Instance groups of the autoscaler: rule, numbers and recent actions."""
    service = service_of(request)
    return _render(request, "instances", "instance_groups.html",
                   lambda _: reads.instance_groups(service))


# -- sign-in ------------------------------------------------------------------------------
@router.get("/ui/signin")
def signin_form(request: Request, next: Optional[str] = None):
    """The sign-in form (on a master without tokens: straight to the job list)."""
    if not tokens_of(request).enabled:
        return RedirectResponse("/", status_code=303)
    return signin_page(request, target=next if isinstance(next, str) else "/")


def _cross_site(request: Request) -> bool:
    """Whether a form post comes from another site (its ``Origin`` or ``Sec-Fetch-Site``
    says so): signing a browser in to someone else's session is refused too."""
    site = request.headers.get("sec-fetch-site", "")
    if site and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin", "")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        return urlsplit(origin).netloc != host
    return origin == "null"


async def _form(request: Request) -> dict:
    """A small ``application/x-www-form-urlencoded`` body as {field: first value}."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != \
            "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > SIGNIN_BODY_BYTES:
                raise HTTPException(413, f"the form is larger than {SIGNIN_BODY_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise HTTPException(400, "the form did not arrive") from None
    try:
        fields = parse_qs(b"".join(chunks).decode("utf-8"), max_num_fields=8,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "the form is not valid UTF-8 form data") from None
    return {k: v[0] for k, v in fields.items() if v}


@router.post("/ui/signin")
async def signin(request: Request):
    """Check the token of the form; if it may read, open a session and set its cookie
    (HttpOnly, SameSite=Strict, Secure over HTTPS), then go to ``next``. At most 10 attempts
    at once per client address, then one per second (429)."""
    book = tokens_of(request)
    if not book.enabled:
        return RedirectResponse("/", status_code=303)
    if _cross_site(request):
        raise HTTPException(403, "sign in from this master's own page")
    client = request.client.host if request.client is not None else ""
    request.app.state.signin_rate.take(client)  # 429 with Retry-After beyond the rate
    form = await _form(request)
    token = form.get("token", "").strip()
    target = safe_next(form.get("next", "/"))
    who = book.lookup(token) if token and unicode_ok(token) and len(token) <= 1024 else None
    if who is None or not who.can(READ):
        reply = signin_page(request, "That token is not valid for this master."
                            if who is None else "That token may not read (an agent's token?).",
                            status=401, target=target)
        reply.headers["Cache-Control"] = "no-store"
        return reply
    sessions = request.app.state.sessions
    old = sessions.cookie_of(request)
    sessions.close(old)  # a new id at every sign-in: no fixation
    session_id, _ = sessions.open(who)
    reply = RedirectResponse(target, status_code=303)
    reply.set_cookie(COOKIE, session_id, max_age=int(sessions.lifetime_sec), path="/",
                     httponly=True, samesite="strict",
                     secure=request.url.scheme == "https")
    reply.headers["Cache-Control"] = "no-store"
    return reply


@router.post("/ui/signout")
async def signout(request: Request):
    """End the session (the form carries its CSRF value) and forget the cookie."""
    sessions = request.app.state.sessions
    session = sessions.session_of(request)
    if session is not None:
        form = await _form(request)
        if form.get("csrf", "") != session.csrf:
            raise HTTPException(403, "sign out from this master's own page")
        sessions.close(sessions.cookie_of(request))
    reply = RedirectResponse("/ui/signin", status_code=303)
    reply.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return reply

