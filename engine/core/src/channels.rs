//! Opening, listing and closing channels.

use lightning::ln::channel_state::ChannelDetails;
use lightning::sign::EntropySource;

use crate::config::user_config;
use crate::error::{Error, Result};
use crate::model::ChannelInfo;
use crate::node::Node;
use crate::parse::{parse_channel_id, parse_pubkey};

impl Node {
    /// Open a channel to a connected peer; returns the user channel id that the
    /// channel_pending / channel_ready events carry.
    pub fn open_channel(&self, node_id: &str, amount_sat: u64, push_msat: u64, announce: bool) -> Result<String> {
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
