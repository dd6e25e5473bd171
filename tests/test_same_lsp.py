"""LightningRod when payer and payee are clients of one LSP (SPEC.md §1.5): A -> LSP -> B over two
private channels, one `main.py` process playing LSP_a and LSP_b. The hold's next hop is the payee
itself, found by A's router through the route hint of B's invoice; the pid notice waits in the
same LSP's mailbox, and the hold is forwarded into B's channel once B is back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsp_node import protocol as p
from lsp_node.client import HoldRefused

from .conftest import Chain, NodeFactory
from .lightningrod_net import (
    Topology,
    build_net,
    deliver_held_payment,
    inbound,
    no_htlcs,
    only_hold,
    outbound,
    state_is,
    until,
)

ONE_LSP = Topology(same_lsp=True)


async def test_payee_online(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, topology=ONE_LSP) as net:
        assert net.lsp_b is net.lsp_a
        a_before, b_before = outbound(net.alice), inbound(net.bob)
        request = await net.b.create_payment_request(35_000_000, "same LSP, payee online")
        held = await net.a.pay_with_hold(request)
        assert list(held.next_nodes) == [net.bob.node_id]
        received = await net.b.wait_for("payment_received", payment_hash=held.payment_hash)
        assert received.amount_msat == 35_000_000
        await until(lambda: held.payment_hash in net.b.unblock_replies, "the LSP's answer to the unblock")
        # Online, B may send its unblock before A's HTLC reached the LSP (SPEC.md §4.6).
        assert net.b.unblock_replies[held.payment_hash].status in (p.Status.OK, p.Status.RELEASED_AWAITING_HTLC)
        sent = await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)
        assert sent.fee_paid_msat is not None
        await no_htlcs(net.alice, net.bob)
        # A learns the preimage when the LSP passes it back, a moment before the LSP's event
        # handler books the hold settled.
        await until(lambda: state_is(net, "settled"), "hold settled")
        hold = await only_hold(net)
        assert [h["next_node"] for h in hold["hops"]] == [net.bob.node_id]
        assert [h["state"] for h in hold["htlcs"]] == ["settled"]
        assert [e.kind for e in net.b.events].count("payment_received") == 1
        assert a_before - outbound(net.alice) == 35_000_000 + sent.fee_paid_msat
        assert b_before - inbound(net.bob) == 35_000_000

        # A hold whose next hop is the LSP itself is refused, and so is one to a stranger.
        for nodes in ([net.lsp_a.node_id], ["02" + "11" * 32]):
            with pytest.raises(HoldRefused) as refused:
                await net.a.request_hold([held.payment_hash], 1_000, nodes, os.urandom(32), 144)
            assert refused.value.status == p.Status.NEXT_HOP_UNUSABLE


async def test_payer_and_payee_offline_while_held(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, topology=ONE_LSP) as net:
        payment_hash, _ = await deliver_held_payment(net, 25_000_000, payer_offline=True, blocks_offline=10)
        assert "message_waiting" in net.pushes.kinds_for("bob-phone")
        assert await net.lsp_a.api("GET", "/api/mailbox") == []
        hold = await only_hold(net)
        assert hold["payment_hashes"] == [payment_hash]


async def test_lsp_killed_while_holding(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, topology=ONE_LSP) as net:
        await deliver_held_payment(net, 15_000_000, kill_lsp_a=True)
        assert [h["state"] for h in (await only_hold(net))["htlcs"]] == ["settled"]


async def test_mpp_in_two_parts(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, alice_channels=2, topology=ONE_LSP) as net:
        # 1.5M sat cannot fit one of A's two 1M sat channels: the payment goes in parts.
        await deliver_held_payment(net, 1_500_000_000)
        htlcs = (await only_hold(net))["htlcs"]
        assert len(htlcs) >= 2 and {h["state"] for h in htlcs} == {"settled"}
        assert {h["next_node"] for h in htlcs} == {net.bob.node_id}
