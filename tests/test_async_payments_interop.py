"""BOLT async payments with this project's LSP as the server, between two stock ldk-node 0.7.1
clients (AsyncPaymentsRole::Client): the recipient registers its static invoice and goes
offline; the payer pays its offer; the LSP holds the HTLC (hold_htlc) and keeps the payer's
held_htlc_available in its persistent mailbox; the LSP is killed (SIGKILL) and restarted while
the HTLC is held; the recipient comes back, gets the message, releases the HTLC and is paid."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from .async_payments_net import AsyncNet, announced_channel, async_net, lsp_server, restart
from .conftest import Chain
from .lightningrod_net import PushReceiver, lsp_fund, until
from .lsp_process import LspProcess
from .test_metrics import scrape, val

ASYNC: dict[str, dict[str, object]] = {"async_payments": {"enabled": True}}


@asynccontextmanager
async def two_lsps(chain: Chain, tmp_path: Path) -> AsyncIterator[tuple[LspProcess, LspProcess, AsyncNet]]:
    """Our LSP_a (the payer's, the holder) and LSP_b (the recipient's, keeping its invoice and
    mail) with [async_payments] on and an announced channel, and the two ldk-node clients."""
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
            yield lsp_a, lsp_b, net
    finally:
        for lsp in lsps:
            await lsp.stop()
        await pushes.stop()


async def test_async_payment_through_two_lsps_killed_while_held(chain: Chain, tmp_path: Path) -> None:
    async with two_lsps(chain, tmp_path) as (lsp_a, lsp_b, net):
        lsps = [lsp_a, lsp_b]
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

        # The operator sees it (once LDK moved it from the channel to its held HTLCs): from
        # the payer, the amount, the blocks left before fail-back.
        async def listed() -> bool:
            return len((await lsp_a.api("GET", "/api/async"))["held_htlcs"]) == 1

        await until(listed, "the held HTLC listed at LSP_a", 30)
        [shown] = (await lsp_a.api("GET", "/api/async"))["held_htlcs"]
        assert shown["counterparty_node_id"] == net.payer.node_id and shown["amount_msat"] >= amount
        assert shown["blocks_left"] > 0

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
        assert (await lsp_a.api("GET", "/api/async"))["held_htlcs"] == [shown]
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


async def test_held_htlcs_failed_by_the_operator_and_at_the_margin(chain: Chain, tmp_path: Path) -> None:
    """LDK alone would keep an async payment's HTLC until 39 blocks before its outgoing CLTV; the
    LSP fails it `failback_margin_blocks` earlier, as LightningRod holds, and the operator can
    fail one by hand."""
    async with two_lsps(chain, tmp_path) as (lsp_a, _, net):
        await net.recipient.stop()

        async def held(n: int) -> list[dict[str, Any]]:
            async def listed() -> bool:
                return len((await lsp_a.api("GET", "/api/async"))["held_htlcs"]) == n

            await until(listed, f"{n} HTLC(s) held at LSP_a", 90)
            return list((await lsp_a.api("GET", "/api/async"))["held_htlcs"])

        async def failed(payment_id: str) -> None:
            out = await net.payer.wait_event("payment_successful", "payment_failed", payment_id=payment_id, timeout=90)
            assert out["kind"] == "payment_failed", out

        # Both payments held before either is failed: the payer's LDK takes the failure LDK's
        # fail_intercepted_htlc sends (unknown_next_peer) as the LSPs' channel gone, and drops
        # it from its graph for a while (SPEC.md §13).
        first = await net.payer.pay_offer(net.offer, 21_000_000)
        [one] = await held(1)
        second = await net.payer.pay_offer(net.offer, 22_000_000)
        both = await held(2)
        m = await scrape(lsp_a)
        assert val(m, "lsp_async_held_htlcs") == 2
        assert val(m, "lsp_async_held_msat") == sum(h["amount_msat"] for h in both)

        # By hand.
        done = await lsp_a.api("POST", f"/api/async/htlcs/{one['intercept_id']}/fail")
        assert done["failed"]["intercept_id"] == one["intercept_id"]
        await failed(first)
        [h] = await held(1)
        assert h in both and h["intercept_id"] != one["intercept_id"]
        with pytest.raises(AssertionError, match="404"):
            await lsp_a.api("POST", f"/api/async/htlcs/{one['intercept_id']}/fail")

        # At the margin: held one block before it, failed at it (LDK would wait 6 more).
        assert h["ldk_fail_back_height"] - h["fail_back_height"] == 6 and h["blocks_left"] > 1
        chain.mine(h["blocks_left"] - 1)
        await lsp_a.api("POST", "/api/sync")
        await asyncio.sleep(3)  # the role ticks every second
        [still] = await held(1)
        assert still["intercept_id"] == h["intercept_id"] and still["blocks_left"] == 1
        chain.mine(1)
        await lsp_a.api("POST", "/api/sync")
        await failed(second)
        assert await held(0) == []
        assert chain.raw.height < h["ldk_fail_back_height"]
