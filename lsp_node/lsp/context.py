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


#: The LightningRod push kinds that have an LSPS5 notification (bLIP-55 methods). A failed hold
#: and the operator's test push have none.
LSPS5_METHODS: dict[str, str] = {
    "message_waiting": "lsps5.onion_message_incoming",
    "preimage_waiting": "lsps5.payment_incoming",
    "hold_expiring": "lsps5.expiry_soon",
}


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
        """Queue a push; after the state change it announces is committed. One event, one call:
        the client's devices get one apprise push, and its LSPS5 webhooks one signed
        notification each (`LSPS5_METHODS`), whichever it registered. `timeout`: the block
        height a `hold_expiring` is about (LSPS5's expiry_soon names it)."""
        if self.notifier is not None:
            try:
                await self.notifier.enqueue(client, kind)
            except LspNodeError as e:
                # The state change stands; a lost "come online" push is not worth replaying the event.
                log.warning("could not queue a %s push: %s", kind, e)
        method = LSPS5_METHODS.get(kind)
        if method is None:
            return
        try:
            # lightning-liquidity signs and queues in memory; the POSTs come back as events.
            outcome = self.engine.lsps5_notify(
                client, method, timeout if timeout is not None else self.engine.best_block_height()
            )
        except LspNodeError as e:
            log.warning("could not ask for an LSPS5 %s: %s", method, e)
            return
        if outcome == "cooldown":
            # Not an error: the client was notified less than a minute ago and is waking up.
            log.debug("LSPS5 %s for %s skipped: lightning-liquidity's cooldown", method, short(client))

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
