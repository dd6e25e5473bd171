"""Prometheus `/metrics` of the admin app (text exposition; the bearer-token middleware guards the
path like /api). Gauges are read at scrape time: `summary(ops)` and the engine's numbers are
gathered asynchronously first, then a custom collector hands them to prometheus-client. Counters
and the release-latency histogram are the LSP role's `Meters`, updated where things happen.

Each app has its own CollectorRegistry, never the global one, so several nodes in one process
(the tests) each export only their own numbers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from lsp_node.admin.ops import Ops
from lsp_node.engine import Channel, HeldAsyncHtlc, OnionMessageStats
from lsp_node.monitor.meters import Meters
from lsp_node.monitor.summary import summary
from lsp_node.notify.ids import client_tag

#: The onion-message front door's counters (engine `onion_message_stats`), by result.
ONION_RESULTS: Final = ("accepted", "rate_limited", "forwarded", "intercepted", "undeliverable", "queue_refused")


@dataclass
class Snapshot:
    """What one scrape exports, gathered before prometheus-client's synchronous collect runs."""

    summary: dict[str, Any]
    onion: OnionMessageStats
    channels: list[Channel]
    payments: dict[tuple[str, str], int]
    forwards: dict[str, int]
    last_sync_at: float | None
    taken_at: float
    meters: Meters = field(default_factory=Meters)
    #: HTLCs LDK holds for BOLT async payments (none with the LSP role off)
    async_held: list[HeldAsyncHtlc] = field(default_factory=list)


async def take_snapshot(ops: Ops) -> Snapshot:
    node = ops.node
    s = await summary(ops)
    onion = await node.onion_message_stats()
    return Snapshot(
        summary=s,
        onion=onion,
        channels=node.channels(),
        async_held=ops.service.async_holds.held() if ops.service else [],
        # Counted by the engine's database: no payment record (nor its preimage) is read.
        payments=await node.payment_counts(),
        forwards=await ops.forward_totals(),
        last_sync_at=node.last_sync_at,
        taken_at=time.time(),
        # With the LSP role off nothing counts events: its counters are exported at zero.
        meters=ops.service.meters if ops.service is not None else Meters(),
    )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def channel_label(c: Channel) -> str:
    """The short channel id once the funding is confirmed, else the channel id's first 16 digits."""
    return str(c.short_channel_id) if c.short_channel_id is not None else c.channel_id[:16]


