"""An LSPS2 client (stock ldk-node 0.7.1) offline when its JIT payment arrives, with LSPS5 on:
the LSP sends `lsps5.payment_incoming` to the client's webhooks and holds the payment up to
`[lsps5] wait_for_client_secs` for it to connect. Back in time: the channel opens and the first
attempt is paid. Not back: the payment is failed back once the wait is over (not at once), the
sale re-armed and nothing funded. (Without LSPS5, test_lsps2_failures: failed back at once.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsp_node.engine import PaymentFailed, PaymentSent

from .conftest import Chain, NodeFactory, wait_event
from .ldk_node_peer import LdkNodePeer
from .lightningrod_net import until
from .lsps2_net import channels_with, jit_lsp, lsps2_source, sales


async def test_an_offline_jit_client_back_within_the_wait_is_paid_on_the_first_try(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with jit_lsp(chain, make_node, tmp_path, lsps5={"wait_for_client_secs": 60}) as (lsp, payer):
        ldk = LdkNodePeer(tmp_path, "ldk")
        await ldk.start(chain.url, lsps2=lsps2_source(lsp))
        try:
            amount, fee = 40_000_000, 2_000_000
            invoice = await ldk.receive_via_jit_channel(amount, "while asleep", max_lsp_fee_msat=fee)
            await ldk.stop()

            await payer.pay_invoice(invoice["bolt11"])
            # The phone wakes up a few seconds later (as a webhook would make it).
            await asyncio.sleep(3)
            [sale] = await sales(lsp)
            assert sale["state"] == "sold" and sale["channel_id"] is None
            await ldk.start(chain.url, lsps2=lsps2_source(lsp))
            await ldk.connect(lsp.node_id, lsp.listen_addr)
            received = await ldk.wait_event("payment_received", payment_hash=invoice["payment_hash"], timeout=90)
            assert received["amount_msat"] == amount - fee
            # The first attempt went through: no failure came before it.
            sent = await wait_event(payer, "payment_sent", payment_hash=invoice["payment_hash"])
            assert isinstance(sent, PaymentSent)
            assert len(await channels_with(lsp, ldk.node_id)) == 1

            async def paid() -> bool:
                return [s["state"] for s in await sales(lsp)] == ["paid"]

            await until(paid, "the JIT channel booked as paid")
        finally:
            await ldk.stop()


async def test_an_offline_jit_client_not_back_in_time_is_failed_back_after_the_wait(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    wait = 4
    async with jit_lsp(chain, make_node, tmp_path, lsps5={"wait_for_client_secs": wait}) as (lsp, payer):
        ldk = LdkNodePeer(tmp_path, "ldk")
        await ldk.start(chain.url, lsps2=lsps2_source(lsp))
        try:
            invoice = await ldk.receive_via_jit_channel(40_000_000, "never back", max_lsp_fee_msat=2_000_000)
        finally:
            await ldk.stop()
        start = time.monotonic()
        await payer.pay_invoice(invoice["bolt11"])
        failed = await wait_event(payer, "payment_failed", payment_hash=invoice["payment_hash"], timeout=60)
        assert isinstance(failed, PaymentFailed)
        assert time.monotonic() - start >= wait, "failed back before the wait was over"
        [sale] = await sales(lsp)
        assert sale["state"] == "sold" and sale["channel_id"] is None
        assert await channels_with(lsp, ldk.node_id) == []
        assert chain.raw.mempool_txids() == []
