"""LSPS1 and LSPS2 sell channels funded from one wallet. Coins owed to a paid LSPS1 order whose
channel is not open yet (its client is offline) are not the LSP's to spend on a JIT channel: with
too little left beside them, an LSPS2 client's first payment is failed back and its sale re-armed,
and the LSPS1 client still gets its channel when it returns. Stock ldk-node 0.7.1 is both clients."""

from __future__ import annotations

from pathlib import Path

from lsp_node.engine import PaymentFailed, PaymentSent

from .conftest import Chain, NodeFactory, wait_event
from .ldk_node_peer import LdkNodePeer, ldk_node_peer
from .lightningrod_net import until
from .lsps2_net import channels_with, jit_lsp, lsps2_source, sales
from .test_lsps1_interop import TERMS as LSPS1_TERMS
from .test_lsps1_interop import engine_log, lsps1_orders, order_completed


async def test_a_jit_channel_may_not_take_the_coins_owed_to_a_paid_lsps1_order(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with jit_lsp(chain, make_node, tmp_path, lsps1=LSPS1_TERMS) as (lsp, payer):
        lsps1 = {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
        buyer = LdkNodePeer(tmp_path, "buyer")
        try:
            # A 300k sat channel bought and paid for while its buyer is offline: owed, not opened.
            await buyer.start(chain.url, lsps1=lsps1)
            order = await buyer.lsps1_request_channel(lsp_balance_sat=300_000, channel_expiry_blocks=1_000)
            await buyer.stop()
            paid_id = await payer.pay_invoice(order["payment_options"]["bolt11"]["invoice"])
            assert isinstance(await wait_event(payer, "payment_sent", payment_id=paid_id), PaymentSent)

            async def booked_paid() -> bool:
                return [o["payment_state"] for o in await lsps1_orders(lsp)] == ["PAID"]

            await until(booked_paid, "the order booked paid")

            # The operator spends (forced) all but 360k sat: the order's 300k and its funding fee
            # stay, with too little beside them for a JIT channel (a payment of 40k sat needs one
            # of 40k + 100k + room).
            spendable = (await lsp.api("GET", "/api/balances"))["onchain"]["spendable_sat"]
            away = {"address": await payer.new_address(), "amount_sat": spendable - 360_000, "force": True}
            await lsp.api("POST", "/api/onchain/send", away)
            chain.mine(1)
            await lsp.api("POST", "/api/sync")

            async with ldk_node_peer(tmp_path, chain.url, lsps2=lsps2_source(lsp)) as jit_client:
                amount, fee = 40_000_000, 2_000_000
                invoice = await jit_client.receive_via_jit_channel(amount, "first payment", max_lsp_fee_msat=fee)
                await payer.pay_invoice(invoice["bolt11"])
                failed = await wait_event(payer, "payment_failed", payment_hash=invoice["payment_hash"], timeout=60)
                assert isinstance(failed, PaymentFailed)
                assert await channels_with(lsp, jit_client.node_id) == []
                [sale] = await sales(lsp)
                assert (sale["state"], sale["channel_id"]) == ("sold", None), "re-armed for a later payment"
                assert "owed to 1 paid LSPS1 order(s)" in engine_log(lsp)
                assert chain.raw.mempool_txids() == []

            # The buyer is back: its channel is funded from the coins kept for it.
            await buyer.start(chain.url, lsps1=lsps1)
            await buyer.connect(lsp.node_id, lsp.listen_addr)

            await order_completed(lsp, "the order's channel opened once the buyer is back", 90)
            [done] = await lsps1_orders(lsp)
            assert (done["open_attempts"], done["last_error"]) == (0, None)
            chans = await channels_with(lsp, buyer.node_id)
            assert [(c["channel_id"], c["capacity_sat"]) for c in chans] == [(done["channel_id"], 300_000)]
        finally:
            await buyer.stop()
