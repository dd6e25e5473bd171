//! The LSP specifications over LDK's `lightning-liquidity`: LSPS0 transport (BOLT8 custom
//! messages, the peer manager's custom-message handler) and the LSPS2 JIT-channel service.
//! `params` maps the operator's options, `dispatch` decides who owns an intercepted HTLC,
//! `service` drives lightning-liquidity's LSPS2 handler from its events, `hooks` from LDK's,
//! `sweep` and `timeout` end what nobody else would (HTLCs left unanswered, stale sales).
//! `webhooks` is LSPS5 (bLIP-55): its signed notifications become durable engine events that
//! the application POSTs, and an optional LSPS5 client for wallets (and tests) on this engine;
//! `lsps5_guard` rate-limits and checks the LSPS5 requests before lightning-liquidity sees them.
//! LSPS1 (buy a channel) is ours entirely: `handler` routes its requests to `lsps1`, which
//! takes the orders, and `lsps1_open` opens the channels once paid.

use std::sync::Arc;

use lightning::sign::KeysManager;
use lightning::util::persist::KVStoreSyncWrapper;
use lightning_liquidity::lsps2::service::LSPS2ServiceConfig;
use lightning_liquidity::lsps5::client::LSPS5ClientConfig;
use lightning_liquidity::lsps5::service::LSPS5ServiceConfig;
use lightning_liquidity::utils::time::DefaultTimeProvider;
use lightning_liquidity::{LiquidityClientConfig, LiquidityManager, LiquidityServiceConfig};

use crate::chain::ChainSource;
use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::io::SqliteStore;
use crate::types::{ChannelManager, TxSync};

pub use handler::LspsHandler;

pub(crate) mod client_wait;
pub(crate) mod dispatch;
mod handler;
mod hooks;
pub(crate) mod lsps1;
mod lsps1_onchain;
pub(crate) mod lsps1_open;
pub(crate) mod lsps1_terms;
mod lsps5_guard;
pub(crate) mod params;
mod replies;
mod service;
mod sweep;
pub(crate) mod timeout;
pub(crate) mod webhooks;

pub use webhooks::lsps5_verify;

/// The spec's (and lightning-liquidity's default) bound on webhooks per client.
pub const MAX_WEBHOOKS_PER_CLIENT: u32 = 10;

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

/// Build the liquidity manager. With `[lsps2]` and `[lsps5]` off it has no service at all: it
/// answers no LSPS request and advertises nothing, like the ignoring handler it replaces. With
/// either on, it serves LSPS0 (`list_protocols`) and the services turned on (LSPS2 with the
/// promise secret of the data directory). `lsps5_client` adds the LSPS5 client side.
pub(crate) async fn build(
    config: &NodeConfig, keys: &Arc<KeysManager>, channel_manager: &Arc<ChannelManager>, store: &Arc<SqliteStore>,
    chain: &Arc<ChainSource>,
) -> Result<Arc<Liquidity>> {
    let o = &config.options;
    let lsps2_service_config = match &o.lsps2 {
        Some(l) => {
            params::check(l)?;
            Some(LSPS2ServiceConfig { promise_secret: crate::seed::load_or_create_promise_secret(&config.data_dir)? })
        }
        None => None,
    };
    let lsps5_service_config = match o.lsps5_max_webhooks {
        // lightning-liquidity asserts a non-zero bound; the spec caps it at 10.
        Some(n) if !(1..=MAX_WEBHOOKS_PER_CLIENT).contains(&n) => {
            return Err(Error::InvalidArgument(format!(
                "lsps5 max_webhooks_per_client must be 1 to {MAX_WEBHOOKS_PER_CLIENT}, not {n}"
            )))
        }
        Some(n) => Some(LSPS5ServiceConfig { max_webhooks_per_client: n }),
        None => None,
    };
    if o.lsps5_wait_for_client_secs > client_wait::MAX_WAIT_SECS {
        return Err(Error::InvalidArgument(format!(
            "lsps5 wait_for_client_secs must be 0 to {}, not {}",
            client_wait::MAX_WAIT_SECS,
            o.lsps5_wait_for_client_secs
        )));
    }
    let service = (lsps2_service_config.is_some() || lsps5_service_config.is_some())
        .then_some(LiquidityServiceConfig { lsps2_service_config, lsps5_service_config, advertise_service: true });
    let client = o.lsps5_client.then_some(LiquidityClientConfig {
        lsps1_client_config: None,
        lsps2_client_config: None,
        lsps5_client_config: Some(LSPS5ClientConfig {}),
    });
    let manager = LiquidityManager::new(
        Arc::clone(keys),
        Arc::clone(keys),
        Arc::clone(channel_manager),
        None,
        None,
        KVStoreSyncWrapper(Arc::clone(store)),
        Arc::clone(chain),
        service,
        client,
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
