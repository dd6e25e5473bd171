"""Operator's admin API: JSON over HTTP on loopback, every call needs the bearer token that is
generated on first start (file mode 0600, never logged)."""

from __future__ import annotations

import dataclasses
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from lsp_node.engine import LightningNode, fields
from lsp_node.errors import InvalidArgumentError, LspNodeError
from lsp_node.lsp import LspService

NODE: web.AppKey[LightningNode] = web.AppKey("node", LightningNode)
SERVICE: web.AppKey[LspService | None] = web.AppKey("service", object)  # type: ignore[arg-type]
TOKEN: web.AppKey[str] = web.AppKey("token", str)


def load_or_create_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        return token


@web.middleware
async def auth_and_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(supplied.encode(), request.app[TOKEN].encode()):
        return web.json_response({"error": "missing or wrong bearer token"}, status=401)
    try:
        return await handler(request)
    except (LspNodeError, ValueError, KeyError, TypeError) as e:
        kind = type(e).__name__
        msg = str(e) if not isinstance(e, KeyError) else f"missing field {e}"
        return web.json_response({"error": msg, "kind": kind}, status=400)


def _plain(x: Any) -> Any:
    """Dataclasses (the LSP's records) and the engine's frozen classes as JSON-ready dicts."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.asdict(x)
    if hasattr(type(x), "__match_args__"):
        return fields(x)
    return x


def _json(v: Any) -> web.Response:
    return web.json_response([_plain(x) for x in v] if isinstance(v, list) else _plain(v))


async def _body(request: web.Request) -> dict[str, Any]:
    body = await request.json() if request.can_read_body else {}
    if not isinstance(body, dict):
        raise InvalidArgumentError("the request body must be a JSON object")
    return body


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
    b = await _body(request)
    await request.app[NODE].connect(str(b["node_id"]), str(b["address"]))
    return _json({"connected": b["node_id"]})


async def peers(request: web.Request) -> web.Response:
    return _json(request.app[NODE].peers())


async def open_channel(request: web.Request) -> web.Response:
    b = await _body(request)
    user_channel_id = await request.app[NODE].open_channel(
        str(b["node_id"]),
        int(b["amount_sat"]),
        push_msat=int(b.get("push_msat", 0)),
        announce=bool(b.get("announce", False)),
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


def create_app(node: LightningNode, service: LspService | None, token: str) -> web.Application:
    app = web.Application(middlewares=[auth_and_errors])
    app[NODE] = node
    app[SERVICE] = service
    app[TOKEN] = token
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
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, int(port))
    await site.start()
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}"
