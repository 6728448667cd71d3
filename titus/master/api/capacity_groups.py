"""``/api/v3/capacityGroups``: tiers and guaranteed resources of capacity groups."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from titus.master.api.deps import json_body, master_of
from titus.master.api.security import require_admin, require_read
from titus.master.api.schemas import body, responses
from titus.master.capacity import CapacityGroup
from titus.master.model import CapacityGroupSpec
from titus.master.validation import Problem, SpecError, parse_capacity_group

router = APIRouter(prefix="/api/v3", tags=["capacity groups"],
                   dependencies=[Depends(require_read)])


def _view(master, name: str) -> dict:
    return master.queries.capacity_groups(name)[0]


@router.get("/capacityGroups", summary="Every capacity group")
def list_groups(request: Request):
    """Groups with their tier, guarantee, limit and current usage."""
    return {"items": master_of(request).queries.capacity_groups()}


@router.get("/capacityGroups/{name}", responses=responses(404,))
def get_group(request: Request, name: str):
    """One group; 404 if unknown."""
    return _view(master_of(request), name)


@router.post("/capacityGroups", status_code=201, dependencies=[Depends(require_admin)],
             openapi_extra=body(CapacityGroupSpec), responses=responses(400, 401, 413, 503))
async def create_group(request: Request):
    """Create or replace a group: {name, tier: Critical|Flex, resources, limit?}."""
    master = master_of(request)
    spec = parse_capacity_group(await json_body(request, "capacity group"),
                                master.settings.input)
    group = CapacityGroup.from_spec(spec)
    await run_in_threadpool(master.put_capacity_group, group)
    return _view(master, group.name)


@router.put("/capacityGroups/{name}", dependencies=[Depends(require_admin)],
            openapi_extra=body(CapacityGroupSpec), responses=responses(400, 401, 413, 503))
async def update_group(request: Request, name: str):
    """Replace a group; the body's name, if given, must match the path."""
    master = master_of(request)
    data = await json_body(request, "capacity group")
    if isinstance(data, dict):
        if data.get("name", name) != name:
            raise SpecError([Problem("name", "must match the path", data.get("name"))],
                            "capacity group")
        data = {**data, "name": name}
    spec = parse_capacity_group(data, master.settings.input)
    group = CapacityGroup.from_spec(spec)
    await run_in_threadpool(master.put_capacity_group, group)
    return _view(master, group.name)


@router.delete("/capacityGroups/{name}", dependencies=[Depends(require_admin)],
               responses=responses(401, 404, 503))
def delete_group(request: Request, name: str):
    """Remove a group (its jobs fall back to a Flex group without guarantee)."""
    master_of(request).delete_capacity_group(name)
    return {}
