"""Typed asyncio façade over the compiled engine (lsp_node._ldk): dataclasses in, dataclasses out."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Self

from lsp_node import _ldk

_LEVELS = {
    "GOSSIP": logging.DEBUG - 5,
    "TRACE": logging.DEBUG - 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
}


@dataclass(frozen=True)
class Balance:
    confirmed_sat: int
    trusted_pending_sat: int
    untrusted_pending_sat: int
    immature_sat: int
    total_sat: int
    spendable_sat: int


@dataclass(frozen=True)
class Peer:
    node_id: str
    address: str | None
    inbound: bool


@dataclass(frozen=True)
class Channel:
    channel_id: str
    user_channel_id: str
    counterparty_node_id: str
    short_channel_id: int | None
    funding_txo: str | None
    capacity_sat: int
    outbound_capacity_msat: int
    inbound_capacity_msat: int
    next_outbound_htlc_limit_msat: int
    confirmations: int | None
    is_outbound: bool
    is_ready: bool
    is_usable: bool
    is_announced: bool
    pending_htlcs: int
    state: str


@dataclass(frozen=True)
class InvoiceInfo:
    payment_hash: str
    amount_msat: int | None
    description: str | None
    payee_node_id: str
    network: str
    timestamp: int
    expiry_secs: int
    is_expired: bool
    min_final_cltv_expiry_delta: int
    route_hints: int
    route_hint_sources: list[str]


@dataclass(frozen=True)
class InboundHtlc:
    channel_id: str
    counterparty_node_id: str
    payment_hash: str
    amount_msat: int
    cltv_expiry: int


@dataclass(frozen=True)
class InterceptHop:
    """The hop through the payer's LSP that the LSP may hold (see SPEC.md)."""

    lsp_node_id: str
    intercept_scid: int
    fee_base_msat: int
    fee_proportional_millionths: int
    cltv_expiry_delta: int


@dataclass(frozen=True)
class Payment:
    payment_id: str
    payment_hash: str
    direction: str
    status: str
    amount_msat: int | None
    fee_msat: int | None
    preimage: str | None
    bolt11: str | None
    failure: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class Event:
    """An engine event. Acknowledge it with `LightningNode.event_handled(event)` once its
    side effects are committed; until then it is delivered again, also after a restart."""

    id: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


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
        listen_addr: str = "127.0.0.1:0",
        sync_interval_secs: int = 30,
        log_level: str = "info",
        accept_intercept_htlcs: bool = False,
        to_self_delay: int = 144,
        min_funding_confirmations: int = 6,
        forward_immediately: bool = False,
        name: str = "node",
    ) -> Self:
        raw = await _ldk.Node.start(
            data_dir,
            network,
            esplora_url,
            listen_addr,
            sync_interval_secs,
            log_level,
            accept_intercept_htlcs,
            to_self_delay,
            min_funding_confirmations,
            forward_immediately,
        )
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
            try:
                await self._log_task
            except asyncio.CancelledError:
                pass
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

    async def sync(self) -> None:
        await self._raw.sync()

    async def new_address(self) -> str:
        return await self._raw.new_address()

    def balance(self) -> Balance:
        return Balance(**json.loads(self._raw.wallet_balance_json()))

    def claimable_onchain_sat(self) -> int:
        return self._raw.claimable_onchain_sat()

    async def send_onchain(self, address: str, amount_sat: int | None) -> str:
        return await self._raw.send_onchain(address, amount_sat)

    # -- peers ------------------------------------------------------------------------------
    async def connect(self, node_id: str, address: str) -> None:
        await self._raw.connect(node_id, address)

    def disconnect(self, node_id: str) -> None:
        self._raw.disconnect(node_id)

    def peers(self) -> list[Peer]:
        return [Peer(**p) for p in json.loads(self._raw.list_peers_json())]

    # -- channels ---------------------------------------------------------------------------
    async def open_channel(
        self, node_id: str, amount_sat: int, *, push_msat: int = 0, announce: bool = False
    ) -> str:
        return await self._raw.open_channel(node_id, amount_sat, push_msat, announce)

    def channels(self) -> list[Channel]:
        return [Channel(**c) for c in json.loads(self._raw.list_channels_json())]

    async def close_channel(self, channel_id: str) -> None:
        await self._raw.close_channel(channel_id)

    async def force_close_channel(self, channel_id: str, reason: str = "closed by the operator") -> None:
        await self._raw.force_close_channel(channel_id, reason)

    # -- invoices and payments ------------------------------------------------------------
    async def create_invoice(self, amount_msat: int | None, description: str, expiry_secs: int = 3600) -> str:
        return await self._raw.create_invoice(amount_msat, description, expiry_secs)

    def decode_invoice(self, invoice: str) -> InvoiceInfo:
        return InvoiceInfo(**json.loads(self._raw.decode_invoice_json(invoice)))

    async def pay_invoice(
        self, invoice: str, *, amount_msat: int | None = None, max_fee_msat: int | None = None
    ) -> str:
        return await self._raw.pay_invoice(invoice, amount_msat, max_fee_msat)

    async def pay_invoice_via(
        self, invoice: str, hop: InterceptHop, *, extra_final_cltv: int, max_fee_msat: int | None = None
    ) -> str:
        return await self._raw.pay_invoice_via(
            invoice,
            hop.lsp_node_id,
            hop.intercept_scid,
            hop.fee_base_msat,
            hop.fee_proportional_millionths,
            hop.cltv_expiry_delta,
            extra_final_cltv,
            max_fee_msat,
        )

    async def keysend(self, node_id: str, amount_msat: int) -> str:
        return await self._raw.keysend(node_id, amount_msat)

    async def payments(self) -> list[Payment]:
        return [Payment(**p) for p in json.loads(await self._raw.list_payments_json())]

    async def payment(self, payment_id: str) -> Payment | None:
        raw = json.loads(await self._raw.payment_json(payment_id))
        return None if raw is None else Payment(**raw)

    # -- HTLC interception (LSP role) ---------------------------------------------------------
    def get_intercept_scid(self) -> int:
        return self._raw.get_intercept_scid()

    async def forward_intercepted_htlc(self, intercept_id: str, channel_id: str, amount_msat: int) -> None:
        await self._raw.forward_intercepted_htlc(intercept_id, channel_id, amount_msat)

    async def fail_intercepted_htlc(self, intercept_id: str) -> None:
        await self._raw.fail_intercepted_htlc(intercept_id)

    def pending_inbound_htlcs(self) -> list[InboundHtlc]:
        return [InboundHtlc(**h) for h in json.loads(self._raw.pending_inbound_htlcs_json())]

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
    @staticmethod
    def _event(raw: tuple[int, str, str]) -> Event:
        event_id, kind, body = raw
        data = json.loads(body)
        data.pop("kind", None)
        return Event(event_id, kind, data)

    async def next_event(self) -> Event:
        return self._event(await self._raw.next_event())

    def poll_event(self) -> Event | None:
        raw = self._raw.poll_event()
        return None if raw is None else self._event(raw)

    async def event_handled(self, event: Event) -> None:
        await self._raw.event_handled(event.id)

    async def events(self) -> AsyncIterator[Event]:
        """Yield events forever; the caller acknowledges each with `event_handled`."""
        while True:
            yield await self.next_event()
