"""The mailbox at the payee's LSP (SPEC.md §4.5, §5.3): onion messages for an offline client are
kept, then forwarded in arrival order when it connects, and deleted when the client
acknowledges them (MAILBOX_DONE / MAILBOX_ACK), so delivery is at least once across disconnects
and crashes; mail delivered MAX_UNACKED_DELIVERIES times without an ack (a wallet that does not
speak LightningRod) is deleted then."""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from lsp_node import protocol as p
from lsp_node.errors import LspNodeError
from lsp_node.lsp import hooks
from lsp_node.lsp.context import Role, short
from lsp_node.lsp.store import MailboxEntry

log = logging.getLogger("lsp_node.lsp")

#: The bucket of every sender we cannot hold to account: no previous hop known, or a previous hop
#: without a funded channel with us (a fresh node id costs nothing).
UNKNOWN_SENDER = "*"
#: Deliveries of one message without an acknowledgement before it is deleted anyway: a wallet
#: that does not speak LightningRod (ldk-node, for BOLT async payments) never acknowledges, and
#: its mail must not fill its mailbox and every sender's share for the whole TTL. A LightningRod
#: client acknowledges the first delivery; it loses mail only if three deliveries in a row are
#: cut off before its ack.
MAX_UNACKED_DELIVERIES = 3
#: Deliveries waiting for their MAILBOX_ACK, at most this many in memory (oldest forgotten first:
#: a forgotten batch is simply delivered again at the next connection).
MAX_PENDING_BATCHES = 10_000


@dataclass(frozen=True)
class Batch:
    client: str
    ids: tuple[int, ...]


class Mailbox:
    def __init__(self, role: Role) -> None:
        self.role = role
        # In memory on purpose: after a crash nothing is acknowledged, so everything is redelivered.
        self._pending: OrderedDict[bytes, Batch] = OrderedDict()

    def sender_bucket(self, prev_node_id: str | None) -> str:
        if prev_node_id is None or not self.role.engine.is_client(prev_node_id):
            return UNKNOWN_SENDER
        return prev_node_id

    async def on_message_for_offline_peer(self, peer: str, message: str, prev_node_id: str | None = None) -> None:
        if not self.role.engine.is_client(peer):
            log.info("dropping onion message for %s: not a client of this LSP", short(peer))
            return
        sender = self.sender_bucket(prev_node_id)
        if await self.role.store.run(self._keep, peer, sender, message, time.time()):
            await self.role.notify(peer, "message_waiting")

    def quota_refusal(self, peer: str, sender: str, size: int) -> str | None:
        """Which quota a new message of `size` bytes from `sender` for `peer` would break, if any."""
        store, pol = self.role.store, self.role.policy
        n, used = store.mailbox_usage(peer)
        if n >= pol.mailbox_max_messages or used + size > pol.mailbox_max_bytes:
            return "the client's mailbox is full"
        if sender == UNKNOWN_SENDER:
            max_n, max_bytes = pol.mailbox_unknown_sender_max_messages, pol.mailbox_unknown_sender_max_bytes
        else:
            max_n, max_bytes = pol.mailbox_max_messages_per_sender, pol.mailbox_max_bytes_per_sender
        n, used = store.mailbox_usage_by_sender(sender, peer)
        if n >= max_n or used + size > max_bytes:
            return "the sender's share of the client's mailbox is full"
        total, _ = store.mailbox_usage_by_sender(sender)
        if total >= pol.mailbox_sender_max_messages_total:
            return "the sender's share of all mailboxes is full"
        return None

    def _keep(self, peer: str, sender: str, message: str, now: float) -> bool:
        """Store the message unless a quota is hit; committed before the event is acknowledged.
        Over a quota the new message is dropped: stored mail is never evicted for it."""
        refusal = self.quota_refusal(peer, sender, len(message) // 2)
        if refusal is not None:
            who = "an unknown sender" if sender == UNKNOWN_SENDER else short(sender)
            log.info("dropping onion message for %s from %s: %s", short(peer), who, refusal)
            return False
        self.role.store.put_message(peer, message, now, self.role.policy.mailbox_ttl_secs, sender)
        return True

    async def deliver(self, peer: str) -> int:
        """Forward stored messages to a peer that just connected, then MAILBOX_DONE. Nothing is
        deleted here: only the client's MAILBOX_ACK deletes, so a disconnect or a crash before it
        delivers the same messages again."""
        entries: list[MailboxEntry] = await self.role.store.run(self.role.store.messages, peer)
        delivered: list[int] = []
        for entry in entries:
            try:
                await self.role.engine.forward_onion_message(entry.message, peer)
            except LspNodeError as e:
                log.info("mailbox delivery to %s paused: %s", short(peer), e)
                break
            delivered.append(entry.id)
        if not delivered:
            return 0
        # MAILBOX_DONE goes out right behind the mail, and the delivery is counted after it: an
        # fsync in between would let a fast client act on its mail before the DONE it needs to
        # ack it. A crash before the count costs at most one more delivery, never a lost message.
        batch_id = os.urandom(16)
        done = p.MailboxDone(batch_id, len(delivered))
        try:
            # Onion messages to one peer leave in order: the client handles the mail first.
            await self.role.engine.send_onion_message(peer, done.TYPE, done.encode())
        except LspNodeError as e:
            log.info("mailbox delivery to %s not confirmed: %s", short(peer), e)
        else:
            # One outstanding batch per client: a newer delivery carries the same or later mail.
            for old in [k for k, b in self._pending.items() if b.client == peer]:
                del self._pending[old]
            self._pending[batch_id] = Batch(peer, tuple(delivered))
            while len(self._pending) > MAX_PENDING_BATCHES:
                self._pending.popitem(last=False)
            hooks.fire(hooks.AFTER_MAIL_DELIVERY)
        spent = await self.role.store.run(self.role.store.count_delivery, peer, delivered, MAX_UNACKED_DELIVERIES)
        if spent:
            log.info(
                "mailbox of %s: %s message(s) delivered %s times unacknowledged, deleted",
                short(peer),
                spent,
                MAX_UNACKED_DELIVERIES,
            )
        return len(delivered)

    async def on_ack(self, msg: p.MailboxAck) -> None:
        """The batch id is a secret only the client received, inside an onion only it could
        read: knowing it is the authentication. Unknown ids (forged, or from before a restart)
        change nothing."""
        batch = self._pending.pop(msg.batch_id, None)
        if batch is None:
            log.info("ignoring a mailbox ack for an unknown delivery")
            return
        deleted = await self.role.store.run(self.role.store.delete_messages, batch.client, batch.ids)
        log.info("mailbox of %s: %s acknowledged message(s) deleted", short(batch.client), deleted)
