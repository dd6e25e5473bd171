//! The concrete LDK types the engine wires together, named once here.

use std::sync::{Arc, RwLock};

use lightning::chain::chainmonitor;
use lightning::ln::peer_handler::{IgnoringMessageHandler, PeerManager as LdkPeerManager};
use lightning::onion_message::messenger::{DefaultMessageRouter, OnionMessenger as LdkOnionMessenger};
use lightning::routing::gossip;
use lightning::routing::gossip::P2PGossipSync;
use lightning::routing::router::DefaultRouter;
use lightning::routing::scoring::ProbabilisticScorer;
use lightning::routing::scoring::ProbabilisticScoringFeeParameters;
use lightning::sign::{InMemorySigner, KeysManager};
use lightning::util::sweep::OutputSweeperSync;
use lightning_net_tokio::SocketDescriptor;
use lightning_transaction_sync::EsploraSyncClient;

use crate::chain::ChainSource;
use crate::io::SqliteStore;
use crate::keys::WalletKeys;
use crate::logger::EngineLogger;
use crate::onion::{AppMessageHandler, GuardedMessenger, RelayMessageRouter};
use crate::wallet::OnchainWallet;

pub type TxSync = EsploraSyncClient<Arc<EngineLogger>>;

pub type ChainMonitor = chainmonitor::ChainMonitor<
    InMemorySigner,
    Arc<TxSync>,
    Arc<ChainSource>,
    Arc<ChainSource>,
    Arc<EngineLogger>,
    Arc<SqliteStore>,
    Arc<KeysManager>,
>;

/// LDK's router; the channel manager uses it through `Router`, which routes held payments.
pub type InnerRouter = DefaultRouter<
    Arc<NetworkGraph>,
    Arc<EngineLogger>,
    Arc<KeysManager>,
    Arc<RwLock<Scorer>>,
    ProbabilisticScoringFeeParameters,
    Scorer,
>;

pub type Router = crate::payment::HeldRouter;

pub type ChannelManager = lightning::ln::channelmanager::ChannelManager<
    Arc<ChainMonitor>,
    Arc<ChainSource>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<WalletKeys>,
    Arc<ChainSource>,
    Arc<Router>,
    Arc<MessageRouter>,
    Arc<EngineLogger>,
>;

pub type NetworkGraph = gossip::NetworkGraph<Arc<EngineLogger>>;

pub type Scorer = ProbabilisticScorer<Arc<NetworkGraph>, Arc<EngineLogger>>;

pub type MessageRouter = DefaultMessageRouter<Arc<NetworkGraph>, Arc<EngineLogger>, Arc<KeysManager>>;

pub type GossipSync =
    P2PGossipSync<Arc<NetworkGraph>, Arc<dyn lightning::routing::utxo::UtxoLookup + Send + Sync>, Arc<EngineLogger>>;

/// The onion messenger. The custom-message slot is where the LightningRod messages plug in.
pub type OnionMessenger = LdkOnionMessenger<
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<EngineLogger>,
    Arc<ChannelManager>,
    Arc<RelayMessageRouter<MessageRouter>>,
    Arc<ChannelManager>,
    Arc<ChannelManager>,
    IgnoringMessageHandler,
    Arc<AppMessageHandler>,
>;

pub type PeerManager = LdkPeerManager<
    SocketDescriptor,
    Arc<ChannelManager>,
    Arc<GossipSync>,
    Arc<GuardedMessenger>,
    Arc<EngineLogger>,
    Arc<crate::lsps::LspsHandler>,
    Arc<KeysManager>,
    Arc<ChainMonitor>,
>;

pub type Sweeper = OutputSweeperSync<
    Arc<ChainSource>,
    Arc<OnchainWallet>,
    Arc<ChainSource>,
    Arc<TxSync>,
    Arc<SqliteStore>,
    Arc<EngineLogger>,
    Arc<KeysManager>,
>;

pub type SharedScorer = Arc<RwLock<Scorer>>;
