"""The OpenAPI 3.1 document of the admin API, generated from the route table and the pydantic
models the dispatcher enforces (`http.Route`), so the document cannot drift from the API."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from lsp_node import _ldk
from lsp_node.admin.http import Route

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what was wrong, for a person"},
        "kind": {"type": "string", "description": "the error's class (engine and LSP refusals)"},
    },
    "required": ["error"],
}
ERRORS = {
    "400": "the request or the node refused it (the reason is in `error`)",
    "401": "missing or wrong bearer token",
    "404": "no such route, or no such hold, channel, peer or push",
    "405": "method not allowed on this path",
    "413": "request body too large",
    "503": "the node is not running",
}


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    s = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(s.pop("$defs", {}))
    return s


def _parameters(model: type[BaseModel] | None, where: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    if model is None:
        return []
    s = _schema(model, schemas)
    required = set(s.get("required", []))
    return [
        {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": {k: v for k, v in prop.items() if k != "title"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in s.get("properties", {}).items()
    ]


def operation_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.path.removeprefix("/api/")).replace("/", "_").replace(".", "_")
    return f"{route.method.lower()}_{words}"


def document(routes: Sequence[Route]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": operation_id(r),
            "tags": ["lsp" if r.lsp else "node"],
            "parameters": _parameters(r.params, "path", schemas) + _parameters(r.query, "query", schemas),
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {}}}},
                **{
                    code: {
                        "description": why,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
                    for code, why in ERRORS.items()
                },
            },
        }
        if r.body is not None:
            schemas[r.body.__name__] = _schema(r.body, schemas)
            media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{r.body.__name__}"}}
            if r.example is not None:
                media["example"] = r.example
            op["requestBody"] = {"required": True, "content": {"application/json": media}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lsp-node admin API",
            "version": _ldk.__version__,
            "description": "Operate the Lightning node and its LightningRod LSP role. Every route needs "
            "`Authorization: Bearer <contents of admin.token>`. Amounts are in msat or sat as named; "
            "times are unix seconds.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
