"""Typed asyncio façade over the compiled engine (lsp_node._ldk): the engine's frozen classes
in and out, awaitables for everything that does I/O."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Self, TypeAlias

from lsp_node import _ldk
from lsp_node._ldk import (
    Balance,
    Channel,
    ChannelClosed,
    ChannelPending,
    ChannelReady,
    ClientWanted,
    Forward,
    ForwardTotals,
    HeldAsyncHtlc,
    HeldHop,
    HtlcHandlingFailed,
    HtlcIntercepted,
    InboundHtlc,
    InvoiceInfo,
    JitChannel,
    Lsps1Order,
    Lsps5Notification,
    Lsps5WebhookReply,
    NodeOptions,
    OnionMessageIntercepted,
    OnionMessagePeerConnected,
    OnionMessageReceived,
    OnionMessageStats,
    Payment,
    PaymentClaimable,
    PaymentFailed,
    PaymentForwarded,
    PaymentReceived,
    PaymentSent,
    Peer,
    PendingIntercept,
    StaticInvoice,
)

__all__ = [
    "EVENT_CLASSES",
    "Balance",
    "Channel",
    "ChannelClosed",
    "ChannelPending",
    "ChannelReady",
    "ClientWanted",
    "Event",
    "Forward",
    "ForwardTotals",
    "HeldAsyncHtlc",
    "HeldHop",
    "HtlcHandlingFailed",
    "HtlcIntercepted",
    "InboundHtlc",
    "InvoiceInfo",
    "JitChannel",
    "LightningNode",
    "Lsps1Order",
    "Lsps5Notification",
    "Lsps5WebhookReply",
    "NodeOptions",
    "OnionMessageIntercepted",
    "OnionMessagePeerConnected",
    "OnionMessageReceived",
    "OnionMessageStats",
    "Payment",
    "PaymentClaimable",
    "PaymentFailed",
    "PaymentForwarded",
    "PaymentReceived",
    "PaymentSent",
    "Peer",
    "PendingIntercept",
    "StaticInvoice",
    "fields",
]

_LEVELS = {
    "GOSSIP": logging.DEBUG - 5,
    "TRACE": logging.DEBUG - 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
}

# An engine event: `id` (its place in the queue), `kind` (its name) and its own fields.
# Acknowledge it with `LightningNode.event_handled(event)` once its side effects are committed;
# until then it is delivered again, also after a restart.
Event: TypeAlias = (
    ChannelPending
    | ChannelReady
    | ChannelClosed
    | PaymentClaimable
    | PaymentReceived
    | PaymentSent
    | PaymentFailed
    | PaymentForwarded
    | HtlcHandlingFailed
    | HtlcIntercepted
    | OnionMessageIntercepted
    | OnionMessagePeerConnected
    | OnionMessageReceived
    | Lsps5Notification
    | ClientWanted
    | Lsps5WebhookReply
)

EVENT_CLASSES: tuple[type[Event], ...] = (
    ChannelPending,
    ChannelReady,
    ChannelClosed,
    PaymentClaimable,
    PaymentReceived,
    PaymentSent,
    PaymentFailed,
    PaymentForwarded,
    HtlcHandlingFailed,
    HtlcIntercepted,
    OnionMessageIntercepted,
    OnionMessagePeerConnected,
    OnionMessageReceived,
    Lsps5Notification,
    ClientWanted,
    Lsps5WebhookReply,
)


def fields(obj: Any) -> dict[str, Any]:
    """An engine object's fields by name, for JSON answers and log lines. Not a boundary type:
    the engine hands over typed objects; this only reads their declared attributes."""
    return {name: getattr(obj, name) for name in type(obj).__match_args__}


class LightningNode:
    """One running LDK node. Create with `await LightningNode.start(...)`."""

    def __init__(self, raw: _ldk.Node, name: str) -> None:
        self._raw = raw
        self._log = logging.getLogger(f"lsp_node.ldk.{name}")
        self._log_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        data_dir: str,
        *,
        network: str = "regtest",
        esplora_url: str,
        options: NodeOptions | None = None,
        name: str = "node",
    ) -> Self:
        """Start a node; `options` default to `NodeOptions()`, the engine's defaults."""
        raw = await _ldk.Node.start(data_dir, network, esplora_url, options)
        node = cls(raw, name)
        node._log_task = asyncio.create_task(node._pump_logs(), name=f"ldk-logs-{name}")
        return node

    async def _pump_logs(self) -> None:
        # Rust queues log lines; taking them in batches keeps the GIL out of Rust's hot paths.
        while True:
            self._emit_logs()
            await asyncio.sleep(0.2)

    def _emit_logs(self) -> None:
        for level, module, message in self._raw.drain_logs(2000):
            self._log.log(_LEVELS.get(level, logging.INFO), "[%s] %s", module, message)

    async def stop(self) -> None:
        await self._raw.stop()
        if self._log_task is not None:
            self._log_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_task
            self._log_task = None
        self._emit_logs()

    # -- identity and chain ---------------------------------------------------------------
    @property
    def node_id(self) -> str:
        return self._raw.node_id

    @property
    def listen_addr(self) -> str:
        return self._raw.listen_addr

    @property
    def network(self) -> str:
        return self._raw.network

    @property
    def is_running(self) -> bool:
        return self._raw.is_running

    @property
    def best_block_height(self) -> int:
        return self._raw.best_block_height

    @property
    def last_sync_at(self) -> float | None:
        """Unix time of the last successful chain sync (None before the first): its age tells a
        monitor whether the node still follows the chain."""
        return self._raw.last_sync_at

    async def sync(self) -> None:
        await self._raw.sync()

    async def new_address(self) -> str:
        return await self._raw.new_address()

    def balance(self) -> Balance:
        return self._raw.wallet_balance()

    def claimable_onchain_sat(self) -> int:
        return self._raw.claimable_onchain_sat()

    def fee_estimates(self, targets: list[int]) -> dict[int, float]:
        """sat/vB by confirmation target (blocks), from the estimates each chain sync refreshes."""
        return dict(self._raw.fee_estimates(targets))

    async def send_onchain(self, address: str, amount_sat: int | None, *, force: bool = False) -> str:
        return await self._raw.send_onchain(address, amount_sat, force)

    # -- peers ------------------------------------------------------------------------------
    async def connect(self, node_id: str, address: str) -> None:
        await self._raw.connect(node_id, address)

    def disconnect(self, node_id: str) -> None:
        self._raw.disconnect(node_id)

    def peers(self) -> list[Peer]:
        return self._raw.list_peers()

    def node_addresses(self, node_id: str) -> list[str]:
        """The "host:port" addresses of `node_id`'s node announcement as our gossip holds it, in
        its order; [] if we know none (no announcement reached us, or it lists no address)."""
        return self._raw.node_addresses(node_id)

    # -- channels ---------------------------------------------------------------------------
    async def open_channel(
        self, node_id: str, amount_sat: int, *, push_msat: int = 0, announce: bool = False, force: bool = False
    ) -> str:
        return await self._raw.open_channel(node_id, amount_sat, push_msat, announce, force)

    def channels(self) -> list[Channel]:
        return self._raw.list_channels()

    async def close_channel(self, channel_id: str) -> None:
        await self._raw.close_channel(channel_id)

    async def force_close_channel(self, channel_id: str, reason: str = "closed by the operator") -> None:
        await self._raw.force_close_channel(channel_id, reason)

    # -- invoices and payments ------------------------------------------------------------
    async def create_invoice(self, amount_msat: int | None, description: str, expiry_secs: int = 3600) -> str:
        return await self._raw.create_invoice(amount_msat, description, expiry_secs)

    def decode_invoice(self, invoice: str) -> InvoiceInfo:
        return self._raw.decode_invoice(invoice)

    async def pay_invoice(
        self, invoice: str, *, amount_msat: int | None = None, max_fee_msat: int | None = None
    ) -> str:
        return await self._raw.pay_invoice(invoice, amount_msat, max_fee_msat)

    async def held_route_next_hops(self, invoice: str, lsp_node_id: str) -> list[str]:
        """The distinct next nodes (right after the LSP) of the paths LDK's router would use now
        to pay `invoice` with first hops through `lsp_node_id` only, in order of first
        appearance: the next hops to ask the LSP to hold for. Raises PaymentError with the reason
        when there is no route, the payee is the LSP, or the invoice has no amount."""
        return await self._raw.held_route_next_hops(invoice, lsp_node_id)

    async def pay_invoice_held(
        self,
        invoice: str,
        lsp_node_id: str,
        hops: list[HeldHop],
        *,
        extra_final_cltv: int,
        max_fee_msat: int | None = None,
    ) -> str:
        """Pay through the hold `lsp_node_id` armed: every path leaves the LSP on the intercept
        SCID of one of `hops`' next nodes (LDK's retries too); returns the payment hash."""
        return await self._raw.pay_invoice_held(invoice, lsp_node_id, hops, extra_final_cltv, max_fee_msat)

    async def keysend(self, node_id: str, amount_msat: int) -> str:
        return await self._raw.keysend(node_id, amount_msat)

    async def payments(self) -> list[Payment]:
        return await self._raw.list_payments()

    async def payments_page(
        self,
        *,
        direction: str | None = None,
        status: str | None = None,
        invoices_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Payment]:
        """One page of payments, newest first; `limit` 1..500 (InvalidArgumentError otherwise)."""
        return await self._raw.payments_page(direction, status, invoices_only, limit, offset)

    async def payment_counts(self) -> dict[tuple[str, str], int]:
        """How many payments of each (direction, status) the engine recorded; pairs without any
        are absent. Counted in the engine's database: no record crosses the FFI."""
        return {(d, s): n for d, s, n in await self._raw.payment_counts()}

    async def forwards(self, limit: int = 50, offset: int = 0) -> list[Forward]:
        """One page of the forwarding history, newest first; `limit` 1..500."""
        return await self._raw.list_forwards(limit, offset)

    def async_recipient_paths(self, node_id: str, valid_days: int = 365) -> str:
        """Blinded paths to this node for the BOLT async-payment recipient `node_id`, as hex of
        LDK's encoding (what ldk-node's `set_paths_to_static_invoice_server` takes). Raises
        InvalidArgumentError when the server role is off. Computation only: no I/O."""
        return self._raw.async_recipient_paths(node_id, valid_days)

    async def static_invoices(self) -> list[StaticInvoice]:
        """The static invoices kept for offline recipients, newest first."""
        return await self._raw.static_invoices()

    def held_async_htlcs(self) -> list[HeldAsyncHtlc]:
        """The HTLCs LDK holds now for BOLT async payments (`hold_htlc`), until their recipients
        release them; fail one with `fail_intercepted_htlc(h.intercept_id)`. In memory: no I/O."""
        return self._raw.held_async_htlcs()

    async def forward_totals(self) -> ForwardTotals:
        return await self._raw.forward_totals()

    async def lsps1_orders(self, limit: int = 50, offset: int = 0) -> list[Lsps1Order]:
        """The LSPS1 orders, newest first."""
        return await self._raw.lsps1_orders(limit, offset)

    @property
    def lsps1_enabled(self) -> bool:
        return self._raw.lsps1_enabled

    async def lsps2_channels(self, limit: int = 50, offset: int = 0) -> list[JitChannel]:
        """The JIT channels sold over LSPS2, newest first."""
        return await self._raw.lsps2_channels(limit, offset)

    @property
    def lsps2_enabled(self) -> bool:
        return self._raw.lsps2_enabled

    @property
    def lsps5_enabled(self) -> bool:
        return self._raw.lsps5_enabled

    async def lsps5_notify(self, client: str, method: str, timeout: int | None = None) -> str:
        """Have the LSPS5 service sign `method` for every webhook of `client`: "queued" (each
        arrives as an `Lsps5Notification` event) or "cooldown" (lightning-liquidity's 60 s).
        The signing runs off the loop."""
        return await self._raw.lsps5_notify(client, method, timeout)

    def lsps5_set_webhook(self, lsp_node_id: str, app_name: str, url: str) -> str:
        """LSPS5 client (`lsps5_client` option): the answer comes as an `Lsps5WebhookReply`."""
        return self._raw.lsps5_set_webhook(lsp_node_id, app_name, url)

    @staticmethod
    def lsps5_verify(lsp_node_id: str, timestamp: str, signature: str, body: str) -> bool:
        """Whether a webhook POST (its x-lsps5-timestamp/-signature headers, its body) is the LSP's."""
        return _ldk.lsps5_verify(lsp_node_id, timestamp, signature, body)

    async def payment(self, payment_id: str) -> Payment | None:
        return await self._raw.payment(payment_id)

    # -- HTLC interception (LSP role) ---------------------------------------------------------
    def get_intercept_scid(self) -> int:
        return self._raw.get_intercept_scid()

    async def forward_intercepted_htlc(self, intercept_id: str, next_node_id: str, amount_msat: int) -> None:
        """Forward over a usable channel to `next_node_id` that the engine picks; raises
        NoUsableChannelError when none can carry `amount_msat` yet (worth retrying), any other
        LspNodeError when LDK no longer holds the HTLC."""
        await self._raw.forward_intercepted_htlc(intercept_id, next_node_id, amount_msat)

    async def fail_intercepted_htlc(self, intercept_id: str) -> None:
        await self._raw.fail_intercepted_htlc(intercept_id)

    def pending_inbound_htlcs(self) -> list[InboundHtlc]:
        return self._raw.pending_inbound_htlcs()

    def intercept_pending_amount(self, intercept_id: str) -> int | None:
        """The inbound amount of intercepted HTLC `intercept_id` if LDK still holds it, else None."""
        return self._raw.intercept_pending_amount(intercept_id)

    async def pending_intercepts(self) -> list[PendingIntercept]:
        """The intercepted HTLCs LDK holds now. LDK does not replay `HtlcIntercepted` after a
        restart for an event already handled: reconcile holds against this on start-up."""
        return await self._raw.pending_intercepts()

    async def onion_message_stats(self) -> OnionMessageStats:
        """Rate-limit counters of the onion-message front door and the event queue's depth."""
        return await self._raw.onion_message_stats()

    # -- onion messages and signatures ----------------------------------------------------
    def set_message_relay(self, node_id: str | None) -> None:
        self._raw.set_message_relay(node_id)

    async def send_onion_message(
        self,
        tlv_type: int,
        payload: bytes,
        *,
        to_node: str | None = None,
        to_path: str | None = None,
        reply_context: bytes | None = None,
    ) -> None:
        await self._raw.send_onion_message(tlv_type, payload, to_node, to_path, reply_context)

    async def reply_onion_message(self, responder: str, tlv_type: int, payload: bytes) -> None:
        await self._raw.reply_onion_message(responder, tlv_type, payload)

    def create_blinded_path(self, context: bytes, intermediate_nodes: list[str] | None = None) -> str:
        return self._raw.create_blinded_path(context, intermediate_nodes or [])

    async def forward_onion_message(self, message: str, peer_node_id: str) -> None:
        await self._raw.forward_onion_message(message, peer_node_id)

    def sign_message(self, message: bytes) -> str:
        return self._raw.sign_message(message)

    @staticmethod
    def verify_message(message: bytes, signature: str, node_id: str) -> bool:
        return _ldk.verify_message(message, signature, node_id)

    # -- events -------------------------------------------------------------------------------
    async def next_event(self) -> Event:
        return await self._raw.next_event()

    def poll_event(self) -> Event | None:
        return self._raw.poll_event()

    async def event_handled(self, event: Event) -> None:
        await self._raw.event_handled(event.id)

    async def events(self) -> AsyncIterator[Event]:
        """Yield events forever; the caller acknowledges each with `event_handled`."""
        while True:
            yield await self.next_event()
