//! Start-up: build every LDK part from the data directory in the order LDK requires (monitors
//! before the channel manager), catch up with the chain, then listen and start the tasks.

use std::io::Cursor;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{BlockHash, Network};
use lightning::chain::channelmonitor::ChannelMonitor;
use lightning::chain::BestBlock;
use lightning::ln::channelmanager::{ChainParameters, ChannelManagerReadArgs};
use lightning::ln::msgs::SocketAddress;
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler};
use lightning::routing::gossip::P2PGossipSync;
use lightning::routing::router::DefaultRouter;
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::sign::{EntropySource, InMemorySigner, KeysManager, NodeSigner};
use lightning::util::logger::Level;
use lightning::util::persist::{
    read_channel_monitors, KVStoreSync, CHANNEL_MANAGER_PERSISTENCE_KEY, CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
    CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE, NETWORK_GRAPH_PERSISTENCE_KEY,
    NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE, NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE,
    OUTPUT_SWEEPER_PERSISTENCE_KEY, OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
    OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE, SCORER_PERSISTENCE_KEY, SCORER_PERSISTENCE_PRIMARY_NAMESPACE,
    SCORER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::ReadableArgs;
use tokio::sync::watch;

use crate::chain::ChainSource;
use crate::config::{user_config, NodeConfig};
use crate::error::{Error, Result};
use crate::event::{EventSink, MessageLaneLimits};
use crate::io::SqliteStore;
use crate::keys::WalletKeys;
use crate::logger::{parse_level, EngineLogger};
use crate::node::{Core, Node};
use crate::onion::{AppMessageHandler, GuardedMessenger, RelayMessageRouter};
use crate::payment::HeldRouter;
use crate::seed::load_or_create_seed;
use crate::tasks;
use crate::types::*;
use crate::wallet::OnchainWallet;

type Monitors = Vec<(BlockHash, ChannelMonitor<InMemorySigner>)>;

impl Node {
    /// Build the node from its data directory and start it: load or create keys, restore
    /// channel monitors before the channel manager, sync to the chain tip, listen for peers.
    pub async fn start(config: NodeConfig) -> Result<Node> {
        // Checked first: a typo in an address must stop the start, not announce garbage later.
        let announce = announce_addresses(&config.options.announce_addresses)?;
        prepare_data_dir(&config)?;
        let logger = open_logger(&config)?;
        let store = Arc::new(SqliteStore::open(&config.data_dir.join("node.sqlite"))?);
        let seed = load_or_create_seed(&config.data_dir)?;
        let chain =
            Arc::new(ChainSource::new(&config.esplora_url, tokio::runtime::Handle::current(), Arc::clone(&logger))?);
        let tip = check_chain(&chain, config.network).await?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let keys = ldk_keys(config.network, &seed, now)?;

        let wallet = Arc::new(OnchainWallet::open(
            &config.data_dir.join("wallet.sqlite"),
            &seed,
            config.network,
            Arc::clone(&chain),
        )?);
        // Addresses orders hold but no lending records (handed out before migration 14): recorded
        // now, while the wallet still knows their indexes (idempotent).
        for (address, created_at) in store.lsps1_order_addresses()? {
            if let Some(idx) = wallet.external_index_of(&address) {
                store.lsps1_lend_address(idx, created_at)?;
            }
        }
        // A wallet rebuilt from the seed alone must know every address lent to an LSPS1 order.
        if let Some(max) = store.lsps1_max_lent()? {
            wallet.reveal_to(max)?;
        }
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
        let monitors = read_channel_monitors(Arc::clone(&store), Arc::clone(&keys), Arc::clone(&signer_provider))
            .map_err(|e| Error::Storage(format!("cannot read channel monitors: {e}")))?;
        let network_graph = read_network_graph(&store, config.network, &logger)?;
        let scorer = read_scorer(&store, &network_graph, &logger)?;
        let router = Arc::new(HeldRouter::new(
            DefaultRouter::new(
                Arc::clone(&network_graph),
                Arc::clone(&logger),
                Arc::clone(&keys),
                Arc::clone(&scorer),
                ProbabilisticScoringFeeParameters::default(),
            ),
            Arc::clone(&network_graph),
            Arc::clone(&logger),
        ));
        let parts = ManagerParts {
            config: &config,
            chain: &chain,
            keys: &keys,
            signer_provider: &signer_provider,
            chain_monitor: &chain_monitor,
            router: &router,
            message_router: &Arc::new(MessageRouter::new(Arc::clone(&network_graph), Arc::clone(&keys))),
            logger: &logger,
        };
        let channel_manager = read_or_create_channel_manager(&parts, &store, monitors, tip, now)?;
        let sweeper = read_or_create_sweeper(&store, &chain, &tx_sync, &keys, &wallet, &logger, &channel_manager)?;

        let gossip_sync = Arc::new(P2PGossipSync::new(Arc::clone(&network_graph), None, Arc::clone(&logger)));
        let opts = &config.options;
        let limits = MessageLaneLimits {
            max_total: opts.max_queued_onion_messages as u64,
            max_intercepted_per_peer: opts.max_intercepted_per_peer as u64,
        };
        let events = Arc::new(EventSink::new(Arc::clone(&store), Arc::clone(&logger), limits));
        let app_handler = Arc::new(AppMessageHandler { sink: Arc::clone(&events) });
        let relay_router =
            Arc::new(RelayMessageRouter::new(MessageRouter::new(Arc::clone(&network_graph), Arc::clone(&keys))));
        let onion_messenger: Arc<OnionMessenger> = Arc::new(OnionMessenger::new_with_offline_peer_interception(
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&logger),
            Arc::clone(&channel_manager),
            Arc::clone(&relay_router),
            Arc::clone(&channel_manager),
            Arc::clone(&channel_manager),
            IgnoringMessageHandler {},
            Arc::clone(&app_handler),
        ));
        let guard = Arc::new(GuardedMessenger::new(
            Arc::clone(&onion_messenger),
            Arc::clone(&keys),
            Arc::clone(&logger),
            Arc::clone(&channel_manager),
            app_handler,
            Arc::clone(&events),
            (opts.onion_message_rate_per_sec, opts.onion_message_burst),
        ));
        let liquidity = crate::lsps::build(&config, &keys, &channel_manager, &store, &chain).await?;
        // HTLCs handed to the LSPS2 service before a stop: LDK will not hand them out again.
        let lsps2_handed = crate::lsps::timeout::HandedHtlcs::load(&store, std::time::Instant::now())?;
        let lsps1 = match &config.options.lsps1 {
            Some(o) => Some(Arc::new(crate::lsps::lsps1::Lsps1Service::new(
                o.clone(),
                Arc::clone(&store),
                Box::new(crate::lsps::lsps1::LdkLsps1Node {
                    channel_manager: Arc::clone(&channel_manager),
                    wallet: Arc::clone(&wallet),
                    chain: Arc::clone(&chain),
                    network: config.network,
                }),
                Arc::clone(&keys),
                Arc::clone(&logger),
            )?)),
            None => None,
        };
        let lsps_handler =
            Arc::new(crate::lsps::LspsHandler::new(Arc::clone(&liquidity), lsps1.clone(), Arc::clone(&logger)));
        let handler = MessageHandler {
            chan_handler: Arc::clone(&channel_manager),
            route_handler: Arc::clone(&gossip_sync),
            onion_message_handler: Arc::clone(&guard),
            custom_message_handler: lsps_handler,
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

        let (dial_requests, dial_queue) = tokio::sync::mpsc::channel(crate::connection::DIAL_QUEUE);
        let core = Arc::new(Core {
            config: config.clone(),
            store,
            logger: Arc::clone(&logger),
            chain,
            keys,
            wallet,
            tx_sync,
            chain_monitor,
            channel_manager: Arc::clone(&channel_manager),
            router,
            peer_manager,
            network_graph: Arc::clone(&network_graph),
            sweeper,
            onion_messenger,
            guard,
            message_router: relay_router,
            events,
            liquidity,
            lsps1,
            lsps2_handed,
            lsps2_waiting: Default::default(),
            dial_requests,
            sync_lock: tokio::sync::Mutex::new(()),
            last_sync_ms: std::sync::atomic::AtomicU64::new(0),
        });

        // Catch up with the chain before accepting peers, so nothing acts on a stale tip.
        core.sync().await?;
        core.lsps2_reconcile().await;

        let listener = bind_listener(&config.options.listen_addr).await?;
        let listen_addr = listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;
        let (stop, _) = watch::channel(false);
        let mut running = vec![
            tasks::accept_peers(&core, listener, stop.subscribe()),
            tasks::sync_periodically(&core, stop.subscribe()),
            tasks::reconnect_channel_peers(&core, stop.subscribe()),
            tasks::dial_requested(&core, dial_queue, stop.subscribe()),
            tasks::liquidity_events(&core, stop.subscribe()),
            tasks::lsps2_sweep(&core, stop.subscribe()),
        ];
        if !announce.is_empty() {
            running.push(tasks::announce_node(&core, announce, stop.subscribe()));
        }
        if config.options.forward_immediately {
            running.push(tasks::forward_immediately(&core, stop.subscribe()));
        }
        let background = tasks::background_processor(&core, gossip_sync, scorer, stop.subscribe());

        logger.engine(
            Level::Info,
            format!("node {} listening on {listen_addr}, chain tip {}", channel_manager.get_our_node_id(), tip.height),
        );
        Ok(Node {
            core,
            listen_addr,
            stop,
            running: AtomicBool::new(true),
            tasks: Mutex::new(running),
            background: Mutex::new(Some(background)),
        })
    }
}

/// Parse the addresses to announce ("host:port", IPv4/IPv6/DNS/onion, as BOLT 7 allows); LDK
/// panics on more than 100, so that is an error here.
fn announce_addresses(addresses: &[String]) -> Result<Vec<SocketAddress>> {
    if addresses.len() > 100 {
        return Err(Error::Config(format!("announce_addresses has {} entries, at most 100", addresses.len())));
    }
    addresses
        .iter()
        .map(|a| {
            SocketAddress::from_str(a).map_err(|_| Error::Config(format!("announce_addresses: '{a}' is not host:port")))
        })
        .collect()
}

fn prepare_data_dir(config: &NodeConfig) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::Config(format!("cannot create data directory {}: {e}", config.data_dir.display())))?;
    // Channel state and the seed live here: readable by the node's user only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::Config(format!("cannot restrict {} to its owner: {e}", config.data_dir.display())))?;
    }
    Ok(())
}

