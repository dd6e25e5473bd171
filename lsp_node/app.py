"""The LSP process: embedded chain (optional), the Lightning node, its event loop, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Awaitable, Callable

from lsp_node import _ldk
from lsp_node.config import Settings
from lsp_node.engine import Event, LightningNode

log = logging.getLogger("lsp_node")


@dataclass(frozen=True)
class StartupInfo:
    node_id: str
    listen_addr: str
    chain_height: int
    wallet_address: str
    esplora_url: str


async def start_embedded_chain(settings: Settings) -> tuple[_ldk.RegtestChain, str]:
    settings.network_dir.mkdir(parents=True, exist_ok=True)
    chain = _ldk.RegtestChain.open(str(settings.network_dir / "chain.sqlite"))
    host, _, port = settings.chain.embedded_listen.rpartition(":")
    url = await chain.start_server(host, int(port))
    return chain, url


async def handle_event(node: LightningNode, event: Event) -> None:
    """The engine-level policy of a bare LSP: record what happened, then acknowledge."""
    log.info("event %s %s", event.kind, event.data)
    await node.event_handled(event)


async def run(settings: Settings, on_ready: Callable[[StartupInfo], Awaitable[None] | None]) -> None:
    """Run until SIGINT/SIGTERM, then stop everything cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with AsyncExitStack() as stack:
        chain: _ldk.RegtestChain | None = None
        if settings.chain.source == "embedded":
            chain, esplora_url = await start_embedded_chain(settings)
            stack.push_async_callback(chain.stop_server)
        else:
            assert settings.chain.esplora_url is not None
            esplora_url = settings.chain.esplora_url

        first_start = not (settings.network_dir / "node.sqlite").exists()
        node = await LightningNode.start(
            str(settings.network_dir),
            network=settings.node.network,
            esplora_url=esplora_url,
            listen_addr=settings.node.listen_addr,
            sync_interval_secs=settings.node.sync_interval_secs,
            log_level=settings.node.log_level,
            to_self_delay=settings.node.to_self_delay,
            min_funding_confirmations=settings.node.min_funding_confirmations,
        )
        stack.push_async_callback(node.stop)

        address = await node.new_address()
        if chain is not None and first_start and settings.chain.embedded_fund_sat > 0:
            chain.fund_address(address, settings.chain.embedded_fund_sat)
            chain.mine_blocks(1)
            await node.sync()

        info = StartupInfo(node.node_id, node.listen_addr, node.best_block_height, address, esplora_url)
        ready = on_ready(info)
        if ready is not None:
            await ready

        async def consume() -> None:
            async for event in node.events():
                await handle_event(node, event)

        consumer = asyncio.create_task(consume(), name="engine-events")
        await stop.wait()
        log.info("stopping")
        consumer.cancel()
        try:
            await consumer
        except asyncio.CancelledError:
            pass
