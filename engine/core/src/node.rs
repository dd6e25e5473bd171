//! Wiring and running one Lightning node: keys, chain, persistence, peers, channels, payments.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::{BlockHash, Network};
use lightning::blinded_path::message::{BlindedMessagePath, MessageContext, MessageForwardNode};
use lightning::chain::{BestBlock, Confirm};
use lightning::onion_message::messenger::{Destination, MessageSendInstructions, Responder};
use lightning::routing::router::{RouteHint, RouteHintHop};
use lightning::routing::gossip::RoutingFees;
use lightning::util::ser::Readable;
use lightning::events::{Event, FundingInfo, ReplayEvent};
use lightning::ln::channelmanager::{
    Bolt11InvoiceParameters, ChainParameters, ChannelManagerReadArgs, PaymentId, Retry,
};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{Bolt11PaymentError, RecipientOnionFields, RetryableSendFailure};
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler};
use lightning::ln::types::ChannelId;
use lightning::routing::gossip::P2PGossipSync;
use lightning::routing::router::{DefaultRouter, PaymentParameters, RouteParameters, RouteParametersConfig};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::sign::{EntropySource, KeysManager, NodeSigner};
use lightning::util::config::UserConfig;
use lightning::util::logger::Level;
use lightning::util::persist::{
    read_channel_monitors, KVStoreSync, CHANNEL_MANAGER_PERSISTENCE_KEY,
    CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
    NETWORK_GRAPH_PERSISTENCE_KEY, NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE,
    NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE, OUTPUT_SWEEPER_PERSISTENCE_KEY,
    OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE, OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
    SCORER_PERSISTENCE_KEY, SCORER_PERSISTENCE_PRIMARY_NAMESPACE, SCORER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::{ReadableArgs, Writeable};
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use lightning_background_processor::{process_events_async_with_kv_store_sync, GossipSync, NO_LIQUIDITY_MANAGER};
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Currency, Description};
use tokio::sync::watch;

use crate::chain::ChainSource;
use crate::error::{Error, Result};
use crate::keys::WalletKeys;
use crate::events::{EventSink, NodeEvent, QueuedEvent};
use crate::onion::{is_app_tlv_type, AppMessageHandler, RawOnionMessage, RelayMessageRouter};
use crate::logger::{parse_level, EngineLogger, LogLine};
use crate::store::{now_secs, PaymentRecord, SqliteStore, STATUS_FAILED, STATUS_PENDING, STATUS_SUCCEEDED};
use crate::types::*;
use crate::wallet::{OnchainWallet, WalletBalance};

/// How to build a node. Every field has an operator-facing meaning; see config/ in the repo.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub network: Network,
    pub esplora_url: String,
    /// "host:port" to accept Lightning connections on; port 0 picks a free port.
    pub listen_addr: String,
    /// Seconds between background chain syncs (LDK and wallet).
    pub sync_interval_secs: u64,
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
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>, network: Network, esplora_url: &str) -> Self {
        Self {
            data_dir: data_dir.into(),
            network,
            esplora_url: esplora_url.to_string(),
            listen_addr: "127.0.0.1:0".into(),
            sync_interval_secs: 30,
            log_level: "info".into(),
            accept_intercept_htlcs: false,
            to_self_delay: 144,
            min_funding_confirmations: 6,
            forward_immediately: false,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
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
    pub state: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerInfo {
    pub node_id: String,
    pub address: Option<String>,
    pub inbound: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
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
#[derive(Clone, Debug, serde::Serialize)]
pub struct InboundHtlc {
    pub channel_id: String,
    pub counterparty_node_id: String,
    pub payment_hash: String,
    pub amount_msat: u64,
    pub cltv_expiry: u32,
}

/// The intercept hop a payer puts in front of the payee's route: its LSP forwards (or holds)
/// whatever arrives addressed to `short_channel_id`.
#[derive(Clone, Debug)]
pub struct InterceptHop {
    pub lsp_node_id: String,
    pub short_channel_id: u64,
    pub fee_base_msat: u32,
    pub fee_proportional_millionths: u32,
    pub cltv_expiry_delta: u16,
}

/// LDK refuses to forward HTLCs expiring more than 2016 blocks ahead (CLTV_FAR_FAR_AWAY).
const MAX_TOTAL_CLTV: u32 = 2000;

/// Everything the running node shares between its tasks.
struct Core {
    config: NodeConfig,
    store: Arc<SqliteStore>,
    logger: Arc<EngineLogger>,
    chain: Arc<ChainSource>,
    keys: Arc<KeysManager>,
    wallet: Arc<OnchainWallet>,
    tx_sync: Arc<TxSync>,
    chain_monitor: Arc<ChainMonitor>,
    channel_manager: Arc<ChannelManager>,
    peer_manager: Arc<PeerManager>,
    sweeper: Arc<Sweeper>,
    onion_messenger: Arc<OnionMessenger>,
    message_router: Arc<RelayMessageRouter>,
    events: Arc<EventSink>,
    sync_lock: tokio::sync::Mutex<()>,
}

pub struct Node {
    core: Arc<Core>,
    listen_addr: SocketAddr,
    stop: watch::Sender<bool>,
    running: AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    background: Mutex<Option<tokio::task::JoinHandle<std::result::Result<(), lightning::io::Error>>>>,
}

fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

fn parse_pubkey(s: &str) -> Result<PublicKey> {
    PublicKey::from_str(s.trim()).map_err(|_| {
        Error::InvalidArgument(format!("'{s}' is not a node id (33-byte compressed public key in hex)"))
    })
}

/// 32 bytes given as hex; `what` names them in the error.
fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Error::InvalidArgument(format!("'{s}' is not {what} (32 bytes in hex)")))
}

fn parse_channel_id(s: &str) -> Result<ChannelId> {
    parse_hex32(s, "a channel id").map(ChannelId)
}

/// Read the BIP39 mnemonic from the data directory, or make one on first start (mode 0600).
fn load_or_create_seed(data_dir: &Path) -> Result<[u8; 64]> {
    let path = data_dir.join("seed.mnemonic");
    let words = match std::fs::read_to_string(&path) {
        Ok(w) => w,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mnemonic = bip39::Mnemonic::generate(24)
                .map_err(|e| Error::Config(format!("cannot generate a seed: {e}")))?;
            let words = mnemonic.to_string();
            write_secret_file(&path, words.as_bytes())?;
            words
        }
        Err(e) => return Err(Error::Storage(format!("cannot read {}: {e}", path.display()))),
    };
    let mnemonic = bip39::Mnemonic::parse(words.trim()).map_err(|e| {
        Error::Config(format!("{} does not hold a valid BIP39 mnemonic: {e}", path.display()))
    })?;
    Ok(mnemonic.to_seed(""))
}

fn write_secret_file(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::Storage(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| Error::Storage(format!("cannot write {}: {e}", path.display())))
}

