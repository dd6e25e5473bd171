"""The LSP role's entry point: decodes engine events and LightningRod messages, dispatches them to
holds, the mailbox and device registration, and sends the replies (SPEC.md)."""

from __future__ import annotations

import logging
import time

from lsp_node import protocol as p
from lsp_node.config import LspSettings
from lsp_node.engine import (
    ClientWanted,
    Event,
    HtlcHandlingFailed,
    HtlcIntercepted,
    Lsps5Notification,
    OnionMessageIntercepted,
    OnionMessagePeerConnected,
    OnionMessageReceived,
    PaymentForwarded,
)
from lsp_node.errors import InvalidArgumentError, LspNodeError
from lsp_node.lsp.async_holds import AsyncHolds
from lsp_node.lsp.context import Role, short
from lsp_node.lsp.devices import Devices
from lsp_node.lsp.holding import Holding
from lsp_node.lsp.mailbox import Mailbox
from lsp_node.lsp.port import EnginePort
from lsp_node.lsp.relay import Relay
from lsp_node.lsp.store import HeldHtlc, Hold, LspStore
from lsp_node.monitor.meters import Meters
from lsp_node.notify import Notifier

log = logging.getLogger("lsp_node.lsp")


def _status_name(status: int) -> str:
    try:
        return p.Status(status).name
    except ValueError:
        return str(status)


