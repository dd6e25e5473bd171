"""A fake of the LSP role's engine port (lsp_node.lsp.port.EnginePort): no LDK, no sockets."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from lsp_node.engine import HeldAsyncHtlc, HtlcIntercepted, PendingIntercept
from lsp_node.errors import LspNodeError, PeerError

LSP_NODE_ID = "03" + "5a" * 32


@dataclass
class FakeEngine:
    height: int = 1000
    own_id: str = LSP_NODE_ID
    clients: set[str] = field(default_factory=set)
    online: set[str] = field(default_factory=set)
    signatures_ok: bool = True
    #: next node id -> capacity of its usable channel; forward_htlc returns False for nodes not
    #: listed. Every node listed has a ready channel (has_ready_channel).
    channels: dict[str, int] = field(default_factory=dict)
    #: nodes with a ready channel that is not usable now (its peer is offline or reconnecting)
    ready: set[str] = field(default_factory=set)
    #: intercept ids LDK no longer has (forward/fail raise).
    gone: set[str] = field(default_factory=set)
    #: peers whose onion messages LDK refuses.
    refuse_messages_to: set[str] = field(default_factory=set)
    pending_hashes: set[str] = field(default_factory=set)
    #: the engine's intercept records (see `intercepted`); LDK holds those not in `gone`.
    records: dict[str, PendingIntercept] = field(default_factory=dict)
    #: intercept id -> inbound msat: held by LDK without an engine record (recorded by an
    #: engine version that kept none).
    unrecorded: dict[str, int] = field(default_factory=dict)
    #: channel id -> counterparty, for HtlcHandlingFailed
    channel_peers: dict[str, str] = field(default_factory=dict)
    replies: list[tuple[str, int, bytes]] = field(default_factory=list)
    forwarded: list[tuple[str, str, int]] = field(default_factory=list)
    #: every forward_htlc call, also those no channel could carry: (intercept id, next node)
    forward_calls: list[tuple[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: intercept ids of forwards and fails LDK refused (it no longer held them)
    refused: list[str] = field(default_factory=list)
    delivered: list[tuple[str, str]] = field(default_factory=list)
    #: our own messages sent straight to a peer: (peer, tlv type, payload)
    sent: list[tuple[str, int, bytes]] = field(default_factory=list)
    #: node id -> the addresses of its node announcement (node_addresses)
    announced: dict[str, list[str]] = field(default_factory=dict)
    #: every connect call: (node id, address)
    dials: list[tuple[str, str]] = field(default_factory=list)
    #: addresses where a dial fails at once; a dial to any other address succeeds (the node goes
    #: online) after `dial_delay` seconds, or waits for `dial_gate` to be set
    unreachable: set[str] = field(default_factory=set)
    dial_delay: float = 0.0
    dial_gate: asyncio.Event | None = None
    #: HTLCs LDK holds for BOLT async payments (those whose intercept id is in `gone` are not)
    held_async: list[HeldAsyncHtlc] = field(default_factory=list)
    _scids: Any = field(default_factory=lambda: itertools.count(0x10000000001))
    #: every lsps5_notify call: (client, method, timeout); None: the LSPS5 service is off
    lsps5_calls: list[tuple[str, str, int | None]] | None = None
    #: what lsps5_notify answers ("queued", or "cooldown" as lightning-liquidity's 60 s would)
    lsps5_outcome: str = "queued"

    def node_id(self) -> str:
        return self.own_id

    def best_block_height(self) -> int:
        return self.height

    def is_client(self, node_id: str) -> bool:
        return node_id in self.clients

    def has_ready_channel(self, node_id: str) -> bool:
        # A client has a ready channel by definition (is_client is this check in LdkEngine).
        return node_id in self.channels or node_id in self.ready or node_id in self.clients

    def channel_counterparty(self, channel_id: str) -> str | None:
        return self.channel_peers.get(channel_id)

    def is_online(self, node_id: str) -> bool:
        return node_id in self.online

    def connected_peers(self) -> list[str]:
        return sorted(self.online)

    def node_addresses(self, node_id: str) -> list[str]:
        return list(self.announced.get(node_id, []))

    async def connect(self, node_id: str, address: str) -> None:
        self.dials.append((node_id, address))
        if self.dial_gate is not None:
            await self.dial_gate.wait()
        elif self.dial_delay:
            await asyncio.sleep(self.dial_delay)
        if address in self.unreachable:
            raise PeerError(f"cannot connect to {node_id} at {address}")
        self.online.add(node_id)

    async def lsps5_notify(self, client: str, method: str, timeout: int | None) -> str:
        if self.lsps5_calls is None:
            return "off"
        self.lsps5_calls.append((client, method, timeout))
        return self.lsps5_outcome

    def get_intercept_scid(self) -> int:
        return int(next(self._scids))

    def create_blinded_path(self, context: bytes) -> bytes:
        return b"path:" + context

    @staticmethod
    def sign(message: bytes) -> str:
        """A fake signature that binds the exact signed bytes (audience included)."""
        return "fake:" + hashlib.sha256(message).hexdigest()

    def verify_message(self, message: bytes, signature: str, node_id: str) -> bool:
        if signature.startswith("fake:"):
            return self.signatures_ok and signature == self.sign(message)
        return self.signatures_ok  # any other placeholder stands for a valid signature

    async def reply_onion_message(self, responder: str, tlv_type: int, payload: bytes) -> None:
        self.replies.append((responder, tlv_type, payload))

    async def forward_onion_message(self, message: str, peer_node_id: str) -> None:
        if peer_node_id in self.refuse_messages_to:
            raise LspNodeError("peer not connected")
        self.delivered.append((peer_node_id, message))

    async def send_onion_message(self, peer_node_id: str, tlv_type: int, payload: bytes) -> None:
        if peer_node_id in self.refuse_messages_to:
            raise LspNodeError("peer not connected")
        self.sent.append((peer_node_id, tlv_type, payload))

    async def fail_intercepted_htlc(self, intercept_id: str) -> None:
        if intercept_id in self.gone:
            self.refused.append(intercept_id)
            raise LspNodeError("no such intercepted HTLC")
        self.failed.append(intercept_id)
        self.gone.add(intercept_id)
        self._mark(intercept_id, "failed")

    async def forward_htlc(self, intercept_id: str, next_node_id: str, amount_msat: int) -> bool:
        self.forward_calls.append((intercept_id, next_node_id))
        if self.channels.get(next_node_id, 0) < amount_msat:
            return False
        if intercept_id in self.gone:
            self.refused.append(intercept_id)
            raise LspNodeError("no such intercepted HTLC")
        self.forwarded.append((intercept_id, next_node_id, amount_msat))
        self.gone.add(intercept_id)
        self._mark(intercept_id, "forwarded")
        return True

    def pending_inbound_payment_hashes(self) -> set[str]:
        return set(self.pending_hashes)

    def held_async_htlcs(self) -> list[HeldAsyncHtlc]:
        return [h for h in self.held_async if h.intercept_id not in self.gone]

    def intercepted(self, event: HtlcIntercepted) -> HtlcIntercepted:
        """LDK intercepts an HTLC: the engine records it (state pending) and emits `event`.
        Taking it out of `gone` again stands for LDK losing a forward or fail in a crash."""
        self.records.setdefault(
            event.intercept_id,
            PendingIntercept(
                event.intercept_id,
                event.requested_next_hop_scid,
                event.payment_hash,
                "chan-" + (event.prev_node_id or "?")[:8],
                event.prev_node_id,
                event.inbound_amount_msat,
                event.expected_outbound_amount_msat,
                event.inbound_cltv_expiry,
                "pending",
            ),
        )
        self.gone.discard(event.intercept_id)
        return event

    def _mark(self, intercept_id: str, state: str) -> None:
        r = self.records.get(intercept_id)
        if r is not None:
            self.records[intercept_id] = PendingIntercept(
                r.intercept_id,
                r.requested_next_hop_scid,
                r.payment_hash,
                r.prev_channel_id,
                r.prev_node_id,
                r.inbound_amount_msat,
                r.expected_outbound_amount_msat,
                r.inbound_cltv_expiry,
                state,
            )

    async def pending_intercepts(self) -> list[PendingIntercept]:
        return [r for i, r in self.records.items() if i not in self.gone]

    def intercept_pending_amount(self, intercept_id: str) -> int | None:
        if intercept_id in self.gone:
            return None
        r = self.records.get(intercept_id)
        return r.inbound_amount_msat if r is not None else self.unrecorded.get(intercept_id)
