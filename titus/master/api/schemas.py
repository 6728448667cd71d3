"""Request body schemas for the OpenAPI document.

Some endpoints read their body themselves (to answer 400 with every bad field, or to parse a
heartbeat straight from bytes), so FastAPI cannot see the model; ``body(Model)`` declares it
for ``/openapi.json`` and ``install_schemas`` adds the models to the document's components.
"""
from __future__ import annotations

from typing import Any, Optional

from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from titus.autoscale.groups import InstanceGroup
from titus.autoscale.rules import AutoscaleRule
from titus.protocol import Heartbeat, RegisterRequest
from titus.master.model import CapacityGroupSpec, CapacityUpdate, JobDescriptor

MODELS = (JobDescriptor, CapacityUpdate, CapacityGroupSpec, Heartbeat, RegisterRequest,
          InstanceGroup, AutoscaleRule)
REF = "#/components/schemas/{model}"


class ProblemOut(BaseModel):
    """One bad field of a refused request."""

    field: str
    message: str
    value: Optional[Any] = None


class ErrorOut(BaseModel):
    """Every error answer: what went wrong, and each field at fault (may be empty)."""

    error: str
    problems: list[ProblemOut] = []


ERROR_TEXT = {400: "Bad input: each problem names a field", 401: "No valid token",
              403: "The token may not do this", 404: "No such object",
              408: "The body came too slowly",
              409: "Conflicts with the object's state", 413: "Body too large",
              415: "The body is not declared application/json",
              422: "The Idempotency-Key was used with another body",
              429: "Too many requests", 503: "The store is unavailable; nothing changed"}


def responses(*codes: int) -> dict:
    """``responses=`` of a route: the documented error answers, all :class:`ErrorOut`."""
    return {code: {"model": ErrorOut, "description": ERROR_TEXT[code]} for code in codes}


def body(model) -> dict:
    """``openapi_extra`` declaring ``model`` as the JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": REF.format(model=model.__name__)}}}}}


def install_schemas(app) -> None:
    """Make ``app.openapi()`` include the component schemas of :data:`MODELS`."""

    def openapi():
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in defs.get("$defs", {}).items():
                # one name, one model: a clash would point some $ref at the wrong model
                if name in schemas and _shape(schemas[name]) != _shape(schema):
                    raise RuntimeError(f"two OpenAPI schemas are named {name!r}")
                schemas[name] = schema
            _validation_is_400(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi


def _shape(schema: dict) -> tuple:
    """What tells two models apart (FastAPI and pydantic render defaults differently)."""
    return (schema.get("description"), tuple(sorted(schema.get("properties", {}))))


def _validation_is_400(doc: dict) -> None:
    """FastAPI documents a 422 for bad parameters; this API answers those with 400. Every
    route but /health* may also answer 401 and 403 (api/security.py), every body 415, every
    user request 429 (api/admission.py)."""
    for path, ops in doc.get("paths", {}).items():
        for op in ops.values():
            answers = op.get("responses", {})
            if "requestBody" in op:  # every body is read by deps.read_body
                answers.setdefault("408", _error_answer(408))
                answers.setdefault("415", _error_answer(415))
            if not path.startswith("/health"):  # every other route needs a token (if any)
                answers.setdefault("401", _error_answer(401))
                answers.setdefault("403", _error_answer(403))
            if not path.startswith(("/health", "/metrics", "/api/v3/agents/")) or \
                    path == "/api/v3/agents":  # user requests are admitted (api/admission.py)
                answers.setdefault("429", _error_answer(429))
            generated = answers.get("422", {})
            if "HTTPValidationError" in str(generated.get("content", "")):
                del answers["422"]
                answers.setdefault("400", _error_answer(400))
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and name not in str(doc.get("paths")):
            del schemas[name]


def _error_answer(code: int) -> dict:
    return {"description": ERROR_TEXT[code], "content": {"application/json": {
        "schema": {"$ref": REF.format(model="ErrorOut")}}}}
