//! The driver's wire format: one JSON command per line in, one JSON answer per line out.
//!
//! A command is an object whose `cmd` names it; its other fields are that command's arguments
//! (unknown fields are refused, so a typo in a test fails loudly instead of being ignored).
//! The answer is `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`.

use serde::Deserialize;

/// An LSP the node buys liquidity from (LSPS1 or LSPS2 client side).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LspSource {
    pub node_id: String,
    pub address: String,
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsyncRole {
    Client,
    Server,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub data_dir: String,
    /// Only "regtest": the driver is for the project's local chain.
    pub network: String,
    pub esplora_url: String,
    /// A concrete host:port (ldk-node reports the configured address, not the bound one).
    pub listen_addr: String,
    /// The node alias; with the listening address it lets ldk-node announce channels.
    #[serde(default = "default_alias")]
    pub alias: String,
    #[serde(default)]
    pub lsps1: Option<LspSource>,
    #[serde(default)]
    pub lsps2: Option<LspSource>,
    #[serde(default)]
    pub async_payments_role: Option<AsyncRole>,
    /// ldk-node's default is on (anchor channels, with an on-chain reserve per channel).
    #[serde(default = "yes")]
    pub anchor_channels: bool,
    /// Background wallet and fee sync interval (ldk-node's floor is 10 s); `sync` forces one.
    #[serde(default = "default_sync_secs")]
    pub sync_interval_secs: u64,
}

fn default_alias() -> String {
    "ldk-node-peer".to_string()
}

fn yes() -> bool {
    true
}

fn default_sync_secs() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    pub node_id: String,
    pub address: String,
    /// Remember the peer and reconnect to it after a restart.
    #[serde(default)]
    pub persist: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenChannel {
    pub node_id: String,
    pub address: String,
    pub amount_sat: u64,
    #[serde(default)]
    pub push_msat: Option<u64>,
    #[serde(default)]
    pub announce: bool,
    /// Our forwarding fee on this channel (ldk-node's default: 1000 msat base, 0 ppm).
    #[serde(default)]
    pub fee_base_msat: Option<u32>,
    #[serde(default)]
    pub fee_ppm: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveInvoice {
    pub amount_msat: u64,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_expiry")]
    pub expiry_secs: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveViaJitChannel {
    pub amount_msat: u64,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_expiry")]
    pub expiry_secs: u32,
    /// The most the LSP may take for opening the channel; None: its cheapest offer.
    #[serde(default)]
    pub max_lsp_fee_msat: Option<u64>,
}

fn default_expiry() -> u32 {
    3600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lsps1RequestChannel {
    pub lsp_balance_sat: u64,
    #[serde(default)]
    pub client_balance_sat: u64,
    pub channel_expiry_blocks: u32,
    #[serde(default)]
    pub announce: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lsps1CheckOrder {
    pub order_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayInvoice {
    pub bolt11: String,
    /// Only for an invoice without an amount.
    #[serde(default)]
    pub amount_msat: Option<u64>,
}

/// BOLT async payments, recipient: the blinded paths its server handed out (hex of LDK's encoding).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncSetPaths {
    pub paths_hex: String,
}

/// BOLT async payments, server (ldk-node's own): paths for the recipient with this id (hex).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncServerPaths {
    pub recipient_id_hex: String,
}

/// What this node's network graph knows of `node_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphNode {
    pub node_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayOffer {
    pub offer: String,
    pub amount_msat: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub payment_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendOnchain {
    pub address: String,
    pub amount_sat: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitEvent {
    /// Event kinds (e.g. "payment_received"); empty: any event.
    #[serde(default)]
    pub kinds: Vec<String>,
    pub timeout_secs: f64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Start(Start),
    NodeId,
    NewAddress,
    Balances,
    Sync,
    Connect(Connect),
    OpenChannel(OpenChannel),
    Channels,
    ReceiveInvoice(ReceiveInvoice),
    ReceiveViaJitChannel(ReceiveViaJitChannel),
    Lsps1RequestChannel(Lsps1RequestChannel),
    Lsps1CheckOrder(Lsps1CheckOrder),
    PayInvoice(PayInvoice),
    AsyncSetPaths(AsyncSetPaths),
    AsyncReceiveOffer,
    AsyncServerPaths(AsyncServerPaths),
    PayOffer(PayOffer),
    GraphNode(GraphNode),
    Payment(Payment),
    SendOnchain(SendOnchain),
    WaitEvent(WaitEvent),
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_refuses_unknown_fields() {
        let c: Command =
            serde_json::from_str(r#"{"cmd":"wait_event","kinds":["payment_received"],"timeout_secs":5}"#).unwrap();
        assert!(matches!(c, Command::WaitEvent(WaitEvent { ref kinds, .. }) if kinds.len() == 1));
        assert!(matches!(serde_json::from_str(r#"{"cmd":"sync"}"#).unwrap(), Command::Sync));
        assert!(serde_json::from_str::<Command>(r#"{"cmd":"pay_invoice","bolt":"x"}"#).is_err());
        assert!(serde_json::from_str::<Command>(r#"{"cmd":"launch"}"#).is_err());
    }
}
