"""LightningRod end to end: A -> LSP_a -> LSP_b -> B, each LSP its own `main.py` process, the
phones driven by the reference client. B is offline when A pays; A is offline when B releases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lsp_node import protocol as p

from .conftest import Chain, NodeFactory
from .lightningrod_net import Net, build_net, until


@pytest.fixture
async def net(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> AsyncIterator[Net]:
    async with build_net(chain, make_node, tmp_path) as n:
        yield n


async def test_async_payment_end_to_end(net: Net) -> None:
    # B hands out a payment request and goes offline.
    request = p.PaymentRequest.decode((await net.b.create_payment_request(50_000_000, "coffee")).encode())
    await net.phone_offline("bob")
    bob_id = net.bob.node_id

    held = await net.a.pay_with_hold(request, hold_blocks=144)

    async def held_at_lsp_a() -> bool:
        return [h["state"] for h in await net.holds()] == ["held"]

    await until(held_at_lsp_a, "HTLC held at LSP_a")

    async def in_mailbox() -> bool:
        return len(await net.lsp_b.api("GET", "/api/mailbox")) == 1

    await until(in_mailbox, "pid waiting in LSP_b's mailbox")
    await until(lambda: "message_waiting" in net.pushes.kinds_for("bob-phone"), "push to B")
    pushed = json.dumps([body for d, body in net.pushes.pushes if d == "bob-phone"])
    assert held.payment_hash not in pushed and bob_id not in pushed and "50000" not in pushed

    # A disconnects; B comes back, receives the pid, releases the payment and is paid.
    await net.phone_offline("alice")
    b = await net.restart_phone("bob")
    received = await b.wait_for("payment_received", payment_hash=held.payment_hash)
    assert received.amount_msat == 50_000_000
    await until(lambda: held.payment_hash in b.unblock_replies, "LSP_a's answer to the unblock")
    assert b.unblock_replies[held.payment_hash].status == p.Status.OK

    async def settled() -> bool:
        return [h["state"] for h in await net.holds()] == ["settled"]

    await until(settled, "hold settled at LSP_a")
    await until(lambda: "preimage_waiting" in net.pushes.kinds_for("alice-phone"), "push to A")
    assert await net.lsp_b.api("GET", "/api/mailbox") == []

    # A comes back and learns the payment completed.
    a = await net.restart_phone("alice")
    sent = await a.wait_for("payment_sent", payment_hash=held.payment_hash)
    assert sent.fee_paid_msat is not None

    # Balances: B has the 50k sat; A paid 50k sat plus routing fees; LSP_b forwarded it.
    await until(lambda: all(c.pending_htlcs == 0 for c in net.alice.channels() + net.bob.channels()), "settled")
    bob_chan = net.bob.channels()[0]
    alice_chan = net.alice.channels()[0]
    assert bob_chan.outbound_capacity_msat + bob_chan.inbound_capacity_msat <= 2_000_000_000
    assert 50_000_000 - 20_000_000 <= bob_chan.outbound_capacity_msat <= 50_000_000  # less B's reserve
    fee = sent.fee_paid_msat
    lsp_a_chans = await net.lsp_a.api("GET", "/api/channels")
    to_b = next(c for c in lsp_a_chans if c["counterparty_node_id"] == net.lsp_b.node_id)
    # LSP_b now holds the 50k sat (plus its fee) on that channel, less its 1% reserve of 3M sat.
    assert 50_000_000 - 30_000_000 <= to_b["inbound_capacity_msat"] <= 50_000_000 + fee - 30_000_000
    a_side = next(c for c in lsp_a_chans if c["counterparty_node_id"] == net.alice.node_id)
    assert a_side["inbound_capacity_msat"] + a_side["outbound_capacity_msat"] <= 1_000_000_000
    assert alice_chan.outbound_capacity_msat <= 1_000_000_000 - 50_000_000 - fee
