//! The LSP specifications over LDK's `lightning-liquidity`: LSPS0 transport (BOLT8 custom
//! messages, the peer manager's custom-message handler) and the LSPS2 JIT-channel service.
//! `params` maps the operator's options, `dispatch` decides who owns an intercepted HTLC,
//! `service` drives lightning-liquidity's LSPS2 handler from its events, `hooks` from LDK's,
//! `sweep` and `timeout` end what nobody else would (HTLCs left unanswered, stale sales).
//! LSPS1 (buy a channel) is ours entirely: `handler` routes its requests to `lsps1`, which
//! takes the orders, and `lsps1_open` opens the channels once paid.

use std::sync::Arc;

use lightning::sign::KeysManager;
use lightning::util::persist::KVStoreSyncWrapper;
use lightning_liquidity::lsps2::service::LSPS2ServiceConfig;
use lightning_liquidity::utils::time::DefaultTimeProvider;
use lightning_liquidity::{LiquidityManager, LiquidityServiceConfig};

use crate::chain::ChainSource;
use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::io::SqliteStore;
use crate::types::{ChannelManager, TxSync};

pub use handler::LspsHandler;

pub(crate) mod dispatch;
mod handler;
mod hooks;
pub(crate) mod lsps1;
pub(crate) mod lsps1_open;
pub(crate) mod lsps1_terms;
pub(crate) mod params;
mod service;
mod sweep;
pub(crate) mod timeout;

/// The liquidity manager. It persists its protocol state through the node's own KV store
/// (node.sqlite), next to the channel manager's.
pub type Liquidity = LiquidityManager<
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<ChannelManager>,
    Arc<TxSync>,
    KVStoreSyncWrapper<Arc<SqliteStore>>,
    DefaultTimeProvider,
    Arc<ChainSource>,
>;

/// Build the liquidity manager. With `[lsps2]` off it has no service at all: it answers no
/// LSPS request and advertises nothing, like the ignoring handler it replaces. With it on,
/// it serves LSPS0 (`list_protocols`) and LSPS2, with the promise secret of the data directory.
pub(crate) async fn build(
    config: &NodeConfig, keys: &Arc<KeysManager>, channel_manager: &Arc<ChannelManager>, store: &Arc<SqliteStore>,
    chain: &Arc<ChainSource>,
) -> Result<Arc<Liquidity>> {
    let service = match &config.options.lsps2 {
        Some(o) => {
            params::check(o)?;
            let promise_secret = crate::seed::load_or_create_promise_secret(&config.data_dir)?;
            Some(LiquidityServiceConfig {
                lsps2_service_config: Some(LSPS2ServiceConfig { promise_secret }),
                lsps5_service_config: None,
                advertise_service: true,
            })
        }
        None => None,
    };
    let manager = LiquidityManager::new(
        Arc::clone(keys),
        Arc::clone(keys),
        Arc::clone(channel_manager),
        None,
        None,
        KVStoreSyncWrapper(Arc::clone(store)),
        Arc::clone(chain),
        service,
        None,
    )
    .await
    .map_err(|e| Error::Storage(format!("cannot read the LSPS service state: {e}")))?;
    Ok(Arc::new(manager))
}

impl crate::node::Node {
    /// The JIT channels sold over LSPS2, newest first (for the operator).
    pub fn lsps2_channels(&self, limit: u32, offset: u32) -> Result<Vec<crate::io::JitChannelRecord>> {
        self.core.store.jit_channels(limit.clamp(1, crate::io::MAX_PAGE), offset)
    }

    /// The LSPS1 orders, newest first (for the operator).
    pub fn lsps1_orders(&self, limit: u32, offset: u32) -> Result<Vec<crate::io::Lsps1OrderRecord>> {
        self.core.store.lsps1_orders(limit.clamp(1, crate::io::MAX_PAGE), offset)
    }

    /// Whether the LSPS1 service runs.
    pub fn lsps1_enabled(&self) -> bool {
        self.core.lsps1.is_some()
    }

    /// Whether the LSPS2 service runs.
    pub fn lsps2_enabled(&self) -> bool {
        self.core.liquidity.lsps2_service_handler().is_some()
    }
}
