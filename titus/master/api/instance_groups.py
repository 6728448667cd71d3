"""``/api/v3/instanceGroups``: instance groups, their autoscale rules, scaling actions.

The :class:`~titus.autoscale.service.AutoscaleService` is composed, started and stopped beside
the master in ``titus.master.app``; this router only reads and changes its groups and rules.
"""
from __future__ import annotations

import re
from typing import Optional

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from titus.autoscale.groups import InstanceGroup
from titus.autoscale.rules import AutoscaleRule
from titus.autoscale.service import AutoscaleService
from titus.master.api.schemas import body, responses
from titus.master.api.deps import json_body
from titus.master.api.security import require_admin, require_read
from titus.master.errors import Conflict, NotFound
from titus.master.validation import Problem, SpecError

_FIELD_FIRST = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)[: ]")


router = APIRouter(prefix="/api/v3", tags=["instance groups"],
                   dependencies=[Depends(require_read)])


def service_of(request: Request) -> AutoscaleService:
    """The app's autoscale service (composed beside the master in ``titus.master.app``)."""
    return request.app.state.autoscale


def _problems(exc: Exception, what: str) -> SpecError:
    """A 400 naming the bad field, from pydantic's errors or a ``field: message`` ValueError."""
    if isinstance(exc, ValidationError):
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if not field:
                match = _FIELD_FIRST.match(message)
                field = match.group(1) if match else "(body)"
            problems.append(Problem(field, message))
        return SpecError(problems, what)
    message = str(exc)
    match = _FIELD_FIRST.match(message)
    return SpecError([Problem(match.group(1) if match else "(body)", message)], what)


def _resolve_type(service: AutoscaleService, data: dict) -> dict:
    """Let ``instance_type`` be just a name when the provider can describe it (EC2)."""
    name = data.get("instance_type")
    describe = getattr(service.provider, "instance_type", None)
    if isinstance(name, str) and describe is not None:
        try:
            return {**data, "instance_type": describe(name).model_dump()}
        except ValueError as exc:
            raise _problems(exc, "instance group") from None
    return data


def _group_view(service: AutoscaleService, name: str) -> dict:
    for item in service.view():
        if item["name"] == name:
            return item
    raise NotFound(name)


@router.get("/instanceGroups", summary="Every instance group with its rule, numbers and actions")
def list_groups(request: Request):
    """Groups with rule, size, idle, pending and draining hosts, and recent scaling actions."""
    return {"items": service_of(request).view()}


@router.get("/instanceGroups/{name}", responses=responses(404,))
def get_group(request: Request, name: str):
    """One group; 404 if unknown."""
    return _group_view(service_of(request), name)


async def _object_body(request: Request, what: str, path_field: Optional[tuple] = None) -> dict:
    """The request's JSON object; with ``path_field`` (field, value from the path), a body
    naming that field must give the same value."""
    data = await json_body(request)
    if not isinstance(data, dict):
        raise SpecError([Problem("(body)", "must be a JSON object")], what)
    if path_field is not None:
        field, value = path_field
        if data.get(field, value) != value:
            raise SpecError([Problem(field, "must match the path", data.get(field))], what)
    return data


@router.post("/instanceGroups", status_code=201, dependencies=[Depends(require_admin)],
             openapi_extra=body(InstanceGroup), responses=responses(400, 401, 409, 413, 503))
async def create_group(request: Request):
    """Create a group: {name, instance_type, tier?, zones, lifecycle?, min_size?, max_size?}."""
    service = service_of(request)
    data = await _object_body(request, "instance group")
    try:
        group = InstanceGroup.model_validate(_resolve_type(service, data))
    except ValidationError as exc:
        raise _problems(exc, "instance group") from None
    if group.name in service.groups:
        raise Conflict(f"instance group {group.name!r} already exists")
    await run_in_threadpool(_put, service, group)
    return _group_view(service, group.name)


@router.put("/instanceGroups/{name}", dependencies=[Depends(require_admin)],
            openapi_extra=body(InstanceGroup), responses=responses(400, 401, 404, 413, 503))
async def update_group(request: Request, name: str):
    """Change fields of a group (lifecycle, sizes, zones, ...); the name cannot change."""
    service = service_of(request)
    data = await _object_body(request, "instance group", ("name", name))
    try:
        current = service.groups.get(name)
    except KeyError:
        raise NotFound(name) from None
    try:
        group = InstanceGroup.model_validate({**current.model_dump(), **_resolve_type(service, data)})
    except ValidationError as exc:
        raise _problems(exc, "instance group") from None
    await run_in_threadpool(_put, service, group)
    return _group_view(service, name)


@router.delete("/instanceGroups/{name}", dependencies=[Depends(require_admin)],
               responses=responses(401, 404, 503))
def delete_group(request: Request, name: str):
    """Forget a group and its rule (its hosts are left as they are)."""
    try:
        service_of(request).delete_group(name)
    except KeyError:
        raise NotFound(name) from None
    return {}


@router.put("/instanceGroups/{name}/rule", dependencies=[Depends(require_admin)],
            openapi_extra=body(AutoscaleRule), responses=responses(400, 401, 404, 413, 503))
async def set_rule(request: Request, name: str):
    """Set the group's rule: {min_idle, max_idle, min_size?, max_size?, cooldown_sec}."""
    service = service_of(request)
    data = await _object_body(request, "autoscale rule", ("group", name))
    if name not in service.groups:
        raise SpecError([Problem("group", f"instance group {name!r} is not known")], "autoscale rule")
    try:
        rule = AutoscaleRule.model_validate({**data, "group": name})
        service.set_rule(rule)
    except (ValidationError, ValueError) as exc:
        raise _problems(exc, "autoscale rule") from None
    return _group_view(service, name)


@router.delete("/instanceGroups/{name}/rule", dependencies=[Depends(require_admin)],
               responses=responses(401, 404, 503))
def delete_rule(request: Request, name: str):
    """Remove the group's rule (it stops scaling)."""
    service = service_of(request)
    if name not in service.groups:
        raise NotFound(name)
    service.delete_rule(name)
    return {}


@router.get("/instanceGroups/{name}/actions", responses=responses(404,))
def group_actions(request: Request, name: str):
    """The group's recent scaling actions, oldest first."""
    service = service_of(request)
    if name not in service.groups:
        raise NotFound(name)
    return {"items": [a.to_dict() for a in service.autoscaler.recent_actions(name)]}


def _put(service: AutoscaleService, group: InstanceGroup) -> None:
    try:
        service.put_group(group)
    except ValueError as exc:
        raise _problems(exc, "instance group") from None
