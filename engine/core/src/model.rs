//! The plain data the engine reports: channels, peers, decoded invoices, pending HTLCs. Ids and
//! hashes are lowercase hex strings, node ids compressed public keys in hex.

use lightning::ln::channel_state::{ChannelDetails, ChannelShutdownState};

use crate::parse::hexs;

#[derive(Clone, Debug, PartialEq)]
pub struct ChannelInfo {
    pub channel_id: String,
    pub user_channel_id: String,
    pub counterparty_node_id: String,
    pub short_channel_id: Option<u64>,
    pub funding_txo: Option<String>,
    pub capacity_sat: u64,
    pub outbound_capacity_msat: u64,
    pub inbound_capacity_msat: u64,
    pub next_outbound_htlc_limit_msat: u64,
    pub confirmations: Option<u32>,
    pub is_outbound: bool,
    pub is_ready: bool,
    pub is_usable: bool,
    pub is_announced: bool,
    /// HTLCs in flight either way; zero once every payment over the channel has settled.
    pub pending_htlcs: usize,
    /// pending, ready, usable or closing.
    pub state: String,
}

impl From<&ChannelDetails> for ChannelInfo {
    fn from(c: &ChannelDetails) -> Self {
        let closing = c.channel_shutdown_state.is_some_and(|s| s != ChannelShutdownState::NotShuttingDown);
        let state = if closing {
            "closing"
        } else if c.is_usable {
            "usable"
        } else if c.is_channel_ready {
            "ready"
        } else {
            "pending"
        };
        ChannelInfo {
            channel_id: hexs(&c.channel_id.0),
            user_channel_id: c.user_channel_id.to_string(),
            counterparty_node_id: c.counterparty.node_id.to_string(),
            short_channel_id: c.short_channel_id,
            funding_txo: c.funding_txo.map(|o| format!("{}:{}", o.txid, o.index)),
            capacity_sat: c.channel_value_satoshis,
            outbound_capacity_msat: c.outbound_capacity_msat,
            inbound_capacity_msat: c.inbound_capacity_msat,
            next_outbound_htlc_limit_msat: c.next_outbound_htlc_limit_msat,
            confirmations: c.confirmations,
            is_outbound: c.is_outbound,
            is_ready: c.is_channel_ready,
            is_usable: c.is_usable,
            is_announced: c.is_announced,
            pending_htlcs: c.pending_inbound_htlcs.len() + c.pending_outbound_htlcs.len(),
            state: state.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    pub node_id: String,
    pub address: Option<String>,
    pub inbound: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InvoiceInfo {
    pub payment_hash: String,
    pub amount_msat: Option<u64>,
    pub description: Option<String>,
    pub payee_node_id: String,
    pub network: String,
    pub timestamp: u64,
    pub expiry_secs: u64,
    pub is_expired: bool,
    pub min_final_cltv_expiry_delta: u64,
    pub route_hints: usize,
    /// The node that sends over the first hop of each route hint (the payee's LSP, usually).
    pub route_hint_sources: Vec<String>,
}

/// An HTLC offered to us that is not settled yet.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundHtlc {
    pub channel_id: String,
    pub counterparty_node_id: String,
    pub payment_hash: String,
    pub amount_msat: u64,
    pub cltv_expiry: u32,
}

/// One next hop of a held payment (LightningRod): the node right after the payer's LSP on a
/// path, the intercept SCID the LSP assigned to it, and the LSP's fee and CLTV delta there.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldHop {
    pub next_node_id: String,
    pub short_channel_id: u64,
    pub fee_base_msat: u32,
    pub fee_proportional_millionths: u32,
    pub cltv_expiry_delta: u16,
}

/// What the onion-message front door and the event queue have done since start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OnionMessageStats {
    /// Messages that passed the per-peer rate limit.
    pub accepted: u64,
    /// Messages dropped unread by the per-peer rate limit.
    pub rate_limited: u64,
    /// Messages forwarded to a connected next hop.
    pub forwarded: u64,
    /// Messages for an offline next hop handed to the application.
    pub intercepted: u64,
    /// Messages that could not be decrypted or had nowhere to go.
    pub undeliverable: u64,
    /// Message events dropped because the message lane (or one node's share) was full.
    pub queue_refused: u64,
    /// Events waiting now: onion-message traffic, and everything else.
    pub queued_messages: u64,
    pub queued_other: u64,
}
