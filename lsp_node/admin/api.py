"""The admin JSON API: one table of routes (`ROUTES`), each a thin handler over `Ops`.

A route declares the models of its path parameters, query and body (`http.Route`); one dispatcher
checks the request against them before the handler runs (400 naming the field, never the value),
and the OpenAPI document (`openapi.py`, served at /api/openapi.json) is generated from the same
declarations, so what is documented is what is enforced. The handlers live in `api_node.py` (the
Lightning node) and `api_lsp.py` (the LSP role, pushes, configuration)."""

from __future__ import annotations

import functools
from typing import Any, Final

from aiohttp import web

from lsp_node.admin import api_lsp, api_node, openapi
from lsp_node.admin.http import OPS, Inputs, Route, dispatch
from lsp_node.admin.ops import Ops


@functools.cache
def openapi_document() -> dict[str, Any]:
    return openapi.document(ROUTES)


async def openapi_json(ops: Ops, i: Inputs) -> Any:
    return openapi_document()


ROUTES: Final[list[Route]] = [
    *api_node.ROUTES,
    *api_lsp.ROUTES,
    Route("GET", "/api/openapi.json", openapi_json, "This API's OpenAPI 3.1 document"),
]


def add_routes(app: web.Application, ops: Ops) -> None:
    app[OPS] = ops
    for r in ROUTES:
        app.router.add_route(r.method, r.path, dispatch(r))
