"""Counters and histograms that the LSP role updates as things happen (events handled, replies by
status, release latency). They are registered in no global registry: each node's `/metrics`
collects its own, so several nodes in one process (the tests) never share or collide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric

#: Unblock received -> answer sent: a release waits for LDK to take every HTLC, and up to
#: `release_wait_secs` (10 s by default) for a next hop's channel to come back.
RELEASE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Meters:
    """One node's event-driven metrics. Cheap to update: an increment under a lock."""

    def __init__(self) -> None:
        self.events_handled = Counter(
            "lsp_events_handled",
            "Engine events the LSP role handled and acknowledged, by kind",
            ["kind"],
            registry=None,
        )
        self.events_failed = Counter(
            "lsp_events_failed",
            "Failed attempts at handling an engine event (it is retried, then dropped), by kind",
            ["kind"],
            registry=None,
        )
        self.events_dropped = Counter(
            "lsp_events_dropped",
            "Engine events dropped after every attempt at them failed, by kind",
            ["kind"],
            registry=None,
        )
        self.replies = Counter(
            "lsp_protocol_replies",
            "LightningRod answers sent, by message and status (every status but OK is a refusal)",
            ["message", "status"],
            registry=None,
        )
        self.undecodable = Counter(
            "lsp_protocol_undecodable_messages",
            "LightningRod messages refused because they did not decode",
            registry=None,
        )
        self.release_seconds = Histogram(
            "lsp_release_seconds",
            "Releases: from the payee's unblock received to the answer sent (HTLCs handed to LDK)",
            buckets=RELEASE_BUCKETS,
            registry=None,
        )

    def collect(self) -> Iterator[Metric]:
        for m in (
            self.events_handled,
            self.events_failed,
            self.events_dropped,
            self.replies,
            self.undecodable,
            self.release_seconds,
        ):
            yield from m.collect()
