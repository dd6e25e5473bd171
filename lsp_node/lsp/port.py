"""The LSP role's view of the Lightning engine: a narrow typed port and its adapter over
`LightningNode`. Everything the role asks of LDK goes through `EnginePort`, so the role can be
tested against a fake and the engine's Python boundary can change behind `LdkEngine` alone."""

from __future__ import annotations

from typing import Protocol

from lsp_node.engine import HeldAsyncHtlc, LightningNode, PendingIntercept
from lsp_node.errors import NoUsableChannelError


class EnginePort(Protocol):
    """What the LSP role needs from the engine."""

    def node_id(self) -> str:
        """Our own node id (the audience of signed requests, SPEC.md §2.9)."""
        ...

    def best_block_height(self) -> int: ...

    def is_client(self, node_id: str) -> bool:
        """True if the node has a funded channel with us that is ready (both sides sent
        channel_ready) and not closing: an unfunded or pending channel costs a stranger nothing,
        so it earns no holds, devices or mailbox (SPEC.md §2.9, §11)."""
        ...

    def has_ready_channel(self, node_id: str) -> bool:
        """True if we have a channel with the node that is ready and not closing (the check of
        is_client, for a hold's next node, SPEC.md §4.2). The peer may be offline: a payee's
        phone usually is, and its channel becomes usable again when it reconnects."""
        ...

    def is_online(self, node_id: str) -> bool: ...

    def channel_counterparty(self, channel_id: str) -> str | None:
        """The peer of one of our channels, or None if we have no such channel (any more)."""
        ...

    def connected_peers(self) -> list[str]: ...

    def node_addresses(self, node_id: str) -> list[str]:
        """The "host:port" addresses of the node's announcement in our gossip; [] if none known."""
        ...

    async def connect(self, node_id: str, address: str) -> None:
        """Dial the node at `address` and return once connected; raises LspNodeError if not."""
        ...

    def get_intercept_scid(self) -> int: ...

    async def lsps5_notify(self, client: str, method: str, timeout: int | None) -> str:
        """LSPS5: sign `method` for the client's webhooks: "queued", "cooldown" or "off"."""
        ...

    def create_blinded_path(self, context: bytes) -> bytes:
        """A blinded message path to us whose authenticated context is `context`."""
        ...

    def verify_message(self, message: bytes, signature: str, node_id: str) -> bool: ...

    async def reply_onion_message(self, responder: str, tlv_type: int, payload: bytes) -> None: ...

    async def forward_onion_message(self, message: str, peer_node_id: str) -> None: ...

    async def send_onion_message(self, peer_node_id: str, tlv_type: int, payload: bytes) -> None:
        """Send one of our messages straight to a connected peer, without a reply path."""
        ...

    async def fail_intercepted_htlc(self, intercept_id: str) -> None: ...

    async def forward_htlc(self, intercept_id: str, next_node_id: str, amount_msat: int) -> bool:
        """Hand an intercepted HTLC to LDK for `next_node_id`. False if no usable channel to that
        node can carry it now (nothing happened; the caller may wait and try again); raises
        LspNodeError if LDK refuses (it no longer has the HTLC)."""
        ...

    def pending_inbound_payment_hashes(self) -> set[str]:
        """Payment hashes of the inbound HTLCs LDK still has pending."""
        ...

    def held_async_htlcs(self) -> list[HeldAsyncHtlc]:
        """The HTLCs LDK holds for BOLT async payments (SPEC.md §13); `fail_intercepted_htlc`
        fails one by its intercept id."""
        ...

    async def pending_intercepts(self) -> list[PendingIntercept]:
        """The intercepted HTLCs LDK holds now (waiting for a forward or a fail), each with the
        engine's record of it; `state` is what was last asked of LDK (pending: nothing; forwarded
        or failed: that request was lost, e.g. to a crash before LDK persisted it; SPEC.md §8)."""
        ...

    def intercept_pending_amount(self, intercept_id: str) -> int | None:
        """The inbound amount of intercept `intercept_id` if LDK holds it now, else None. Asks
        LDK directly, so it also answers for an intercept the engine has no record of."""
        ...


class LdkEngine:
    """`EnginePort` over today's `LightningNode`."""

    def __init__(self, node: LightningNode) -> None:
        self.node = node

    def node_id(self) -> str:
        return self.node.node_id

    def best_block_height(self) -> int:
        return self.node.best_block_height

    def is_client(self, node_id: str) -> bool:
        return self.has_ready_channel(node_id)

    def has_ready_channel(self, node_id: str) -> bool:
        # `is_ready`, not `is_usable`: a ready channel stays ready while the phone is offline,
        # which is exactly when the mailbox has to recognise it as a client, and when a hold's
        # next node is a payee that will reconnect to be paid.
        return any(
            c.counterparty_node_id == node_id and c.is_ready and c.state != "closing" for c in self.node.channels()
        )

    def channel_counterparty(self, channel_id: str) -> str | None:
        return next((c.counterparty_node_id for c in self.node.channels() if c.channel_id == channel_id), None)

    def is_online(self, node_id: str) -> bool:
        return any(p.node_id == node_id for p in self.node.peers())

    def connected_peers(self) -> list[str]:
        return [p.node_id for p in self.node.peers()]

    def node_addresses(self, node_id: str) -> list[str]:
        return self.node.node_addresses(node_id)

    async def connect(self, node_id: str, address: str) -> None:
        await self.node.connect(node_id, address)

    def get_intercept_scid(self) -> int:
        return self.node.get_intercept_scid()

    async def lsps5_notify(self, client: str, method: str, timeout: int | None) -> str:
        if not self.node.lsps5_enabled:
            return "off"
        return await self.node.lsps5_notify(client, method, timeout)

    def create_blinded_path(self, context: bytes) -> bytes:
        return bytes.fromhex(self.node.create_blinded_path(context))

    def verify_message(self, message: bytes, signature: str, node_id: str) -> bool:
        return LightningNode.verify_message(message, signature, node_id)

    async def reply_onion_message(self, responder: str, tlv_type: int, payload: bytes) -> None:
        await self.node.reply_onion_message(responder, tlv_type, payload)

    async def forward_onion_message(self, message: str, peer_node_id: str) -> None:
        await self.node.forward_onion_message(message, peer_node_id)

    async def send_onion_message(self, peer_node_id: str, tlv_type: int, payload: bytes) -> None:
        await self.node.send_onion_message(tlv_type, payload, to_node=peer_node_id)

    async def fail_intercepted_htlc(self, intercept_id: str) -> None:
        await self.node.fail_intercepted_htlc(intercept_id)

    async def forward_htlc(self, intercept_id: str, next_node_id: str, amount_msat: int) -> bool:
        # The engine picks the channel (SPEC.md §4.7): one call into Rust per released HTLC.
        try:
            await self.node.forward_intercepted_htlc(intercept_id, next_node_id, amount_msat)
        except NoUsableChannelError:
            return False
        return True

    def pending_inbound_payment_hashes(self) -> set[str]:
        return {h.payment_hash for h in self.node.pending_inbound_htlcs()}

    def held_async_htlcs(self) -> list[HeldAsyncHtlc]:
        return self.node.held_async_htlcs()

    async def pending_intercepts(self) -> list[PendingIntercept]:
        return await self.node.pending_intercepts()

    def intercept_pending_amount(self, intercept_id: str) -> int | None:
        return self.node.intercept_pending_amount(intercept_id)
