"""An LSP whose wallet file is lost is rebuilt from its seed. Its full scan stops at 20 unused
addresses in a row, but the addresses lent to LSPS1 orders are recorded in node.sqlite and
revealed again at start: a payment to an order's address past that gap is still seen (the order
is paid and its channel opened), and the next order gets a fresh address, not one lent before.
Stock ldk-node 0.7.1 is the buyer."""

from __future__ import annotations

from pathlib import Path

from .conftest import Chain, NodeFactory
from .ldk_node_peer import ldk_node_peer
from .lightningrod_net import lsp_fund
from .lsp_process import LspProcess
from .test_lsps1_interop import ONCHAIN_TERMS, UNUSED_PUSH, lsps1_orders, order_completed


async def test_a_wallet_rebuilt_from_the_seed_still_sees_payments_to_order_addresses_past_the_gap(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    lsp = LspProcess(tmp_path, "lsp", chain.url, UNUSED_PUSH, role=False, lsps1=ONCHAIN_TERMS)
    await lsp.start()
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        # 25 addresses the operator never uses: the order's comes after a gap a full scan stops at.
        for _ in range(25):
            await lsp.api("POST", "/api/newaddress")
        lsps1 = {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
        async with ldk_node_peer(tmp_path, chain.url, lsps1=lsps1) as ldk:
            order = await ldk.lsps1_request_channel(lsp_balance_sat=500_000, channel_expiry_blocks=1_000)
            onchain = order["payment_options"]["onchain"]
            address, total = onchain["address"], int(onchain["order_total_sat"])

            # The wallet file is lost; the node starts again from its seed alone.
            await lsp.stop()
            wallet_files = [p for p in lsp.dir.rglob("wallet.sqlite*")]
            assert wallet_files, "no wallet file to lose"
            for p in wallet_files:
                p.unlink()
            await lsp.start()
            await ldk.connect(lsp.node_id, lsp.listen_addr)

            chain.raw.fund_address(address, total)
            chain.mine(2)

            await order_completed(lsp, "the order paid on chain and its channel opened", 90, sync=True)
            [done] = await lsps1_orders(lsp)
            assert (done["paid_by"], done["onchain_received_sat"]) == ("onchain", total)

            # The next order's address is a new one (the lent one is never handed out again).
            second = await ldk.lsps1_request_channel(lsp_balance_sat=500_000, channel_expiry_blocks=1_000)
            assert second["payment_options"]["onchain"]["address"] != address
            assert len(await lsps1_orders(lsp)) == 2
    finally:
        await lsp.stop()
