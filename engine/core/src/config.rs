//! How a node is configured: the operator's options with their one set of defaults, and the
//! LDK `UserConfig` derived from them.

use std::path::PathBuf;

use bitcoin::Network;
use lightning::util::config::UserConfig;

/// Where the node lives and which chain it follows: required, no defaults.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub network: Network,
    pub esplora_url: String,
    pub options: NodeOptions,
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>, network: Network, esplora_url: &str) -> Self {
        Self {
            data_dir: data_dir.into(),
            network,
            esplora_url: esplora_url.to_string(),
            options: NodeOptions::default(),
        }
    }
}

/// The tunable options. `Default` here is the single source of their defaults: the Python
/// glue, `LightningNode.start` and the operator settings all read them from this impl.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOptions {
    /// "host:port" to accept Lightning connections on; port 0 picks a free port.
    pub listen_addr: String,
    /// Seconds between background chain syncs (LDK and wallet).
    pub sync_interval_secs: u64,
    /// trace, debug, info, warn or error.
    pub log_level: String,
    /// Let HTLCs naming an intercept SCID reach the application (the LSP role).
    pub accept_intercept_htlcs: bool,
    /// Blocks our counterparty must wait to claim its funds after it force-closes.
    pub to_self_delay: u16,
    /// Confirmations we require before an inbound channel is usable.
    pub min_funding_confirmations: u32,
    /// Forward HTLCs as soon as they are committed instead of after LDK's random batching
    /// delay (median ~50 ms per hop). Faster, at the cost of the timing privacy the delay buys.
    pub forward_immediately: bool,
    /// Onion messages a single peer may send us per second on average (token bucket refill);
    /// 0 turns the limit off. Checked before a message is decrypted or costs a SQLite write.
    pub onion_message_rate_per_sec: u32,
    /// How many onion messages a peer may send in a burst (the bucket's size).
    pub onion_message_burst: u32,
    /// Onion-message events (received, intercepted, peer connected) waiting for the
    /// application, in total. Beyond it new messages are dropped so the queue stays bounded.
    pub max_queued_onion_messages: u32,
    /// Intercepted onion messages waiting for the application per offline node id.
    pub max_intercepted_per_peer: u32,
    /// Smallest inbound channel we accept, in satoshis; smaller requests are refused.
    pub min_inbound_channel_sat: u64,
    /// `ldk.log` is rotated when it passes this many bytes (0: never).
    pub log_max_bytes: u64,
    /// Rotated logs kept (`ldk.log.1` is the newest); older ones are deleted.
    pub log_keep_files: u32,
    /// "host:port" addresses put in our node announcement, so other nodes can dial us; empty
    /// (the default) announces nothing. LDK relays the announcement only once we have a
    /// public channel with enough confirmations.
    pub announce_addresses: Vec<String>,
    /// Serve BOLT async payments: hold HTLCs flagged `hold_htlc` until the recipient releases
    /// them, and keep and serve static invoices for offline recipients.
    pub async_payments_server: bool,
    /// The LSPS2 (JIT channel) service; None leaves it off.
    pub lsps2: Option<Lsps2Options>,
    /// The LSPS5 (webhook) service: the most webhooks one client may register (1 to 10);
    /// None leaves it off.
    pub lsps5_max_webhooks: Option<u32>,
    /// Run lightning-liquidity's LSPS5 *client* (`lsps5_set_webhook`): for a wallet built on
    /// this engine, and for the tests, since stock ldk-node has none.
    pub lsps5_client: bool,
    /// With LSPS5 on: seconds (0 to 60) an LSPS2 client offline at its JIT payment is waited
    /// for, after a `ClientWanted` event asked the application to wake it; 0 fails the payment
    /// back at once.
    pub lsps5_wait_for_client_secs: u32,
    /// The LSPS1 (buy a channel) service; None leaves it off.
    pub lsps1: Option<Lsps1Options>,
}

