"""The LSP process: embedded chain (optional), the Lightning node, its event loop, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from lsp_node import _ldk, admin, logs
from lsp_node.config import LspSettings, NotificationSettings, Settings
from lsp_node.engine import Event, LightningNode
from lsp_node.errors import LspNodeError
from lsp_node.lsp import LdkEngine, LspService, LspStore
from lsp_node.monitor.recorder import Recorder
from lsp_node.monitor.samples import SampleStore
from lsp_node.notify import NotificationStore, Notifier, NotifierSettings, WebhookPolicy

log = logging.getLogger("lsp_node")

#: Attempts at an engine event whose handler raises before it is dropped (acknowledged unhandled).
MAX_EVENT_ATTEMPTS = 3
#: Pause before the second attempt (seconds), times 4 before each later one: 0.05 s then 0.2 s.
EVENT_RETRY_DELAY = 0.05


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
    # Kind and id only: an event's fields may hold a preimage, a payload or a peer's secrets.
    log.info("event %s %s", event.kind, event.id)
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
        cls,
        node: LightningNode,
        data_dir: Path,
        lsp: LspSettings,
        notifications: NotificationSettings,
        webhooks: WebhookPolicy | None = None,
    ) -> LspRole:
        """`webhooks`: the `[lsps5]` rules when LSPS5 runs (its POSTs go through the push outbox,
        which then runs even with no apprise platform)."""
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        notifier = None
        if notifications.templates or webhooks is not None:
            # Opening runs the migrations and fsyncs: off the loop, like every other SQLite call.
            nstore = await asyncio.to_thread(
                NotificationStore,
                data_dir / "notify.sqlite",
                notifications.templates,  # device id formats follow the templates (SPEC.md §7.1)
                cooldown_secs=notifications.cooldown_secs,
                device_lifetime_secs=notifications.device_lifetime_days * 86400,
            )
            notifier = Notifier(
                nstore, notifications.templates, NotifierSettings(max_attempts=notifications.max_attempts), webhooks
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
        node, store, meters = self.node, self.service.store, self.service.meters
        # Attempts are counted in lsp.sqlite, not in memory: a poison event is dropped after
        # MAX_EVENT_ATTEMPTS even if each attempt ends in a crash and a restart.
        head = await asyncio.to_thread(node.poll_event)
        attempts = await store.run(store.event_attempts, head.id if head is not None else None)
        # The oldest pending event at start-up may be the one a crash (OOM, kill) interrupted,
        # which left no failure record: its attempt is counted before it is tried.
        count_first = True
        async for event in node.events():
            n = attempts.get(event.id, 0)
            counted = False
            if n < MAX_EVENT_ATTEMPTS and count_first:
                n = attempts[event.id] = await self._count_attempt(event, "interrupted by a stop or crash")
                counted = True
            count_first = False
            handled = False
            if n >= MAX_EVENT_ATTEMPTS and not counted:
                log.error("dropping %s event %s: %s attempts at it failed", event.kind, event.id, n)
            else:
                try:
                    await self.service.handle(event)
                    handled = True
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    meters.events_failed.labels(event.kind).inc()
                    if not counted:
                        n = attempts[event.id] = await self._count_attempt(event, type(e).__name__)
                    # The reason only: the exception's text is ours, the traceback is for debugging.
                    log.warning(
                        "handling %s event %s failed (attempt %s of %s): %s: %.200s",
                        event.kind,
                        event.id,
                        n,
                        MAX_EVENT_ATTEMPTS,
                        type(e).__name__,
                        e,
                    )
                    log.debug("traceback of the failed %s event %s", event.kind, event.id, exc_info=True)
                    if n < MAX_EVENT_ATTEMPTS:
                        # Not acknowledged, so the engine delivers it again. The queue is served
                        # in order, so the pause is short: it delays every later event too.
                        await asyncio.sleep(EVENT_RETRY_DELAY * 4 ** (n - 1))
                        continue
                    log.error("dropping %s event %s after %s failed attempts", event.kind, event.id, n)
            if event.id in attempts:
                del attempts[event.id]
                await store.run(store.forget_event, event.id)
            # Acknowledged only now: a crash before this line replays the event.
            await node.event_handled(event)
            (meters.events_handled if handled else meters.events_dropped).labels(event.kind).inc()

    async def _count_attempt(self, event: Event, error: str) -> int:
        store = self.service.store
        while True:
            try:
                return await store.run(store.count_event_attempt, event.id, event.kind, error, time.time())
            except LspNodeError as e:
                # Without a durable count the event may be neither retried nor dropped safely:
                # wait for the store rather than let the event task die.
                log.error("cannot record an attempt at %s event %s: %s", event.kind, event.id, e)
                await asyncio.sleep(1.0)

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
        # Hand-overs under way get the time a release may wait, so their answers go out; what is
        # still waiting then is cancelled: its intent is committed and start-up redoes it.
        role = self.service.role
        with suppress(TimeoutError):
            await asyncio.wait_for(role.drain(), role.policy.release_wait_secs)
        role.cancel_background()
        await role.drain()
        await self.service.close()
        self.service.store.close()
        if self.notifier is not None:
            self.notifier.store.close()


def _reopen_log() -> None:
    if logs.reopen():
        log.info("log file reopened (SIGHUP)")


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def run(settings: Settings, on_ready: Callable[[StartupInfo], Awaitable[None] | None]) -> None:
    """Run until SIGINT/SIGTERM, then stop everything cleanly; SIGHUP reopens the log file."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # On the loop: one open() like the writes every log line does; without a handler, the
    # default action of SIGHUP (a closed terminal, a `kill -HUP` for logrotate) ends the process.
    loop.add_signal_handler(signal.SIGHUP, _reopen_log)

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
            options=settings.node.options(
                accept_intercept_htlcs=settings.lsp.enabled,
                async_payments_server=settings.async_payments.enabled,
                lsps2=settings.lsps2.engine_options(),
                lsps1=settings.lsps1.engine_options(),
                lsps5_max_webhooks=settings.lsps5.max_webhooks_per_client if settings.lsps5.enabled else None,
                lsps5_wait_for_client_secs=settings.lsps5.wait_for_client_secs if settings.lsps5.enabled else 0,
            ),
        )
        stack.push_async_callback(node.stop)

        role = None
        if settings.lsp.enabled:
            role = await LspRole.start(
                node, settings.network_dir, settings.lsp, settings.notifications, settings.lsps5.policy()
            )
            stack.push_async_callback(role.stop)
        token_file = settings.network_dir / "admin.token"
        ops = admin.Ops(node, role.service if role else None, role.notifier if role else None, settings)
        admin_app = admin.create_app(ops, admin.load_or_create_token(token_file), settings.admin.max_body_bytes)
        runner, admin_url = await admin.serve(admin_app, settings.admin.listen)
        stack.push_async_callback(runner.cleanup)

        # Samples for the dashboard's charts: one at start, then every interval (monitor.sqlite).
        ops.samples = await asyncio.to_thread(SampleStore, settings.network_dir / "monitor.sqlite")
        stack.callback(ops.samples.close)
        mon = settings.monitor
        recording = asyncio.create_task(
            Recorder(ops, ops.samples, mon.sample_interval_secs, mon.retention_days).run(), name="monitor"
        )
        stack.push_async_callback(_cancel, recording)

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
