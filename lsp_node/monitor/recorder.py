"""The task that samples the node's numbers into monitor.sqlite: once at start, then every
`[monitor] sample_interval_secs`, and deletes samples past `retention_days`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

from lsp_node.admin.ops import Ops
from lsp_node.monitor.samples import SampleStore
from lsp_node.monitor.summary import summary

log = logging.getLogger("lsp_node.monitor")

#: Pruning is one indexed DELETE; once an hour keeps the table within an hour of the retention.
PRUNE_EVERY_SECS: Final = 3600.0


def sample_values(s: dict[str, Any], forwards: dict[str, int]) -> dict[str, float]:
    """The recorded series (samples.SERIES) from a summary and the forward totals."""
    return {
        "onchain_sat": s["onchain_sat"],
        "outbound_msat": s["outbound_msat"],
        "inbound_msat": s["inbound_msat"],
        "held_htlcs": s["held_htlcs"],
        "held_msat": s["held_msat"],
        "holds_active": s["holds_active"],
        "mailbox_messages": s["mailbox_messages"],
        "mailbox_bytes": s["mailbox_bytes"],
        # Counters kept in notify.sqlite (never the outbox's rows, which retries and retention
        # change): pushes sent, and attempts that failed (retried later or given up).
        "pushes_sent_total": s["push_attempts"]["sent"],
        "pushes_failed_total": s["push_attempts"]["retried"] + s["push_attempts"]["dead"],
        "forwards_total": forwards["count"],
        "forward_fees_msat_total": forwards["fees_msat"],
    }


class Recorder:
    def __init__(self, ops: Ops, samples: SampleStore, interval_secs: float, retention_days: float) -> None:
        self.ops = ops
        self.samples = samples
        self.interval = interval_secs
        self.retention = retention_days * 86400.0
        self._last_prune = 0.0

    async def sample(self, now: float | None = None) -> dict[str, float]:
        """Take one sample now and store it (and prune when due); returns what was stored."""
        now = time.time() if now is None else now
        values = sample_values(await summary(self.ops), await self.ops.forward_totals())
        await self.samples.run(self.samples.record, now, values)
        if now - self._last_prune >= PRUNE_EVERY_SECS:
            gone = await self.samples.run(self.samples.prune, now - self.retention)
            self._last_prune = now
            if gone:
                log.info("monitor: deleted %s samples older than the retention", gone)
        return values

    async def run(self) -> None:
        # A failed sample (a busy store, an engine call refused while stopping) is logged and the
        # next one taken on time: charts get a gap, not an end.
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitor: taking a sample failed; trying again at the next interval")
            await asyncio.sleep(self.interval)
