"""What every part of the LSP role shares: the engine port, the store, the operator's policy and
the push outbox; plus client authentication, which holds and devices both use (SPEC.md §2.9)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from lsp_node import protocol as p
from lsp_node.config import LspSettings
from lsp_node.errors import LspNodeError
from lsp_node.lsp.port import EnginePort
from lsp_node.lsp.store import LspStore
from lsp_node.notify import Notifier

log = logging.getLogger("lsp_node.lsp")

#: What a sender that fails authentication is told, whatever the reason: a stranger must not learn
#: which node ids have channels here (SPEC.md §2.9).
NOT_AUTHENTICATED = "not authenticated as a client of this LSP"


#: The LightningRod push kinds that have an LSPS5 notification (bLIP-55 methods), by what the
#: client is needed for: mail waiting in the mailbox is `onion_message_incoming`; a hold about to
#: be failed back, and a payer's HTLC whose fulfil waits for the payer (the LSP must go on-chain
#: before the HTLC's expiry if it never returns) are deadlines: `expiry_soon`; an LSPS2 payment
#: waiting for an offline client to receive it (the engine's `ClientWanted`) is
#: `payment_incoming`. A failed hold and the operator's test push have none.
LSPS5_METHODS: dict[str, str] = {
    "message_waiting": "lsps5.onion_message_incoming",
    "preimage_waiting": "lsps5.expiry_soon",
    "hold_expiring": "lsps5.expiry_soon",
    "payment_incoming": "lsps5.payment_incoming",
}


#: LSPS5 methods our per-method cooldown does not hold back (SPEC.md §15).
UNCOOLED: frozenset[str] = frozenset({"lsps5.payment_incoming"})


def short(hex_id: str) -> str:
    """Node ids, hashes and hold ids in logs: the first 8 hex characters (SPEC.md §7.3)."""
    return hex_id[:8]


@dataclass
class Role:
    engine: EnginePort
    store: LspStore
    policy: LspSettings  # the operator's [lsp] section
    notifier: Notifier | None
    #: Work started by an event that may wait (a release waiting for a reconnecting next hop):
    #: it runs beside the event loop so one slow release never stalls other clients' events.
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run `work` in the background; its failure is logged, never lost. Only work whose
        durable intent is committed already may go here: a crash before it ends is redone by
        start-up reconciliation (SPEC.md §8)."""
        task = asyncio.create_task(work, name=what)
        self.background.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.background.discard(t)
            if not t.cancelled() and (e := t.exception()) is not None:
                # The class only: engine errors name full node and intercept ids (SPEC.md §7.3).
                # What it left `forwarding` is forwarded or failed back at the next start-up.
                log.error("%s failed: %s", what, type(e).__name__)

        task.add_done_callback(done)

    async def drain(self) -> None:
        """Wait for the background work started so far (tests; stopping)."""
        while self.background:
            await asyncio.gather(*self.background, return_exceptions=True)

    def cancel_background(self) -> None:
        for t in self.background:
            t.cancel()

    async def notify(self, client: str, kind: str, timeout: int | None = None) -> None:
        """Ask the client to come online; after the state change it announces is committed.
        One event, one wake-up: a client with a registered device gets an apprise push, any
        other a notification on its LSPS5 webhooks (`LSPS5_METHODS`; none for a kind without
        one), never both. `timeout`: the block height an `expiry_soon` names."""
        n = self.notifier
        method = LSPS5_METHODS.get(kind)
        try:
            if n is not None and (method is None or await n.has_device(client)):
                await n.enqueue(client, kind)
                return
        except LspNodeError as e:
            # The state change stands; a lost "come online" push is not worth replaying the event.
            log.warning("could not queue a %s push: %s", kind, e)
            return
        if method is not None:
            await self.notify_lsps5(client, method, timeout)

    async def notify_lsps5(self, client: str, method: str, timeout: int | None = None) -> str:
        """Ask lightning-liquidity to sign `method` for the client's webhooks, unless our own
        per-(client, method) cooldown holds: "queued", "cooldown" (ours or lightning-liquidity's
        60 s), "online" (the client is connected: nothing to wake), "off" (LSPS5 not running)
        or "failed" (logged)."""
        n = self.notifier
        if n is None or n.webhooks is None:
            return "off"
        if self.engine.is_online(client):
            # A wake-up for a connected client wakes nothing (hold_expiring is the kind that may
            # come while the payer is connected; lightning-liquidity resets its own cooldown then).
            return "online"
        try:
            # A payment waiting for its receiver is not a reminder: each may wake it (only
            # lightning-liquidity's 60 s applies). Its apprise push keeps the outbox's per-kind
            # cooldown (`[notifications] cooldown_secs`, 60 s by default).
            if method not in UNCOOLED and await n.lsps5_cooling_down(client, method):
                log.debug("LSPS5 %s for %s skipped: notified within the cooldown", method, short(client))
                return "cooldown"
            # lightning-liquidity signs and queues in memory; the POSTs come back as events.
            height = timeout if timeout is not None else self.engine.best_block_height()
            outcome = await self.engine.lsps5_notify(client, method, height)
            if outcome == "queued":
                await n.lsps5_notified(client, method)
        except LspNodeError as e:
            log.warning("could not ask for an LSPS5 %s: %s", method, e)
            return "failed"
        if outcome == "cooldown":
            # Not an error: the client was notified less than a minute ago and is waking up.
            log.debug("LSPS5 %s for %s skipped: lightning-liquidity's cooldown", method, short(client))
        return outcome

    def authenticate(self, msg: p.HoldRequest | p.DeviceRegister) -> p.Status:
        """Signature (for this LSP), freshness and client; the request id's single use is checked
        apart. Every failure is the same NOT_A_CLIENT to the sender; the log says which."""
        client = msg.client_node_id.hex()
        audience = bytes.fromhex(self.engine.node_id())
        if not self.engine.verify_message(msg.signed_bytes(audience), msg.signature, client):
            why = "bad signature, or signed for another LSP"
        elif abs(time.time() - msg.timestamp) > self.policy.request_max_age_secs:
            why = "stale timestamp"
        elif not self.engine.is_client(client):
            why = "no funded channel"
        else:
            return p.Status.OK
        log.info("%s from %s not authenticated: %s", type(msg).__name__, short(client), why)
        return p.Status.NOT_A_CLIENT
