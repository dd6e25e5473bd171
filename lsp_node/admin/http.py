"""HTTP plumbing of the admin API: the bearer-token and error middleware, strict JSON bodies, JSON
answers. Every request to `/api/` or `/metrics` is checked before it reaches the node: bearer token
first (nothing is read before), then the body's size (413), then its shape against the route's
model (400 naming the field). No answer quotes a traceback, a Python type or the input; unexpected
errors are a 500 that points to the log. Other paths (the dashboard) have their own middleware."""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from lsp_node.admin.ops import Ops
from lsp_node.admin.patterns import HEX16, HEX32, NODE_ID, PEER_ADDRESS, anchored
from lsp_node.engine import fields
from lsp_node.errors import InvalidArgumentError, LspNodeError, NodeNotRunningError, NotFoundError

log = logging.getLogger("lsp_node.admin")

TOKEN: web.AppKey[str] = web.AppKey("token", str)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)

DEFAULT_MAX_BODY_BYTES: Final = 65_536
#: LDK's largest channel without `option_support_large_channel` (2^24 - 1 sat).
MAX_CHANNEL_SAT: Final = 16_777_215
MIN_CHANNEL_SAT: Final = 1_000
#: The paths the bearer token guards.
API_PREFIXES: Final = ("/api/", "/metrics")


NodeId = Annotated[str, StringConstraints(pattern=anchored(NODE_ID))]
PeerAddress = Annotated[str, StringConstraints(pattern=anchored(PEER_ADDRESS))]


class Body(BaseModel):
    # strict: "5" is not 5 and true is not 1; forbid: a misspelled field is an error, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid")


B = TypeVar("B", bound=Body)


#: What a field whose text does not match its pattern must be, by field name (a model's
#: `PATTERNS` class variable overrides it for its own fields).
PATTERNS: Final = {
    "node_id": "a 33-byte public key in hex (66 characters)",
    "client": "a 33-byte public key in hex (66 characters)",
    "address": "host:port",
    "channel_id": "a 32-byte channel id in hex (64 characters)",
    "hold_id": "a 16-byte hold id in hex (32 characters)",
    "push_id": "a number",
}


def problem(err: Any, patterns: dict[str, str] | None = None) -> str:
    """One pydantic error as a sentence; never the input value."""
    where = ".".join(str(p) for p in err["loc"]) or "body"
    kind = err["type"]
    if kind == "missing":
        return f"missing field '{where}'"
    if kind == "extra_forbidden":
        return f"unknown field '{where}'"
    if kind == "value_error" and not err["loc"]:
        return str(err["msg"]).removeprefix("Value error, ")  # a rule over several fields: ours
    if kind == "string_pattern_mismatch":
        what = {**PATTERNS, **(patterns or {})}
        return f"field '{where}' must be {what.get(where, 'well-formed')}"
    return f"field '{where}': {err['msg']}"


