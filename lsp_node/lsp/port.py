"""The LSP role's view of the Lightning engine: a narrow typed port and its adapter over
`LightningNode`. Everything the role asks of LDK goes through `EnginePort`, so the role can be
tested against a fake and the engine's Python boundary can change behind `LdkEngine` alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from lsp_node.engine import LightningNode


@dataclass(frozen=True)
class InterceptedHtlc:
    """An HTLC LDK intercepted because its onion names an intercept SCID (HTLCIntercepted)."""

    intercept_id: str
    requested_scid: int
    payment_hash: str
    inbound_msat: int
    expected_outbound_msat: int
    #: The peer that sent it and the lowest incoming CLTV expiry of that peer's HTLCs with this
    #: payment hash; None if LDK no longer lists the HTLC as pending.
    prev_node_id: str | None
    incoming_cltv_expiry: int | None


class EnginePort(Protocol):
    """What the LSP role needs from the engine."""

    def best_block_height(self) -> int: ...

    def is_client(self, node_id: str) -> bool:
        """True if the node has a channel (in any state) with us."""
        ...

    def is_online(self, node_id: str) -> bool: ...

    def connected_peers(self) -> list[str]: ...

    def get_intercept_scid(self) -> int: ...

    def create_blinded_path(self, context: bytes) -> bytes:
        """A blinded message path to us whose authenticated context is `context`."""
        ...

    def verify_message(self, message: bytes, signature: str, node_id: str) -> bool: ...

    async def reply_onion_message(self, responder: str, tlv_type: int, payload: bytes) -> None: ...

    async def forward_onion_message(self, message: str, peer_node_id: str) -> None: ...

    def intercepted_htlc(self, event: Mapping[str, Any]) -> InterceptedHtlc:
        """The intercepted HTLC an `htlc_intercepted` event describes."""
        ...

    async def fail_intercepted_htlc(self, intercept_id: str) -> None: ...

    async def forward_htlc(self, intercept_id: str, next_node_id: str, amount_msat: int) -> bool:
        """Forward an intercepted HTLC to `next_node_id`. False if no channel can carry it now;
        raises LspNodeError if LDK refuses (it no longer has the HTLC)."""
        ...

    def pending_inbound_payment_hashes(self) -> set[str]:
        """Payment hashes of the inbound HTLCs LDK still has pending."""
        ...


class LdkEngine:
    """`EnginePort` over today's `LightningNode`."""

    def __init__(self, node: LightningNode) -> None:
        self.node = node

    def best_block_height(self) -> int:
        return self.node.best_block_height

    def is_client(self, node_id: str) -> bool:
        return any(c.counterparty_node_id == node_id for c in self.node.channels())

    def is_online(self, node_id: str) -> bool:
        return any(p.node_id == node_id for p in self.node.peers())

    def connected_peers(self) -> list[str]:
        return [p.node_id for p in self.node.peers()]

    def get_intercept_scid(self) -> int:
        return self.node.get_intercept_scid()

    def create_blinded_path(self, context: bytes) -> bytes:
        return bytes.fromhex(self.node.create_blinded_path(context))

    def verify_message(self, message: bytes, signature: str, node_id: str) -> bool:
        return LightningNode.verify_message(message, signature, node_id)

    async def reply_onion_message(self, responder: str, tlv_type: int, payload: bytes) -> None:
        await self.node.reply_onion_message(responder, tlv_type, payload)

    async def forward_onion_message(self, message: str, peer_node_id: str) -> None:
        await self.node.forward_onion_message(message, peer_node_id)

    def intercepted_htlc(self, event: Mapping[str, Any]) -> InterceptedHtlc:
        # LDK's HTLCIntercepted names neither the sender nor the incoming CLTV; both come from the
        # pending inbound HTLCs with the same hash, preferring the one of the same amount.
        payment_hash = str(event["payment_hash"])
        inbound = int(event["inbound_amount_msat"])
        incoming = [h for h in self.node.pending_inbound_htlcs() if h.payment_hash == payment_hash]
        sender = next((h for h in incoming if h.amount_msat == inbound), incoming[0] if incoming else None)
        prev = sender.counterparty_node_id if sender else None
        cltv = min((h.cltv_expiry for h in incoming if h.counterparty_node_id == prev), default=None)
        return InterceptedHtlc(
            intercept_id=str(event["intercept_id"]),
            requested_scid=int(event["requested_next_hop_scid"]),
            payment_hash=payment_hash,
            inbound_msat=inbound,
            expected_outbound_msat=int(event["expected_outbound_amount_msat"]),
            prev_node_id=prev,
            incoming_cltv_expiry=cltv,
        )

    async def fail_intercepted_htlc(self, intercept_id: str) -> None:
        await self.node.fail_intercepted_htlc(intercept_id)

    async def forward_htlc(self, intercept_id: str, next_node_id: str, amount_msat: int) -> bool:
        # The first usable channel to the next node that can carry the amount (SPEC.md §4.7).
        channel = next(
            (
                c
                for c in self.node.channels()
                if c.counterparty_node_id == next_node_id
                and c.is_usable
                and c.next_outbound_htlc_limit_msat >= amount_msat
            ),
            None,
        )
        if channel is None:
            return False
        await self.node.forward_intercepted_htlc(intercept_id, channel.channel_id, amount_msat)
        return True

    def pending_inbound_payment_hashes(self) -> set[str]:
        return {h.payment_hash for h in self.node.pending_inbound_htlcs()}