fn open_logger(config: &NodeConfig) -> Result<Arc<EngineLogger>> {
    let wanted = &config.options.log_level;
    let level = parse_level(wanted).ok_or_else(|| {
        Error::Config(format!("unknown log level '{wanted}' (use trace, debug, info, warn or error)"))
    })?;
    let opts = &config.options;
    let logger =
        EngineLogger::new(Some(&config.data_dir.join("ldk.log")), level, opts.log_max_bytes, opts.log_keep_files)
            .map_err(|e| Error::Storage(format!("cannot open ldk.log: {e}")))?;
    Ok(Arc::new(logger))
}

/// Refuse an Esplora server of another network (its genesis block tells), then learn the tip
/// and the fee rates before anything needs them.
async fn check_chain(chain: &ChainSource, network: Network) -> Result<BestBlock> {
    let height = chain.tip_height().await?;
    let hash = chain.client.get_tip_hash().await.map_err(|e| chain.unreachable(e))?;
    let genesis = chain.client.get_block_hash(0).await.map_err(|e| chain.unreachable(e))?;
    if genesis != bitcoin::constants::genesis_block(network).block_hash() {
        return Err(Error::Config(format!(
            "the Esplora server at {} serves another network than '{network}' (genesis {genesis})",
            chain.url
        )));
    }
    chain.refresh_fees().await?;
    Ok(BestBlock::new(hash, height))
}

