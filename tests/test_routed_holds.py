"""LightningRod across ordinary routing nodes (SPEC.md §1.5): A -> LSP_a -> R.. -> LSP_b -> B, the
routers being this project's own nodes with the LSP role off, every channel between them
announced and learnt by A through gossip. The hold's next hop is the first node after LSP_a on
the route A's router picked, and each MPP part goes to the next hop of its own route."""

from __future__ import annotations

from pathlib import Path

from lsp_node import protocol as p

from .conftest import Chain, NodeFactory
from .lightningrod_net import (
    Topology,
    build_net,
    deliver_held_payment,
    no_htlcs,
    only_hold,
    outbound,
    state_is,
    until,
)


async def test_held_payment_crosses_one_routing_node(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, topology=Topology(routers=1)) as net:
        router = net.routers[0]
        # No channel between the LSPs: the only route is through the routing node.
        assert all(c["counterparty_node_id"] != net.lsp_b.node_id for c in await net.lsp_a.api("GET", "/api/channels"))
        await deliver_held_payment(net, 40_000_000)
        hold = await only_hold(net)
        assert [h["next_node"] for h in hold["hops"]] == [router.node_id]
        assert {h["next_node"] for h in hold["htlcs"]} == {router.node_id}


async def test_two_routing_nodes_while_blocks_pass(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, topology=Topology(routers=2)) as net:
        await deliver_held_payment(net, 30_000_000, blocks_offline=20)
        hold = await only_hold(net)
        assert [h["next_node"] for h in hold["hops"]] == [net.routers[0].node_id]


async def test_mpp_parts_take_two_routes(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    # Each router's channel to LSP_b carries at most ~400k sat: 600k sat must be split over both.
    topology = Topology(routers=2, parallel=True, router_sat=400_000)
    async with build_net(chain, make_node, tmp_path, topology=topology) as net:
        await deliver_held_payment(net, 600_000_000)
        hold = await only_hold(net)
        routers = {r.node_id for r in net.routers}
        assert {h["next_node"] for h in hold["hops"]} == routers
        # Every part went to the next hop of its own route, and both routes were used.
        assert {h["next_node"] for h in hold["htlcs"] if h["state"] == "settled"} == routers


async def test_router_short_of_liquidity_for_one_part(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    # Router 1 announces the widest channel to LSP_b but has nothing on its side of it: A's router
    # prefers it, the part sent there fails at router 1 after the release, and LDK's retry goes
    # through the same hold towards the alternate next hops (routers 2 and 3), forwarded at once.
    topology = Topology(routers=3, parallel=True, router_sat=800_000, empty_router_sat=1_500_000)
    async with build_net(chain, make_node, tmp_path, topology=topology) as net:
        empty, *others = (r.node_id for r in net.routers)
        a_before = outbound(net.alice)
        request = await net.b.create_payment_request(500_000_000, "one route is empty")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)
        assert held.next_nodes[0] == empty and set(held.next_nodes) == {empty, *others}
        await until(lambda: state_is(net, "held"), "HTLCs held")
        b = await net.restart_phone("bob")
        received = await b.wait_for("payment_received", payment_hash=held.payment_hash, timeout=90)
        assert received.amount_msat == 500_000_000
        sent = await net.a.wait_for("payment_sent", payment_hash=held.payment_hash, timeout=90)
        await until(lambda: state_is(net, "settled"), "hold settled")
        await no_htlcs(net.alice, net.bob)
        assert sent.fee_paid_msat is not None
        assert a_before - outbound(net.alice) == 500_000_000 + sent.fee_paid_msat
        htlcs = (await only_hold(net))["htlcs"]
        assert {h["next_node"] for h in htlcs if h["state"] == "failed"} == {empty}
        assert {h["next_node"] for h in htlcs if h["state"] == "settled"} <= set(others)
        assert {h["state"] for h in htlcs} == {"failed", "settled"}


async def test_routing_node_gone_before_release(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, topology=Topology(routers=1), release_wait_secs=2) as net:
        a_before = outbound(net.alice)
        request = await net.b.create_payment_request(20_000_000, "the router leaves")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)
        await until(lambda: state_is(net, "held"), "HTLC held")
        await net.phone_offline("alice")
        await net.routers[0].stop()

        b = await net.restart_phone("bob")
        await until(lambda: held.payment_hash in b.unblock_replies, "LSP_a's answer to the unblock", 60)
        reply = b.unblock_replies[held.payment_hash]
        assert reply.status == p.Status.FORWARD_FAILED, reply
        assert reply.error
        hold = await only_hold(net)
        assert hold["state"] == "failed"
        assert [h["state"] for h in hold["htlcs"]] == ["failed"]
        assert not any(e.kind == "payment_received" for e in b.events)
        await until(lambda: "hold_failed" in net.pushes.kinds_for("alice-phone"), "the payer is pushed")

        # A comes back: the HTLC was failed back, its funds are free again, to the msat.
        a = await net.restart_phone("alice")
        await a.wait_for("payment_failed", payment_hash=held.payment_hash, timeout=90)
        await no_htlcs(net.alice)
        assert outbound(net.alice) == a_before
