"""An LSP selling JIT channels (LSPS2) to stock ldk-node 0.7.1, with a payer that has channels to
it: the set-up the LSPS2 interop and failure-path tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsp_node.engine import LightningNode

from .conftest import Chain, NodeFactory
from .lightningrod_net import PushReceiver, lsp_fund, until
from .lsp_process import LspProcess

# The operator's terms: 5% of the payment, at least 2000 sat; the channel gets 100k sat more
# than the payment (and the engine's 1% + 10,000 sat room). Zero-conf: ldk-node trusts its LSP for that.
TERMS: dict[str, object] = {
    "min_payment_size_msat": 10_000_000,
    "max_payment_size_msat": 1_000_000_000,
    "min_fee_msat": 2_000_000,
    "proportional_ppm": 50_000,
    "channel_over_payment_sat": 100_000,
    "max_channel_sat": 2_000_000,
    "zero_conf": True,
}


@asynccontextmanager
async def jit_lsp(
    chain: Chain,
    make_node: NodeFactory,
    tmp_path: Path,
    payer_channels: int = 1,
    lsps5: dict[str, object] | None = None,
    lsps1: dict[str, object] | None = None,
) -> AsyncIterator[tuple[LspProcess, LightningNode]]:
    """An LSP selling JIT channels on TERMS (and `[lsps5]`, `[lsps1]` with these keys, if given),
    and a payer with `payer_channels` usable channels of 600k sat to it."""
    pushes = PushReceiver()
    await pushes.start()
    lsp = LspProcess(tmp_path, "lsp", chain.url, pushes.url, lsps2=TERMS, lsps5=lsps5, lsps1=lsps1)
    await lsp.start()
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        payer = await make_node("payer")
        await chain.fund(payer, 3_000_000)
        await payer.connect(lsp.node_id, lsp.listen_addr)
        for n in range(payer_channels):
            await payer.open_channel(lsp.node_id, 600_000)
            await until(lambda n=n: len(chain.raw.mempool_txids()) >= 1, f"payer's funding {n} broadcast")
            chain.mine(1)
        chain.mine(6)
        await until(lambda: usable(lsp, payer, payer_channels), "payer's channels usable")
        yield lsp, payer
    finally:
        await lsp.stop()
        await pushes.stop()


async def usable(lsp: LspProcess, payer: LightningNode, count: int) -> bool:
    await payer.sync()
    await lsp.api("POST", "/api/sync")
    return sum(c.is_usable for c in payer.channels()) == count


async def sales(lsp: LspProcess) -> list[dict[str, Any]]:
    return list((await lsp.api("GET", "/api/lsps2"))["channels"])


async def channels_with(lsp: LspProcess, node_id: str) -> list[dict[str, Any]]:
    return [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == node_id]


def lsps2_source(lsp: LspProcess) -> dict[str, Any]:
    return {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
