//! Opening, listing and closing channels.

use bitcoin::secp256k1::PublicKey;
use lightning::events::InboundChannelFunds;
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::types::ChannelId;
use lightning::sign::EntropySource;
use lightning::types::features::ChannelTypeFeatures;
use lightning::util::logger::Level;

use crate::config::user_config;
use crate::error::{Error, Result};
use crate::model::ChannelInfo;
use crate::node::{Core, Node};
use crate::parse::{parse_channel_id, parse_pubkey};

impl Node {
    /// Open a channel to a connected peer; returns the user channel id that the
    /// channel_pending / channel_ready events carry. Refused when it would take coins owed to
    /// paid LSPS1 orders not yet opened, unless `force`.
    pub fn open_channel(
        &self, node_id: &str, amount_sat: u64, push_msat: u64, announce: bool, force: bool,
    ) -> Result<String> {
        self.check_running()?;
        let pk = parse_pubkey(node_id)?;
        if self.core.peer_manager.peer_by_node_id(&pk).is_none() {
            return Err(Error::Peer(format!("not connected to {pk}: connect to the peer before opening a channel")));
        }
        if push_msat > amount_sat.saturating_mul(1000) {
            return Err(Error::InvalidArgument(format!(
                "push amount {push_msat} msat exceeds the channel amount {amount_sat} sat"
            )));
        }
        let spendable = self.core.wallet.balance().spendable_sat;
        if spendable < amount_sat {
            return Err(Error::InsufficientFunds(format!(
                "a {amount_sat} sat channel needs more than the {spendable} sat the wallet can spend"
            )));
        }
        self.core.lsps1_guard_spend(Some(amount_sat), force)?;
        let mut cfg = user_config(&self.core.config.options);
        cfg.channel_handshake_config.announce_for_forwarding = announce;
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.core.keys.get_secure_random_bytes()[..16]);
        let user_channel_id = u128::from_be_bytes(id);
        self.core
            .channel_manager
            .create_channel(pk, amount_sat, push_msat, user_channel_id, None, Some(cfg))
            .map_err(|e| Error::Channel(format!("cannot open the channel: {e:?}")))?;
        Ok(user_channel_id.to_string())
    }

    pub fn list_channels(&self) -> Vec<ChannelInfo> {
        self.core.channel_manager.list_channels().iter().map(ChannelInfo::from).collect()
    }

    pub(crate) fn find_channel(&self, channel_id: &str) -> Result<ChannelDetails> {
        let id = parse_channel_id(channel_id)?;
        self.core
            .channel_manager
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == id)
            .ok_or_else(|| Error::Channel(format!("no open channel with id {channel_id}")))
    }

    pub fn close_channel(&self, channel_id: &str) -> Result<()> {
        self.check_running()?;
        let c = self.find_channel(channel_id)?;
        self.core
            .channel_manager
            .close_channel(&c.channel_id, &c.counterparty.node_id)
            .map_err(|e| Error::Channel(format!("cannot close channel {channel_id}: {e:?}")))
    }

    pub fn force_close_channel(&self, channel_id: &str, reason: &str) -> Result<()> {
        self.check_running()?;
        let c = self.find_channel(channel_id)?;
        self.core
            .channel_manager
            .force_close_broadcasting_latest_txn(&c.channel_id, &c.counterparty.node_id, reason.to_string())
            .map_err(|e| Error::Channel(format!("cannot force-close channel {channel_id}: {e:?}")))
    }
}

/// Why an inbound channel request breaks the node's policy, if it does. A channel is what
/// makes a peer a client of an LSP (holds, devices, mailbox), so it must cost real funds:
/// - at least `min_sat` of the opener's own funds;
/// - nothing pushed to us: a pushed amount is ours from the start, so the opener's stake would
///   be smaller than the channel's size says (and LDK's accounting of it is not what we want
///   to reason about for quotas);
/// - no zero-conf: an unconfirmed funding transaction costs nothing until it confirms;
/// - no dual funding (LDK cannot contribute for us here anyway).
pub(crate) fn inbound_channel_refusal(
    min_sat: u64, funding_sat: u64, funds: &InboundChannelFunds, channel_type: &ChannelTypeFeatures,
) -> Option<String> {
    if funding_sat < min_sat {
        return Some(format!("channel of {funding_sat} sat is below this node's minimum of {min_sat} sat"));
    }
    match funds {
        InboundChannelFunds::PushMsat(0) => {}
        InboundChannelFunds::PushMsat(p) => return Some(format!("pushed amounts are not accepted (push_msat {p})")),
        InboundChannelFunds::DualFunded => return Some("dual-funded channels are not accepted".into()),
    }
    if channel_type.requires_zero_conf() || channel_type.supports_zero_conf() {
        return Some("zero-conf channels are not accepted".into());
    }
    None
}

impl Core {
    /// Accept or refuse an `OpenChannelRequest` by `inbound_channel_refusal`, with a log line
    /// either way; a refusal reaches the peer as an error message with the reason.
    pub(crate) fn decide_inbound_channel(
        &self, temporary_channel_id: ChannelId, peer: PublicKey, funding_sat: u64, funds: InboundChannelFunds,
        channel_type: &ChannelTypeFeatures,
    ) {
        let min_sat = self.config.options.min_inbound_channel_sat;
        if let Some(why) = inbound_channel_refusal(min_sat, funding_sat, &funds, channel_type) {
            self.logger.engine(Level::Info, format!("refused inbound channel from {peer}: {why}"));
            let _ = self.channel_manager.force_close_broadcasting_latest_txn(&temporary_channel_id, &peer, why);
            return;
        }
        let user_channel_id =
            u128::from_be_bytes(self.keys.get_secure_random_bytes()[..16].try_into().unwrap_or([0; 16]));
        // Plain accept (never the trusted-peer 0-conf variant): LDK then waits for our
        // configured confirmations whatever the opener asked for.
        match self.channel_manager.accept_inbound_channel(&temporary_channel_id, &peer, user_channel_id, None) {
            Ok(()) => {
                self.logger.engine(Level::Info, format!("accepted inbound channel of {funding_sat} sat from {peer}"))
            }
            Err(e) => self.logger.engine(Level::Warn, format!("cannot accept inbound channel from {peer}: {e:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> ChannelTypeFeatures {
        ChannelTypeFeatures::only_static_remote_key()
    }

    #[test]
    fn inbound_policy() {
        let ok = InboundChannelFunds::PushMsat(0);
        assert_eq!(inbound_channel_refusal(100_000, 100_000, &ok, &plain()), None);
        assert!(inbound_channel_refusal(100_000, 99_999, &ok, &plain()).unwrap().contains("below"));
        let pushed = InboundChannelFunds::PushMsat(1);
        assert!(inbound_channel_refusal(100_000, 1_000_000, &pushed, &plain()).unwrap().contains("push"));
        let dual = InboundChannelFunds::DualFunded;
        assert!(inbound_channel_refusal(100_000, 1_000_000, &dual, &plain()).unwrap().contains("dual"));
        let mut zero_conf = plain();
        zero_conf.set_zero_conf_required();
        assert!(inbound_channel_refusal(100_000, 1_000_000, &ok, &zero_conf).unwrap().contains("zero-conf"));
    }
}