/// The operator's LSPS1 terms: the channels sold (sizes, lease), their price (paid by a BOLT11
/// invoice, or on chain when the operator allows it, before the channel is opened) and how
/// many orders may wait for payment.
#[derive(Clone, Debug, PartialEq)]
pub struct Lsps1Options {
    /// Smallest and largest channel sold (LSP side plus client side), satoshis.
    pub min_channel_sat: u64,
    pub max_channel_sat: u64,
    /// Largest client side (bought with the order and pushed to the client); 0: none sold.
    pub max_client_balance_sat: u64,
    /// Lease: blocks the LSP promises to keep the channel open, the range a client may ask.
    pub min_channel_expiry_blocks: u32,
    pub max_channel_expiry_blocks: u32,
    /// Fee: `fee_base_sat` plus `fee_ppm` of the LSP side.
    pub fee_base_sat: u64,
    pub fee_ppm: u32,
    /// Seconds an order (and its invoice) waits for payment.
    pub order_valid_secs: u32,
    /// Orders waiting for payment, per client and of everyone.
    pub max_pending_per_client: u32,
    pub max_pending_total: u32,
    /// Offer payment to a fresh address of the node's wallet beside the invoice.
    pub onchain_payment: bool,
    /// Confirmations an on-chain payment needs before the order counts as paid (at least 1:
    /// an unconfirmed payment can be double-spent, and 0-conf is not offered).
    pub min_onchain_payment_confirmations: u16,
    /// Smallest order total offered on-chain payment: below it the payment's own fee and the
    /// wallet's cost of spending a small coin outweigh it (BOLT11 only then).
    pub min_onchain_payment_size_sat: u64,
    /// Fresh addresses handed to orders in any 24 h (past it, orders are offered BOLT11 only).
    /// An unpaid order's address is never reused, and lapsed ones are still looked up in turn
    /// at wallet syncs: this bounds how fast strangers with many node ids can grow that work.
    pub max_onchain_offers_per_day: u32,
}

impl Default for Lsps1Options {
    fn default() -> Self {
        Self {
            min_channel_sat: 100_000,
            max_channel_sat: 16_777_215,
            max_client_balance_sat: 0,
            min_channel_expiry_blocks: 144,
            max_channel_expiry_blocks: 13_140,
            fee_base_sat: 2_000,
            fee_ppm: 10_000,
            order_valid_secs: 3_600,
            max_pending_per_client: 3,
            max_pending_total: 1_000,
            onchain_payment: false,
            min_onchain_payment_confirmations: 1,
            min_onchain_payment_size_sat: 10_000,
            max_onchain_offers_per_day: 200,
        }
    }
}

/// The operator's LSPS2 terms: one opening-fee offer (signed with the promise secret kept in
/// the data directory), the payment sizes it covers, and how the JIT channel is sized.
#[derive(Clone, Debug, PartialEq)]
pub struct Lsps2Options {
    /// Smallest and largest payment (msat) a JIT channel is opened for.
    pub min_payment_size_msat: u64,
    pub max_payment_size_msat: u64,
    /// Opening fee: at least `min_fee_msat`, else `proportional_ppm` of the payment.
    pub min_fee_msat: u64,
    pub proportional_ppm: u32,
    /// Blocks the LSP promises to keep the channel open.
    pub min_lifetime_blocks: u32,
    /// Largest `to_self_delay` the LSP imposes on the client in the JIT channel.
    pub max_client_to_self_delay: u32,
    /// Seconds a fee offer from `lsps2.get_info` stays valid.
    pub valid_for_secs: u32,
    /// Capacity added to the payment when sizing the channel, so the client can receive more.
    pub channel_over_payment_sat: u64,
    /// Largest JIT channel the LSP funds (satoshis).
    pub max_channel_sat: u64,
    /// Send `channel_ready` before the funding confirms (the client must trust us for that).
    pub zero_conf: bool,
    /// CLTV delta the LSP asks for on its hop of the client's invoice route hint.
    pub cltv_expiry_delta: u32,
    /// JIT channels one client may have funded and not yet paid for (opening or ready): a
    /// client that never claims cannot make the LSP fund channel after channel.
    pub max_unpaid_per_client: u32,
    /// Capacity (satoshis) of all JIT channels funded and not yet paid for, every client.
    pub max_unpaid_total_sat: u64,
}

