"""The mailbox at the payee's LSP (SPEC.md §4.5, §5.3): onion messages for an offline client are
kept, then forwarded in arrival order when it connects, at least once."""

from __future__ import annotations

import logging
import time

from lsp_node.errors import LspNodeError
from lsp_node.lsp.context import Role
from lsp_node.lsp.store import MailboxEntry

log = logging.getLogger("lsp_node.lsp")


class Mailbox:
    def __init__(self, role: Role) -> None:
        self.role = role

    async def on_message_for_offline_peer(self, peer: str, message: str) -> None:
        if not self.role.engine.is_client(peer):
            log.info("dropping onion message for %s: not a client of this LSP", peer[:16])
            return
        if await self.role.store.run(self._keep, peer, message, time.time()):
            await self.role.notify(peer, "message_waiting")

    def _keep(self, peer: str, message: str, now: float) -> bool:
        """Store the message unless the client's mailbox is full; committed before the event is
        acknowledged."""
        store, pol = self.role.store, self.role.policy
        n, size = store.mailbox_usage(peer)
        if n >= pol.mailbox_max_messages or size + len(message) // 2 > pol.mailbox_max_bytes:
            log.info("dropping onion message for %s: mailbox full (%s messages, %s bytes)", peer[:16], n, size)
            return False
        store.put_message(peer, message, now, pol.mailbox_ttl_secs)
        return True

    async def deliver(self, peer: str) -> int:
        """Forward stored messages to a peer that just connected. They are deleted only after LDK
        accepted them, so a crash in between delivers them again (at least once)."""
        entries: list[MailboxEntry] = await self.role.store.run(self.role.store.messages, peer)
        delivered: list[int] = []
        for entry in entries:
            try:
                await self.role.engine.forward_onion_message(entry.message, peer)
            except LspNodeError as e:
                log.info("mailbox delivery to %s paused: %s", peer[:16], e)
                break
            delivered.append(entry.id)
        if delivered:
            await self.role.store.run(self._delete, delivered)
        return len(delivered)

    def _delete(self, ids: list[int]) -> None:
        for message_id in ids:
            self.role.store.delete_message(message_id)
