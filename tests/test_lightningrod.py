"""LightningRod end to end on four real nodes: A -> LSP_a -> LSP_b -> B, with B offline when A
pays and A offline when B releases the payment."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web

from lsp_node.app import LspRole
from lsp_node.client import Client, HoldRefused
from lsp_node.config import LspSettings, NotificationSettings
from lsp_node.engine import LightningNode
from lsp_node.lsp_store import RELEASED, SETTLED
from lsp_node import protocol as p

from .conftest import Chain, NodeFactory, open_channel, reconnected, wait_until


class PushReceiver:
    """A local HTTP endpoint apprise's json:// posts to, standing in for a push service."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, dict[str, object]]] = []
        self.url = ""

    async def start(self) -> web.AppRunner:
        async def push(request: web.Request) -> web.Response:
            self.pushes.append((request.match_info["device"], json.loads(await request.text())))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/push/{device}", push)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"json://127.0.0.1:{port}/push/{{device}}"
        return runner

    def kinds_for(self, device: str) -> list[str]:
        return [str(body.get("message", "")).split(":")[0] for d, body in self.pushes if d == device]


@pytest.fixture
async def pushes() -> AsyncIterator[PushReceiver]:
    r = PushReceiver()
    runner = await r.start()
    yield r
    await runner.cleanup()


async def start_role(node: LightningNode, tmp_path: Path, name: str, pushes: PushReceiver, **lsp: object) -> LspRole:
    notifications = NotificationSettings(templates={"webhook": pushes.url}, cooldown_secs=0)
    return await LspRole.start(node, tmp_path / name, LspSettings(**lsp), notifications)  # type: ignore[arg-type]


async def test_async_payment_end_to_end(
    chain: Chain, make_node: NodeFactory, tmp_path: Path, pushes: PushReceiver
) -> None:
    lsp_a = await make_node("lsp_a", accept_intercept_htlcs=True)
    lsp_b = await make_node("lsp_b", accept_intercept_htlcs=True)
    alice = await make_node("alice")
    bob = await make_node("bob")
    await chain.fund(alice, 2_000_000)
    await chain.fund(lsp_a, 3_000_000)
    await chain.fund(lsp_b, 3_000_000)
    await open_channel(chain, alice, lsp_a, 1_000_000)
    await open_channel(chain, lsp_a, lsp_b, 2_000_000)
    await open_channel(chain, lsp_b, bob, 1_000_000)
    role_a = await start_role(lsp_a, tmp_path, "lsp_a", pushes)
    role_b = await start_role(lsp_b, tmp_path, "lsp_b", pushes)
    a = Client(alice, lsp_a.node_id)
    b = Client(bob, lsp_b.node_id)
    a.start()
    b.start()
    await a.register_device("webhook", "alice-phone")
    await b.register_device("webhook", "bob-phone")

    # B hands out a payment request and goes offline.
    request = p.PaymentRequest.decode((await b.create_payment_request(50_000_000, "coffee")).encode())
    await b.stop()
    await bob.stop()
    await wait_until(lambda: all(x.node_id != bob.node_id for x in lsp_b.peers()), what="bob offline")

    held = await a.pay_with_hold(request, hold_blocks=144)
    store_a = role_a.service.store
    await wait_until(lambda: len(store_a.holds(("held",))) == 1, what="HTLC held at LSP_a")
    await wait_until(lambda: len(role_b.service.store.messages(bob.node_id)) == 1, what="pid in LSP_b's mailbox")
    await wait_until(lambda: "message_waiting" in pushes.kinds_for("bob-phone"), what="push to bob")
    body = next(body for d, body in pushes.pushes if d == "bob-phone")
    assert held.payment_hash not in json.dumps(body) and bob.node_id not in json.dumps(body)

    # A goes offline; B comes back, gets the pid, releases, and is paid.
    await a.stop()
    await alice.stop()
    bob = await make_node("bob")
    b = Client(bob, lsp_b.node_id)
    b.start()
    received = await b.wait_for("payment_received", payment_hash=held.payment_hash)
    assert received.data["amount_msat"] == 50_000_000
    await wait_until(lambda: held.payment_hash in b.unblock_replies, what="LSP_a's answer to the unblock")
    assert b.unblock_replies[held.payment_hash].status == p.Status.OK
    await wait_until(lambda: store_a.holds((SETTLED,)) != [], what="hold settled at LSP_a")
    await wait_until(lambda: "preimage_waiting" in pushes.kinds_for("alice-phone"), what="push to alice")

    # A comes back and learns the payment completed.
    alice = await make_node("alice")
    a = Client(alice, lsp_a.node_id)
    a.start()
    await a.wait_for("payment_sent", payment_hash=held.payment_hash)
    await reconnected(alice, lsp_a, lsp_b, bob)

    alice_chan = alice.channels()[0]
    bob_chan = bob.channels()[0]
    assert bob_chan.outbound_capacity_msat >= 50_000_000 - 10_000_000  # less B's reserve
    assert alice_chan.outbound_capacity_msat <= 1_000_000_000 - 50_000_000
    await a.stop()
    await b.stop()
    await role_a.stop()
    await role_b.stop()
