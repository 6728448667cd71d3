"""Request body schemas for the OpenAPI document.

Some endpoints read their body themselves (to answer 400 with every bad field, or to parse a
heartbeat straight from bytes), so FastAPI cannot see the model; ``body(Model)`` declares it
for ``/openapi.json`` and ``install_schemas`` adds the models to the document's components.
"""
from __future__ import annotations

from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from titus.protocol import Heartbeat
from titus.master.model import CapacityGroupSpec, CapacityUpdate, JobDescriptor

MODELS = (JobDescriptor, CapacityUpdate, CapacityGroupSpec, Heartbeat)
REF = "#/components/schemas/{model}"


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
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi


def _shape(schema: dict) -> tuple:
    """What tells two models apart (FastAPI and pydantic render defaults differently)."""
    return (schema.get("description"), tuple(sorted(schema.get("properties", {}))))
