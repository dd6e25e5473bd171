//! The HTLCs LDK holds for BOLT async payments (`hold_htlc`), made visible and failable.
//!
//! LDK 0.2.7 keeps such an HTLC in the channel manager's intercepted map without an event, under
//! an intercept id derived from the inbound channel, its counterparty and the HTLC's id, and
//! fails it back only `HTLC_FAIL_BACK_BUFFER` blocks before its outgoing CLTV. To list the ones
//! held we derive that id for every pending inbound HTLC and ask LDK whether it holds it
//! (`intercepted_htlc_inbound_amount_msat`, a read); failing one is `fail_intercepted_htlc` on the
//! same id. LightningRod's and LSPS2's intercepts are keyed by a hash of the onion's shared
//! secret instead, so the two never collide, and an HTLC LDK does not hold is never touched.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::PublicKey;
use lightning::chain::channelmonitor::HTLC_FAIL_BACK_BUFFER;
use lightning::ln::channelmanager::InterceptId;
use lightning::ln::types::ChannelId;

use crate::node::Node;
use crate::parse::hexs;

/// One HTLC held for an async payment until its recipient's `release_held_htlc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldAsyncHtlc {
    /// What `fail_intercepted_htlc` takes (hex).
    pub intercept_id: String,
    pub channel_id: String,
    /// The payer's side: who sent it to us.
    pub counterparty_node_id: String,
    pub htlc_id: u64,
    pub payment_hash: String,
    pub amount_msat: u64,
    pub cltv_expiry: u32,
    /// The height at which LDK fails it back itself, if the payer routed with our advertised
    /// CLTV delta (a payer granting more delta makes LDK act earlier, never later).
    pub ldk_fail_back_height: u32,
}

/// The id LDK 0.2.7 files a held HTLC under: SHA-256 of the HTLC id (big-endian), the inbound
/// channel id and the counterparty's node id.
pub(crate) fn held_intercept_id(htlc_id: u64, channel_id: &ChannelId, counterparty: &PublicKey) -> InterceptId {
    let mut engine = sha256::Hash::engine();
    engine.input(&htlc_id.to_be_bytes());
    engine.input(&channel_id.0);
    engine.input(&counterparty.serialize());
    InterceptId(sha256::Hash::from_engine(engine).to_byte_array())
}

impl Node {
    /// The HTLCs LDK holds now for async payments, per inbound channel in HTLC order.
    pub fn held_async_htlcs(&self) -> Vec<HeldAsyncHtlc> {
        // Without `enable_htlc_hold` LDK holds nothing: spare the role's 1 s tick the channel walk.
        if !self.core.config.options.async_payments_server {
            return Vec::new();
        }
        let cm = &self.core.channel_manager;
        let delta = u32::from(cm.get_current_config().channel_config.cltv_expiry_delta);
        let mut held = Vec::new();
        for channel in cm.list_channels() {
            let peer = channel.counterparty.node_id;
            for htlc in &channel.pending_inbound_htlcs {
                let id = held_intercept_id(htlc.htlc_id, &channel.channel_id, &peer);
                let Some(amount_msat) = cm.intercepted_htlc_inbound_amount_msat(id) else { continue };
                held.push(HeldAsyncHtlc {
                    intercept_id: hexs(&id.0),
                    channel_id: hexs(&channel.channel_id.0),
                    counterparty_node_id: peer.to_string(),
                    htlc_id: htlc.htlc_id,
                    payment_hash: hexs(&htlc.payment_hash.0),
                    amount_msat,
                    cltv_expiry: htlc.cltv_expiry,
                    ldk_fail_back_height: htlc.cltv_expiry.saturating_sub(delta + HTLC_FAIL_BACK_BUFFER),
                });
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    #[test]
    fn the_id_covers_the_htlc_the_channel_and_the_peer() {
        let secp = Secp256k1::new();
        let a = PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[1; 32]).expect("valid key"));
        let b = PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[2; 32]).expect("valid key"));
        let chan = ChannelId([7; 32]);
        let id = held_intercept_id(5, &chan, &a);
        assert_eq!(id, held_intercept_id(5, &chan, &a));
        assert_ne!(id, held_intercept_id(6, &chan, &a));
        assert_ne!(id, held_intercept_id(5, &ChannelId([8; 32]), &a));
        assert_ne!(id, held_intercept_id(5, &chan, &b));
        // The preimage LDK hashes: 8 bytes of id, 32 of channel, 33 of key, nothing else.
        let mut pre = 5u64.to_be_bytes().to_vec();
        pre.extend_from_slice(&[7; 32]);
        pre.extend_from_slice(&a.serialize());
        assert_eq!(id.0, sha256::Hash::hash(&pre).to_byte_array());
    }
}
