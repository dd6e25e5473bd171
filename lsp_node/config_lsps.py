"""The LSPS services' configuration sections: `[lsps1]` (channels sold), `[lsps2]` (JIT
channels), `[lsps5]` (webhooks), and the strict base every section of the file shares."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lsp_node._ldk import Lsps1Options, Lsps2Options
from lsp_node.notify.webhook import WebhookPolicy
from lsp_node.notify.webhook_store import WebhookLimits


class Section(BaseModel):
    # A misspelled key must stop the node, not leave a limit at its default unnoticed.
    model_config = ConfigDict(extra="forbid")


_LSPS2 = Lsps2Options()


class Lsps2Settings(Section):
    """The LSPS2 service (JIT channels, bLIP-52) over LSPS0; defaults are the engine's."""

    enabled: bool = Field(default=False, description="Sell JIT channels to wallets that ask over LSPS2.")
    min_payment_size_msat: int = Field(default=_LSPS2.min_payment_size_msat, ge=1)
    max_payment_size_msat: int = Field(default=_LSPS2.max_payment_size_msat, ge=1, le=2_100_000_000_000_000_000)
    min_fee_msat: int = Field(default=_LSPS2.min_fee_msat, ge=0, description="Smallest opening fee.")
    proportional_ppm: int = Field(
        default=_LSPS2.proportional_ppm, ge=0, lt=1_000_000, description="Opening fee per million of the payment."
    )
    min_lifetime_blocks: int = Field(
        default=_LSPS2.min_lifetime_blocks, ge=0, le=1_000_000, description="Blocks the JIT channel is kept open."
    )
    max_client_to_self_delay: int = Field(default=_LSPS2.max_client_to_self_delay, ge=144, le=2016)
    valid_for_secs: int = Field(
        default=_LSPS2.valid_for_secs, ge=60, le=7 * 86400, description="How long a fee offer stays valid."
    )
    channel_over_payment_sat: int = Field(
        default=_LSPS2.channel_over_payment_sat, ge=0, description="Capacity added to the payment's size."
    )
    max_channel_sat: int = Field(default=_LSPS2.max_channel_sat, ge=1_000, le=21_000_000 * 100_000_000)
    zero_conf: bool = Field(
        default=_LSPS2.zero_conf, description="Make the channel usable before its funding confirms."
    )
    cltv_expiry_delta: int = Field(default=_LSPS2.cltv_expiry_delta, ge=48, le=2016)
    max_unpaid_per_client: int = Field(
        default=_LSPS2.max_unpaid_per_client,
        ge=1,
        le=1000,
        description="Funded JIT channels a client may leave unpaid.",
    )
    max_unpaid_total_sat: int = Field(
        default=_LSPS2.max_unpaid_total_sat,
        ge=1_000,
        le=21_000_000 * 100_000_000,
        description="Capacity of all funded JIT channels not yet paid for.",
    )

    @model_validator(mode="after")
    def _largest_payment_fits(self) -> Lsps2Settings:
        # As the engine's check: the largest payment and the margin, plus 1% and 10000 sat
        # for the channel's reserve and fees, must fit in the largest channel.
        largest = -(-self.max_payment_size_msat // 1000) + self.channel_over_payment_sat
        room = -(-largest // 100) + 10_000
        if self.enabled and largest + room > self.max_channel_sat:
            raise ValueError(
                f"max_channel_sat {self.max_channel_sat} must hold max_payment_size_msat in sat plus "
                f"channel_over_payment_sat ({largest}) and a margin of {room} sat"
            )
        return self

    def engine_options(self) -> Lsps2Options | None:
        """The engine's LSPS2 options, or None when the service is off."""
        if not self.enabled:
            return None
        return Lsps2Options(
            min_payment_size_msat=self.min_payment_size_msat,
            max_payment_size_msat=self.max_payment_size_msat,
            min_fee_msat=self.min_fee_msat,
            proportional_ppm=self.proportional_ppm,
            min_lifetime_blocks=self.min_lifetime_blocks,
            max_client_to_self_delay=self.max_client_to_self_delay,
            valid_for_secs=self.valid_for_secs,
            channel_over_payment_sat=self.channel_over_payment_sat,
            max_channel_sat=self.max_channel_sat,
            zero_conf=self.zero_conf,
            cltv_expiry_delta=self.cltv_expiry_delta,
            max_unpaid_per_client=self.max_unpaid_per_client,
            max_unpaid_total_sat=self.max_unpaid_total_sat,
        )


class Lsps5Settings(Section):
    """The LSPS5 service (webhooks, bLIP-55): wallets register HTTPS webhooks over LSPS0 and the
    LSP POSTs signed "wake up" notifications to them through the push outbox. Needs `[lsp]`."""

    enabled: bool = Field(default=False, description="Accept LSPS5 webhook registrations and notify them.")
    max_webhooks_per_client: int = Field(default=10, ge=1, le=10, description="Webhooks one client may register.")
    allow_http: bool = Field(
        default=False,
        description="Also POST to http:// URLs (lightning-liquidity registers https:// only; for tests).",
    )
    allow_private_destinations: bool = Field(
        default=False, description="Also POST to loopback, private, link-local and other non-public addresses."
    )
    request_timeout_secs: float = Field(default=10.0, gt=0, le=120, description="Bound on one webhook POST.")
    ca_file: Path | None = Field(
        default=None, description="PEM certificate authorities trusted for webhooks besides the system's."
    )
    notify_cooldown_secs: float = Field(
        default=3600.0,
        ge=0,
        le=86400,
        description="At most one notification of each method per client in this window (a reconnect does not"
        " reset it; webhook_registered and payment_incoming are exempt). 0: only lightning-liquidity's 60 s.",
    )
    wait_for_client_secs: int = Field(
        default=30,
        ge=0,
        le=60,
        description="An LSPS2 client offline at its JIT payment: wake it (apprise push payment_incoming to its"
        " device, else lsps5.payment_incoming to its webhooks) and wait this long for it to connect before"
        " failing the payment back (0: fail back at once).",
    )
    max_pending_total: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Webhook POSTs pending for all clients together (each client: 2 x max_webhooks_per_client).",
    )

    def policy(self) -> WebhookPolicy | None:
        if not self.enabled:
            return None
        limits = WebhookLimits(
            max_webhooks_per_client=self.max_webhooks_per_client,
            max_pending_per_client=2 * self.max_webhooks_per_client,
            max_pending_total=self.max_pending_total,
        )
        return WebhookPolicy(
            allow_http=self.allow_http,
            allow_private_destinations=self.allow_private_destinations,
            request_timeout_secs=self.request_timeout_secs,
            ca_file=self.ca_file,
            limits=limits,
            notify_cooldown_secs=self.notify_cooldown_secs,
        )


_LSPS1 = Lsps1Options()


class Lsps1Settings(Section):
    """The LSPS1 service (buy a channel, bLIP-51) over LSPS0; defaults are the engine's."""

    enabled: bool = Field(default=False, description="Sell channels to wallets that order one over LSPS1.")
    min_channel_sat: int = Field(
        default=_LSPS1.min_channel_sat, ge=20_000, le=16_777_215, description="Smallest channel sold (both sides)."
    )
    max_channel_sat: int = Field(
        default=_LSPS1.max_channel_sat, ge=20_000, le=16_777_215, description="Largest channel sold (both sides)."
    )
    max_client_balance_sat: int = Field(
        default=_LSPS1.max_client_balance_sat,
        ge=0,
        le=16_777_215,
        description="Largest client side bought with the order and pushed to the client (0: none).",
    )
    min_channel_expiry_blocks: int = Field(
        default=_LSPS1.min_channel_expiry_blocks, ge=1, le=1_000_000, description="Shortest lease a client may ask."
    )
    max_channel_expiry_blocks: int = Field(
        default=_LSPS1.max_channel_expiry_blocks, ge=1, le=1_000_000, description="Longest lease a client may ask."
    )
    fee_base_sat: int = Field(default=_LSPS1.fee_base_sat, ge=0, le=21_000_000 * 100_000_000)
    fee_ppm: int = Field(default=_LSPS1.fee_ppm, ge=0, lt=1_000_000, description="Fee per million of the LSP side.")
    order_valid_secs: int = Field(
        default=_LSPS1.order_valid_secs, ge=60, le=7 * 86400, description="How long an order waits for payment."
    )
    max_pending_per_client: int = Field(
        default=_LSPS1.max_pending_per_client, ge=1, le=1000, description="Unpaid orders one client may hold."
    )
    max_pending_total: int = Field(
        default=_LSPS1.max_pending_total, ge=1, le=1_000_000, description="Unpaid orders of everyone."
    )
    onchain_payment: bool = Field(
        default=_LSPS1.onchain_payment,
        description="Offer payment to a fresh address of the node's wallet beside the BOLT11 invoice.",
    )
    min_onchain_payment_confirmations: int = Field(
        default=_LSPS1.min_onchain_payment_confirmations,
        ge=1,
        le=144,
        description="Confirmations an on-chain payment needs before the order is paid (0-conf is not offered).",
    )
    min_onchain_payment_size_sat: int = Field(
        default=_LSPS1.min_onchain_payment_size_sat,
        ge=0,
        le=21_000_000 * 100_000_000,
        description="Smallest order total offered on-chain payment (below it: BOLT11 only).",
    )
    max_onchain_offers_per_day: int = Field(
        default=_LSPS1.max_onchain_offers_per_day,
        ge=0,
        le=100_000,
        description="Fresh wallet addresses handed to orders in any 24 h; past it, orders are offered BOLT11"
        " only (an unpaid order's address is never reused and is still looked up, in turn, at wallet syncs).",
    )

    @model_validator(mode="after")
    def _ranges(self) -> Lsps1Settings:
        if not self.enabled:
            return self
        if self.min_channel_sat > self.max_channel_sat:
            raise ValueError(f"min_channel_sat {self.min_channel_sat} is above max_channel_sat {self.max_channel_sat}")
        if self.max_client_balance_sat > self.max_channel_sat - self.min_channel_sat:
            raise ValueError(
                f"max_client_balance_sat {self.max_client_balance_sat} leaves no room for the LSP side "
                f"(max_channel_sat less min_channel_sat)"
            )
        if self.min_channel_expiry_blocks > self.max_channel_expiry_blocks:
            raise ValueError("min_channel_expiry_blocks is above max_channel_expiry_blocks")
        return self

    def engine_options(self) -> Lsps1Options | None:
        """The engine's LSPS1 options, or None when the service is off."""
        if not self.enabled:
            return None
        return Lsps1Options(
            min_channel_sat=self.min_channel_sat,
            max_channel_sat=self.max_channel_sat,
            max_client_balance_sat=self.max_client_balance_sat,
            min_channel_expiry_blocks=self.min_channel_expiry_blocks,
            max_channel_expiry_blocks=self.max_channel_expiry_blocks,
            fee_base_sat=self.fee_base_sat,
            fee_ppm=self.fee_ppm,
            order_valid_secs=self.order_valid_secs,
            max_pending_per_client=self.max_pending_per_client,
            max_pending_total=self.max_pending_total,
            onchain_payment=self.onchain_payment,
            min_onchain_payment_confirmations=self.min_onchain_payment_confirmations,
            min_onchain_payment_size_sat=self.min_onchain_payment_size_sat,
            max_onchain_offers_per_day=self.max_onchain_offers_per_day,
        )