impl Default for Lsps2Options {
    fn default() -> Self {
        Self {
            min_payment_size_msat: 10_000_000,
            max_payment_size_msat: 10_000_000_000,
            min_fee_msat: 2_000_000,
            proportional_ppm: 10_000,
            min_lifetime_blocks: 4_320,
            max_client_to_self_delay: 2_016,
            valid_for_secs: 3_600,
            channel_over_payment_sat: 100_000,
            max_channel_sat: 16_777_215,
            zero_conf: true,
            // ldk-node's LSP uses 72; it must cover the LSP's claim margin on the JIT hop.
            cltv_expiry_delta: 72,
            max_unpaid_per_client: 1,
            max_unpaid_total_sat: 100_000_000,
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            // Port 0: a library user or a test gets a free port; the daemon's config sets 9735.
            listen_addr: "127.0.0.1:0".into(),
            sync_interval_secs: 30,
            log_level: "info".into(),
            accept_intercept_htlcs: false,
            // BOLT 2's customary minimum; less lets a cheating peer run before we can react.
            to_self_delay: 144,
            min_funding_confirmations: 6,
            forward_immediately: false,
            // An LSP peer relays every client's messages, so the per-peer rate is generous;
            // it stops one peer from filling the queue, not normal traffic.
            onion_message_rate_per_sec: 50,
            onion_message_burst: 200,
            max_queued_onion_messages: 2_000,
            // The default client mailbox holds 50 messages; more queued for one offline node
            // would be dropped there anyway.
            max_intercepted_per_peer: 50,
            min_inbound_channel_sat: 100_000,
            log_max_bytes: 50 * 1024 * 1024,
            log_keep_files: 5,
            announce_addresses: Vec::new(),
            async_payments_server: false,
            lsps2: None,
            lsps5_max_webhooks: None,
            lsps5_client: false,
            lsps5_wait_for_client_secs: 0,
            lsps1: None,
        }
    }
}

/// LDK refuses to forward HTLCs expiring more than 2016 blocks ahead (CLTV_FAR_FAR_AWAY).
pub(crate) const MAX_TOTAL_CLTV: u32 = 2000;

pub(crate) fn user_config(opts: &NodeOptions) -> UserConfig {
    let mut c = UserConfig::default();
    c.channel_handshake_config.announce_for_forwarding = false;
    // Anchor channels need a fee-bumping wallet reserve; plain static-remote-key channels do not.
    c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = false;
    c.channel_handshake_config.our_to_self_delay = opts.to_self_delay;
    c.channel_handshake_config.minimum_depth = opts.min_funding_confirmations.max(1);
    c.channel_handshake_config.max_inbound_htlc_value_in_flight_percent_of_channel = 100;
    c.channel_handshake_limits.force_announced_channel_preference = false;
    c.channel_handshake_limits.max_minimum_depth = 144;
    // An LSP forwards to its clients' unannounced channels.
    c.accept_forwards_to_priv_channels = true;
    // JIT channels are opened on an intercepted payment, whether or not the LightningRod role runs.
    c.accept_intercept_htlcs = opts.accept_intercept_htlcs || opts.lsps2.is_some();
    // Advertises `htlc_hold`: payers' LSP-bound HTLCs wait here for `release_held_htlc`.
    c.enable_htlc_hold = opts.async_payments_server;
    // Every inbound channel passes the node's policy (size, no push, no zero-conf) first: a
    // channel is what makes a peer a client, so it must not be free to obtain.
    c.manually_accept_inbound_channels = true;
    c
}