/// LDK's keys and the wallet's come from one seed but separate hardened branches.
fn ldk_keys(network: Network, seed: &[u8; 64], now: Duration) -> Result<Arc<KeysManager>> {
    let secp = Secp256k1::new();
    let master = Xpriv::new_master(network, seed).map_err(|e| Error::Config(e.to_string()))?;
    let branch = ChildNumber::from_hardened_idx(535).map_err(|e| Error::Config(e.to_string()))?;
    let ldk_key = master.derive_priv(&secp, &[branch]).map_err(|e| Error::Config(e.to_string()))?;
    let secret = ldk_key.private_key.secret_bytes();
    Ok(Arc::new(KeysManager::new(&secret, now.as_secs(), now.subsec_nanos(), true)))
}

fn read_network_graph(store: &SqliteStore, network: Network, logger: &Arc<EngineLogger>) -> Result<Arc<NetworkGraph>> {
    let stored = store.read(
        NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE,
        NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE,
        NETWORK_GRAPH_PERSISTENCE_KEY,
    );
    let graph = match stored {
        Ok(bytes) => NetworkGraph::read(&mut Cursor::new(bytes), Arc::clone(logger))
            .map_err(|e| Error::Storage(format!("cannot read the network graph: {e:?}")))?,
        Err(_) => NetworkGraph::new(network, Arc::clone(logger)),
    };
    Ok(Arc::new(graph))
}

fn read_scorer(store: &SqliteStore, graph: &Arc<NetworkGraph>, logger: &Arc<EngineLogger>) -> Result<SharedScorer> {
    let decay = ProbabilisticScoringDecayParameters::default();
    let stored = store.read(
        SCORER_PERSISTENCE_PRIMARY_NAMESPACE,
        SCORER_PERSISTENCE_SECONDARY_NAMESPACE,
        SCORER_PERSISTENCE_KEY,
    );
    let scorer = match stored {
        Ok(bytes) => ProbabilisticScorer::read(&mut Cursor::new(bytes), (decay, Arc::clone(graph), Arc::clone(logger)))
            .map_err(|e| Error::Storage(format!("cannot read the scorer: {e:?}")))?,
        Err(_) => ProbabilisticScorer::new(decay, Arc::clone(graph), Arc::clone(logger)),
    };
    Ok(Arc::new(RwLock::new(scorer)))
}