fn user_config(cfg: &NodeConfig) -> UserConfig {
    let mut c = UserConfig::default();
    c.channel_handshake_config.announce_for_forwarding = false;
    // Anchor channels need a fee-bumping wallet reserve; plain static-remote-key channels do not.
    c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = false;
    c.channel_handshake_config.our_to_self_delay = cfg.to_self_delay;
    c.channel_handshake_config.minimum_depth = cfg.min_funding_confirmations.max(1);
    c.channel_handshake_config.max_inbound_htlc_value_in_flight_percent_of_channel = 100;
    c.channel_handshake_limits.force_announced_channel_preference = false;
    c.channel_handshake_limits.max_minimum_depth = 144;
    // An LSP forwards to its clients' unannounced channels.
    c.accept_forwards_to_priv_channels = true;
    c.accept_intercept_htlcs = cfg.accept_intercept_htlcs;
    c
}

fn closure_reason(r: &lightning::events::ClosureReason) -> String {
    format!("{r}")
}

fn payment_failure(reason: Option<lightning::events::PaymentFailureReason>) -> String {
    match reason {
        Some(r) => format!("{r:?}"),
        None => "RetriesExhausted".into(),
    }
}

impl Node {
    /// Build the node from its data directory and start it: load or create keys, restore
    /// channel monitors before the channel manager, sync to the chain tip, listen for peers.
    pub async fn start(config: NodeConfig) -> Result<Node> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Config(format!("cannot create data directory {}: {e}", config.data_dir.display()))
        })?;
        // Channel state and the seed live here: readable by the node's user only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                Error::Config(format!("cannot restrict {} to its owner: {e}", config.data_dir.display()))
            })?;
        }
        let level = parse_level(&config.log_level).ok_or_else(|| {
            Error::Config(format!("unknown log level '{}' (use trace, debug, info, warn or error)", config.log_level))
        })?;
        let logger = Arc::new(
            EngineLogger::new(Some(&config.data_dir.join("ldk.log")), level)
                .map_err(|e| Error::Storage(format!("cannot open ldk.log: {e}")))?,
        );
        let runtime = tokio::runtime::Handle::current();
        let store = Arc::new(SqliteStore::open(&config.data_dir.join("node.sqlite"))?);
        let seed = load_or_create_seed(&config.data_dir)?;

        let chain = Arc::new(ChainSource::new(&config.esplora_url, runtime.clone(), Arc::clone(&logger))?);
        let tip_height = chain.tip_height().await?;
        let tip_hash = chain.client.get_tip_hash().await.map_err(|e| chain.unreachable(e))?;
        let genesis = chain.client.get_block_hash(0).await.map_err(|e| chain.unreachable(e))?;
        let expected_genesis = bitcoin::constants::genesis_block(config.network).block_hash();
        if genesis != expected_genesis {
            return Err(Error::Config(format!(
                "the Esplora server at {} serves another network than '{}' (genesis {genesis})",
                chain.url, config.network
            )));
        }
        chain.refresh_fees().await?;

        // LDK's keys and the wallet's come from one seed but separate hardened branches.
        let secp = Secp256k1::new();
        let master = Xpriv::new_master(config.network, &seed).map_err(|e| Error::Config(e.to_string()))?;
        let ldk_key = master
            .derive_priv(&secp, &[ChildNumber::from_hardened_idx(535).map_err(|e| Error::Config(e.to_string()))?])
            .map_err(|e| Error::Config(e.to_string()))?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let keys = Arc::new(KeysManager::new(&ldk_key.private_key.secret_bytes(), now.as_secs(), now.subsec_nanos(), true));

        let wallet = Arc::new(OnchainWallet::open(
            &config.data_dir.join("wallet.sqlite"),
            &seed,
            config.network,
            Arc::clone(&chain),
        )?);
        let signer_provider = Arc::new(WalletKeys { keys: Arc::clone(&keys), wallet: Arc::clone(&wallet) });

        let tx_sync = Arc::new(TxSync::from_client(chain.client.clone(), Arc::clone(&logger)));
        let chain_monitor: Arc<ChainMonitor> = Arc::new(ChainMonitor::new(
            Some(Arc::clone(&tx_sync)),
            Arc::clone(&chain),
            Arc::clone(&logger),
            Arc::clone(&chain),
            Arc::clone(&store),
            Arc::clone(&keys),
            keys.get_peer_storage_key(),
        ));

        // Monitors first: the channel manager is checked against them when it is read.
        let mut monitors = read_channel_monitors(Arc::clone(&store), Arc::clone(&keys), Arc::clone(&signer_provider))
            .map_err(|e| Error::Storage(format!("cannot read channel monitors: {e}")))?;

        let network_graph = Arc::new(match store.read(
            NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE,
            NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE,
            NETWORK_GRAPH_PERSISTENCE_KEY,
        ) {
            Ok(bytes) => NetworkGraph::read(&mut Cursor::new(bytes), Arc::clone(&logger))
                .map_err(|e| Error::Storage(format!("cannot read the network graph: {e:?}")))?,
            Err(_) => NetworkGraph::new(config.network, Arc::clone(&logger)),
        });
        let scorer: SharedScorer = Arc::new(RwLock::new(match store.read(
            SCORER_PERSISTENCE_PRIMARY_NAMESPACE,
            SCORER_PERSISTENCE_SECONDARY_NAMESPACE,
            SCORER_PERSISTENCE_KEY,
        ) {
            Ok(bytes) => ProbabilisticScorer::read(
                &mut Cursor::new(bytes),
                (ProbabilisticScoringDecayParameters::default(), Arc::clone(&network_graph), Arc::clone(&logger)),
            )
            .map_err(|e| Error::Storage(format!("cannot read the scorer: {e:?}")))?,
            Err(_) => ProbabilisticScorer::new(
                ProbabilisticScoringDecayParameters::default(),
                Arc::clone(&network_graph),
                Arc::clone(&logger),
            ),
        }));
        let router = Arc::new(DefaultRouter::new(
            Arc::clone(&network_graph),
            Arc::clone(&logger),
            Arc::clone(&keys),
            Arc::clone(&scorer),
            ProbabilisticScoringFeeParameters::default(),
        ));
        let message_router = Arc::new(MessageRouter::new(Arc::clone(&network_graph), Arc::clone(&keys)));

        let ucfg = user_config(&config);
        let channel_manager: Arc<ChannelManager> = match store.read(
            CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
            CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
            CHANNEL_MANAGER_PERSISTENCE_KEY,
        ) {
            Ok(bytes) => {
                let refs = monitors.iter().map(|(_, m)| m).collect::<Vec<_>>();
                let args = ChannelManagerReadArgs::new(
                    Arc::clone(&keys),
                    Arc::clone(&keys),
                    Arc::clone(&signer_provider),
                    Arc::clone(&chain),
                    Arc::clone(&chain_monitor),
                    Arc::clone(&chain),
                    Arc::clone(&router),
                    Arc::clone(&message_router),
                    Arc::clone(&logger),
                    ucfg.clone(),
                    refs,
                );
                let (_hash, cm) = <(BlockHash, ChannelManager)>::read(&mut Cursor::new(bytes), args)
                    .map_err(|e| Error::Storage(format!("cannot read the channel manager: {e:?}")))?;
                Arc::new(cm)
            }
            Err(e) if e.kind() == lightning::io::ErrorKind::NotFound => {
                if !monitors.is_empty() {
                    return Err(Error::Storage(
                        "channel monitors exist but the channel manager is missing; refusing to start a fresh node over them".into(),
                    ));
                }
                let params = ChainParameters {
                    network: config.network,
                    best_block: BestBlock::new(tip_hash, tip_height),
                };
                Arc::new(ChannelManager::new(
                    Arc::clone(&chain),
                    Arc::clone(&chain_monitor),
                    Arc::clone(&chain),
                    Arc::clone(&router),
                    Arc::clone(&message_router),
                    Arc::clone(&logger),
                    Arc::clone(&keys),
                    Arc::clone(&keys),
                    Arc::clone(&signer_provider),
                    ucfg.clone(),
                    params,
                    now.as_secs() as u32,
                ))
            }
            Err(e) => return Err(Error::Storage(format!("cannot read the channel manager: {e}"))),
        };
        for (_, monitor) in monitors.drain(..) {
            let id = monitor.channel_id();
            chain_monitor
                .load_existing_monitor(id, monitor)
                .map_err(|_| Error::Storage(format!("cannot load the monitor of channel {id}")))?;
        }

        let sweeper: Arc<Sweeper> = Arc::new(match store.read(
            OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_KEY,
        ) {
            Ok(bytes) => {
                let args = (
                    Arc::clone(&chain),
                    Arc::clone(&chain),
                    Some(Arc::clone(&tx_sync)),
                    Arc::clone(&keys),
                    Arc::clone(&wallet),
                    Arc::clone(&store),
                    Arc::clone(&logger),
                );
                let (_best, sweeper) = <(BestBlock, Sweeper)>::read(&mut Cursor::new(bytes), args)
                    .map_err(|e| Error::Storage(format!("cannot read the output sweeper: {e:?}")))?;
                sweeper
            }
            Err(_) => Sweeper::new(
                channel_manager.current_best_block(),
                Arc::clone(&chain),
                Arc::clone(&chain),
                Some(Arc::clone(&tx_sync)),
                Arc::clone(&keys),
                Arc::clone(&wallet),
                Arc::clone(&store),
                Arc::clone(&logger),
            ),
        });

        let gossip_sync = Arc::new(P2PGossipSync::new(Arc::clone(&network_graph), None, Arc::clone(&logger)));
        let (event_seq, _) = watch::channel(0u64);
        let events = Arc::new(EventSink { store: Arc::clone(&store), seq: event_seq, logger: Arc::clone(&logger) });
        let relay_router = Arc::new(RelayMessageRouter {
            inner: MessageRouter::new(Arc::clone(&network_graph), Arc::clone(&keys)),
            relay: RwLock::new(None),
        });
        let onion_messenger: Arc<OnionMessenger> = Arc::new(OnionMessenger::new_with_offline_peer_interception(
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&logger),
            Arc::clone(&channel_manager),
            Arc::clone(&relay_router),
            Arc::clone(&channel_manager),
            Arc::clone(&channel_manager),
            IgnoringMessageHandler {},
            Arc::new(AppMessageHandler { sink: Arc::clone(&events) }),
        ));
        let handler = MessageHandler {
            chan_handler: Arc::clone(&channel_manager),
            route_handler: Arc::clone(&gossip_sync),
            onion_message_handler: Arc::clone(&onion_messenger),
            custom_message_handler: IgnoringMessageHandler {},
            send_only_message_handler: Arc::clone(&chain_monitor),
        };
        let ephemeral = keys.get_secure_random_bytes();
        let peer_manager: Arc<PeerManager> = Arc::new(PeerManager::new(
            handler,
            now.as_secs() as u32,
            &ephemeral,
            Arc::clone(&logger),
            Arc::clone(&keys),
        ));

        let core = Arc::new(Core {
            config: config.clone(),
            store: Arc::clone(&store),
            logger: Arc::clone(&logger),
            chain,
            keys,
            wallet,
            tx_sync,
            chain_monitor: Arc::clone(&chain_monitor),
            channel_manager: Arc::clone(&channel_manager),
            peer_manager: Arc::clone(&peer_manager),
            sweeper: Arc::clone(&sweeper),
            onion_messenger: Arc::clone(&onion_messenger),
            message_router: relay_router,
            events,
            sync_lock: tokio::sync::Mutex::new(()),
        });

        // Catch up with the chain before accepting peers, so nothing acts on a stale tip.
        core.sync().await?;

        let listen: SocketAddr = tokio::net::lookup_host(&config.listen_addr)
            .await
            .ok()
            .and_then(|mut it| it.next())
            .ok_or_else(|| Error::Config(format!("cannot resolve listen address '{}'", config.listen_addr)))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e} (is the port in use?)")))?;
        let listen_addr = listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;

        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();

        // Inbound connections.
        {
            let pm = Arc::clone(&peer_manager);
            let mut stop_rx = stop.subscribe();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => return,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                if let Ok(std_stream) = stream.into_std() {
                                    tokio::spawn(lightning_net_tokio::setup_inbound(Arc::clone(&pm), std_stream));
                                }
                            }
                        }
                    }
                }
            }));
        }

        // Background chain sync.
        {
            let core = Arc::clone(&core);
            let mut stop_rx = stop.subscribe();
            let every = Duration::from_secs(config.sync_interval_secs.max(1));
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => return,
                        _ = tokio::time::sleep(every) => {
                            if let Err(e) = core.sync().await {
                                core.logger.engine(Level::Warn, format!("background sync failed: {e}"));
                            }
                        }
                    }
                }
            }));
        }

        if config.forward_immediately {
            let cm = Arc::clone(&channel_manager);
            let pm = Arc::clone(&peer_manager);
            let mut stop_rx = stop.subscribe();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(2));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => return,
                        _ = tick.tick() => {
                            if cm.needs_pending_htlc_processing() {
                                cm.process_pending_htlc_forwards();
                                pm.process_events();
                            }
                        }
                    }
                }
            }));
        }

        // Reconnect to channel peers whose address we know.
        {
            let core = Arc::clone(&core);
            let mut stop_rx = stop.subscribe();
            tasks.push(tokio::spawn(async move {
                loop {
                    core.reconnect_channel_peers().await;
                    tokio::select! {
                        _ = stop_rx.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }));
        }

        // LDK's background processor: events, persistence of manager/graph/scorer, timers.
        let background = {
            let core_ev = Arc::clone(&core);
            let stop_rx = stop.subscribe();
            let handler = move |event: Event| {
                let core = Arc::clone(&core_ev);
                async move { core.handle_ldk_event(event).await }
            };
            tokio::spawn(process_events_async_with_kv_store_sync(
                Arc::clone(&store),
                handler,
                Arc::clone(&chain_monitor),
                Arc::clone(&channel_manager),
                Some(Arc::clone(&onion_messenger)),
                GossipSync::p2p(Arc::clone(&gossip_sync)),
                Arc::clone(&peer_manager),
                NO_LIQUIDITY_MANAGER,
                Some(Arc::clone(&sweeper)),
                Arc::clone(&logger),
                Some(Arc::clone(&scorer)),
                move |d| {
                    let mut rx = stop_rx.clone();
                    Box::pin(async move {
                        tokio::select! {
                            _ = tokio::time::sleep(d) => false,
                            _ = rx.changed() => true,
                        }
                    })
                },
                false,
                || SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok(),
            ))
        };

        logger.engine(
            Level::Info,
            format!("node {} listening on {listen_addr}, chain tip {tip_height}", channel_manager.get_our_node_id()),
        );
        Ok(Node {
            core,
            listen_addr,
            stop,
            running: AtomicBool::new(true),
            tasks: Mutex::new(tasks),
            background: Mutex::new(Some(background)),
        })
    }

    fn check_running(&self) -> Result<()> {
        if self.running.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Error::NotRunning)
        }
    }

    /// Stop tasks, disconnect peers and let the background processor write its last state.
    pub async fn stop(&self) -> Result<()> {
        if !self.running.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let _ = self.stop.send(true);
        // Wake anyone waiting in next_event so their futures end now, not at process exit.
        self.core.events.seq.send_modify(|v| *v += 1);
        self.core.peer_manager.disconnect_all_peers();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        let bg = self.background.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(bg) = bg {
            match bg.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::Storage(format!("final persistence failed: {e}"))),
                Err(e) => return Err(Error::Storage(format!("background processor crashed: {e}"))),
            }
        }
        // The processor persists on exit, but write once more so a stop never loses state.
        self.core
            .store
            .write(
                CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
                CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
                CHANNEL_MANAGER_PERSISTENCE_KEY,
                self.core.channel_manager.encode(),
            )
            .map_err(|e| Error::Storage(format!("cannot write the channel manager: {e}")))?;
        self.core.logger.engine(Level::Info, "node stopped".into());
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    pub fn node_id(&self) -> String {
        self.core.channel_manager.get_our_node_id().to_string()
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    pub fn network(&self) -> Network {
        self.core.config.network
    }

    pub fn best_block_height(&self) -> u32 {
        self.core.channel_manager.current_best_block().height
    }

    pub fn drain_logs(&self, max: usize) -> Vec<LogLine> {
        self.core.logger.drain(max)
    }

    // ---- chain and wallet ---------------------------------------------------------------

    pub async fn sync(&self) -> Result<()> {
        self.check_running()?;
        self.core.sync().await
    }

    pub fn new_address(&self) -> Result<String> {
        Ok(self.core.wallet.new_address()?.to_string())
    }

    pub fn wallet_balance(&self) -> WalletBalance {
        self.core.wallet.balance()
    }

    /// Satoshis still held in closed or closing channels (claimable on chain, not yet swept).
    pub fn claimable_onchain_sat(&self) -> u64 {
        self.core
            .chain_monitor
            .get_claimable_balances(&[])
            .iter()
            .map(|b| b.claimable_amount_satoshis())
            .sum()
    }

    pub async fn send_onchain(&self, address: &str, amount_sat: Option<u64>) -> Result<String> {
        self.check_running()?;
        let feerate = self.core.chain.feerate_sat_per_kw(6);
        let txid = self.core.wallet.send(address, amount_sat, feerate).await?;
        Ok(txid.to_string())
    }

    // ---- peers ---------------------------------------------------------------------------

    pub async fn connect(&self, node_id: &str, address: &str) -> Result<()> {
        self.check_running()?;
        let pk = parse_pubkey(node_id)?;
        if pk == self.core.channel_manager.get_our_node_id() {
            return Err(Error::Peer("cannot connect to ourselves".into()));
        }
        self.core.connect(pk, address).await?;
        self.core.store.save_peer(&pk.to_string(), address)?;
        Ok(())
    }

    pub fn disconnect(&self, node_id: &str) -> Result<()> {
        let pk = parse_pubkey(node_id)?;
        if self.core.peer_manager.peer_by_node_id(&pk).is_none() {
            return Err(Error::Peer(format!("not connected to {pk}")));
        }
        // Forget the address too, or the reconnect task would dial it again.
        self.core.store.forget_peer(&pk.to_string())?;
        self.core.peer_manager.disconnect_by_node_id(pk);
        Ok(())
    }

    pub fn list_peers(&self) -> Vec<PeerInfo> {
        self.core
            .peer_manager
            .list_peers()
            .into_iter()
            .map(|p| PeerInfo {
                node_id: p.counterparty_node_id.to_string(),
                address: p.socket_address.map(|a| a.to_string()),
                inbound: p.is_inbound_connection,
            })
            .collect()
    }

    // ---- channels ------------------------------------------------------------------------

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
        let mut cfg = user_config(&self.core.config);
        cfg.channel_handshake_config.announce_for_forwarding = announce;
        let user_channel_id = u128::from_be_bytes(
            self.core.keys.get_secure_random_bytes()[..16].try_into().unwrap_or([0u8; 16]),
        );
        self.core
            .channel_manager
            .create_channel(pk, amount_sat, push_msat, user_channel_id, None, Some(cfg))
            .map_err(|e| Error::Channel(format!("cannot open the channel: {e:?}")))?;
        Ok(user_channel_id.to_string())
    }

    pub fn list_channels(&self) -> Vec<ChannelInfo> {
        self.core.channel_manager.list_channels().iter().map(channel_info).collect()
    }

    fn find_channel(&self, channel_id: &str) -> Result<ChannelDetails> {
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

    // ---- invoices and payments -----------------------------------------------------------

    pub fn create_invoice(&self, amount_msat: Option<u64>, description: &str, expiry_secs: u32) -> Result<String> {
        self.check_running()?;
        if amount_msat == Some(0) {
            return Err(Error::InvalidArgument("invoice amount must be positive (or omitted for any amount)".into()));
        }
        let desc = Description::new(description.to_string())
            .map_err(|e| Error::InvalidArgument(format!("invalid description: {e}")))?;
        let params = Bolt11InvoiceParameters {
            amount_msats: amount_msat,
            description: Bolt11InvoiceDescription::Direct(desc),
            invoice_expiry_delta_secs: Some(expiry_secs),
            min_final_cltv_expiry_delta: None,
            payment_hash: None,
        };
        let invoice = self
            .core
            .channel_manager
            .create_bolt11_invoice(params)
            .map_err(|e| Error::Invoice(format!("cannot create the invoice: {e:?}")))?;
        let hash = hexs(invoice.payment_hash().as_byte_array());
        let now = now_secs();
        self.core.store.upsert_payment(&PaymentRecord {
            payment_id: hash.clone(),
            payment_hash: hash,
            direction: "inbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat,
            fee_msat: None,
            preimage: None,
            bolt11: Some(invoice.to_string()),
            failure: None,
            created_at: now,
            updated_at: now,
        })?;
        Ok(invoice.to_string())
    }

    fn parse_invoice(&self, s: &str) -> Result<Bolt11Invoice> {
        let inv = Bolt11Invoice::from_str(s.trim())
            .map_err(|e| Error::Invoice(format!("not a BOLT11 invoice: {e}")))?;
        let ours = Currency::from(self.core.config.network);
        if inv.currency() != ours {
            return Err(Error::Invoice(format!(
                "the invoice is for {:?} but this node runs on {}",
                inv.currency(),
                self.core.config.network
            )));
        }
        Ok(inv)
    }

    pub fn decode_invoice(&self, s: &str) -> Result<InvoiceInfo> {
        let inv = self.parse_invoice(s)?;
        Ok(InvoiceInfo {
            payment_hash: hexs(inv.payment_hash().as_byte_array()),
            amount_msat: inv.amount_milli_satoshis(),
            description: match inv.description() {
                lightning_invoice::Bolt11InvoiceDescriptionRef::Direct(d) => Some(d.to_string()),
                lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(_) => None,
            },
            payee_node_id: inv.get_payee_pub_key().to_string(),
            network: self.core.config.network.to_string(),
            timestamp: inv.duration_since_epoch().as_secs(),
            expiry_secs: inv.expiry_time().as_secs(),
            is_expired: inv.is_expired(),
            min_final_cltv_expiry_delta: inv.min_final_cltv_expiry_delta(),
            route_hints: inv.route_hints().len(),
            route_hint_sources: inv
                .route_hints()
                .iter()
                .filter_map(|h| h.0.first().map(|hop| hop.src_node_id.to_string()))
                .collect(),
        })
    }

    /// Check an invoice can be paid (not ours, not expired, not paid before) and record the
    /// outbound payment as pending before LDK sees it.
    fn begin_outbound(&self, s: &str, amount_msat: Option<u64>) -> Result<(Bolt11Invoice, String, u64)> {
        self.check_running()?;
        let inv = self.parse_invoice(s)?;
        if inv.is_expired() {
            return Err(Error::Invoice("the invoice has expired".into()));
        }
        if inv.get_payee_pub_key() == self.core.channel_manager.get_our_node_id() {
            return Err(Error::Payment("this invoice was issued by this node; a node cannot pay itself".into()));
        }
        let hash = hexs(inv.payment_hash().as_byte_array());
        if let Some(prev) = self.core.store.payment(&hash)? {
            if prev.direction == "outbound" && prev.status != STATUS_FAILED {
                return Err(Error::DuplicatePayment(format!(
                    "invoice with payment hash {hash} was already paid or is being paid (status {})",
                    prev.status
                )));
            }
        }
        let amount = match (inv.amount_milli_satoshis(), amount_msat) {
            (Some(a), None) => a,
            (Some(a), Some(b)) if a == b => a,
            (Some(a), Some(b)) => {
                return Err(Error::Payment(format!("the invoice asks for {a} msat, not {b} msat")));
            }
            (None, Some(b)) if b > 0 => b,
            (None, _) => return Err(Error::Payment("the invoice has no amount: give amount_msat".into())),
        };
        let now = now_secs();
        self.core.store.upsert_payment(&PaymentRecord {
            payment_id: hash.clone(),
            payment_hash: hash.clone(),
            direction: "outbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat: Some(amount),
            fee_msat: None,
            preimage: None,
            bolt11: Some(s.trim().to_string()),
            failure: None,
            created_at: now,
            updated_at: now,
        })?;
        Ok((inv, hash, amount))
    }

    /// Turn LDK's refusal to start a payment into our error, marking the record failed unless
    /// the refusal was that the payment already exists.
    fn send_failed(&self, hash: &str, failure: RetryableSendFailure) -> Error {
        let (err, mark_failed) = match failure {
            RetryableSendFailure::DuplicatePayment => (
                Error::DuplicatePayment(format!("invoice with payment hash {hash} is already being paid")),
                false,
            ),
            RetryableSendFailure::RouteNotFound => {
                (Error::Payment("no route to the payee with enough outbound capacity".into()), true)
            }
            other => (Error::Payment(format!("cannot send: {other:?}")), true),
        };
        if mark_failed {
            self.fail_before_send(hash, err)
        } else {
            err
        }
    }

    /// Start paying an invoice; the outcome arrives as payment_sent / payment_failed.
    pub fn pay_invoice(&self, s: &str, amount_msat: Option<u64>, max_fee_msat: Option<u64>) -> Result<String> {
        let (inv, hash, amount) = self.begin_outbound(s, amount_msat)?;
        let mut route_cfg = RouteParametersConfig::default();
        route_cfg.max_total_routing_fee_msat = max_fee_msat;
        let res = self.core.channel_manager.pay_for_bolt11_invoice(
            &inv,
            PaymentId(*inv.payment_hash().as_byte_array()),
            if inv.amount_milli_satoshis().is_some() { None } else { Some(amount) },
            route_cfg,
            Retry::Timeout(Duration::from_secs(30)),
        );
        match res {
            Ok(()) => Ok(hash),
            Err(Bolt11PaymentError::SendingFailed(f)) => Err(self.send_failed(&hash, f)),
            Err(Bolt11PaymentError::InvalidAmount) => {
                Err(self.fail_before_send(&hash, Error::Payment("the amount does not match the invoice".into())))
            }
        }
    }

    /// Pay an invoice through the payer's LSP's intercept SCID, so the LSP can hold the HTLCs.
    /// The intercept hop is put in front of the invoice's first route hint (or straight to the
    /// payee), and the final CLTV is padded by `extra_final_cltv` so the payee still accepts the
    /// HTLC after it was held that many blocks.
    pub fn pay_invoice_via(
        &self, s: &str, hop: &InterceptHop, extra_final_cltv: u32, max_fee_msat: Option<u64>,
    ) -> Result<String> {
        let lsp = parse_pubkey(&hop.lsp_node_id)?;
        let (inv, hash, amount) = self.begin_outbound(s, None)?;
        let first = RouteHintHop {
            src_node_id: lsp,
            short_channel_id: hop.short_channel_id,
            fees: RoutingFees { base_msat: hop.fee_base_msat, proportional_millionths: hop.fee_proportional_millionths },
            cltv_expiry_delta: hop.cltv_expiry_delta,
            htlc_minimum_msat: None,
            htlc_maximum_msat: None,
        };
        let mut chain = vec![first];
        if let Some(h) = inv.route_hints().into_iter().next() {
            chain.extend(h.0);
        }
        let final_delta = inv.min_final_cltv_expiry_delta() as u32 + extra_final_cltv;
        let total: u32 = final_delta + chain.iter().map(|h| h.cltv_expiry_delta as u32).sum::<u32>();
        if total > MAX_TOTAL_CLTV {
            return Err(self.fail_before_send(&hash, Error::InvalidArgument(format!(
                "the route would lock funds for {total} blocks; LDK forwards at most {MAX_TOTAL_CLTV}: ask for a shorter hold"
            ))));
        }
        let mut params = PaymentParameters::from_node_id(inv.get_payee_pub_key(), final_delta)
            .with_route_hints(vec![RouteHint(chain)])
            .map_err(|_| Error::Invoice("the invoice's route hints cannot be used".into()))?
            .with_max_total_cltv_expiry_delta(MAX_TOTAL_CLTV);
        if let Some(expiry) = inv.expires_at() {
            params = params.with_expiry_time(expiry.as_secs());
        }
        if let Some(features) = inv.features() {
            params = params
                .with_bolt11_features(features.clone())
                .map_err(|_| Error::Invoice("the invoice's features cannot be used".into()))?;
        }
        let mut route_params = RouteParameters::from_payment_params_and_value(params, amount);
        route_params.max_total_routing_fee_msat = max_fee_msat;
        self.core
            .channel_manager
            .send_payment(
                PaymentHash(*inv.payment_hash().as_byte_array()),
                RecipientOnionFields::secret_only(*inv.payment_secret()),
                PaymentId(*inv.payment_hash().as_byte_array()),
                route_params,
                Retry::Timeout(Duration::from_secs(30)),
            )
            .map_err(|f| self.send_failed(&hash, f))?;
        Ok(hash)
    }

    /// Record a payment that never left as failed, with the reason the caller gets.
    fn fail_before_send(&self, hash: &str, err: Error) -> Error {
        if let Ok(Some(prev)) = self.core.store.payment(hash) {
            let _ = self.core.store.upsert_payment(&PaymentRecord {
                status: STATUS_FAILED.into(),
                failure: Some(err.to_string()),
                updated_at: now_secs(),
                ..prev
            });
        }
        err
    }

    /// Pay a node without an invoice (keysend); returns the payment id.
    pub fn keysend(&self, node_id: &str, amount_msat: u64) -> Result<String> {
        self.check_running()?;
        let pk = parse_pubkey(node_id)?;
        if amount_msat == 0 {
            return Err(Error::InvalidArgument("amount must be positive".into()));
        }
        let preimage = PaymentPreimage(self.core.keys.get_secure_random_bytes());
        let hash = PaymentHash(bitcoin::hashes::sha256::Hash::hash(&preimage.0).to_byte_array());
        let payment_id = PaymentId(hash.0);
        let id = hexs(&hash.0);
        let now = now_secs();
        self.core.store.upsert_payment(&PaymentRecord {
            payment_id: id.clone(),
            payment_hash: id.clone(),
            direction: "outbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat: Some(amount_msat),
            fee_msat: None,
            preimage: Some(hexs(&preimage.0)),
            bolt11: None,
            failure: None,
            created_at: now,
            updated_at: now,
        })?;
        let params = RouteParameters::from_payment_params_and_value(
            PaymentParameters::for_keysend(pk, 40, false),
            amount_msat,
        );
        self.core
            .channel_manager
            .send_spontaneous_payment(
                Some(preimage),
                RecipientOnionFields::spontaneous_empty(),
                payment_id,
                params,
                Retry::Timeout(Duration::from_secs(30)),
            )
            .map_err(|e| Error::Payment(format!("cannot send keysend payment: {e:?}")))?;
        Ok(id)
    }

    pub fn list_payments(&self) -> Result<Vec<PaymentRecord>> {
        self.core.store.payments()
    }

    pub fn payment(&self, payment_id: &str) -> Result<Option<PaymentRecord>> {
        self.core.store.payment(payment_id)
    }

    // ---- HTLC interception (LSP role) --------------------------------------------------

    pub fn get_intercept_scid(&self) -> u64 {
        self.core.channel_manager.get_intercept_scid()
    }

    pub fn forward_intercepted_htlc(&self, intercept_id: &str, channel_id: &str, amount_msat: u64) -> Result<()> {
        let id = parse_intercept_id(intercept_id)?;
        let c = self.find_channel(channel_id)?;
        self.core
            .channel_manager
            .forward_intercepted_htlc(id, &c.channel_id, c.counterparty.node_id, amount_msat)
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

    // ---- onion messages and signatures -----------------------------------------------------

    /// Send everything we cannot deliver directly through this peer (a client sets its LSP).
    pub fn set_message_relay(&self, node_id: Option<&str>) -> Result<()> {
        let relay = node_id.map(parse_pubkey).transpose()?;
        self.core.message_router.set_relay(relay);
        Ok(())
    }

    /// Send an application message to a node or along a blinded path. With `reply_context`,
    /// a reply path is attached whose replies reach us carrying that context.
    pub fn send_onion_message(
        &self, tlv_type: u64, payload: Vec<u8>, to_node: Option<&str>, to_path: Option<&str>,
        reply_context: Option<Vec<u8>>,
    ) -> Result<()> {
        self.check_running()?;
        if !is_app_tlv_type(tlv_type) {
            return Err(Error::InvalidArgument(format!(
                "message type {tlv_type} is not an odd type in {}..={}",
                crate::onion::APP_TLV_TYPES.start(),
                crate::onion::APP_TLV_TYPES.end()
            )));
        }
        let destination = match (to_node, to_path) {
            (Some(n), None) => Destination::Node(parse_pubkey(n)?),
            (None, Some(p)) => Destination::BlindedPath(parse_blinded_path(p)?),
            _ => return Err(Error::InvalidArgument("give exactly one of to_node and to_path".into())),
        };
        let instructions = match reply_context {
            Some(ctx) => MessageSendInstructions::WithReplyPath { destination, context: MessageContext::Custom(ctx) },
            None => MessageSendInstructions::WithoutReplyPath { destination },
        };
        self.core
            .onion_messenger
            .send_onion_message(RawOnionMessage { tlv_type, payload }, instructions)
            .map_err(|e| Error::OnionMessage(format!("cannot send the onion message: {e:?}")))?;
        self.flush_messages();
        Ok(())
    }

    /// Answer a received message along the reply path it carried (`responder` from the event).
    pub fn reply_onion_message(&self, responder: &str, tlv_type: u64, payload: Vec<u8>) -> Result<()> {
        self.check_running()?;
        let bytes = hex::decode(responder).map_err(|_| Error::InvalidArgument("responder is not hex".into()))?;
        let responder = Responder::read(&mut Cursor::new(bytes))
            .map_err(|e| Error::InvalidArgument(format!("not a responder from an onion_message_received event: {e:?}")))?;
        self.core
            .onion_messenger
            .handle_onion_message_response(RawOnionMessage { tlv_type, payload }, responder.respond())
            .map_err(|e| Error::OnionMessage(format!("cannot send the reply: {e:?}")))?;
        self.flush_messages();
        Ok(())
    }

    /// A blinded path ending at this node, entered at the first of `intermediate_nodes` (or at
    /// us if none). A message sent along it arrives with `context`, authenticated as ours.
    pub fn create_blinded_path(&self, context: Vec<u8>, intermediate_nodes: &[String]) -> Result<String> {
        let hops = intermediate_nodes
            .iter()
            .map(|n| Ok(MessageForwardNode { node_id: parse_pubkey(n)?, short_channel_id: None }))
            .collect::<Result<Vec<_>>>()?;
        let secp = Secp256k1::new();
        let path = BlindedMessagePath::new(
            &hops,
            self.core.channel_manager.get_our_node_id(),
            self.core.keys.get_receive_auth_key(),
            MessageContext::Custom(context),
            &*self.core.keys,
            &secp,
        );
        Ok(hexs(&path.encode()))
    }

    /// Hand an intercepted onion message (from onion_message_intercepted) to a connected peer.
    pub fn forward_onion_message(&self, message: &str, peer_node_id: &str) -> Result<()> {
        let pk = parse_pubkey(peer_node_id)?;
        let bytes = hex::decode(message).map_err(|_| Error::InvalidArgument("message is not hex".into()))?;
        let msg = <lightning::ln::msgs::OnionMessage as lightning::util::ser::LengthReadable>::read_from_fixed_length_buffer(&mut &bytes[..])
            .map_err(|e| Error::InvalidArgument(format!("not an onion message: {e:?}")))?;
        self.core
            .onion_messenger
            .forward_onion_message(msg, &pk)
            .map_err(|e| Error::OnionMessage(format!("cannot forward the onion message to {pk}: {e:?}")))?;
        self.flush_messages();
        Ok(())
    }

    /// Onion messages wait in LDK's buffers until the peer manager next runs (up to the 10 s
    /// onion-message timer); run it now so a message leaves when it is sent.
    fn flush_messages(&self) {
        self.core.peer_manager.process_events();
    }

    /// Sign with the node key (the zbase32 format of lightning `signmessage`).
    pub fn sign_message(&self, message: &[u8]) -> String {
        lightning::util::message_signing::sign(message, &self.core.keys.get_node_secret_key())
    }

    // ---- events ----------------------------------------------------------------------------

    /// Wait for the oldest unacknowledged event. Calling again before `event_handled` returns
    /// the same event: delivery is at least once.
    pub async fn next_event(&self) -> Result<QueuedEvent> {
        let mut rx = self.core.events.seq.subscribe();
        loop {
            rx.borrow_and_update();
            if !self.is_running() {
                return Err(Error::NotRunning);
            }
            if let Some((id, kind, json)) = self.core.store.first_event()? {
                return Ok(QueuedEvent { id, kind, json });
            }
            if rx.changed().await.is_err() {
                return Err(Error::NotRunning);
            }
        }
    }

    /// The oldest unacknowledged event, without waiting.
    pub fn poll_event(&self) -> Result<Option<QueuedEvent>> {
        Ok(self.core.store.first_event()?.map(|(id, kind, json)| QueuedEvent { id, kind, json }))
    }

    /// Acknowledge an event once its side effects are committed.
    pub fn event_handled(&self, id: i64) -> Result<()> {
        if self.core.store.remove_event(id)? {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!("no pending event with id {id} (already acknowledged?)")))
        }
    }
}

