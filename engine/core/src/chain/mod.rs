//! The Esplora chain source: fee estimates, broadcasting, and the client the LDK and wallet
//! syncs share. The same code talks to the embedded regtest chain and to a public Esplora.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bitcoin::Transaction;
use esplora_client::AsyncClient;
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::util::logger::Level;

use crate::error::{Error, Result};
use crate::logger::EngineLogger;

mod sync;

/// LDK's floor: 253 sat per 1000 weight units is 1.012 sat/vB, just above Core's relay minimum.
const FEERATE_FLOOR_SAT_PER_KW: u32 = 253;

pub struct ChainSource {
    pub url: String,
    pub client: AsyncClient,
    fees: RwLock<HashMap<u16, f64>>,
    runtime: tokio::runtime::Handle,
    logger: Arc<EngineLogger>,
}

fn target_blocks(t: ConfirmationTarget) -> u16 {
    match t {
        ConfirmationTarget::MaximumFeeEstimate => 1,
        ConfirmationTarget::UrgentOnChainSweep => 6,
        ConfirmationTarget::MinAllowedAnchorChannelRemoteFee => 1008,
        ConfirmationTarget::MinAllowedNonAnchorChannelRemoteFee => 144,
        ConfirmationTarget::AnchorChannelFee => 1008,
        ConfirmationTarget::NonAnchorChannelFee => 12,
        ConfirmationTarget::ChannelCloseMinimum => 144,
        ConfirmationTarget::OutputSpendingFee => 12,
    }
}

impl ChainSource {
    pub fn new(url: &str, runtime: tokio::runtime::Handle, logger: Arc<EngineLogger>) -> Result<Self> {
        let url = url.trim_end_matches('/').to_string();
        let client = esplora_client::Builder::new(&url)
            .timeout(10)
            .build_async()
            .map_err(|e| Error::ChainSource(format!("cannot build an Esplora client for {url}: {e}")))?;
        Ok(Self { url, client, fees: RwLock::new(HashMap::new()), runtime, logger })
    }

    pub async fn tip_height(&self) -> Result<u32> {
        self.client.get_height().await.map_err(|e| self.unreachable(e))
    }

    pub fn unreachable(&self, e: esplora_client::Error) -> Error {
        Error::ChainSource(format!(
            "the Esplora server at {} did not answer as expected ({e}); check chain.esplora_url and that the server is running",
            self.url
        ))
    }

    /// Refresh the fee cache from `/fee-estimates`.
    pub async fn refresh_fees(&self) -> Result<()> {
        let est = self.client.get_fee_estimates().await.map_err(|e| self.unreachable(e))?;
        let mut fees = self.fees.write().unwrap_or_else(|p| p.into_inner());
        fees.clear();
        fees.extend(est);
        Ok(())
    }

    /// sat/vB for a confirmation target: the estimate for the largest target not above it.
    pub fn sat_per_vb(&self, target_blocks: u16) -> f64 {
        let fees = self.fees.read().unwrap_or_else(|p| p.into_inner());
        let mut best: Option<(u16, f64)> = None;
        for (&k, &v) in fees.iter() {
            if k <= target_blocks && best.is_none_or(|(bk, _)| k > bk) {
                best = Some((k, v));
            }
        }
        // Nothing at or below the target: take the fastest estimate we have, else 1 sat/vB.
        best.map(|(_, v)| v).or_else(|| fees.iter().min_by_key(|(k, _)| **k).map(|(_, v)| *v)).unwrap_or(1.0)
    }

    pub fn feerate_sat_per_kw(&self, target_blocks: u16) -> u32 {
        let kw = (self.sat_per_vb(target_blocks) * 250.0).round() as u32;
        kw.max(FEERATE_FLOOR_SAT_PER_KW)
    }

    pub async fn broadcast(&self, tx: &Transaction) -> Result<()> {
        self.client
            .broadcast(tx)
            .await
            .map_err(|e| Error::ChainSource(format!("broadcast of {} rejected: {e}", tx.compute_txid())))
    }
}

impl FeeEstimator for ChainSource {
    fn get_est_sat_per_1000_weight(&self, target: ConfirmationTarget) -> u32 {
        self.feerate_sat_per_kw(target_blocks(target))
    }
}

impl BroadcasterInterface for ChainSource {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        // LDK calls this from its own threads and rebroadcasts on its own timer, so a failed
        // broadcast is logged, not retried here. Packages go parent-first.
        let txs: Vec<Transaction> = txs.iter().map(|t| (*t).clone()).collect();
        let client = self.client.clone();
        let logger = Arc::clone(&self.logger);
        self.runtime.spawn(async move {
            for tx in txs {
                let txid = tx.compute_txid();
                match client.broadcast(&tx).await {
                    Ok(()) => logger.engine(Level::Info, format!("broadcast {txid}")),
                    Err(e) => logger.engine(Level::Warn, format!("broadcast of {txid} failed: {e}")),
                }
            }
        });
    }
}
