"""LSPS2's failure paths against stock ldk-node 0.7.1 as the JIT client, end to end: the client
offline when its first payment arrives (failed back at once, the sale re-armed, paid once the
client is back), the service turned off after a sale (the SCID's HTLC failed at once, nothing
funded), a first payment in two parts (one channel, the fee skimmed part by part and booked once the
parts add up to it, after which later payments over the JIT SCID go through in full), and a restart
while the channel is being opened (the sale given up, nothing funded)."""

from __future__ import annotations

import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from lsp_node.engine import HeldHop, PaymentFailed, PaymentSent

from .conftest import Chain, NodeFactory, wait_event
from .ldk_node_peer import LdkNodePeer, ldk_node_peer
from .lightningrod_net import until
from .lsp_process import LspProcess
from .lsps2_net import channels_with, jit_lsp, lsps2_source, sales, usable


async def test_client_offline_at_its_first_payment_is_failed_back_then_paid_once_back(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with jit_lsp(chain, make_node, tmp_path) as (lsp, payer):
        ldk = LdkNodePeer(tmp_path, "ldk")
        await ldk.start(chain.url, lsps2=lsps2_source(lsp))
        try:
            amount, fee = 40_000_000, 2_000_000  # 5% is below the 2,000 sat minimum fee
            invoice = await ldk.receive_via_jit_channel(amount, "first payment", max_lsp_fee_msat=fee)
            await ldk.stop()

            # Nobody to open a channel to: the payment is failed back at once, nothing is funded
            # and the sale is re-armed for the next attempt.
            await payer.pay_invoice(invoice["bolt11"])
            failed = await wait_event(payer, "payment_failed", payment_hash=invoice["payment_hash"], timeout=60)
            assert isinstance(failed, PaymentFailed)
            [sale] = await sales(lsp)
            assert sale["state"] == "sold" and sale["channel_id"] is None
            assert await channels_with(lsp, ldk.node_id) == []
            assert chain.raw.mempool_txids() == []

            # The phone is back: the same invoice now opens the channel and arrives, less the fee.
            await ldk.start(chain.url, lsps2=lsps2_source(lsp))
            await ldk.connect(lsp.node_id, lsp.listen_addr)
            await payer.pay_invoice(invoice["bolt11"])
            received = await ldk.wait_event("payment_received", payment_hash=invoice["payment_hash"], timeout=90)
            assert received["amount_msat"] == amount - fee
            assert isinstance(
                await wait_event(payer, "payment_sent", payment_hash=invoice["payment_hash"]), PaymentSent
            )
            assert len(await channels_with(lsp, ldk.node_id)) == 1

            async def paid() -> bool:
                return [s["state"] for s in await sales(lsp)] == ["paid"]

            await until(paid, "the JIT channel booked as paid")
            assert (await sales(lsp))[0]["opening_fee_msat"] == fee
        finally:
            await ldk.stop()


async def test_lsps2_turned_off_after_a_sale_fails_its_payment_at_once(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with (
        jit_lsp(chain, make_node, tmp_path) as (lsp, payer),
        ldk_node_peer(tmp_path, chain.url, lsps2=lsps2_source(lsp)) as ldk,
    ):
        invoice = await ldk.receive_via_jit_channel(40_000_000, "sold, then the service stops")
        lsp.lsps2 = None
        await lsp.stop()
        await lsp.start()
        await payer.connect(lsp.node_id, lsp.listen_addr)
        await until(lambda: usable(lsp, payer, 1), "payer's channel usable again")
        await payer.pay_invoice(invoice["bolt11"])
        failed = await wait_event(payer, "payment_failed", payment_hash=invoice["payment_hash"], timeout=30)
        assert isinstance(failed, PaymentFailed)
        # The operator still sees the sale; nothing was funded.
        state = await lsp.api("GET", "/api/lsps2")
        assert state["enabled"] is False
        assert [s["state"] for s in state["channels"]] == ["sold"]
        assert await channels_with(lsp, ldk.node_id) == []
        assert chain.raw.mempool_txids() == []


async def test_a_first_payment_in_two_parts_opens_one_channel_and_books_the_fee_once(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with (
        jit_lsp(chain, make_node, tmp_path, payer_channels=2) as (lsp, payer),
        ldk_node_peer(tmp_path, chain.url, lsps2=lsps2_source(lsp)) as ldk,
    ):
        # 900k sat cannot fit one of the payer's 600k sat channels: it goes in (at least) two parts.
        amount = 900_000_000
        fee = amount * 50_000 // 1_000_000
        invoice = await ldk.receive_via_jit_channel(amount, "two parts", max_lsp_fee_msat=fee)
        await payer.pay_invoice(invoice["bolt11"])
        received = await ldk.wait_event("payment_received", payment_hash=invoice["payment_hash"], timeout=90)
        assert received["amount_msat"] == amount - fee
        assert isinstance(await wait_event(payer, "payment_sent", payment_hash=invoice["payment_hash"]), PaymentSent)
        assert len(await channels_with(lsp, ldk.node_id)) == 1

        async def paid() -> bool:
            return [s["state"] for s in await sales(lsp)] == ["paid"]

        await until(paid, "the JIT channel booked as paid")
        # The fee is booked once, whole, however many parts carried it: `paid` only once the
        # parts' skims add up to it.
        await until(lambda: fee_booked(lsp, fee), "the whole opening fee booked")
        [sale] = await sales(lsp)
        assert sale["skimmed_msat"] == fee
        # Each part is a forward of its own; together they carry the payment less the whole fee,
        # and what the LSP earned on them is that fee (the JIT hop charges no routing fee).
        await until(lambda: forwarded_to(lsp, ldk.node_id, amount - fee), "both parts booked as forwards")
        parts = [f for f in (await lsp.api("GET", "/api/forwards"))["forwards"] if f["next_node_id"] == ldk.node_id]
        assert sum(f["fee_earned_msat"] for f in parts) == fee

        # lightning-liquidity was told the fee is paid (it compares each report with the whole
        # fee): a later payment over the JIT SCID is forwarded in full at once, not queued
        # behind a first payment it still thinks is in flight. The payer routes an ordinary
        # invoice of the client through the LSP onto that SCID.
        later = await ldk.receive_invoice(20_000_000, "over the JIT SCID")
        hop = HeldHop(ldk.node_id, sale["scid"], 0, 0, 72)
        await payer.pay_invoice_held(later["bolt11"], lsp.node_id, [hop], extra_final_cltv=0)
        again = await ldk.wait_event("payment_received", payment_hash=later["payment_hash"], timeout=60)
        assert again["amount_msat"] == 20_000_000
        assert isinstance(await wait_event(payer, "payment_sent", payment_hash=later["payment_hash"]), PaymentSent)
        [sale] = await sales(lsp)
        assert (sale["state"], sale["skimmed_msat"]) == ("paid", fee)


async def test_a_restart_while_the_channel_is_being_opened_gives_the_sale_up(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with (
        jit_lsp(chain, make_node, tmp_path) as (lsp, payer),
        ldk_node_peer(tmp_path, chain.url, lsps2=lsps2_source(lsp)) as ldk,
    ):
        invoice = await ldk.receive_via_jit_channel(40_000_000, "opened across a restart")
        # The client stops answering with its connection still up: the LSP records the open and
        # asks for the channel, which never gets as far as its funding. Then the LSP dies.
        assert ldk.proc is not None
        ldk.proc.send_signal(signal.SIGSTOP)
        try:
            await payer.pay_invoice(invoice["bolt11"])

            async def opening() -> bool:
                return [s["state"] for s in await sales(lsp)] == ["opening"]

            await until(opening, "the JIT channel being opened")
            lsp.kill9()
            await lsp.start()
        finally:
            ldk.proc.send_signal(signal.SIGCONT)
        await payer.connect(lsp.node_id, lsp.listen_addr)

        # LDK kept no unfunded channel: the sale is given up for good (lightning-liquidity
        # abandons it and fails the payment back), not re-armed while an open it asked for
        # before the stop could still fund a channel it no longer expects.
        failed = await wait_event(payer, "payment_failed", payment_hash=invoice["payment_hash"], timeout=90)
        assert isinstance(failed, PaymentFailed)
        [sale] = await sales(lsp)
        assert (sale["state"], sale["channel_sat"]) == ("failed", None)
        # The SCID is retired: paying the invoice again is failed at once, and nothing is funded.
        await until(lambda: usable(lsp, payer, 1), "payer's channel usable again")
        await payer.pay_invoice(invoice["bolt11"])
        again = await wait_event(payer, "payment_failed", payment_hash=invoice["payment_hash"], timeout=30)
        assert isinstance(again, PaymentFailed)
        assert await channels_with(lsp, ldk.node_id) == []
        assert chain.raw.mempool_txids() == []
        assert [s["state"] for s in await sales(lsp)] == ["failed"]


async def test_a_part_that_never_completes_is_failed_back_after_the_mpp_timeout_even_across_a_restart(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with (
        jit_lsp(chain, make_node, tmp_path) as (lsp, payer),
        ldk_node_peer(tmp_path, chain.url, lsps2=lsps2_source(lsp)) as ldk,
    ):
        # Two sales to the client: 40k sat on the first SCID, a second invoice of 20k sat. The
        # payer routes the second invoice onto the first SCID: lightning-liquidity queues the
        # 20k sat as one part of a 40k sat payment that never completes.
        await ldk.receive_via_jit_channel(40_000_000, "the sale that waits")
        short = await ldk.receive_via_jit_channel(20_000_000, "routed onto the other SCID")
        [waiting] = [s for s in await sales(lsp) if s["payment_size_msat"] == 40_000_000]
        hop = HeldHop(ldk.node_id, waiting["scid"], 0, 0, 72)
        await payer.pay_invoice_held(short["bolt11"], lsp.node_id, [hop], extra_final_cltv=0)

        async def handed() -> bool:
            pending = [p for p in await payer.payments() if p.payment_hash == short["payment_hash"]]
            return bool(pending) and pending[0].status == "pending" and len(lsp_htlcs(lsp)) == 1

        await until(handed, "the part handed to lightning-liquidity")
        # The LSP stops with the part waiting. LDK will not hand the intercept out again: only
        # the engine's record of it lets the MPP timeout end it after the restart.
        await lsp.stop()
        await lsp.start()
        restarted = time.monotonic()
        await payer.connect(lsp.node_id, lsp.listen_addr)
        failed = await wait_event(payer, "payment_failed", payment_hash=short["payment_hash"], timeout=150)
        assert isinstance(failed, PaymentFailed)
        # The 90 s start again at the restart (the node cannot tell how long it was away).
        assert time.monotonic() - restarted >= 80
        # The whole sale was given up, and nothing was funded.
        assert waiting["scid"] in [s["scid"] for s in await sales(lsp) if s["state"] == "failed"]
        assert await channels_with(lsp, ldk.node_id) == []
        await until(lambda: not lsp_htlcs(lsp), "the part forgotten")


def lsp_htlcs(lsp: LspProcess) -> list[tuple[str, int]]:
    """The HTLCs the LSP's engine recorded as handed to lightning-liquidity (its node.sqlite)."""
    with closing(sqlite3.connect(lsp.dir / "data" / "regtest" / "node.sqlite")) as db:
        return [(r[0], r[1]) for r in db.execute("SELECT intercept_id, scid FROM jit_htlcs")]


async def fee_booked(lsp: LspProcess, fee: int) -> bool:
    return bool((await sales(lsp))[0]["opening_fee_msat"] == fee)


async def forwarded_to(lsp: LspProcess, node_id: str, total_msat: int) -> bool:
    forwards = (await lsp.api("GET", "/api/forwards"))["forwards"]
    parts = [f for f in forwards if f["next_node_id"] == node_id]
    return len(parts) >= 2 and sum(f["outbound_amount_msat"] for f in parts) == total_msat
