"""Operator's admin API: JSON over HTTP on loopback, every call needs the bearer token that is
generated on first start (file mode 0600, never logged).

Every request is checked before it reaches the node: bearer token first (nothing is read before),
then the body's size (413), then its shape against the route's model (400 naming the field). No
answer quotes a traceback, a Python type or the input; unexpected errors are a 500 that points to
the log.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from lsp_node.engine import LightningNode, fields
from lsp_node.errors import ConfigError, InvalidArgumentError, LspNodeError, NodeNotRunningError
from lsp_node.lsp import LspService

log = logging.getLogger("lsp_node.admin")

NODE: web.AppKey[LightningNode] = web.AppKey("node", LightningNode)
SERVICE: web.AppKey[LspService | None] = web.AppKey("service", object)  # type: ignore[arg-type]
TOKEN: web.AppKey[str] = web.AppKey("token", str)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)

DEFAULT_MAX_BODY_BYTES: Final = 65_536
#: What a token file must hold: what `secrets.token_urlsafe` makes, at least 32 characters.
TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{32,512}")
#: LDK's largest channel without `option_support_large_channel` (2^24 - 1 sat).
MAX_CHANNEL_SAT: Final = 16_777_215
MIN_CHANNEL_SAT: Final = 1_000


# -- the token file ---------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    """Write `path` so that a crash leaves either no file or the whole token: a temporary file
    (0600 from its creation), fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_or_create_token(path: Path) -> str:
    """The admin token: read from `path`, or generated and written there on first start.

    An empty or malformed file is refused rather than trusted: an empty token would open the API
    to requests without a header.
    """
    fix = f"delete {path} to have a new token generated on the next start, or write one of 32 to 512 characters A-Z a-z 0-9 _ -"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        try:
            _write_atomically(path, token)
        except OSError as e:
            raise ConfigError(f"cannot write the admin token file {path}: {e.strerror}") from None
        return token
    except OSError as e:
        raise ConfigError(f"cannot read the admin token file {path}: {e.strerror}") from None
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"the admin token file {path} is not ASCII text; {fix}") from None
    if not token:
        raise ConfigError(f"the admin token file {path} is empty; {fix}")
    if not TOKEN_RE.fullmatch(token):
        # The message never quotes the file's content: it may be a real secret.
        raise ConfigError(f"the admin token file {path} does not hold a valid token; {fix}")
    return token


# -- request bodies ---------------------------------------------------------------------------------

NodeId = Annotated[str, StringConstraints(pattern=r"^0[23][0-9a-fA-F]{64}$")]
# host:port or [v6]:port; the engine resolves and dials it.
PeerAddress = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-\[\]:]{1,255}:[0-9]{1,5}$")]


class _Body(BaseModel):
    # strict: "5" is not 5 and true is not 1; forbid: a misspelled field is an error, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid")


class ConnectBody(_Body):
    node_id: NodeId
    address: PeerAddress


class OpenChannelBody(_Body):
    node_id: NodeId
    amount_sat: int = Field(ge=MIN_CHANNEL_SAT, le=MAX_CHANNEL_SAT)
    push_msat: int = Field(default=0, ge=0, le=MAX_CHANNEL_SAT * 1000)
    announce: bool = False


B = TypeVar("B", bound=_Body)


def _problem(err: Any) -> str:
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


async def _body(request: web.Request, model: type[B]) -> B:
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
        raise InvalidArgumentError("; ".join(_problem(err) for err in e.errors()[:5])) from None
    except RecursionError:
        raise InvalidArgumentError("the request body is nested too deeply") from None


# -- middleware -------------------------------------------------------------------------------------


def _error(status: int, message: str, kind: str | None = None) -> web.Response:
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
    if not _authorized(request):
        return _error(401, "missing or wrong bearer token (Authorization: Bearer <contents of admin.token>)")
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"request body larger than {limit} bytes")
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body larger than {limit} bytes")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _error(e.status, e.reason)  # 404 Not Found, 405 Method Not Allowed
    except NodeNotRunningError as e:
        return _error(503, str(e), type(e).__name__)
    except LspNodeError as e:
        # Our own errors carry sentences meant for the operator (SPEC.md, errors.py).
        return _error(400, str(e), type(e).__name__)
    except Exception:
        # The details are in the log only; an answer must not show internals.
        log.exception("admin: %s %s failed", request.method, request.path)
        return _error(500, "internal error; the LSP's log has the details")


