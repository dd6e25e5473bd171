"""Type stub of the compiled engine module (engine/pyglue). Kept honest by mypy.stubtest in the tests."""

from collections.abc import Awaitable
from typing import ClassVar, Literal, Self, final

__all__ = [
    "Balance",
    "Channel",
    "ChannelClosed",
    "ChannelPending",
    "ChannelReady",
    "ClientWanted",
    "Forward",
    "ForwardTotals",
    "HeldAsyncHtlc",
    "HeldHop",
    "HtlcHandlingFailed",
    "HtlcIntercepted",
    "InboundHtlc",
    "InvoiceInfo",
    "JitChannel",
    "Lsps1Options",
    "Lsps1Order",
    "Lsps2Options",
    "Lsps5Notification",
    "Lsps5WebhookReply",
    "Node",
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
    "RegtestChain",
    "StaticInvoice",
    "__version__",
    "lsps5_verify",
    "verify_message",
]

def verify_message(message: bytes, signature: str, node_id: str) -> bool: ...
def lsps5_verify(lsp_node_id: str, timestamp: str, signature: str, body: str) -> bool: ...

__version__: str

@final
class NodeOptions:
    """A node's tunable options; `NodeOptions()` holds the engine's defaults (the one source)."""

    __match_args__ = (
        "listen_addr",
        "sync_interval_secs",
        "log_level",
        "accept_intercept_htlcs",
        "to_self_delay",
        "min_funding_confirmations",
        "forward_immediately",
        "onion_message_rate_per_sec",
        "onion_message_burst",
        "max_queued_onion_messages",
        "max_intercepted_per_peer",
        "min_inbound_channel_sat",
        "log_max_bytes",
        "log_keep_files",
        "announce_addresses",
        "async_payments_server",
        "lsps2",
        "lsps5_max_webhooks",
        "lsps5_client",
        "lsps5_wait_for_client_secs",
        "lsps1",
    )
    def __new__(
        cls,
        *,
        listen_addr: str = ...,
        sync_interval_secs: int = ...,
        log_level: str = ...,
        accept_intercept_htlcs: bool = ...,
        to_self_delay: int = ...,
        min_funding_confirmations: int = ...,
        forward_immediately: bool = ...,
        onion_message_rate_per_sec: int = ...,
        onion_message_burst: int = ...,
        max_queued_onion_messages: int = ...,
        max_intercepted_per_peer: int = ...,
        min_inbound_channel_sat: int = ...,
        log_max_bytes: int = ...,
        log_keep_files: int = ...,
        announce_addresses: list[str] = ...,
        async_payments_server: bool = ...,
        lsps2: Lsps2Options | None = None,
        lsps5_max_webhooks: int | None = None,
        lsps5_client: bool = False,
        lsps5_wait_for_client_secs: int = 0,
        lsps1: Lsps1Options | None = None,
    ) -> Self: ...
    @property
    def listen_addr(self) -> str: ...
    @property
    def sync_interval_secs(self) -> int: ...
    @property
    def log_level(self) -> str: ...
    @property
    def accept_intercept_htlcs(self) -> bool: ...
    @property
    def to_self_delay(self) -> int: ...
    @property
    def min_funding_confirmations(self) -> int: ...
    @property
    def forward_immediately(self) -> bool: ...
    @property
    def onion_message_rate_per_sec(self) -> int: ...
    @property
    def onion_message_burst(self) -> int: ...
    @property
    def max_queued_onion_messages(self) -> int: ...
    @property
    def max_intercepted_per_peer(self) -> int: ...
    @property
    def min_inbound_channel_sat(self) -> int: ...
    @property
    def log_max_bytes(self) -> int: ...
    @property
    def log_keep_files(self) -> int: ...
    @property
    def announce_addresses(self) -> list[str]: ...
    @property
    def async_payments_server(self) -> bool: ...
    @property
    def lsps2(self) -> Lsps2Options | None: ...
    @property
    def lsps5_max_webhooks(self) -> int | None: ...
    @property
    def lsps5_client(self) -> bool: ...
    @property
    def lsps5_wait_for_client_secs(self) -> int: ...
    @property
    def lsps1(self) -> Lsps1Options | None: ...

@final
class Lsps1Options:
    """The LSPS1 (buy a channel) service's terms; `Lsps1Options()` holds the engine's defaults."""

    def __new__(
        cls,
        *,
        min_channel_sat: int = ...,
        max_channel_sat: int = ...,
        max_client_balance_sat: int = ...,
        min_channel_expiry_blocks: int = ...,
        max_channel_expiry_blocks: int = ...,
        fee_base_sat: int = ...,
        fee_ppm: int = ...,
        order_valid_secs: int = ...,
        max_pending_per_client: int = ...,
        max_pending_total: int = ...,
        onchain_payment: bool = ...,
        min_onchain_payment_confirmations: int = ...,
        min_onchain_payment_size_sat: int = ...,
        max_onchain_offers_per_day: int = ...,
    ) -> Self: ...
    @property
    def min_channel_sat(self) -> int: ...
    @property
    def max_channel_sat(self) -> int: ...
    @property
    def max_client_balance_sat(self) -> int: ...
    @property
    def min_channel_expiry_blocks(self) -> int: ...
    @property
    def max_channel_expiry_blocks(self) -> int: ...
    @property
    def fee_base_sat(self) -> int: ...
    @property
    def fee_ppm(self) -> int: ...
    @property
    def order_valid_secs(self) -> int: ...
    @property
    def max_pending_per_client(self) -> int: ...
    @property
    def max_pending_total(self) -> int: ...
    @property
    def onchain_payment(self) -> bool: ...
    @property
    def min_onchain_payment_confirmations(self) -> int: ...
    @property
    def min_onchain_payment_size_sat(self) -> int: ...
    @property
    def max_onchain_offers_per_day(self) -> int: ...

