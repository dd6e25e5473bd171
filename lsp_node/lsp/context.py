"""What every part of the LSP role shares: the engine port, the store, the operator's policy and
the push outbox; plus client authentication, which holds and devices both use (SPEC.md §2.9)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from lsp_node import protocol as p
from lsp_node.config import LspSettings
from lsp_node.errors import LspNodeError
from lsp_node.lsp.port import EnginePort
from lsp_node.lsp.store import LspStore
from lsp_node.notify import Notifier

log = logging.getLogger("lsp_node.lsp")


@dataclass
class Role:
    engine: EnginePort
    store: LspStore
    policy: LspSettings  # the operator's [lsp] section
    notifier: Notifier | None

    async def notify(self, client: str, kind: str) -> None:
        """Queue a push; after the state change it announces is committed."""
        if self.notifier is None:
            return
        try:
            await self.notifier.enqueue(client, kind)
        except LspNodeError as e:
            # The state change stands; a lost "come online" push is not worth replaying the event.
            log.warning("could not queue a %s push: %s", kind, e)

    def authenticate(self, msg: p.HoldRequest | p.DeviceRegister) -> p.Status:
        """Client, signature and freshness; the request id's single use is checked apart."""
        client = msg.client_node_id.hex()
        if not self.engine.is_client(client):
            return p.Status.NOT_A_CLIENT
        if not self.engine.verify_message(msg.signed_bytes(), msg.signature, client):
            return p.Status.BAD_SIGNATURE
        if abs(time.time() - msg.timestamp) > self.policy.request_max_age_secs:
            return p.Status.STALE_OR_REPLAYED
        return p.Status.OK
