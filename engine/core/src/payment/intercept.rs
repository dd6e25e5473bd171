//! HTLC interception (the LSP role): intercept SCIDs, forwarding or failing an intercepted HTLC,
//! and finding the inbound HTLC behind an interception (who sent it, when it expires).

use bitcoin::secp256k1::PublicKey;
use lightning::types::payment::PaymentHash;

use crate::error::{Error, Result};
use crate::model::InboundHtlc;
use crate::node::{Core, Node};
use crate::parse::{hexs, parse_intercept_id, parse_pubkey};

/// The inbound side of an intercepted HTLC, as the channel manager lists it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct InboundSide {
    pub(crate) prev_node_id: PublicKey,
    pub(crate) cltv_expiry: u32,
}

impl Node {
    pub fn get_intercept_scid(&self) -> u64 {
        self.core.channel_manager.get_intercept_scid()
    }

    /// Forward an intercepted HTLC to `next_node_id` over a usable channel that can carry
    /// `amount_msat` now. `Error::NoUsableChannel` means no such channel exists yet (try
    /// again later); any other error means LDK no longer holds the HTLC.
    pub fn forward_intercepted_htlc(&self, intercept_id: &str, next_node_id: &str, amount_msat: u64) -> Result<()> {
        let id = parse_intercept_id(intercept_id)?;
        let next = parse_pubkey(next_node_id)?;
        let channel = self
            .core
            .channel_manager
            .list_channels_with_counterparty(&next)
            .into_iter()
            .find(|c| c.is_usable && c.next_outbound_htlc_limit_msat >= amount_msat)
            .ok_or_else(|| {
                Error::NoUsableChannel(format!(
                    "no usable channel to {next} can carry {amount_msat} msat now; cannot forward {intercept_id}"
                ))
            })?;
        self.core
            .channel_manager
            .forward_intercepted_htlc(id, &channel.channel_id, next, amount_msat)
            .map_err(|e| Error::Channel(format!("cannot forward intercepted HTLC {intercept_id}: {e:?}")))
    }

    pub fn fail_intercepted_htlc(&self, intercept_id: &str) -> Result<()> {
        let id = parse_intercept_id(intercept_id)?;
        self.core
            .channel_manager
            .fail_intercepted_htlc(id)
            .map_err(|e| Error::Channel(format!("cannot fail intercepted HTLC {intercept_id}: {e:?}")))
    }

    /// HTLCs offered to us and not yet settled, with their expiry heights.
    pub fn pending_inbound_htlcs(&self) -> Vec<InboundHtlc> {
        let mut out = Vec::new();
        for c in self.core.channel_manager.list_channels() {
            for h in &c.pending_inbound_htlcs {
                out.push(InboundHtlc {
                    channel_id: hexs(&c.channel_id.0),
                    counterparty_node_id: c.counterparty.node_id.to_string(),
                    payment_hash: hexs(&h.payment_hash.0),
                    amount_msat: h.amount_msat,
                    cltv_expiry: h.cltv_expiry,
                });
            }
        }
        out
    }
}

impl Core {
    /// The inbound HTLC an `HTLCIntercepted` event stands for. LDK's event names neither the
    /// sender nor the expiry, and its intercept id cannot be mapped back to a channel, so the
    /// HTLC is found by payment hash, preferring those of the intercepted amount; among several
    /// candidates the earliest expiry is reported, the safe choice for when to fail back.
    pub(crate) fn inbound_side(&self, payment_hash: &PaymentHash, inbound_amount_msat: u64) -> Option<InboundSide> {
        let mut same_hash = Vec::new();
        for c in self.channel_manager.list_channels() {
            for h in c.pending_inbound_htlcs.iter().filter(|h| h.payment_hash == *payment_hash) {
                same_hash.push((h.amount_msat == inbound_amount_msat, c.counterparty.node_id, h.cltv_expiry));
            }
        }
        let exact = same_hash.iter().any(|(exact, ..)| *exact);
        same_hash
            .into_iter()
            .filter(|(e, ..)| *e == exact)
            .min_by_key(|(_, _, cltv)| *cltv)
            .map(|(_, prev_node_id, cltv_expiry)| InboundSide { prev_node_id, cltv_expiry })
    }
}
