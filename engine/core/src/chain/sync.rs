//! Bringing the channel manager, chain monitor, sweeper and wallet up to the chain tip.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use lightning::chain::Confirm;
use lightning::util::logger::Level;

use crate::error::{Error, Result};
use crate::node::{Core, Node};

impl Node {
    pub async fn sync(&self) -> Result<()> {
        self.check_running()?;
        self.core.sync().await
    }
}

impl Core {
    pub(crate) async fn sync(&self) -> Result<()> {
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
        // A failed wallet sync must not also stop the fee refresh and the sweep LDK relies on:
        // its error is returned after them.
        let lapsed = self
            .store
            .lsps1_lent_before(crate::io::now_secs().saturating_sub(crate::io::WATCH_ADDRESS_SECS))
            .unwrap_or_else(|e| {
                // Then every address is looked up, as before any was lent: slower, nothing missed.
                self.logger.engine(Level::Warn, format!("cannot read the addresses lent to orders: {e}"));
                Vec::new()
            });
        let wallet = self.wallet.sync(&lapsed).await;
        if wallet.is_ok() {
            // The wallet is current: orders paid to its addresses are judged now, not a sync later.
            self.lsps1_onchain_check();
        }
        let fees = self.chain.refresh_fees().await;
        // The background processor only sweeps on a 30 s timer; sweeping right after a sync
        // claims matured outputs as soon as the chain allows.
        if self.sweeper.regenerate_and_broadcast_spend_if_necessary().is_err() {
            self.logger.engine(Level::Warn, "sweeping matured outputs failed; will retry".into());
        }
        wallet?;
        fees?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.last_sync_ms.store(now, Ordering::Relaxed);
        Ok(())
    }
}