/// What the channel manager is built from, whether read from the store or created afresh.
struct ManagerParts<'a> {
    config: &'a NodeConfig,
    chain: &'a Arc<ChainSource>,
    keys: &'a Arc<KeysManager>,
    signer_provider: &'a Arc<WalletKeys>,
    chain_monitor: &'a Arc<ChainMonitor>,
    router: &'a Arc<Router>,
    message_router: &'a Arc<MessageRouter>,
    logger: &'a Arc<EngineLogger>,
}

/// Read the channel manager (checked against the monitors) or, on a first start, create one
/// at the current tip; then hand the monitors to the chain monitor.
fn read_or_create_channel_manager(
    p: &ManagerParts<'_>, store: &SqliteStore, mut monitors: Monitors, tip: BestBlock, now: Duration,
) -> Result<Arc<ChannelManager>> {
    let ucfg = user_config(&p.config.options);
    let stored = store.read(
        CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
        CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
        CHANNEL_MANAGER_PERSISTENCE_KEY,
    );
    let channel_manager = match stored {
        Ok(bytes) => {
            let refs = monitors.iter().map(|(_, m)| m).collect::<Vec<_>>();
            let args = ChannelManagerReadArgs::new(
                Arc::clone(p.keys),
                Arc::clone(p.keys),
                Arc::clone(p.signer_provider),
                Arc::clone(p.chain),
                Arc::clone(p.chain_monitor),
                Arc::clone(p.chain),
                Arc::clone(p.router),
                Arc::clone(p.message_router),
                Arc::clone(p.logger),
                ucfg,
                refs,
            );
            let (_hash, cm) = <(BlockHash, ChannelManager)>::read(&mut Cursor::new(bytes), args)
                .map_err(|e| Error::Storage(format!("cannot read the channel manager: {e:?}")))?;
            cm
        }
        Err(e) if e.kind() == lightning::io::ErrorKind::NotFound => {
            if !monitors.is_empty() {
                return Err(Error::Storage(
                    "channel monitors exist but the channel manager is missing; refusing to start a fresh node over them"
                        .into(),
                ));
            }
            let params = ChainParameters { network: p.config.network, best_block: tip };
            ChannelManager::new(
                Arc::clone(p.chain),
                Arc::clone(p.chain_monitor),
                Arc::clone(p.chain),
                Arc::clone(p.router),
                Arc::clone(p.message_router),
                Arc::clone(p.logger),
                Arc::clone(p.keys),
                Arc::clone(p.keys),
                Arc::clone(p.signer_provider),
                ucfg,
                params,
                now.as_secs() as u32,
            )
        }
        Err(e) => return Err(Error::Storage(format!("cannot read the channel manager: {e}"))),
    };
    for (_, monitor) in monitors.drain(..) {
        let id = monitor.channel_id();
        p.chain_monitor
            .load_existing_monitor(id, monitor)
            .map_err(|_| Error::Storage(format!("cannot load the monitor of channel {id}")))?;
    }
    Ok(Arc::new(channel_manager))
}

fn read_or_create_sweeper(
    store: &Arc<SqliteStore>, chain: &Arc<ChainSource>, tx_sync: &Arc<TxSync>, keys: &Arc<KeysManager>,
    wallet: &Arc<OnchainWallet>, logger: &Arc<EngineLogger>, channel_manager: &ChannelManager,
) -> Result<Arc<Sweeper>> {
    let stored = store.read(
        OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
        OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
        OUTPUT_SWEEPER_PERSISTENCE_KEY,
    );
    let sweeper = match stored {
        Ok(bytes) => {
            let args = (
                Arc::clone(chain),
                Arc::clone(chain),
                Some(Arc::clone(tx_sync)),
                Arc::clone(keys),
                Arc::clone(wallet),
                Arc::clone(store),
                Arc::clone(logger),
            );
            let (_best, sweeper) = <(BestBlock, Sweeper)>::read(&mut Cursor::new(bytes), args)
                .map_err(|e| Error::Storage(format!("cannot read the output sweeper: {e:?}")))?;
            sweeper
        }
        Err(_) => Sweeper::new(
            channel_manager.current_best_block(),
            Arc::clone(chain),
            Arc::clone(chain),
            Some(Arc::clone(tx_sync)),
            Arc::clone(keys),
            Arc::clone(wallet),
            Arc::clone(store),
            Arc::clone(logger),
        ),
    };
    Ok(Arc::new(sweeper))
}

async fn bind_listener(listen_addr: &str) -> Result<tokio::net::TcpListener> {
    let listen: SocketAddr = tokio::net::lookup_host(listen_addr)
        .await
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| Error::Config(format!("cannot resolve listen address '{listen_addr}'")))?;
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e} (is the port in use?)")))
}