fn parse_blinded_path(s: &str) -> Result<BlindedMessagePath> {
    let bytes = hex::decode(s.trim()).map_err(|_| Error::InvalidArgument("blinded path is not hex".into()))?;
    BlindedMessagePath::read(&mut Cursor::new(bytes))
        .map_err(|e| Error::InvalidArgument(format!("not a blinded message path: {e:?}")))
}

/// Check a zbase32 node-key signature (lightning `signmessage` format) by `node_id`.
pub fn verify_message(message: &[u8], signature: &str, node_id: &str) -> Result<bool> {
    let pk = parse_pubkey(node_id)?;
    Ok(lightning::util::message_signing::verify(message, signature, &pk))
}

fn parse_intercept_id(s: &str) -> Result<lightning::ln::channelmanager::InterceptId> {
    parse_hex32(s, "an intercept id").map(lightning::ln::channelmanager::InterceptId)
}

fn channel_info(c: &ChannelDetails) -> ChannelInfo {
    let state = if c.channel_shutdown_state.is_some()
        && c.channel_shutdown_state != Some(lightning::ln::channel_state::ChannelShutdownState::NotShuttingDown)
    {
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

impl Core {
    async fn sync(&self) -> Result<()> {
        let _guard = self.sync_lock.lock().await;
        let confirmables: Vec<&(dyn Confirm + Sync + Send)> = vec![
            &*self.channel_manager as &(dyn Confirm + Sync + Send),
            &*self.chain_monitor as &(dyn Confirm + Sync + Send),
            &*self.sweeper as &(dyn Confirm + Sync + Send),
        ];
        self.tx_sync
            .sync(confirmables)
            .await
            .map_err(|e| Error::ChainSource(format!("lightning chain sync via {} failed: {e:?}", self.chain.url)))?;
        self.wallet.sync().await?;
        self.chain.refresh_fees().await?;
        // The background processor only sweeps on a 30 s timer; sweeping right after a sync
        // claims matured outputs as soon as the chain allows.
        if self.sweeper.regenerate_and_broadcast_spend_if_necessary().is_err() {
            self.logger.engine(Level::Warn, "sweeping matured outputs failed; will retry".into());
        }
        Ok(())
    }

    async fn connect(&self, pk: PublicKey, address: &str) -> Result<()> {
        if self.peer_manager.peer_by_node_id(&pk).is_some() {
            return Ok(());
        }
        let addr: SocketAddr = tokio::net::lookup_host(address)
            .await
            .map_err(|e| Error::Peer(format!("cannot resolve '{address}': {e}")))?
            .next()
            .ok_or_else(|| Error::Peer(format!("'{address}' resolves to no address")))?;
        let fut = lightning_net_tokio::connect_outbound(Arc::clone(&self.peer_manager), pk, addr)
            .await
            .ok_or_else(|| Error::Peer(format!("cannot connect to {pk} at {addr}: connection refused or timed out")))?;
        let mut connection = tokio::spawn(fut);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.peer_manager.peer_by_node_id(&pk).is_some() {
                return Ok(());
            }
            tokio::select! {
                _ = &mut connection => {
                    return Err(Error::Peer(format!(
                        "{addr} closed the connection during the handshake: is {pk} the node listening there?"
                    )));
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Peer(format!("handshake with {pk} at {addr} timed out")));
            }
        }
    }

    async fn reconnect_channel_peers(&self) {
        let Ok(known) = self.store.peers() else { return };
        let with_channels: std::collections::HashSet<PublicKey> =
            self.channel_manager.list_channels().iter().map(|c| c.counterparty.node_id).collect();
        for (node_id, address) in known {
            let Ok(pk) = PublicKey::from_str(&node_id) else { continue };
            if with_channels.contains(&pk) && self.peer_manager.peer_by_node_id(&pk).is_none() {
                if let Err(e) = self.connect(pk, &address).await {
                    self.logger.engine(Level::Debug, format!("reconnect to {pk} failed: {e}"));
                }
            }
        }
    }

    fn emit(&self, event: NodeEvent, payment: Option<&PaymentRecord>) -> std::result::Result<(), ReplayEvent> {
        // Not durable: ask LDK to hand us the event again rather than lose it.
        self.events.emit(event, payment).map_err(|_| ReplayEvent())
    }

    fn payment_has_status(&self, id: &str, status: &str) -> bool {
        matches!(self.store.payment(id), Ok(Some(p)) if p.status == status)
    }

    fn updated_payment(&self, id: &str, f: impl FnOnce(&mut PaymentRecord)) -> Option<PaymentRecord> {
        let mut p = self.store.payment(id).ok().flatten()?;
        f(&mut p);
        p.updated_at = now_secs();
        Some(p)
    }

    async fn handle_ldk_event(&self, event: Event) -> std::result::Result<(), ReplayEvent> {
        match event {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                let feerate = self.chain.feerate_sat_per_kw(12);
                let built = self.wallet.build_payment(
                    output_script,
                    Some(bitcoin::Amount::from_sat(channel_value_satoshis)),
                    feerate,
                );
                match built {
                    Ok(tx) => {
                        if let Err(e) = self.channel_manager.funding_transaction_generated(
                            temporary_channel_id,
                            counterparty_node_id,
                            tx.clone(),
                        ) {
                            self.wallet.cancel(&tx);
                            self.logger.engine(Level::Error, format!("funding of {temporary_channel_id} refused: {e:?}"));
                        }
                    }
                    Err(e) => {
                        self.logger.engine(Level::Error, format!("cannot fund channel {temporary_channel_id}: {e}"));
                        let _ = self.channel_manager.force_close_broadcasting_latest_txn(
                            &temporary_channel_id,
                            &counterparty_node_id,
                            format!("funding failed: {e}"),
                        );
                    }
                }
                Ok(())
            }
            Event::PaymentClaimable { payment_hash, amount_msat, purpose, claim_deadline, .. } => {
                match purpose.preimage() {
                    Some(preimage) => {
                        self.channel_manager.claim_funds(preimage);
                        Ok(())
                    }
                    None => self.emit(
                        NodeEvent::PaymentClaimable { payment_hash: hexs(&payment_hash.0), amount_msat, claim_deadline },
                        None,
                    ),
                }
            }
            Event::PaymentClaimed { payment_hash, amount_msat, purpose, .. } => {
                let id = hexs(&payment_hash.0);
                // LDK may hand us a claim again after a restart; the store says if it is news.
                if self.payment_has_status(&id, STATUS_SUCCEEDED) {
                    return Ok(());
                }
                let now = now_secs();
                let preimage = purpose.preimage().map(|p| hexs(&p.0));
                let record = self
                    .updated_payment(&id, |p| {
                        p.status = STATUS_SUCCEEDED.into();
                        p.amount_msat = Some(amount_msat);
                        p.preimage = preimage.clone();
                    })
                    .unwrap_or(PaymentRecord {
                        payment_id: id.clone(),
                        payment_hash: id.clone(),
                        direction: "inbound".into(),
                        status: STATUS_SUCCEEDED.into(),
                        amount_msat: Some(amount_msat),
                        fee_msat: None,
                        preimage: preimage.clone(),
                        bolt11: None,
                        failure: None,
                        created_at: now,
                        updated_at: now,
                    });
                self.emit(
                    NodeEvent::PaymentReceived { payment_id: id.clone(), payment_hash: id, amount_msat },
                    Some(&record),
                )
            }
            Event::PaymentSent { payment_id, payment_preimage, payment_hash, amount_msat, fee_paid_msat, .. } => {
                let id = payment_id.map(|p| hexs(&p.0)).unwrap_or_else(|| hexs(&payment_hash.0));
                if self.payment_has_status(&id, STATUS_SUCCEEDED) {
                    return Ok(());
                }
                let record = self.updated_payment(&id, |p| {
                    p.status = STATUS_SUCCEEDED.into();
                    p.preimage = Some(hexs(&payment_preimage.0));
                    p.fee_msat = fee_paid_msat;
                    if amount_msat.is_some() {
                        p.amount_msat = amount_msat;
                    }
                    p.failure = None;
                });
                self.emit(
                    NodeEvent::PaymentSent {
                        payment_id: id,
                        payment_hash: hexs(&payment_hash.0),
                        preimage: hexs(&payment_preimage.0),
                        amount_msat,
                        fee_paid_msat,
                    },
                    record.as_ref(),
                )
            }
            Event::PaymentFailed { payment_id, payment_hash, reason } => {
                let id = hexs(&payment_id.0);
                if self.payment_has_status(&id, STATUS_FAILED) {
                    return Ok(());
                }
                let why = payment_failure(reason);
                let record = self.updated_payment(&id, |p| {
                    p.status = STATUS_FAILED.into();
                    p.failure = Some(why.clone());
                });
                self.emit(
                    NodeEvent::PaymentFailed { payment_id: id, payment_hash: payment_hash.map(|h| hexs(&h.0)), reason: why },
                    record.as_ref(),
                )
            }
            Event::PaymentForwarded {
                prev_channel_id,
                next_channel_id,
                prev_node_id,
                next_node_id,
                total_fee_earned_msat,
                claim_from_onchain_tx,
                outbound_amount_forwarded_msat,
                ..
            } => self.emit(
                NodeEvent::PaymentForwarded {
                    prev_channel_id: prev_channel_id.map(|c| hexs(&c.0)),
                    next_channel_id: next_channel_id.map(|c| hexs(&c.0)),
                    prev_node_id: prev_node_id.map(|n| n.to_string()),
                    next_node_id: next_node_id.map(|n| n.to_string()),
                    fee_earned_msat: total_fee_earned_msat,
                    outbound_amount_msat: outbound_amount_forwarded_msat,
                    claim_from_onchain_tx,
                },
                None,
            ),
            Event::HTLCHandlingFailed { prev_channel_id, failure_type, failure_reason } => self.emit(
                NodeEvent::HtlcHandlingFailed {
                    prev_channel_id: hexs(&prev_channel_id.0),
                    failure_type: format!("{failure_type:?}"),
                    reason: failure_reason.map(|r| format!("{r:?}")),
                },
                None,
            ),
            Event::HTLCIntercepted {
                intercept_id,
                requested_next_hop_scid,
                payment_hash,
                inbound_amount_msat,
                expected_outbound_amount_msat,
            } => self.emit(
                NodeEvent::HtlcIntercepted {
                    intercept_id: hexs(&intercept_id.0),
                    requested_next_hop_scid,
                    payment_hash: hexs(&payment_hash.0),
                    inbound_amount_msat,
                    expected_outbound_amount_msat,
                },
                None,
            ),
            Event::SpendableOutputs { outputs, channel_id } => {
                self.sweeper.track_spendable_outputs(outputs, channel_id, false, None).map_err(|_| {
                    self.logger.engine(Level::Error, "cannot track spendable outputs; will retry".into());
                    ReplayEvent()
                })
            }
            Event::ChannelPending { channel_id, user_channel_id, counterparty_node_id, funding_txo, .. } => self.emit(
                NodeEvent::ChannelPending {
                    channel_id: hexs(&channel_id.0),
                    user_channel_id: user_channel_id.to_string(),
                    counterparty_node_id: counterparty_node_id.to_string(),
                    funding_txo: format!("{}:{}", funding_txo.txid, funding_txo.vout),
                },
                None,
            ),
            Event::ChannelReady { channel_id, user_channel_id, counterparty_node_id, .. } => self.emit(
                NodeEvent::ChannelReady {
                    channel_id: hexs(&channel_id.0),
                    user_channel_id: user_channel_id.to_string(),
                    counterparty_node_id: counterparty_node_id.to_string(),
                },
                None,
            ),
            Event::ChannelClosed { channel_id, user_channel_id, reason, counterparty_node_id, .. } => self.emit(
                NodeEvent::ChannelClosed {
                    channel_id: hexs(&channel_id.0),
                    user_channel_id: user_channel_id.to_string(),
                    counterparty_node_id: counterparty_node_id.map(|n| n.to_string()),
                    reason: closure_reason(&reason),
                },
                None,
            ),
            Event::DiscardFunding { funding_info, .. } => {
                if let FundingInfo::Tx { transaction } = funding_info {
                    self.wallet.cancel(&transaction);
                }
                Ok(())
            }
            Event::ConnectionNeeded { node_id, addresses } => {
                for a in addresses {
                    if self.connect(node_id, &a.to_string()).await.is_ok() {
                        break;
                    }
                }
                Ok(())
            }
            Event::OnionMessageIntercepted { peer_node_id, message } => self.emit(
                NodeEvent::OnionMessageIntercepted {
                    peer_node_id: peer_node_id.to_string(),
                    message: hexs(&message.encode()),
                },
                None,
            ),
            Event::OnionMessagePeerConnected { peer_node_id } => {
                self.emit(NodeEvent::OnionMessagePeerConnected { peer_node_id: peer_node_id.to_string() }, None)
            }
            Event::BumpTransaction(_) => {
                // Only anchor channels ask for fee bumps, and this node negotiates none.
                self.logger.engine(Level::Warn, "unexpected BumpTransaction event ignored".into());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