# -- routes -----------------------------------------------------------------------------------------


def _plain(x: Any) -> Any:
    """Dataclasses (the LSP's records) and the engine's frozen classes as JSON-ready dicts."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.asdict(x)
    if hasattr(type(x), "__match_args__"):
        return fields(x)
    return x


def _json(v: Any) -> web.Response:
    return web.json_response([_plain(x) for x in v] if isinstance(v, list) else _plain(v))


async def info(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return _json(
        {
            "node_id": node.node_id,
            "listen_addr": node.listen_addr,
            "network": node.network,
            "block_height": node.best_block_height,
            "balance": fields(node.balance()),
            "channels": len(node.channels()),
            "peers": len(node.peers()),
        }
    )


async def new_address(request: web.Request) -> web.Response:
    return _json({"address": await request.app[NODE].new_address()})


async def sync(request: web.Request) -> web.Response:
    await request.app[NODE].sync()
    return _json({"block_height": request.app[NODE].best_block_height})


async def connect(request: web.Request) -> web.Response:
    b = await _body(request, ConnectBody)
    await request.app[NODE].connect(b.node_id.lower(), b.address)
    return _json({"connected": b.node_id.lower()})


async def peers(request: web.Request) -> web.Response:
    return _json(request.app[NODE].peers())


async def open_channel(request: web.Request) -> web.Response:
    b = await _body(request, OpenChannelBody)
    if b.push_msat > b.amount_sat * 1000:
        raise InvalidArgumentError("field 'push_msat' must not exceed amount_sat * 1000")
    user_channel_id = await request.app[NODE].open_channel(
        b.node_id.lower(), b.amount_sat, push_msat=b.push_msat, announce=b.announce
    )
    return _json({"user_channel_id": user_channel_id})


async def channels(request: web.Request) -> web.Response:
    return _json(request.app[NODE].channels())


def _service(request: web.Request) -> LspService:
    service = request.app[SERVICE]
    if service is None:
        raise InvalidArgumentError("the LSP role is disabled on this node")
    return service


async def holds(request: web.Request) -> web.Response:
    store = _service(request).store

    def read() -> list[dict[str, Any]]:
        return [
            {**dataclasses.asdict(h), "htlcs": [dataclasses.asdict(x) for x in store.htlcs(h.hold_id)]}
            for h in store.holds()
        ]

    # On the database thread, in one read transaction: the loop does not wait on SQLite.
    return _json(await store.run(read))


async def mailbox(request: web.Request) -> web.Response:
    store = _service(request).store
    return _json(await store.run(store.messages))


def create_app(
    node: LightningNode, service: LspService | None, token: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> web.Application:
    if not TOKEN_RE.fullmatch(token):
        raise ConfigError("the admin token must be 32 to 512 characters A-Z a-z 0-9 _ -")
    app = web.Application(middlewares=[auth_and_errors], client_max_size=max_body_bytes)
    app[NODE] = node
    app[SERVICE] = service
    app[TOKEN] = token
    app[MAX_BODY] = max_body_bytes
    app.router.add_get("/api/info", info)
    app.router.add_post("/api/newaddress", new_address)
    app.router.add_post("/api/sync", sync)
    app.router.add_post("/api/connect", connect)
    app.router.add_get("/api/peers", peers)
    app.router.add_post("/api/channels", open_channel)
    app.router.add_get("/api/channels", channels)
    app.router.add_get("/api/holds", holds)
    app.router.add_get("/api/mailbox", mailbox)
    return app


async def serve(app: web.Application, listen: str) -> tuple[web.AppRunner, str]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"admin.listen '{listen}' is not host:port (e.g. 127.0.0.1:9736)")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]"), int(port))
    await site.start()
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}"
