"""The LSP process: embedded chain (optional), the Lightning node, its event loop, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from lsp_node import _ldk, admin
from lsp_node.config import LspSettings, NotificationSettings, Settings
from lsp_node.engine import Event, LightningNode
from lsp_node.lsp import LdkEngine, LspService, LspStore
from lsp_node.notify import NotificationStore, Notifier, NotifierSettings

log = logging.getLogger("lsp_node")


@dataclass(frozen=True)
class StartupInfo:
    node_id: str
    listen_addr: str
    chain_height: int
    wallet_address: str
    esplora_url: str
    admin_url: str
    admin_token_file: str


async def start_embedded_chain(settings: Settings) -> tuple[_ldk.RegtestChain, str]:
    settings.network_dir.mkdir(parents=True, exist_ok=True)
    chain = _ldk.RegtestChain.open(str(settings.network_dir / "chain.sqlite"))
    host, _, port = settings.chain.embedded_listen.rpartition(":")
    url = await chain.start_server(host, int(port))
    return chain, url


async def handle_event(node: LightningNode, event: Event) -> None:
    """The engine-level policy of a bare LSP: record what happened, then acknowledge."""
    log.info("event %r", event)
    await node.event_handled(event)


class LspRole:
    """The LightningRod LSP running on a node: its event loop, block ticks and push outbox."""

    def __init__(self, node: LightningNode, service: LspService, notifier: Notifier | None) -> None:
        self.node = node
        self.service = service
        self.notifier = notifier
        self.tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(
        cls, node: LightningNode, data_dir: Path, lsp: LspSettings, notifications: NotificationSettings
    ) -> LspRole:
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        notifier = None
        if notifications.templates:
            # Opening runs the migrations and fsyncs: off the loop, like every other SQLite call.
            nstore = await asyncio.to_thread(
                NotificationStore,
                data_dir / "notify.sqlite",
                notifications.templates.keys(),
                cooldown_secs=notifications.cooldown_secs,
                device_lifetime_secs=notifications.device_lifetime_days * 86400,
            )
            notifier = Notifier(
                nstore, notifications.templates, NotifierSettings(max_attempts=notifications.max_attempts)
            )
        store = await asyncio.to_thread(LspStore, data_dir / "lsp.sqlite")
        service = LspService(LdkEngine(node), store, lsp, notifier)
        role = cls(node, service, notifier)
        await service.reconcile()
        role.tasks.append(asyncio.create_task(role._events(), name="lsp-events"))
        role.tasks.append(asyncio.create_task(role._ticks(), name="lsp-ticks"))
        if notifier is not None:
            role.tasks.append(asyncio.create_task(notifier.run(), name="lsp-notify"))
        return role

    async def _events(self) -> None:
        node = self.node
        failures: dict[int, int] = {}
        async for event in node.events():
            try:
                await self.service.handle(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not acknowledged, so it comes again; a poison event is dropped after 3 tries
                # rather than blocking every later event.
                n = failures[event.id] = failures.get(event.id, 0) + 1
                log.exception("handling %s event %s failed (attempt %s)", event.kind, event.id, n)
                if n < 3:
                    await asyncio.sleep(1.0)
                    continue
                log.error("dropping %s event %s after %s failures", event.kind, event.id, n)
            failures.pop(event.id, None)
            # Acknowledged only now: a crash before this line replays the event.
            await node.event_handled(event)

    async def _ticks(self) -> None:
        # One failed tick (a busy or broken database, an engine error) must not end fail-backs and
        # expiry for the life of the process: log it and try again at the next tick. The tick's
        # writes are conditional on the state it read, so a retry never undoes the event task.
        while True:
            try:
                await self.service.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("block tick failed; retrying at the next tick")
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with suppress(asyncio.CancelledError):
                await t
        self.service.store.close()
        if self.notifier is not None:
            self.notifier.store.close()


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
            options=settings.node.options(accept_intercept_htlcs=settings.lsp.enabled),
        )
        stack.push_async_callback(node.stop)

        role = None
        if settings.lsp.enabled:
            role = await LspRole.start(node, settings.network_dir, settings.lsp, settings.notifications)
            stack.push_async_callback(role.stop)
        token_file = settings.network_dir / "admin.token"
        admin_app = admin.create_app(node, role.service if role else None, admin.load_or_create_token(token_file))
        runner, admin_url = await admin.serve(admin_app, settings.admin.listen)
        stack.push_async_callback(runner.cleanup)

        address = await node.new_address()
        if chain is not None and first_start and settings.chain.embedded_fund_sat > 0:
            chain.fund_address(address, settings.chain.embedded_fund_sat)
            chain.mine_blocks(1)
            await node.sync()

        info = StartupInfo(
            node.node_id, node.listen_addr, node.best_block_height, address, esplora_url, admin_url, str(token_file)
        )
        ready = on_ready(info)
        if ready is not None:
            await ready

        if role is not None:
            await stop.wait()
            log.info("stopping")
        else:

            async def consume() -> None:
                async for event in node.events():
                    await handle_event(node, event)

            consumer = asyncio.create_task(consume(), name="engine-events")
            await stop.wait()
            log.info("stopping")
            consumer.cancel()
            with suppress(asyncio.CancelledError):
                await consumer
