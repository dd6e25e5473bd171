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
from typing import Annotated, Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from lsp_node.engine import fields
from lsp_node.errors import InvalidArgumentError, LspNodeError, NodeNotRunningError

log = logging.getLogger("lsp_node.admin")

TOKEN: web.AppKey[str] = web.AppKey("token", str)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)

DEFAULT_MAX_BODY_BYTES: Final = 65_536
#: LDK's largest channel without `option_support_large_channel` (2^24 - 1 sat).
MAX_CHANNEL_SAT: Final = 16_777_215
MIN_CHANNEL_SAT: Final = 1_000
#: The paths the bearer token guards.
API_PREFIXES: Final = ("/api/", "/metrics")


NodeId = Annotated[str, StringConstraints(pattern=r"^0[23][0-9a-fA-F]{64}$")]
# host:port or [v6]:port; the engine resolves and dials it.
PeerAddress = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-\[\]:]{1,255}:[0-9]{1,5}$")]


class Body(BaseModel):
    # strict: "5" is not 5 and true is not 1; forbid: a misspelled field is an error, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid")


B = TypeVar("B", bound=Body)


def problem(err: Any) -> str:
    """One pydantic error as a sentence; never the input value."""
    where = ".".join(str(p) for p in err["loc"]) or "body"
    kind = err["type"]
    if kind == "missing":
        return f"missing field '{where}'"
    if kind == "extra_forbidden":
        return f"unknown field '{where}'"
    if kind == "string_pattern_mismatch":
        what = {"node_id": "a 33-byte public key in hex (66 characters)", "address": "host:port"}
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
        raise InvalidArgumentError("; ".join(problem(err) for err in e.errors()[:5])) from None
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
