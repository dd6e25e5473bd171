"""An LSPS1 order's channel with the LSP killed (-9) the moment its funding transaction reaches
the mempool, before it confirms: after the restart the order is completed with that very
transaction, the channel becomes usable, and no second channel is ever funded for it. Stock
ldk-node 0.7.1 is the buyer. Where the kill lands is up to the race; in our runs the order's row
was already written (it is, about 60 ms after the open). The narrower window, a crash between
the funding transaction's making and LDK's persist, is covered by the engine's store tests
(`io/lsps1_tests.rs`): a funding made but unknown to LDK is flagged, never opened again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from .conftest import Chain, NodeFactory
from .lightningrod_net import until
from .test_lsps1_interop import lsps1_orders, order_completed, order_paid_while_away


async def test_a_kill9_just_after_the_funding_broadcast_completes_the_order_with_one_channel(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with order_paid_while_away(chain, make_node, tmp_path) as away:
        lsp, ldk, lsps1 = away.lsp, away.ldk, away.lsps1

        async def paid() -> bool:
            return [o["payment_state"] for o in await lsps1_orders(lsp)] == ["PAID"]

        await until(paid, "the order booked paid")
        await ldk.start(chain.url, lsps1=lsps1)
        await ldk.connect(lsp.node_id, lsp.listen_addr)
        # The buyer is back: the sweep opens its channel. Kill the LSP as soon as the funding
        # transaction is seen (the embedded chain's mempool, polled every 10 ms).
        deadline = time.monotonic() + 90
        while not (mempool := chain.raw.mempool_txids()):
            assert time.monotonic() < deadline, "no funding broadcast"
            await asyncio.sleep(0.01)
        lsp.kill9()
        [funding_txid] = mempool

        await lsp.start()
        await ldk.connect(lsp.node_id, lsp.listen_addr)

        await order_completed(lsp, "the order completed after the restart", 90)
        [done] = await lsps1_orders(lsp)
        assert done["funding_outpoint"].split(":")[0] == funding_txid
        chain.mine(6)

        async def ldk_usable() -> bool:
            await ldk.sync()
            await lsp.api("POST", "/api/sync")
            return any(c["is_usable"] for c in await ldk.channels())

        await until(ldk_usable, "the bought channel usable")
        # Past two of the sweep's 10 s rounds after the restart: still the one channel.
        await asyncio.sleep(25)
        assert chain.raw.mempool_txids() == [], "a second funding was broadcast"
        chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == ldk.node_id]
        assert [(c["channel_id"], c["capacity_sat"]) for c in chans] == [(done["channel_id"], 300_000)]
        assert len(await ldk.channels()) == 1
        [after] = await lsps1_orders(lsp)
        assert (after["state"], after["channel_id"]) == ("COMPLETED", done["channel_id"])