def families(snap: Snapshot) -> Iterator[Metric]:
    s = snap.summary
    holds = GaugeMetricFamily("lsp_holds", "Holds of the LightningRod role, by state", labels=["state"])
    for state, n in s["holds_by_state"].items():
        holds.add_metric([state], n)
    yield holds
    yield _gauge("lsp_held_htlcs", "HTLCs held now, waiting for the payee's unblock", s["held_htlcs"])
    yield _gauge("lsp_held_msat", "Inbound amount of the HTLCs held now (msat)", s["held_msat"])
    yield _gauge(
        "lsp_async_held_htlcs", "HTLCs held for BOLT async payments, waiting for release", len(snap.async_held)
    )
    yield _gauge(
        "lsp_async_held_msat",
        "Inbound amount of the HTLCs held for BOLT async payments (msat)",
        sum(h.amount_msat for h in snap.async_held),
    )
    yield _gauge("lsp_mailbox_messages", "Onion messages kept for offline clients", s["mailbox_messages"])
    yield _gauge("lsp_mailbox_bytes", "Size of the onion messages kept for offline clients", s["mailbox_bytes"])
    yield _gauge("lsp_mailbox_clients", "Offline clients with messages waiting", s["mailbox_clients"])

    attempts = CounterMetricFamily(
        "lsp_push_attempts",
        "Attempts at pushes, by result: sent, retried (failed, tried again later), dead (failed, given up)",
        labels=["result"],
    )
    for result, n in s["push_attempts"].items():
        attempts.add_metric([result], n)
    yield attempts
    # The outbox now: rows come and go (retries, deletion of finished rows after the retention),
    # so these are gauges; the counters above are what rates and totals are made of.
    outbox = GaugeMetricFamily(
        "lsp_push_outbox", "Pushes in the outbox now, by state (pending, sent, dead)", labels=["state"]
    )
    for state, n in s["pushes"].items():
        outbox.add_metric([state], n)
    yield outbox
    yield _gauge(
        "lsp_push_outbox_failing",
        "Pushes in the outbox given up, or pending after a failed attempt",
        s["push_failures"],
    )

    queued = GaugeMetricFamily("lsp_events_queued", "Engine events waiting for the LSP logic, by lane", labels=["lane"])
    queued.add_metric(["messages"], snap.onion.queued_messages)
    queued.add_metric(["other"], snap.onion.queued_other)
    yield queued
    onion = CounterMetricFamily(
        "lsp_onion_messages", "Onion messages at the front door since start, by result", labels=["result"]
    )
    for result in ONION_RESULTS:
        onion.add_metric([result], getattr(snap.onion, result))
    yield onion

    payments = GaugeMetricFamily(
        "lsp_payments", "Payments the engine recorded, by direction and status", labels=["direction", "status"]
    )
    for (direction, status), n in sorted(snap.payments.items()):
        payments.add_metric([direction, status], n)
    yield payments

    f = snap.forwards
    yield CounterMetricFamily("lsp_forwards", "HTLCs this node forwarded (settled)", value=f["count"])
    yield CounterMetricFamily("lsp_forward_fees_msat", "Fees earned by forwarding", value=f["fees_msat"])
    yield CounterMetricFamily("lsp_forwarded_msat", "Amounts forwarded on (outbound)", value=f["amount_msat"])

    # The peer is named by its node id's first digits, as logs name a client: enough to tell
    # channels apart, not the client's identity in every scrape and time-series database.
    labels = ["channel", "peer"]
    out = GaugeMetricFamily("lsp_channel_outbound_msat", "What we can send over the channel", labels=labels)
    inn = GaugeMetricFamily("lsp_channel_inbound_msat", "What we can receive over the channel", labels=labels)
    cap = GaugeMetricFamily("lsp_channel_capacity_sat", "The channel's capacity", labels=labels)
    for c in snap.channels:
        key = [channel_label(c), client_tag(c.counterparty_node_id)]
        out.add_metric(key, c.outbound_capacity_msat)
        inn.add_metric(key, c.inbound_capacity_msat)
        cap.add_metric(key, c.capacity_sat)
    yield from (out, inn, cap)
    yield _gauge("lsp_channels", "Channels, any state", s["channels"])
    yield _gauge("lsp_lightning_outbound_msat", "What we can send, all channels", s["outbound_msat"])
    yield _gauge("lsp_lightning_inbound_msat", "What we can receive, all channels", s["inbound_msat"])
    yield _gauge("lsp_onchain_balance_sat", "The on-chain wallet's total balance", s["onchain_sat"])

    yield _gauge("lsp_chain_height", "Height of the best block the node knows", s["block_height"])
    if snap.last_sync_at is not None:
        age = max(0.0, snap.taken_at - snap.last_sync_at)
        yield _gauge("lsp_chain_sync_age_seconds", "Seconds since the last successful chain sync", age)

    yield from snap.meters.collect()


class SnapshotCollector:
    """Hands prometheus-client the snapshot the handler took just before (under its lock)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def describe(self) -> list[Metric]:
        return []  # the names depend on the snapshot; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is not None:
            yield from families(self.snapshot)


@dataclass
class Exporter:
    ops: Ops
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=False))
    collector: SnapshotCollector = field(default_factory=SnapshotCollector)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.registry.register(self.collector)

    async def scrape(self) -> bytes:
        # One scrape at a time: the collector carries the snapshot from the await to the render.
        async with self.lock:
            self.collector.snapshot = await take_snapshot(self.ops)
            try:
                return generate_latest(self.registry)
            finally:
                self.collector.snapshot = None


EXPORTER: web.AppKey[Exporter] = web.AppKey("metrics_exporter", Exporter)


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[EXPORTER].scrape()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics_route(app: web.Application, ops: Ops) -> None:
    app[EXPORTER] = Exporter(ops)
    app.router.add_get("/metrics", metrics)
