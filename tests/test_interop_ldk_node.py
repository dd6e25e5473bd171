"""Interop with stock ldk-node 0.7.1 (crates.io), run as its own process by tests/ldk_node_peer.py:
it pays through this project's LSP as an ordinary node, and it routes between two of its LSPs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsp_node.engine import PaymentReceived

from .conftest import Chain, NodeFactory, wait_event
from .ldk_node_peer import LdkNodePeer, ldk_node_peer
from .lightningrod_net import PushReceiver, lsp_fund, until
from .lsp_process import LspProcess


async def fund_peer(chain: Chain, peer: LdkNodePeer, sat: int) -> None:
    chain.raw.fund_address(await peer.new_address(), sat)
    chain.mine(1)

    # A sync joins one already under way (ldk-node's background sync), which may have begun
    # before the block: sync until the funds show.
    async def funded() -> bool:
        await peer.sync()
        return (await peer.balances())["spendable_onchain_sat"] == sat

    await until(funded, f"{peer.name} funded", 30)


async def lsp_channel(lsp: LspProcess, peer_id: str) -> dict[str, Any]:
    """The LSP's one channel with `peer_id`."""
    chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == peer_id]
    assert len(chans) == 1, chans
    return dict(chans[0])


async def confirm(chain: Chain, want_txs: int, lsps: list[LspProcess], peer: LdkNodePeer, *others: Any) -> None:
    """Mine the funding transactions once broadcast; wait until every channel is usable on every
    node (`others`: in-process LightningNodes)."""
    await until(lambda: len(chain.raw.mempool_txids()) >= want_txs, "funding transactions broadcast")
    chain.mine(6)
    await sync(lsps, peer, *others)

    async def usable() -> bool:
        for lsp in lsps:
            if not all(c["is_usable"] for c in await lsp.api("GET", "/api/channels")):
                return False
        chans = await peer.channels()
        if not chans or not all(c["is_usable"] for c in chans):
            await peer.sync()  # its last sync may have joined one begun before the blocks
            return False
        return all(c.is_usable for n in others for c in n.channels())

    await until(usable, "channels usable on every node")


async def sync(lsps: list[LspProcess], peer: LdkNodePeer, *others: Any) -> None:
    await asyncio.gather(*(x.api("POST", "/api/sync") for x in lsps), peer.sync(), *(n.sync() for n in others))


