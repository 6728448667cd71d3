"""The per-container EC2-style metadata service (Titus's metadata proxy).

Each container sees an instance-metadata endpoint scoped to ITS task: ``instance-id`` is the
task id, ``local-ipv4`` the container's IP, ``placement/availability-zone`` the agent's zone,
and ``iam/security-credentials/{role}`` temporary credentials from STS AssumeRole of the job's
``iamRole``. A caller is identified either

- by a per-task secret path token: containers get
  ``AWS_EC2_METADATA_SERVICE_ENDPOINT={base}/task/{token}``, so AWS SDKs inside them read
  ``{base}/task/{token}/latest/meta-data/...``; or
- by its source IP, for requests to ``{base}/latest/meta-data/...`` (the container's bridge
  address maps to its task).

A request that matches no task gets 404: a container can read only its own identity. An
identity answers only while its container runs: the runtime forgets it when the container
stops, and each lookup also asks the runtime whether the container still runs at the recorded
address (a stop may not have been seen yet, and a stopped container's address is handed to the
next one). Two live identities claiming one address answer 404: neither can be trusted.
IMDSv2 is honoured as far as SDKs need it: ``PUT .../latest/api/token`` returns a session token.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT_ID = "000000000000"


@dataclass(frozen=True)
class TaskIdentity:
    """What the metadata service may tell one task's container about itself."""

    task_id: str
    job_id: str
    token: str
    ip: str = ""
    zone: str = ""
    iam_role: str | None = None
    container_id: str = ""


Liveness = Callable[[TaskIdentity], bool]


class MetadataRegistry:
    """Thread-safe map of the tasks whose containers may query the service.

    ``credentials`` (a :class:`StsCredentials`, settable later) serves the IAM routes of a
    router built without its own. ``alive`` (settable later; the Docker runtime installs its
    own) tells whether an identity's container runs now at the identity's address: lookups
    answer only identities it confirms, and an error in it counts as "not running". Without
    it, the entries are trusted as registered.
    """

    def __init__(self, credentials: "StsCredentials | None" = None,
                 alive: Liveness | None = None) -> None:
        self.credentials = credentials
        self.alive = alive
        self._by_task: dict[str, TaskIdentity] = {}
        self._lock = threading.Lock()

    def register(self, identity: TaskIdentity) -> None:
        """Add (or replace) a task's identity."""
        if not identity.task_id:
            raise ValueError("task_id: must not be empty")
        if len(identity.token) < 16:
            raise ValueError("token: must be at least 16 characters (it is the container's secret)")
        with self._lock:
            self._by_task[identity.task_id] = identity

    def unregister(self, task_id: str) -> None:
        """Forget a task (its container stopped); neither its token nor its address answers."""
        with self._lock:
            self._by_task.pop(task_id, None)

    def set_ip(self, task_id: str, ip: str) -> None:
        """Record the container's address once Docker has assigned it."""
        with self._lock:
            known = self._by_task.get(task_id)
            if known is not None:
                self._by_task[task_id] = replace(known, ip=ip or "")

    def get(self, task_id: str) -> TaskIdentity | None:
        """The identity of a task, or None."""
        with self._lock:
            return self._by_task.get(task_id)

    def ip_of(self, task_id: str) -> str:
        """The container IP recorded for a task ("" when unknown)."""
        identity = self.get(task_id)
        return identity.ip if identity else ""

    def by_token(self, token: str) -> TaskIdentity | None:
        """The task whose container was given this path token, while that container runs."""
        wanted = token.encode()  # bytes: compare_digest refuses non-ASCII str
        with self._lock:
            found = next((i for i in self._by_task.values()
                          if secrets.compare_digest(i.token.encode(), wanted)), None)
        return found if found is not None and self._is_alive(found) else None

    def by_ip(self, ip: str) -> TaskIdentity | None:
        """The one task whose running container has this source address.

        None when no live identity claims it, or when several do: addresses are reused once a
        container stops, so a second claim means one is stale, and answering either could hand
        a container another job's identity."""
        if not ip:
            return None
        with self._lock:
            claims = [i for i in self._by_task.values() if i.ip == ip]
        live = [i for i in claims if self._is_alive(i)]  # outside the lock: it may ask Docker
        if len(live) > 1:
            log.warning("address %s is claimed by live tasks %s: answering none", ip,
                        sorted(i.task_id for i in live))
            return None
        return live[0] if live else None

    def _is_alive(self, identity: TaskIdentity) -> bool:
        check = self.alive
        if check is None:
            return True
        try:
            return bool(check(identity))
        except Exception as exc:  # unknown liveness must not hand out credentials
            log.warning("liveness of %s unknown (%s): not answering it", identity.task_id, exc)
            return False


