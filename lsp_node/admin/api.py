"""The admin JSON API: one table of routes, each a thin handler over `Ops`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from pydantic import Field

from lsp_node.admin.http import MAX_CHANNEL_SAT, MIN_CHANNEL_SAT, Body, NodeId, PeerAddress, json_response, read_body
from lsp_node.admin.ops import Ops

OPS: web.AppKey[Ops] = web.AppKey("ops", Ops)


class ConnectBody(Body):
    node_id: NodeId
    address: PeerAddress


class OpenChannelBody(Body):
    node_id: NodeId
    amount_sat: int = Field(ge=MIN_CHANNEL_SAT, le=MAX_CHANNEL_SAT)
    push_msat: int = Field(default=0, ge=0, le=MAX_CHANNEL_SAT * 1000)
    announce: bool = False


def _ops(request: web.Request) -> Ops:
    return request.app[OPS]


async def info(request: web.Request) -> web.Response:
    return json_response(_ops(request).info())


async def new_address(request: web.Request) -> web.Response:
    return json_response({"address": await _ops(request).new_address()})


async def sync(request: web.Request) -> web.Response:
    return json_response({"block_height": await _ops(request).sync()})


async def connect(request: web.Request) -> web.Response:
    b = await read_body(request, ConnectBody)
    await _ops(request).connect(b.node_id, b.address)
    return json_response({"connected": b.node_id.lower()})


async def peers(request: web.Request) -> web.Response:
    return json_response(_ops(request).peers())


async def open_channel(request: web.Request) -> web.Response:
    b = await read_body(request, OpenChannelBody)
    user_channel_id = await _ops(request).open_channel(b.node_id, b.amount_sat, b.push_msat, b.announce)
    return json_response({"user_channel_id": user_channel_id})


async def channels(request: web.Request) -> web.Response:
    return json_response(_ops(request).channels())


async def holds(request: web.Request) -> web.Response:
    return json_response(await _ops(request).holds())


async def mailbox(request: web.Request) -> web.Response:
    return json_response(await _ops(request).mailbox())


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Any
    summary: str
    body: type[Body] | None = None


ROUTES: Final[list[Route]] = [
    Route("GET", "/api/info", info, "Node id, network, chain height, balances, counts of channels and peers"),
    Route("POST", "/api/newaddress", new_address, "A new on-chain address of the node's wallet"),
    Route("POST", "/api/sync", sync, "Sync the wallet and the Lightning node with the chain now"),
    Route("POST", "/api/connect", connect, "Connect to a peer", ConnectBody),
    Route("GET", "/api/peers", peers, "Connected peers"),
    Route("POST", "/api/channels", open_channel, "Open a channel", OpenChannelBody),
    Route("GET", "/api/channels", channels, "Channels with their balances and states"),
    Route("GET", "/api/holds", holds, "Holds of the LightningRod role with their HTLCs"),
    Route("GET", "/api/mailbox", mailbox, "Messages kept for offline clients"),
]


def add_routes(app: web.Application, ops: Ops) -> None:
    app[OPS] = ops
    for r in ROUTES:
        app.router.add_route(r.method, r.path, r.handler)