async def test_ldk_node_pays_through_the_lsp(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    """ldk-node -> LSP (main.py) -> Bob (in-process): ldk-node opens a private channel to the LSP
    and pays Bob's invoice (route hint through the LSP); every balance moves to the msat."""
    pushes = PushReceiver()
    await pushes.start()
    lsp = LspProcess(tmp_path, "lsp", chain.url, pushes.url)
    await lsp.start()
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        bob = await make_node("bob")
        async with ldk_node_peer(tmp_path, chain.url) as ldk:
            await fund_peer(chain, ldk, 2_000_000)
            uid = await ldk.open_channel(lsp.node_id, lsp.listen_addr, 1_000_000)
            pending = await ldk.wait_event("channel_pending", user_channel_id=uid)
            await bob.connect(lsp.node_id, lsp.listen_addr)
            await lsp.api("POST", "/api/channels", {"node_id": bob.node_id, "amount_sat": 1_000_000})
            await confirm(chain, 2, [lsp], ldk, bob)
            await ldk.wait_event("channel_ready", channel_id=pending["channel_id"])
            [chan] = await ldk.channels()
            assert chan["counterparty_node_id"] == lsp.node_id and not chan["is_announced"]

            ldk_out = (await ldk.balances())["outbound_msat"]
            bob_in = sum(c.inbound_capacity_msat for c in bob.channels())
            lsp_from_ldk, lsp_to_bob = await lsp_channel(lsp, ldk.node_id), await lsp_channel(lsp, bob.node_id)

            amount = 123_456_789
            invoice = await bob.create_invoice(amount, "paid by stock ldk-node")
            started = await ldk.pay_invoice(invoice)
            sent = await ldk.wait_event("payment_successful", "payment_failed", payment_hash=started["payment_hash"])
            assert sent["kind"] == "payment_successful", sent
            fee = sent["fee_paid_msat"]
            received = await wait_event(bob, "payment_received", payment_hash=started["payment_hash"])
            assert isinstance(received, PaymentReceived) and received.amount_msat == amount

            # The LSP charged its forwarding fee (LDK's default, 1 sat base) and booked the forward.
            assert fee == 1_000
            forwards = await lsp.api("GET", "/api/forwards")
            assert forwards["totals"]["count"] == 1 and forwards["totals"]["fees_msat"] == fee
            [fwd] = forwards["forwards"]
            assert fwd["prev_node_id"] == ldk.node_id and fwd["next_node_id"] == bob.node_id
            assert fwd["fee_earned_msat"] == fee and fwd["outbound_amount_msat"] == amount
            record = await ldk.payment(started["payment_id"])
            assert record["status"] == "succeeded" and record["fee_paid_msat"] == fee
            assert record["amount_msat"] == amount and record["direction"] == "outbound"

            async def settled() -> bool:
                chans = await lsp.api("GET", "/api/channels")
                return all(c["pending_htlcs"] == 0 for c in chans) and all(c.pending_htlcs == 0 for c in bob.channels())

            await until(settled, "HTLCs settled")
            # To the msat on every side of both channels.
            assert ldk_out - (await ldk.balances())["outbound_msat"] == amount + fee
            assert bob_in - sum(c.inbound_capacity_msat for c in bob.channels()) == amount
            after_ldk, after_bob = await lsp_channel(lsp, ldk.node_id), await lsp_channel(lsp, bob.node_id)
            # (The LSP's inbound side of ldk-node's channel: its own outbound there is still under
            # the reserve ldk-node asks it to keep, so it reads 0 before and after.)
            assert lsp_from_ldk["inbound_capacity_msat"] - after_ldk["inbound_capacity_msat"] == amount + fee
            assert lsp_to_bob["outbound_capacity_msat"] - after_bob["outbound_capacity_msat"] == amount
    finally:
        await lsp.stop()
        await pushes.stop()


async def test_ldk_node_routes_between_two_lsps(chain: Chain, tmp_path: Path) -> None:
    """LSP_a -> ldk-node -> LSP_b over announced channels learnt by gossip: LSP_a pays LSP_b's
    invoice, ldk-node forwards it for the fee it set, and each side's books agree to the msat."""
    pushes = PushReceiver()
    await pushes.start()
    lsp_a = LspProcess(tmp_path, "lsp_a", chain.url, pushes.url, announce=True)
    lsp_b = LspProcess(tmp_path, "lsp_b", chain.url, pushes.url, announce=True)
    await asyncio.gather(lsp_a.start(), lsp_b.start())
    lsps = [lsp_a, lsp_b]
    try:
        for lsp in lsps:
            await lsp_fund(chain, lsp, 5_000_000)
        async with ldk_node_peer(tmp_path, chain.url, alias="interop-router") as ldk:
            await fund_peer(chain, ldk, 2_000_000)
            await lsp_a.api("POST", "/api/connect", {"node_id": ldk.node_id, "address": ldk.listen_addr})
            body = {"node_id": ldk.node_id, "amount_sat": 1_000_000, "announce": True}
            await lsp_a.api("POST", "/api/channels", body)
            base, ppm = 1_500, 2_000
            await ldk.open_channel(
                lsp_b.node_id, lsp_b.listen_addr, 1_000_000, announce=True, fee_base_msat=base, fee_ppm=ppm
            )
            await confirm(chain, 2, lsps, ldk)
            chans = await ldk.channels()
            assert len(chans) == 2 and all(c["is_announced"] for c in chans), chans
            # Announcements go out once both sides' signatures are in and are re-broadcast on a
            # six-block cycle: six more blocks, one at a time with a sync each (as in
            # tests/lightningrod_net.py), let LSP_a learn ldk-node's channel to LSP_b by gossip.
            for _ in range(6):
                chain.mine(1)
                await sync(lsps, ldk)

            ldk_before = {c["counterparty_node_id"]: c for c in await ldk.channels()}
            a_out = (await lsp_channel(lsp_a, ldk.node_id))["outbound_capacity_msat"]
            b_in = (await lsp_channel(lsp_b, ldk.node_id))["inbound_capacity_msat"]
            amount = 50_000_000
            fee = base + amount * ppm // 1_000_000

            # LSP_a's router may need a moment more for the last channel_update: a payment it
            # cannot route fails at once without moving any balance, so it is simply tried again.
            paid: dict[str, Any] = {}

            async def pays() -> bool:
                invoice = await lsp_b.api("POST", "/api/invoices", {"amount_msat": amount, "description": "via ldk"})
                result = await lsp_a.api("POST", "/api/pay", {"bolt11": invoice["bolt11"], "wait_secs": 30})
                if result["status"] == "succeeded":
                    paid.update(result)
                    return True
                assert result["status"] == "failed", result
                await asyncio.sleep(1)
                return False

            await until(pays, "LSP_a pays LSP_b through ldk-node", 90)
            assert paid["fee_msat"] == fee, paid
            forwarded = await ldk.wait_event("payment_forwarded")
            assert forwarded["prev_node_id"] == lsp_a.node_id and forwarded["next_node_id"] == lsp_b.node_id
            assert forwarded["total_fee_earned_msat"] == fee
            assert forwarded["outbound_amount_forwarded_msat"] == amount
            assert forwarded["skimmed_fee_msat"] in (None, 0)
            invoices = await lsp_b.api("GET", "/api/invoices")
            assert [i["status"] for i in invoices if i["payment_hash"] == paid["payment_hash"]] == ["succeeded"]

            async def settled() -> bool:
                for lsp in lsps:
                    if any(c["pending_htlcs"] for c in await lsp.api("GET", "/api/channels")):
                        return False
                return True

            await until(settled, "HTLCs settled")
            # ldk-node's side of LSP_a's channel is still under the reserve LSP_a asks it to keep
            # (its outbound reads 0 before and after), so that channel is read from its inbound.
            after = {c["counterparty_node_id"]: c for c in await ldk.channels()}
            in_a, out_b = "inbound_capacity_msat", "outbound_capacity_msat"
            assert ldk_before[lsp_a.node_id][in_a] - after[lsp_a.node_id][in_a] == amount + fee
            assert ldk_before[lsp_b.node_id][out_b] - after[lsp_b.node_id][out_b] == amount
            assert a_out - (await lsp_channel(lsp_a, ldk.node_id))["outbound_capacity_msat"] == amount + fee
            assert b_in - (await lsp_channel(lsp_b, ldk.node_id))["inbound_capacity_msat"] == amount
    finally:
        for lsp in lsps:
            await lsp.stop()
        await pushes.stop()