@final
class Lsps1Order:
    """An LSPS1 order: the channel bought (`lsp_balance_sat`, `client_balance_sat`, the order's bLIP-51 `params` JSON), `state` (CREATED, COMPLETED, FAILED), `payment_state` (EXPECT_PAYMENT, PAID, REFUNDED), the BOLT11 invoice paying `total_sat` (of which `fee_sat` is the fee) and the channel once funded; `refund_onchain_address` the client's (refunds are by hand), `open_attempts` the failed opens of a paid order and `last_error` the last one's reason (FAILED with PAID: given up, owed a refund). Paid on chain: `onchain_address` (None: not offered) with the confirmations it needs, what confirmed there (`onchain_received_sat`, `onchain_outpoints` "txid:vout"), `paid_by` (bolt11, onchain; None while unpaid) and `refund_owed_sat`, to be refunded by hand (coins that did not pay the order, or a given-up order's payment)."""

    __match_args__ = (
        "order_id",
        "client_node_id",
        "params",
        "lsp_balance_sat",
        "client_balance_sat",
        "state",
        "payment_state",
        "invoice",
        "payment_hash",
        "fee_sat",
        "total_sat",
        "channel_id",
        "funding_outpoint",
        "funded_at",
        "created_at",
        "expires_at",
        "refund_onchain_address",
        "open_attempts",
        "last_error",
        "onchain_address",
        "onchain_min_confirmations",
        "onchain_received_sat",
        "onchain_outpoints",
        "paid_by",
        "refund_owed_sat",
    )
    def __new__(
        cls,
        order_id: str,
        client_node_id: str,
        params: str,
        lsp_balance_sat: int,
        client_balance_sat: int,
        state: str,
        payment_state: str,
        invoice: str,
        payment_hash: str,
        fee_sat: int,
        total_sat: int,
        channel_id: str | None,
        funding_outpoint: str | None,
        funded_at: int | None,
        created_at: int,
        expires_at: int,
        refund_onchain_address: str | None,
        open_attempts: int,
        last_error: str | None,
        onchain_address: str | None,
        onchain_min_confirmations: int | None,
        onchain_received_sat: int,
        onchain_outpoints: list[str],
        paid_by: str | None,
        refund_owed_sat: int,
    ) -> Self: ...
    @property
    def order_id(self) -> str: ...
    @property
    def client_node_id(self) -> str: ...
    @property
    def params(self) -> str: ...
    @property
    def lsp_balance_sat(self) -> int: ...
    @property
    def client_balance_sat(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def payment_state(self) -> str: ...
    @property
    def invoice(self) -> str: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def fee_sat(self) -> int: ...
    @property
    def total_sat(self) -> int: ...
    @property
    def channel_id(self) -> str | None: ...
    @property
    def funding_outpoint(self) -> str | None: ...
    @property
    def funded_at(self) -> int | None: ...
    @property
    def created_at(self) -> int: ...
    @property
    def expires_at(self) -> int: ...
    @property
    def refund_onchain_address(self) -> str | None: ...
    @property
    def open_attempts(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def onchain_address(self) -> str | None: ...
    @property
    def onchain_min_confirmations(self) -> int | None: ...
    @property
    def onchain_received_sat(self) -> int: ...
    @property
    def onchain_outpoints(self) -> list[str]: ...
    @property
    def paid_by(self) -> str | None: ...
    @property
    def refund_owed_sat(self) -> int: ...

@final
class Lsps2Options:
    """The LSPS2 (JIT channel) service's terms; `Lsps2Options()` holds the engine's defaults."""

    def __new__(
        cls,
        *,
        min_payment_size_msat: int = ...,
        max_payment_size_msat: int = ...,
        min_fee_msat: int = ...,
        proportional_ppm: int = ...,
        min_lifetime_blocks: int = ...,
        max_client_to_self_delay: int = ...,
        valid_for_secs: int = ...,
        channel_over_payment_sat: int = ...,
        max_channel_sat: int = ...,
        zero_conf: bool = ...,
        cltv_expiry_delta: int = ...,
        max_unpaid_per_client: int = ...,
        max_unpaid_total_sat: int = ...,
    ) -> Self: ...
    @property
    def min_payment_size_msat(self) -> int: ...
    @property
    def max_payment_size_msat(self) -> int: ...
    @property
    def min_fee_msat(self) -> int: ...
    @property
    def proportional_ppm(self) -> int: ...
    @property
    def min_lifetime_blocks(self) -> int: ...
    @property
    def max_client_to_self_delay(self) -> int: ...
    @property
    def valid_for_secs(self) -> int: ...
    @property
    def channel_over_payment_sat(self) -> int: ...
    @property
    def max_channel_sat(self) -> int: ...
    @property
    def zero_conf(self) -> bool: ...
    @property
    def cltv_expiry_delta(self) -> int: ...
    @property
    def max_unpaid_per_client(self) -> int: ...
    @property
    def max_unpaid_total_sat(self) -> int: ...

@final
class JitChannel:
    """A JIT channel sold over LSPS2: its intercept SCID, client, the fee offer bought, and `state` (sold, opening, ready, paid, failed, expired); `channel_sat` the channel funded (None: none was), `skimmed_msat` the fee skimmed from forwards over it so far."""

    __match_args__ = (
        "scid",
        "client_node_id",
        "user_channel_id",
        "payment_size_msat",
        "min_fee_msat",
        "proportional_ppm",
        "valid_until",
        "state",
        "channel_id",
        "opening_fee_msat",
        "created_at",
        "updated_at",
        "channel_sat",
        "skimmed_msat",
    )
    def __new__(
        cls,
        scid: int,
        client_node_id: str,
        user_channel_id: str,
        payment_size_msat: int | None,
        min_fee_msat: int,
        proportional_ppm: int,
        valid_until: str,
        state: str,
        channel_id: str | None,
        opening_fee_msat: int | None,
        created_at: int,
        updated_at: int,
        channel_sat: int | None,
        skimmed_msat: int,
    ) -> Self: ...
    @property
    def scid(self) -> int: ...
    @property
    def client_node_id(self) -> str: ...
    @property
    def user_channel_id(self) -> str: ...
    @property
    def payment_size_msat(self) -> int | None: ...
    @property
    def min_fee_msat(self) -> int: ...
    @property
    def proportional_ppm(self) -> int: ...
    @property
    def valid_until(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def channel_id(self) -> str | None: ...
    @property
    def opening_fee_msat(self) -> int | None: ...
    @property
    def created_at(self) -> int: ...
    @property
    def updated_at(self) -> int: ...
    @property
    def channel_sat(self) -> int | None: ...
    @property
    def skimmed_msat(self) -> int: ...

@final
class Balance:
    """The on-chain wallet's balance in satoshis."""

    __match_args__ = (
        "confirmed_sat",
        "trusted_pending_sat",
        "untrusted_pending_sat",
        "immature_sat",
        "total_sat",
        "spendable_sat",
    )
    def __new__(
        cls,
        confirmed_sat: int,
        trusted_pending_sat: int,
        untrusted_pending_sat: int,
        immature_sat: int,
        total_sat: int,
        spendable_sat: int,
    ) -> Self: ...
    @property
    def confirmed_sat(self) -> int: ...
    @property
    def trusted_pending_sat(self) -> int: ...
    @property
    def untrusted_pending_sat(self) -> int: ...
    @property
    def immature_sat(self) -> int: ...
    @property
    def total_sat(self) -> int: ...
    @property
    def spendable_sat(self) -> int: ...

@final
class Peer:
    """A connected peer."""

    __match_args__ = ("node_id", "address", "inbound")
    def __new__(cls, node_id: str, address: str | None, inbound: bool) -> Self: ...
    @property
    def node_id(self) -> str: ...
    @property
    def address(self) -> str | None: ...
    @property
    def inbound(self) -> bool: ...

@final
class Channel:
    """A channel as the channel manager lists it; `state` is pending, ready, usable or closing."""

    __match_args__ = (
        "channel_id",
        "user_channel_id",
        "counterparty_node_id",
        "short_channel_id",
        "funding_txo",
        "capacity_sat",
        "outbound_capacity_msat",
        "inbound_capacity_msat",
        "next_outbound_htlc_limit_msat",
        "confirmations",
        "is_outbound",
        "is_ready",
        "is_usable",
        "is_announced",
        "pending_htlcs",
        "state",
    )
    def __new__(
        cls,
        channel_id: str,
        user_channel_id: str,
        counterparty_node_id: str,
        short_channel_id: int | None,
        funding_txo: str | None,
        capacity_sat: int,
        outbound_capacity_msat: int,
        inbound_capacity_msat: int,
        next_outbound_htlc_limit_msat: int,
        confirmations: int | None,
        is_outbound: bool,
        is_ready: bool,
        is_usable: bool,
        is_announced: bool,
        pending_htlcs: int,
        state: str,
    ) -> Self: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def user_channel_id(self) -> str: ...
    @property
    def counterparty_node_id(self) -> str: ...
    @property
    def short_channel_id(self) -> int | None: ...
    @property
    def funding_txo(self) -> str | None: ...
    @property
    def capacity_sat(self) -> int: ...
    @property
    def outbound_capacity_msat(self) -> int: ...
    @property
    def inbound_capacity_msat(self) -> int: ...
    @property
    def next_outbound_htlc_limit_msat(self) -> int: ...
    @property
    def confirmations(self) -> int | None: ...
    @property
    def is_outbound(self) -> bool: ...
    @property
    def is_ready(self) -> bool: ...
    @property
    def is_usable(self) -> bool: ...
    @property
    def is_announced(self) -> bool: ...
    @property
    def pending_htlcs(self) -> int: ...
    @property
    def state(self) -> str: ...

@final
class InvoiceInfo:
    """A decoded BOLT11 invoice."""

    __match_args__ = (
        "payment_hash",
        "amount_msat",
        "description",
        "payee_node_id",
        "network",
        "timestamp",
        "expiry_secs",
        "is_expired",
        "min_final_cltv_expiry_delta",
        "route_hints",
        "route_hint_sources",
    )
    def __new__(
        cls,
        payment_hash: str,
        amount_msat: int | None,
        description: str | None,
        payee_node_id: str,
        network: str,
        timestamp: int,
        expiry_secs: int,
        is_expired: bool,
        min_final_cltv_expiry_delta: int,
        route_hints: int,
        route_hint_sources: list[str],
    ) -> Self: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def amount_msat(self) -> int | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def payee_node_id(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def expiry_secs(self) -> int: ...
    @property
    def is_expired(self) -> bool: ...
    @property
    def min_final_cltv_expiry_delta(self) -> int: ...
    @property
    def route_hints(self) -> int: ...
    @property
    def route_hint_sources(self) -> list[str]: ...

@final
class PendingIntercept:
    """An intercepted HTLC that LDK still holds, as the engine recorded it when LDK reported it; `state` is pending, or forwarded / failed if that was requested before (LDK holding it again means the request was lost, e.g. to a crash before LDK persisted it)."""

    __match_args__ = (
        "intercept_id",
        "requested_next_hop_scid",
        "payment_hash",
        "prev_channel_id",
        "prev_node_id",
        "inbound_amount_msat",
        "expected_outbound_amount_msat",
        "inbound_cltv_expiry",
        "state",
    )
    def __new__(
        cls,
        intercept_id: str,
        requested_next_hop_scid: int,
        payment_hash: str,
        prev_channel_id: str | None,
        prev_node_id: str | None,
        inbound_amount_msat: int,
        expected_outbound_amount_msat: int,
        inbound_cltv_expiry: int | None,
        state: str,
    ) -> Self: ...
    @property
    def intercept_id(self) -> str: ...
    @property
    def requested_next_hop_scid(self) -> int: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def prev_channel_id(self) -> str | None: ...
    @property
    def prev_node_id(self) -> str | None: ...
    @property
    def inbound_amount_msat(self) -> int: ...
    @property
    def expected_outbound_amount_msat(self) -> int: ...
    @property
    def inbound_cltv_expiry(self) -> int | None: ...
    @property
    def state(self) -> str: ...

@final
class OnionMessageStats:
    """What the onion-message front door and the event queue have done since start: messages accepted or dropped by the per-peer rate limit, forwarded, intercepted for an offline node, undeliverable; message events refused by a full queue; queue depth now."""

    __match_args__ = (
        "accepted",
        "rate_limited",
        "forwarded",
        "intercepted",
        "undeliverable",
        "queue_refused",
        "queued_messages",
        "queued_other",
    )
    def __new__(
        cls,
        accepted: int,
        rate_limited: int,
        forwarded: int,
        intercepted: int,
        undeliverable: int,
        queue_refused: int,
        queued_messages: int,
        queued_other: int,
    ) -> Self: ...
    @property
    def accepted(self) -> int: ...
    @property
    def rate_limited(self) -> int: ...
    @property
    def forwarded(self) -> int: ...
    @property
    def intercepted(self) -> int: ...
    @property
    def undeliverable(self) -> int: ...
    @property
    def queue_refused(self) -> int: ...
    @property
    def queued_messages(self) -> int: ...
    @property
    def queued_other(self) -> int: ...

@final
class InboundHtlc:
    """An HTLC offered to this node and not settled yet."""

    __match_args__ = ("channel_id", "counterparty_node_id", "payment_hash", "amount_msat", "cltv_expiry")
    def __new__(
        cls, channel_id: str, counterparty_node_id: str, payment_hash: str, amount_msat: int, cltv_expiry: int
    ) -> Self: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def counterparty_node_id(self) -> str: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def amount_msat(self) -> int: ...
    @property
    def cltv_expiry(self) -> int: ...

@final
class Payment:
    """A payment as the engine records it; `direction` is inbound or outbound, `status` pending, succeeded or failed."""

    __match_args__ = (
        "payment_id",
        "payment_hash",
        "direction",
        "status",
        "amount_msat",
        "fee_msat",
        "preimage",
        "bolt11",
        "failure",
        "created_at",
        "updated_at",
    )
    def __new__(
        cls,
        payment_id: str,
        payment_hash: str,
        direction: str,
        status: str,
        amount_msat: int | None,
        fee_msat: int | None,
        preimage: str | None,
        bolt11: str | None,
        failure: str | None,
        created_at: int,
        updated_at: int,
    ) -> Self: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def amount_msat(self) -> int | None: ...
    @property
    def fee_msat(self) -> int | None: ...
    @property
    def preimage(self) -> str | None: ...
    @property
    def bolt11(self) -> str | None: ...
    @property
    def failure(self) -> str | None: ...
    @property
    def created_at(self) -> int: ...
    @property
    def updated_at(self) -> int: ...

@final
class HeldHop:
    """One next hop of a held payment (see SPEC.md): the node right after the payer's LSP on a
    path, the intercept SCID the LSP assigned to it, and the LSP's fee and CLTV delta there."""

    __match_args__ = (
        "next_node_id",
        "short_channel_id",
        "fee_base_msat",
        "fee_proportional_millionths",
        "cltv_expiry_delta",
    )
    def __new__(
        cls,
        next_node_id: str,
        short_channel_id: int,
        fee_base_msat: int,
        fee_proportional_millionths: int,
        cltv_expiry_delta: int,
    ) -> Self: ...
    @property
    def next_node_id(self) -> str: ...
    @property
    def short_channel_id(self) -> int: ...
    @property
    def fee_base_msat(self) -> int: ...
    @property
    def fee_proportional_millionths(self) -> int: ...
    @property
    def cltv_expiry_delta(self) -> int: ...

@final
class Forward:
    """A payment this node forwarded (its forwarding history, newest first); `id` is its place in the history, `created_at` when it was booked (unix seconds)."""

    __match_args__ = (
        "id",
        "prev_channel_id",
        "next_channel_id",
        "prev_node_id",
        "next_node_id",
        "fee_earned_msat",
        "outbound_amount_msat",
        "claim_from_onchain_tx",
        "created_at",
    )
    def __new__(
        cls,
        id: int,
        prev_channel_id: str | None,
        next_channel_id: str | None,
        prev_node_id: str | None,
        next_node_id: str | None,
        fee_earned_msat: int | None,
        outbound_amount_msat: int | None,
        claim_from_onchain_tx: bool,
        created_at: int,
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def prev_channel_id(self) -> str | None: ...
    @property
    def next_channel_id(self) -> str | None: ...
    @property
    def prev_node_id(self) -> str | None: ...
    @property
    def next_node_id(self) -> str | None: ...
    @property
    def fee_earned_msat(self) -> int | None: ...
    @property
    def outbound_amount_msat(self) -> int | None: ...
    @property
    def claim_from_onchain_tx(self) -> bool: ...
    @property
    def created_at(self) -> int: ...

@final
class HeldAsyncHtlc:
    """An HTLC held for a BOLT async payment until its recipient releases it: its intercept id
    (what fail_intercepted_htlc takes), the payer's channel and node, and the height at
    which LDK would fail it back itself."""

    __match_args__ = (
        "intercept_id",
        "channel_id",
        "counterparty_node_id",
        "htlc_id",
        "payment_hash",
        "amount_msat",
        "cltv_expiry",
        "ldk_fail_back_height",
    )
    def __new__(
        cls,
        intercept_id: str,
        channel_id: str,
        counterparty_node_id: str,
        htlc_id: int,
        payment_hash: str,
        amount_msat: int,
        cltv_expiry: int,
        ldk_fail_back_height: int,
    ) -> Self: ...
    @property
    def intercept_id(self) -> str: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def counterparty_node_id(self) -> str: ...
    @property
    def htlc_id(self) -> int: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def amount_msat(self) -> int: ...
    @property
    def cltv_expiry(self) -> int: ...
    @property
    def ldk_fail_back_height(self) -> int: ...

@final
class StaticInvoice:
    """A static invoice kept for an offline async-payment recipient: whose (`recipient`, its
    node id), which of its slots, the invoice's size and when it was last replaced."""

    __match_args__ = ("recipient", "slot", "invoice_bytes", "updated_at")
    def __new__(cls, recipient: str, slot: int, invoice_bytes: int, updated_at: int) -> Self: ...
    @property
    def recipient(self) -> str: ...
    @property
    def slot(self) -> int: ...
    @property
    def invoice_bytes(self) -> int: ...
    @property
    def updated_at(self) -> int: ...

@final
class ForwardTotals:
    """Totals over the forwarding history: forwards, fees earned and amounts sent on (msat)."""

    __match_args__ = ("count", "fees_msat", "amount_msat")
    def __new__(cls, count: int, fees_msat: int, amount_msat: int) -> Self: ...
    @property
    def count(self) -> int: ...
    @property
    def fees_msat(self) -> int: ...
    @property
    def amount_msat(self) -> int: ...

@final
class ChannelPending:
    kind: ClassVar[Literal["channel_pending"]]
    __match_args__ = ("id", "channel_id", "user_channel_id", "counterparty_node_id", "funding_txo")
    def __new__(
        cls, id: int, channel_id: str, user_channel_id: str, counterparty_node_id: str, funding_txo: str
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def user_channel_id(self) -> str: ...
    @property
    def counterparty_node_id(self) -> str: ...
    @property
    def funding_txo(self) -> str: ...

@final
class ChannelReady:
    kind: ClassVar[Literal["channel_ready"]]
    __match_args__ = ("id", "channel_id", "user_channel_id", "counterparty_node_id")
    def __new__(cls, id: int, channel_id: str, user_channel_id: str, counterparty_node_id: str) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def user_channel_id(self) -> str: ...
    @property
    def counterparty_node_id(self) -> str: ...

@final
class ChannelClosed:
    kind: ClassVar[Literal["channel_closed"]]
    __match_args__ = ("id", "channel_id", "user_channel_id", "counterparty_node_id", "reason")
    def __new__(
        cls, id: int, channel_id: str, user_channel_id: str, counterparty_node_id: str | None, reason: str
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def user_channel_id(self) -> str: ...
    @property
    def counterparty_node_id(self) -> str | None: ...
    @property
    def reason(self) -> str: ...

@final
class PaymentClaimable:
    """An inbound payment the node could not claim by itself (no preimage known)."""

    kind: ClassVar[Literal["payment_claimable"]]
    __match_args__ = ("id", "payment_hash", "amount_msat", "claim_deadline")
    def __new__(cls, id: int, payment_hash: str, amount_msat: int, claim_deadline: int | None) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def amount_msat(self) -> int: ...
    @property
    def claim_deadline(self) -> int | None: ...

@final
class PaymentReceived:
    kind: ClassVar[Literal["payment_received"]]
    __match_args__ = ("id", "payment_id", "payment_hash", "amount_msat")
    def __new__(cls, id: int, payment_id: str, payment_hash: str, amount_msat: int) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def amount_msat(self) -> int: ...

@final
class PaymentSent:
    kind: ClassVar[Literal["payment_sent"]]
    __match_args__ = ("id", "payment_id", "payment_hash", "preimage", "amount_msat", "fee_paid_msat")
    def __new__(
        cls,
        id: int,
        payment_id: str,
        payment_hash: str,
        preimage: str,
        amount_msat: int | None,
        fee_paid_msat: int | None,
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def preimage(self) -> str: ...
    @property
    def amount_msat(self) -> int | None: ...
    @property
    def fee_paid_msat(self) -> int | None: ...

@final
class PaymentFailed:
    kind: ClassVar[Literal["payment_failed"]]
    __match_args__ = ("id", "payment_id", "payment_hash", "reason")
    def __new__(cls, id: int, payment_id: str, payment_hash: str | None, reason: str) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def payment_hash(self) -> str | None: ...
    @property
    def reason(self) -> str: ...

@final
class PaymentForwarded:
    kind: ClassVar[Literal["payment_forwarded"]]
    __match_args__ = (
        "id",
        "prev_channel_id",
        "next_channel_id",
        "prev_node_id",
        "next_node_id",
        "fee_earned_msat",
        "outbound_amount_msat",
        "claim_from_onchain_tx",
    )
    def __new__(
        cls,
        id: int,
        prev_channel_id: str | None,
        next_channel_id: str | None,
        prev_node_id: str | None,
        next_node_id: str | None,
        fee_earned_msat: int | None,
        outbound_amount_msat: int | None,
        claim_from_onchain_tx: bool,
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def prev_channel_id(self) -> str | None: ...
    @property
    def next_channel_id(self) -> str | None: ...
    @property
    def prev_node_id(self) -> str | None: ...
    @property
    def next_node_id(self) -> str | None: ...
    @property
    def fee_earned_msat(self) -> int | None: ...
    @property
    def outbound_amount_msat(self) -> int | None: ...
    @property
    def claim_from_onchain_tx(self) -> bool: ...

@final
class HtlcHandlingFailed:
    """An HTLC failed back over `prev_channel_id`. `next_node_id`/`next_channel_id`: a forward that failed downstream; `requested_next_hop_scid`: an intercept (or unknown) SCID LDK refused or expired; `payment_hash` when known; `intercept_id`: the intercepted HTLC this failure belongs to, when the engine can tell unambiguously (else None)."""

    kind: ClassVar[Literal["htlc_handling_failed"]]
    __match_args__ = (
        "id",
        "prev_channel_id",
        "failure_type",
        "reason",
        "next_node_id",
        "next_channel_id",
        "requested_next_hop_scid",
        "payment_hash",
        "intercept_id",
    )
    def __new__(
        cls,
        id: int,
        prev_channel_id: str,
        failure_type: str,
        reason: str | None,
        next_node_id: str | None = None,
        next_channel_id: str | None = None,
        requested_next_hop_scid: int | None = None,
        payment_hash: str | None = None,
        intercept_id: str | None = None,
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def prev_channel_id(self) -> str: ...
    @property
    def failure_type(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def next_node_id(self) -> str | None: ...
    @property
    def next_channel_id(self) -> str | None: ...
    @property
    def requested_next_hop_scid(self) -> int | None: ...
    @property
    def payment_hash(self) -> str | None: ...
    @property
    def intercept_id(self) -> str | None: ...

@final
class HtlcIntercepted:
    """An HTLC addressed to one of our intercept SCIDs, waiting for forward or fail. `prev_node_id` sent it and `inbound_cltv_expiry` is its expiry height; both are None if the engine no longer saw the inbound HTLC when it queued the event."""

    kind: ClassVar[Literal["htlc_intercepted"]]
    __match_args__ = (
        "id",
        "intercept_id",
        "requested_next_hop_scid",
        "payment_hash",
        "inbound_amount_msat",
        "expected_outbound_amount_msat",
        "prev_node_id",
        "inbound_cltv_expiry",
    )
    def __new__(
        cls,
        id: int,
        intercept_id: str,
        requested_next_hop_scid: int,
        payment_hash: str,
        inbound_amount_msat: int,
        expected_outbound_amount_msat: int,
        prev_node_id: str | None,
        inbound_cltv_expiry: int | None,
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def intercept_id(self) -> str: ...
    @property
    def requested_next_hop_scid(self) -> int: ...
    @property
    def payment_hash(self) -> str: ...
    @property
    def inbound_amount_msat(self) -> int: ...
    @property
    def expected_outbound_amount_msat(self) -> int: ...
    @property
    def prev_node_id(self) -> str | None: ...
    @property
    def inbound_cltv_expiry(self) -> int | None: ...

@final
class OnionMessageIntercepted:
    """An onion message for a peer that is not connected; `message` (hex) can be handed to `forward_onion_message` once the peer is back. `prev_node_id` is the peer it arrived from (None for messages LDK generated itself)."""

    kind: ClassVar[Literal["onion_message_intercepted"]]
    __match_args__ = ("id", "peer_node_id", "message", "prev_node_id")
    def __new__(cls, id: int, peer_node_id: str, message: str, prev_node_id: str | None = None) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def peer_node_id(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def prev_node_id(self) -> str | None: ...

@final
class OnionMessagePeerConnected:
    kind: ClassVar[Literal["onion_message_peer_connected"]]
    __match_args__ = ("id", "peer_node_id")
    def __new__(cls, id: int, peer_node_id: str) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def peer_node_id(self) -> str: ...

@final
class OnionMessageReceived:
    """An application onion message for us; `payload` and `context` are hex. `context` is set only when it came over a blinded path we built (so it is authenticated as ours); `responder` is the sender's reply path for `reply_onion_message`."""

    kind: ClassVar[Literal["onion_message_received"]]
    __match_args__ = ("id", "tlv_type", "payload", "context", "responder")
    def __new__(cls, id: int, tlv_type: int, payload: str, context: str | None, responder: str | None) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def tlv_type(self) -> int: ...
    @property
    def payload(self) -> str: ...
    @property
    def context(self) -> str | None: ...
    @property
    def responder(self) -> str | None: ...

@final
class Lsps5Notification:
    """LSPS5: a signed notification to POST to one webhook of a client (`url` is a secret)."""

    kind: ClassVar[Literal["lsps5_notification"]]
    __match_args__ = ("id", "client_node_id", "app_name", "url", "method", "headers", "body")
    def __new__(
        cls,
        id: int,
        client_node_id: str,
        app_name: str,
        url: str,
        method: str,
        headers: list[tuple[str, str]],
        body: str,
    ) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def client_node_id(self) -> str: ...
    @property
    def app_name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def body(self) -> str: ...

@final
class ClientWanted:
    """A client is needed online for `push_kind` (`payment_incoming`: an LSPS2 payment waits for it): an apprise push to its device if it has one, else its LSPS5 webhooks."""

    kind: ClassVar[Literal["client_wanted"]]
    __match_args__ = ("id", "client_node_id", "push_kind")
    def __new__(cls, id: int, client_node_id: str, push_kind: str) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def client_node_id(self) -> str: ...
    @property
    def push_kind(self) -> str: ...

@final
class Lsps5WebhookReply:
    """LSPS5 client side: an LSP's answer to our `lsps5_set_webhook`."""

    kind: ClassVar[Literal["lsps5_webhook_reply"]]
    __match_args__ = ("id", "lsp_node_id", "app_name", "ok", "detail")
    def __new__(cls, id: int, lsp_node_id: str, app_name: str, ok: bool, detail: str) -> Self: ...
    @property
    def id(self) -> int: ...
    @property
    def lsp_node_id(self) -> str: ...
    @property
    def app_name(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...

_Event = (
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

@final
class Node:
    @staticmethod
    def start(data_dir: str, network: str, esplora_url: str, options: NodeOptions | None = None) -> Awaitable[Node]: ...
    def stop(self) -> Awaitable[None]: ...
    @property
    def is_running(self) -> bool: ...
    @property
    def node_id(self) -> str: ...
    @property
    def listen_addr(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def best_block_height(self) -> int: ...
    @property
    def last_sync_at(self) -> float | None: ...
    def sync(self) -> Awaitable[None]: ...
    def new_address(self) -> Awaitable[str]: ...
    def wallet_balance(self) -> Balance: ...
    def claimable_onchain_sat(self) -> int: ...
    def fee_estimates(self, targets: list[int]) -> list[tuple[int, float]]: ...
    def send_onchain(self, address: str, amount_sat: int | None = None, force: bool = False) -> Awaitable[str]: ...
    def connect(self, node_id: str, address: str) -> Awaitable[None]: ...
    def disconnect(self, node_id: str) -> None: ...
    def list_peers(self) -> list[Peer]: ...
    def node_addresses(self, node_id: str) -> list[str]: ...
    def open_channel(
        self, node_id: str, amount_sat: int, push_msat: int = 0, announce: bool = False, force: bool = False
    ) -> Awaitable[str]: ...
    def list_channels(self) -> list[Channel]: ...
    def close_channel(self, channel_id: str) -> Awaitable[None]: ...
    def force_close_channel(self, channel_id: str, reason: str = ...) -> Awaitable[None]: ...
    def create_invoice(self, amount_msat: int | None, description: str, expiry_secs: int = 3600) -> Awaitable[str]: ...
    def decode_invoice(self, invoice: str) -> InvoiceInfo: ...
    def pay_invoice(
        self, invoice: str, amount_msat: int | None = None, max_fee_msat: int | None = None
    ) -> Awaitable[str]: ...
    def keysend(self, node_id: str, amount_msat: int) -> Awaitable[str]: ...
    def list_payments(self) -> Awaitable[list[Payment]]: ...
    def payments_page(
        self,
        direction: str | None = None,
        status: str | None = None,
        invoices_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> Awaitable[list[Payment]]: ...
    def payment_counts(self) -> Awaitable[list[tuple[str, str, int]]]: ...
    def list_forwards(self, limit: int = 50, offset: int = 0) -> Awaitable[list[Forward]]: ...
    def forward_totals(self) -> Awaitable[ForwardTotals]: ...
    def async_recipient_paths(self, node_id: str, valid_days: int = 365) -> str: ...
    def static_invoices(self) -> Awaitable[list[StaticInvoice]]: ...
    def held_async_htlcs(self) -> list[HeldAsyncHtlc]: ...
    def lsps1_orders(self, limit: int = 50, offset: int = 0) -> Awaitable[list[Lsps1Order]]: ...
    @property
    def lsps1_enabled(self) -> bool: ...
    def lsps2_channels(self, limit: int = 50, offset: int = 0) -> Awaitable[list[JitChannel]]: ...
    @property
    def lsps2_enabled(self) -> bool: ...
    @property
    def lsps5_enabled(self) -> bool: ...
    def lsps5_notify(self, client: str, method: str, timeout: int | None = None) -> Awaitable[str]: ...
    def lsps5_set_webhook(self, lsp_node_id: str, app_name: str, url: str) -> str: ...
    def payment(self, payment_id: str) -> Awaitable[Payment | None]: ...
    def get_intercept_scid(self) -> int: ...
    def forward_intercepted_htlc(self, intercept_id: str, next_node_id: str, amount_msat: int) -> Awaitable[None]: ...
    def fail_intercepted_htlc(self, intercept_id: str) -> Awaitable[None]: ...
    def held_route_next_hops(self, invoice: str, lsp_node_id: str) -> Awaitable[list[str]]: ...
    def pay_invoice_held(
        self,
        invoice: str,
        lsp_node_id: str,
        hops: list[HeldHop],
        extra_final_cltv: int,
        max_fee_msat: int | None = None,
    ) -> Awaitable[str]: ...
    def pending_inbound_htlcs(self) -> list[InboundHtlc]: ...
    def intercept_pending_amount(self, intercept_id: str) -> int | None: ...
    def pending_intercepts(self) -> Awaitable[list[PendingIntercept]]: ...
    def onion_message_stats(self) -> Awaitable[OnionMessageStats]: ...
    def set_message_relay(self, node_id: str | None = None) -> None: ...
    def send_onion_message(
        self,
        tlv_type: int,
        payload: bytes,
        to_node: str | None = None,
        to_path: str | None = None,
        reply_context: bytes | None = None,
    ) -> Awaitable[None]: ...
    def reply_onion_message(self, responder: str, tlv_type: int, payload: bytes) -> Awaitable[None]: ...
    def create_blinded_path(self, context: bytes, intermediate_nodes: list[str] = ...) -> str: ...
    def forward_onion_message(self, message: str, peer_node_id: str) -> Awaitable[None]: ...
    def sign_message(self, message: bytes) -> str: ...
    def next_event(self) -> Awaitable[_Event]: ...
    def poll_event(self) -> _Event | None: ...
    def event_handled(self, event_id: int) -> Awaitable[None]: ...
    def drain_logs(self, max: int = 1000) -> list[tuple[str, str, str]]: ...

@final
class RegtestChain:
    @staticmethod
    def open(db_path: str) -> RegtestChain: ...
    def start_server(self, host: str = ..., port: int = 0) -> Awaitable[str]: ...
    def stop_server(self) -> Awaitable[None]: ...
    @property
    def height(self) -> int: ...
    @property
    def tip_hash(self) -> str: ...
    def mine_blocks(self, n: int, address: str | None = None) -> list[str]: ...
    def fund_address(self, address: str, amount_sat: int) -> str: ...
    def submit_transaction_hex(self, hex: str) -> str: ...
    def mempool_txids(self) -> list[str]: ...
    @property
    def server_url(self) -> str | None: ...
