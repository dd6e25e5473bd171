"""LSP to LSP without a hand-made connection (SPEC.md §1.6): A -> LSP_a -> R -> LSP_b -> B, the
LSPs never connected to each other by hand, each announcing its address. The pid notice reaches
LSP_b because LSP_a dials LSP_b's announced address, and the unblock reaches LSP_a because LSP_b
dials LSP_a's (after LSP_b restarted, so that no connection from the first dial is left)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsp_node import protocol as p

from .conftest import Chain, NodeFactory
from .lightningrod_net import Net, Topology, build_net, until
from .lsp_process import LspProcess


async def peer(lsp: LspProcess, node_id: str) -> dict[str, Any] | None:
    """`node_id` as a peer of `lsp` (its `inbound` says who dialled), or None."""
    return next((x for x in await lsp.api("GET", "/api/peers") if x["node_id"] == node_id), None)


def announcements(ldk_log: Path) -> int:
    return ldk_log.read_text(errors="replace").count("node announcement broadcast")


async def hold_is(net: Net, state: str) -> bool:
    holds = await net.holds()
    return bool(holds) and holds[0]["state"] == state


async def not_peers(lsp: LspProcess, node_id: str) -> bool:
    return await peer(lsp, node_id) is None


async def test_held_payment_with_lsps_that_dial_each_other(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    topology = Topology(routers=1, peer_lsps=False, announce=True)
    async with build_net(chain, make_node, tmp_path, topology=topology) as net:
        lsp_a, lsp_b = net.lsp_a, net.lsp_b
        assert await peer(lsp_a, lsp_b.node_id) is None, "the LSPs were never connected by hand"
        # The node announcements crossed the router: each phone's only peer is its LSP, so a
        # phone that knows the other LSP's address learnt it from its own LSP's gossip.
        await until(lambda: net.alice.node_addresses(lsp_b.node_id) == [lsp_b.listen_addr], "LSP_b's address at A")
        await until(lambda: net.bob.node_addresses(lsp_a.node_id) == [lsp_a.listen_addr], "LSP_a's address at B")

        amount = 25_000_000
        request = await net.b.create_payment_request(amount, "LSPs that dial each other")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)
        await until(lambda: hold_is(net, "held"), "HTLC held at LSP_a")

        # The pid notice: LSP_a dialled LSP_b, which keeps it in B's mailbox.
        async def notice_kept() -> bool:
            return len(await lsp_b.api("GET", "/api/mailbox")) == 1

        await until(notice_kept, "the pid notice in B's mailbox at LSP_b")
        dialled = await peer(lsp_a, lsp_b.node_id)
        assert dialled is not None and dialled["inbound"] is False, "LSP_a dialled LSP_b"

        # LSP_b restarts: the connection is gone and nobody redials it (no channel between them).
        await lsp_b.stop()
        await lsp_b.start()
        await until(lambda: not_peers(lsp_a, lsp_b.node_id), "LSP_a without LSP_b as a peer", 30)

        async def router_channel_back() -> bool:
            return all(
                c["is_usable"]
                for c in await lsp_b.api("GET", "/api/channels")
                if c["counterparty_node_id"] != net.bob.node_id
            )

        await until(router_channel_back, "LSP_b's channel with the router usable again")
        assert await peer(lsp_b, lsp_a.node_id) is None

        # B comes back, reads the notice and unblocks: LSP_b dials LSP_a to pass the unblock on.
        b = await net.restart_phone("bob")
        received = await b.wait_for("payment_received", payment_hash=held.payment_hash, timeout=90)
        assert received.amount_msat == amount
        await until(lambda: held.payment_hash in b.unblock_replies, "LSP_a's answer to the unblock")
        assert b.unblock_replies[held.payment_hash].status == p.Status.OK
        dialled = await peer(lsp_b, lsp_a.node_id)
        assert dialled is not None and dialled["inbound"] is False, "LSP_b dialled LSP_a"
        await net.a.wait_for("payment_sent", payment_hash=held.payment_hash, timeout=90)
        await until(lambda: hold_is(net, "settled"), "hold settled")

        # Within a public channel's first week the node is announced again after each of LDK's
        # re-broadcasts of the channel's announcement: one per 6 blocks.
        log = lsp_a.dir / "data" / "regtest" / "ldk.log"
        before = announcements(log)
        for _ in range(6):
            net.chain.mine(1)
            await lsp_a.api("POST", "/api/sync")
        await until(lambda: announcements(log) > before, "LSP_a's node announced again", 30)