class LspService:
    def __init__(self, engine: EnginePort, store: LspStore, policy: LspSettings, notifier: Notifier | None) -> None:
        """`policy` is the operator's [lsp] section (config.LspSettings)."""
        self.role = Role(engine, store, policy, notifier)
        self.holding = Holding(self.role)
        self.mailbox = Mailbox(self.role)
        self.devices = Devices(self.role)
        self.relay = Relay(self.role)
        self.async_holds = AsyncHolds(self.role)
        #: Counted here, where things happen; exported by the admin app's /metrics.
        self.meters = Meters()

    @property
    def engine(self) -> EnginePort:
        return self.role.engine

    @property
    def store(self) -> LspStore:
        return self.role.store

    @property
    def notifier(self) -> Notifier | None:
        return self.role.notifier

    @property
    def policy(self) -> LspSettings:
        return self.role.policy

    @policy.setter
    def policy(self, policy: LspSettings) -> None:
        self.role.policy = policy

    # -- event dispatch ----------------------------------------------------------------------------
    async def handle(self, event: Event) -> None:
        """Apply one engine event; returns once its effects are committed (then ack it)."""
        if isinstance(event, OnionMessageReceived):
            await self.on_message(event.tlv_type, bytes.fromhex(event.payload), event.context, event.responder)
        elif isinstance(event, HtlcIntercepted):
            await self.holding.on_htlc_intercepted(event)
        elif isinstance(event, OnionMessageIntercepted):
            if self.engine.is_client(event.peer_node_id):
                # prev_node_id: the peer that handed the message over (None if the engine cannot tell).
                await self.mailbox.on_message_for_offline_peer(event.peer_node_id, event.message, event.prev_node_id)
            elif event.prev_node_id is not None and self.engine.has_ready_channel(event.prev_node_id):
                # Another node (e.g. the next LSP on the message's path): dialled in the
                # background if it announced an address, else dropped. Never waited for here.
                # Only for messages a channel peer handed us (a client, a routing node): a
                # stranger cannot make this LSP dial the network for it.
                self.relay.offer(event.peer_node_id, event.message)
            else:
                log.info(
                    "dropping onion message for %s: not a client, and not handed over by a channel peer",
                    short(event.peer_node_id),
                )
        elif isinstance(event, OnionMessagePeerConnected):
            await self.mailbox.deliver(event.peer_node_id)
        elif isinstance(event, PaymentForwarded):
            await self.holding.on_payment_forwarded(event)
        elif isinstance(event, HtlcHandlingFailed):
            await self.holding.on_htlc_handling_failed(event)
        elif isinstance(event, Lsps5Notification):
            await self.queue_webhook(event)
        elif isinstance(event, ClientWanted) and not self.engine.is_online(event.client_node_id):
            # One wake-up, the client's way: its device's apprise push, else its LSPS5 webhooks;
            # none if it came back before this event was handled (or it is replayed later).
            await self.role.notify(event.client_node_id, event.push_kind)

    async def queue_webhook(self, event: Lsps5Notification) -> None:
        """An LSPS5 notification lightning-liquidity signed: into the push outbox, before the
        event is acknowledged (a store error raises, and the event is tried again)."""
        notifier = self.role.notifier
        if notifier is None or notifier.webhooks is None:
            log.info("dropping an LSPS5 %s for %s: [lsps5] is off", event.method, short(event.client_node_id))
            return
        try:
            await notifier.enqueue_webhook(
                event.client_node_id, event.app_name, event.url, event.method, list(event.headers), event.body
            )
        except InvalidArgumentError as e:
            # Malformed (no signature or timestamp): replaying the event cannot mend it.
            log.warning("dropping an LSPS5 %s for %s: %s", event.method, short(event.client_node_id), e)

    async def on_message(self, tlv_type: int, payload: bytes, context: str | None, responder: str | None) -> None:
        try:
            msg = p.decode(tlv_type, payload)
        except p.ProtocolError as e:
            # Refused, not retried: returning normally acknowledges the event. The reason only,
            # never the payload (it is the sender's, and may be 32 KB).
            log.info("refused a message of type %s (%s bytes): %s", tlv_type, len(payload), e)
            self.meters.undecodable.inc()
            return
        if isinstance(msg, p.HoldRequest):
            try:
                reply: p.HoldReply | p.UnblockReply | p.DeviceReply = await self.on_hold_request(msg)
            except LspNodeError as e:
                reply = p.HoldReply(msg.request_id, int(p.Status.INTERNAL), error=str(e))
        elif isinstance(msg, p.PaymentUnblock):
            # The release is decided and committed with the event; its answer waits until the
            # HTLCs were handed to LDK, which may take `release_wait_secs` for a reconnecting next
            # hop: that part runs in the background so no other client's event waits behind it
            # (a crash meanwhile is redone by start-up reconciliation, SPEC.md §8).
            received = time.monotonic()
            released = await self.holding.release(msg, bytes.fromhex(context) if context else None)
            if isinstance(released, p.UnblockReply):
                reply = released
            else:
                self.role.spawn(
                    self._hand_over(msg, *released, responder, received), f"release {msg.payment_hash.hex()[:8]}"
                )
                return
        elif isinstance(msg, p.DeviceRegister):
            reply = await self.devices.on_device_register(msg)
        elif isinstance(msg, p.MailboxAck):
            await self.mailbox.on_ack(msg)
            return
        else:
            log.info("ignoring %s sent to the LSP", type(msg).__name__)
            return
        await self._answer(reply, responder)

    async def _hand_over(
        self, msg: p.PaymentUnblock, hold: Hold, htlcs: list[HeldHtlc], responder: str | None, received: float
    ) -> None:
        await self._answer(await self.holding.hand_over(msg, hold, htlcs), responder)
        self.meters.release_seconds.observe(time.monotonic() - received)

    async def _answer(self, reply: p.HoldReply | p.UnblockReply | p.DeviceReply, responder: str | None) -> None:
        self.meters.replies.labels(type(reply).__name__, _status_name(reply.status)).inc()
        if responder is None:
            log.info("cannot answer with %s: the sender gave no reply path", type(reply).__name__)
            return
        try:
            await self.engine.reply_onion_message(responder, reply.TYPE, reply.encode())
        except LspNodeError as e:
            log.warning("sending %s failed: %s", type(reply).__name__, e)

    # The protocol's entry points, by name.
    async def on_hold_request(self, req: p.HoldRequest) -> p.HoldReply:
        return await self.holding.on_hold_request(req)

    async def on_unblock(self, msg: p.PaymentUnblock, context: bytes | None) -> p.UnblockReply:
        return await self.holding.on_unblock(msg, context)

    async def deliver_mailbox(self, peer: str) -> int:
        return await self.mailbox.deliver(peer)

    async def tick(self) -> None:
        """Per block: fail back holds before LDK would, warn payers, expire unused holds; apply
        the same margin and caps to the HTLCs held for BOLT async payments."""
        await self.holding.tick()
        await self.async_holds.tick()

    async def close(self) -> None:
        """Stop the background work of the role (dials for relayed messages)."""
        await self.relay.close()

    async def reconcile(self) -> None:
        """After a restart: check the holds' HTLCs against each intercept LDK still holds (LDK does
        not announce an intercept again once its event was handled; SPEC.md §8), then hand
        connected clients their mail."""
        await self.holding.reconcile()
        for peer in self.engine.connected_peers():
            await self.mailbox.deliver(peer)
