//! The running node: what its parts share (`Core`), its lifecycle and identity. The calls it
//! offers are spread by concern over `connection`, `channels`, `wallet`, `payment`, `onion` and
//! `event`; `builder` puts it together.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::Network;
use lightning::sign::KeysManager;
use lightning::util::logger::Level;
use lightning::util::persist::{
    KVStoreSync, CHANNEL_MANAGER_PERSISTENCE_KEY, CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
    CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::Writeable;
use tokio::sync::watch;

use crate::chain::ChainSource;
use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::io::SqliteStore;
use crate::logger::{EngineLogger, LogLine};
use crate::onion::{GuardedMessenger, RelayMessageRouter};
use crate::types::{
    ChainMonitor, ChannelManager, MessageRouter, NetworkGraph, OnionMessenger, PeerManager, Router, Sweeper, TxSync,
};
use crate::wallet::OnchainWallet;

/// Everything the running node shares between its tasks.
pub(crate) struct Core {
    pub(crate) config: NodeConfig,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) logger: Arc<EngineLogger>,
    pub(crate) chain: Arc<ChainSource>,
    pub(crate) keys: Arc<KeysManager>,
    pub(crate) wallet: Arc<OnchainWallet>,
    pub(crate) tx_sync: Arc<TxSync>,
    pub(crate) chain_monitor: Arc<ChainMonitor>,
    pub(crate) channel_manager: Arc<ChannelManager>,
    /// The channel manager's router, with the registry of held payments.
    pub(crate) router: Arc<Router>,
    pub(crate) peer_manager: Arc<PeerManager>,
    /// The gossip we learnt: where announced nodes can be reached (`node_addresses`).
    pub(crate) network_graph: Arc<NetworkGraph>,
    pub(crate) sweeper: Arc<Sweeper>,
    pub(crate) onion_messenger: Arc<OnionMessenger>,
    /// The peer manager's onion-message handler: rate limits, then LDK's messenger.
    pub(crate) guard: Arc<GuardedMessenger>,
    pub(crate) message_router: Arc<RelayMessageRouter<MessageRouter>>,
    pub(crate) events: Arc<EventSink>,
    /// LSPS0 transport and the LSPS2 service (no service at all unless `[lsps2]` is on).
    pub(crate) liquidity: Arc<crate::lsps::Liquidity>,
    /// The LSPS1 service (`[lsps1]` on): its requests come through the peer manager's handler.
    pub(crate) lsps1: Option<Arc<crate::lsps::lsps1::Lsps1Service>>,
    /// Intercepted HTLCs handed to the LSPS2 service, failed if left unanswered.
    pub(crate) lsps2_handed: crate::lsps::timeout::HandedHtlcs,
    /// LSPS2 clients offline at their JIT payment, being waited for (`lsps::client_wait`).
    pub(crate) lsps2_waiting: crate::lsps::client_wait::WaitingClients,
    /// `ConnectionNeeded` requests for the dialler task (never awaited by the event handler).
    pub(crate) dial_requests: tokio::sync::mpsc::Sender<crate::connection::DialRequest>,
    /// One chain sync at a time: overlapping syncs would confirm blocks out of order.
    pub(crate) sync_lock: tokio::sync::Mutex<()>,
    /// Unix time in milliseconds when the last chain sync succeeded (0: none yet), so that an
    /// operator's monitoring can tell a node that stopped following the chain.
    pub(crate) last_sync_ms: AtomicU64,
}

type BackgroundTask = tokio::task::JoinHandle<std::result::Result<(), lightning::io::Error>>;

pub struct Node {
    pub(crate) core: Arc<Core>,
    pub(crate) listen_addr: SocketAddr,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) running: AtomicBool,
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub(crate) background: Mutex<Option<BackgroundTask>>,
}

impl Node {
    pub(crate) fn check_running(&self) -> Result<()> {
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

    /// Unix time in seconds when the last chain sync (background or requested) succeeded.
    pub fn last_sync_at(&self) -> Option<f64> {
        match self.core.last_sync_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms as f64 / 1000.0),
        }
    }

    pub fn drain_logs(&self, max: usize) -> Vec<LogLine> {
        self.core.logger.drain(max)
    }
}
