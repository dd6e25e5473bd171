"""BOLT async payments with this project's LSP as the server, between two stock ldk-node 0.7.1
clients (AsyncPaymentsRole::Client): the recipient registers its static invoice and goes
offline; the payer pays its offer; the LSP holds the HTLC (hold_htlc) and keeps the payer's
held_htlc_available in its persistent mailbox; the LSP is killed (SIGKILL) and restarted while
the HTLC is held; the recipient comes back, gets the message, releases the HTLC and is paid."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .async_payments_net import announced_channel, async_net, lsp_server, restart
from .conftest import Chain
from .lightningrod_net import PushReceiver, lsp_fund, until
from .lsp_process import LspProcess

ASYNC = {"async_payments": {"enabled": True}}


async def test_async_payment_through_two_lsps_killed_while_held(chain: Chain, tmp_path: Path) -> None:
    pushes = PushReceiver()
    await pushes.start()
    lsps = [
        LspProcess(tmp_path, name, chain.url, pushes.url, announce=True, sections=ASYNC) for name in ("lsp_a", "lsp_b")
    ]
    try:
        for lsp in lsps:
            await lsp.start()
            await lsp_fund(chain, lsp, 5_000_000)
        lsp_a, lsp_b = lsps
        holder = lsp_server(lsp_a.api, lsp_a.node_id, lsp_a.listen_addr)
        keeper = lsp_server(lsp_b.api, lsp_b.node_id, lsp_b.listen_addr)

        async def sync_both() -> None:
            await asyncio.gather(holder.sync(), keeper.sync())

        await announced_channel(chain, holder, keeper, sync_both)
        async with async_net(chain, tmp_path, holder, keeper) as net:
            # LSP_b keeps the recipient's static invoice, filed under its node id.
            kept = await lsp_b.api("GET", "/api/async")
            assert kept["enabled"] is True
            assert {i["recipient"] for i in kept["static_invoices"]} == {net.recipient.node_id}

            await net.recipient.stop()
            amount = 42_000_000
            payment_id = await net.payer.pay_offer(net.offer, amount)

            async def pending(lsp: LspProcess, peer: str) -> int:
                chans = await lsp.api("GET", "/api/channels")
                return sum(c["pending_htlcs"] for c in chans if c["counterparty_node_id"] == peer)

            async def htlc_held() -> bool:
                return await pending(lsp_a, net.payer.node_id) == 1

            await until(htlc_held, "the payer's HTLC held at LSP_a", 90)

            async def message_kept() -> bool:
                return bool(await lsp_b.api("GET", f"/api/mailbox/{net.recipient.node_id}"))

            await until(message_kept, "held_htlc_available kept at LSP_b for the offline recipient", 60)
            # Both LSPs killed and restarted while the HTLC is held: the HTLC is in LSP_a's
            # channel manager, the message in LSP_b's mailbox, both on disk. LDK writes its
            # channel manager a few ms after the last commitment update (the monitors at once):
            # a kill inside that window would find it stale and force-close, as LDK documents.
            await asyncio.sleep(1)
            # Held at LSP_a: nothing went on towards LSP_b.
            assert await pending(lsp_a, lsp_b.node_id) == 0
            channels = {lsp.name: len(await lsp.api("GET", "/api/channels")) for lsp in lsps}
            for lsp in lsps:
                lsp.kill9()
                await lsp.start()
            assert await lsp_b.api("GET", f"/api/mailbox/{net.recipient.node_id}")
            # Still held after the restart, and no channel was closed by it.
            await until(htlc_held, "the payer's HTLC still held at LSP_a after the restart", 60)
            assert await pending(lsp_a, lsp_b.node_id) == 0
            assert {lsp.name: len(await lsp.api("GET", "/api/channels")) for lsp in lsps} == channels

            await restart(net.recipient, chain)
            received = await net.recipient.wait_event("payment_received", timeout=120)
            assert received["amount_msat"] == amount
            sent = await net.payer.wait_event("payment_successful", "payment_failed", payment_id=payment_id, timeout=90)
            assert sent["kind"] == "payment_successful", sent
            assert sent["payment_hash"] == received["payment_hash"]

            # Paths are given only to a client: the payer is LSP_a's, not LSP_b's.
            with pytest.raises(AssertionError, match="not a client"):
                await lsp_b.api("POST", "/api/async/paths", {"node_id": net.payer.node_id})
    finally:
        for lsp in lsps:
            await lsp.stop()
        await pushes.stop()