def role_arn(role: str, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
    """A full role ARN from a job's iamRole, which may be an ARN or a bare role name."""
    if role.startswith("arn:"):
        return role
    name = role.removeprefix("role/")
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"iamRole: expected a role name or ARN, got {role!r}")
    return f"arn:aws:iam::{account_id}:role/{name}"


def role_name(role: str) -> str:
    """The name part of a role ARN or name (what ``iam/security-credentials/`` lists)."""
    return role.rsplit("/", 1)[-1] if "/" in role else role


class StsCredentials:
    """Temporary credentials from STS AssumeRole, cached per (role, task) until near expiry.

    ``endpoint_url`` points boto3 at another STS (tests use moto's server); ``session``
    defaults to the agent's own AWS identity.
    """

    def __init__(self, endpoint_url: str | None = None, region: str = "us-east-1",
                 account_id: str = DEFAULT_ACCOUNT_ID, duration_sec: int = 3600,
                 refresh_before_sec: int = 300, session=None) -> None:
        import boto3  # imported here: agents without IAM roles never need it

        if not 900 <= duration_sec <= 43200:
            raise ValueError(f"duration_sec: must be within 900..43200, got {duration_sec!r}")
        self.account_id = account_id
        self.duration_sec = duration_sec
        self.refresh_before_sec = refresh_before_sec
        session = session or boto3.session.Session()
        self._sts = session.client("sts", region_name=region, endpoint_url=endpoint_url)
        self._cache: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: dict | None = None) -> "StsCredentials":
        """Settings from ``TITUS_STS_ENDPOINT`` (default: AWS's), ``TITUS_STS_REGION`` (else
        ``AWS_REGION``, else us-east-1) and ``TITUS_AWS_ACCOUNT_ID`` (for bare role names)."""
        env = os.environ if env is None else env
        return cls(endpoint_url=env.get("TITUS_STS_ENDPOINT") or None,
                   region=env.get("TITUS_STS_REGION") or env.get("AWS_REGION") or "us-east-1",
                   account_id=env.get("TITUS_AWS_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID)

    def for_task(self, identity: TaskIdentity) -> dict:
        """Credentials for the task's role, in the EC2 metadata JSON shape."""
        if not identity.iam_role:
            raise LookupError("the task has no iamRole")
        key = (identity.iam_role, identity.task_id)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached["_expires"] - time.time() > self.refresh_before_sec:
                return {k: v for k, v in cached.items() if not k.startswith("_")}
        # Session names are the task id, so CloudTrail shows which task acted.
        session_name = "".join(c if c.isalnum() or c in "=,.@-_" else "_"
                               for c in identity.task_id)[:64]
        reply = self._sts.assume_role(RoleArn=role_arn(identity.iam_role, self.account_id),
                                      RoleSessionName=session_name or "titus-task",
                                      DurationSeconds=self.duration_sec)
        creds = reply["Credentials"]
        expiration: dt.datetime = creds["Expiration"]
        doc = {
            "Code": "Success",
            "LastUpdated": _iso(dt.datetime.now(dt.timezone.utc)),
            "Type": "AWS-HMAC",
            "AccessKeyId": creds["AccessKeyId"],
            "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds["SessionToken"],
            "Expiration": _iso(expiration),
        }
        with self._lock:
            self._cache[key] = {**doc, "_expires": expiration.timestamp()}
        return doc


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_META_INDEX = "instance-id\nlocal-ipv4\nplacement/\niam/\n"


def build_router(registry: MetadataRegistry,
                 credentials: StsCredentials | None = None) -> APIRouter:
    """The metadata routes, to mount in the agent's server or serve alone (:func:`create_app`)."""
    router = APIRouter(tags=["metadata"])

    def caller(request: Request, token: str | None) -> TaskIdentity:
        identity = registry.by_token(token) if token is not None else \
            registry.by_ip(request.client.host if request.client else "")
        if identity is None:
            raise HTTPException(status_code=404, detail="not found")
        return identity

    def answer(identity: TaskIdentity, path: str):
        path = path.strip("/")
        if path == "":
            return PlainTextResponse(_META_INDEX)
        if path == "instance-id":
            return PlainTextResponse(identity.task_id)
        if path == "local-ipv4":
            return PlainTextResponse(identity.ip)
        if path == "placement":
            return PlainTextResponse("availability-zone\n")
        if path == "placement/availability-zone":
            return PlainTextResponse(identity.zone)
        if path == "iam":
            return PlainTextResponse("security-credentials/\n")
        if path == "iam/security-credentials":
            if not identity.iam_role:
                raise HTTPException(status_code=404, detail="no iamRole")
            return PlainTextResponse(role_name(identity.iam_role))
        if path.startswith("iam/security-credentials/"):
            asked = path.split("/", 2)[2]
            provider = credentials or registry.credentials
            if not identity.iam_role or asked != role_name(identity.iam_role) or provider is None:
                raise HTTPException(status_code=404, detail="not found")
            try:
                return JSONResponse(provider.for_task(identity))
            except Exception as exc:  # STS refused: the SDK inside should see a server error
                raise HTTPException(status_code=502, detail=f"AssumeRole failed: {exc}") from None
        raise HTTPException(status_code=404, detail="not found")

    def api_token(identity: TaskIdentity):
        # IMDSv2 session token: identity already comes from the path or source address.
        return PlainTextResponse(secrets.token_urlsafe(32), headers={
            "X-aws-ec2-metadata-token-ttl-seconds": "21600"})

    @router.get("/task/{token}/latest/meta-data/{path:path}")
    def by_token(token: str, path: str, request: Request):
        """Metadata for the container that holds this path token."""
        return answer(caller(request, token), path)

    @router.put("/task/{token}/latest/api/token")
    def token_v2(token: str, request: Request):
        """IMDSv2 session token for the container that holds this path token."""
        return api_token(caller(request, token))

    @router.get("/latest/meta-data/{path:path}")
    def by_address(path: str, request: Request):
        """Metadata for the container calling from its own address."""
        return answer(caller(request, None), path)

    @router.put("/latest/api/token")
    def token_v2_by_address(request: Request):
        """IMDSv2 session token for the container calling from its own address."""
        return api_token(caller(request, None))

    return router


def create_app(registry: MetadataRegistry, credentials: StsCredentials | None = None) -> FastAPI:
    """A standalone app serving only the metadata routes."""
    app = FastAPI(title="titus container metadata", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(build_router(registry, credentials))
    return app


class MetadataServer:
    """Serve :func:`create_app` on its own address in a background thread."""

    def __init__(self, registry: MetadataRegistry, credentials: StsCredentials | None = None,
                 host: str = "0.0.0.0", port: int = 0) -> None:
        import socket

        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        from titus.http_server import HTTP_PROTOCOL

        # containers call it: their request heads are bounded
        config = uvicorn.Config(create_app(registry, credentials), log_level="warning",
                                lifespan="off", http=HTTP_PROTOCOL)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="metadata-server", daemon=True)

    def start(self) -> "MetadataServer":
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started and time.time() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise RuntimeError("metadata server did not start")
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()