async def read_body(request: web.Request, model: type[B]) -> B:
    """The request's JSON object, checked against `model`; InvalidArgumentError otherwise."""
    raw = await request.read()  # bounded by the application's client_max_size (413)
    if not raw.strip():
        raise InvalidArgumentError("the request needs a JSON object body")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InvalidArgumentError("the request body is nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidArgumentError("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        patterns = getattr(model, "PATTERNS", None)
        raise InvalidArgumentError("; ".join(problem(err, patterns) for err in e.errors()[:5])) from None
    except RecursionError:
        raise InvalidArgumentError("the request body is nested too deeply") from None


def error_response(status: int, message: str, kind: str | None = None) -> web.Response:
    body = {"error": message} if kind is None else {"error": message, "kind": kind}
    return web.json_response(body, status=status)


def _authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, supplied = header.partition(" ")
    if scheme != "Bearer":
        return False
    # Bytes compare in constant time; a header that is not ASCII simply does not match.
    got = supplied.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(got, request.app[TOKEN].encode())


@web.middleware
async def auth_and_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    limit = request.app[MAX_BODY]
    if request.path.startswith(API_PREFIXES):
        if not _authorized(request):
            return error_response(
                401, "missing or wrong bearer token (Authorization: Bearer <contents of admin.token>)"
            )
        if request.content_length is not None and request.content_length > limit:
            return error_response(413, f"request body larger than {limit} bytes")
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"request body larger than {limit} bytes")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(e.status, e.reason)  # 404 Not Found, 405 Method Not Allowed
    except NotFoundError as e:
        return error_response(404, str(e), type(e).__name__)
    except NodeNotRunningError as e:
        return error_response(503, str(e), type(e).__name__)
    except LspNodeError as e:
        # Our own errors carry sentences meant for the operator (SPEC.md, errors.py).
        return error_response(400, str(e), type(e).__name__)
    except Exception:
        # The details are in the log only; an answer must not show internals.
        log.exception("admin: %s %s failed", request.method, request.path)
        return error_response(500, "internal error; the LSP's log has the details")


def plain(x: Any) -> Any:
    """Dataclasses (the LSP's records) and the engine's frozen classes as JSON-ready dicts."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.asdict(x)
    if hasattr(type(x), "__match_args__"):
        return fields(x)
    if isinstance(x, list):
        return [plain(v) for v in x]
    return x


def json_response(v: Any) -> web.Response:
    return web.json_response(plain(v))


# -- routes: what a request must carry, checked before the handler runs --------------------------

OPS: web.AppKey[Ops] = web.AppKey("ops", Ops)

#: Largest page a listing returns.
MAX_LIMIT: Final = 500
#: More than the supply of bitcoin in msat: amounts above it are typos, not payments.
MAX_MSAT: Final = 21_000_000 * 100_000_000 * 1000
MAX_SAT: Final = 21_000_000 * 100_000_000

Hex32 = Annotated[str, StringConstraints(pattern=anchored(HEX32))]
Hex16 = Annotated[str, StringConstraints(pattern=anchored(HEX16))]


class Query(BaseModel):
    """Query parameters: text on the wire, so numbers are parsed from their digits; an unknown
    parameter is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Page(Query):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT, description="rows in the page")
    offset: int = Field(default=0, ge=0, le=10**9, description="rows skipped (newest first)")


class PathParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Inputs:
    """A request's checked parts, as the route's models."""

    path: PathParams | None
    query: Query | None
    body: Body | None

    def get(self, model: type[M]) -> M:
        for part in (self.path, self.query, self.body):
            if isinstance(part, model):
                return part
        raise TypeError(f"the route declares no {model.__name__}")  # a bug in the route table


Handler = Callable[[Ops, Inputs], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[Body] | None = None
    query: type[Query] | None = None
    params: type[PathParams] | None = None
    #: A valid body, for the OpenAPI document (and checked against it by the tests).
    example: dict[str, Any] | None = None
    #: The LSP role's routes (tagged in the document; 400 when the role is off).
    lsp: bool = False


def _check(model: type[M], data: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        patterns = getattr(model, "PATTERNS", None)
        reasons = "; ".join(problem(err, patterns).replace("field", where, 1) for err in e.errors()[:5])
        raise InvalidArgumentError(reasons) from None


def _query(request: web.Request, model: type[Query] | None) -> Query | None:
    q = request.query
    if len(set(q.keys())) != len(q):
        raise InvalidArgumentError("a query parameter is repeated")
    if model is None:
        if q:
            raise InvalidArgumentError("this route takes no query parameters")
        return None
    return _check(model, dict(q), "query parameter")


def dispatch(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        path = _check(route.params, dict(request.match_info), "path parameter") if route.params else None
        query = _query(request, route.query)
        body = await read_body(request, route.body) if route.body else None
        return json_response(await route.handler(request.app[OPS], Inputs(path, query, body)))

    return handle
