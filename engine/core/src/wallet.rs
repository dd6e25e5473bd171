//! The on-chain wallet: BDK with BIP84 descriptors from the node seed, persisted in SQLite,
//! synced over the same Esplora client as LDK.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bdk_esplora::EsploraAsyncExt;
use bdk_wallet::bitcoin::bip32::Xpriv;
use bdk_wallet::chain::spk_client::SyncRequest;
use bdk_wallet::rusqlite::Connection;
use bdk_wallet::template::Bip84;
use bdk_wallet::{KeychainKind, PersistedWallet, SignOptions, Wallet};
use bitcoin::{Address, Amount, FeeRate, Network, ScriptBuf, Transaction, Txid};
use lightning::sign::ChangeDestinationSourceSync;

use crate::chain::ChainSource;
use crate::error::{Error, Result};

const STOP_GAP: usize = 20;
const PARALLEL_REQUESTS: usize = 4;
/// Unused order addresses past their watch looked up per sync (a rotating slice; see `sync`).
const LAPSED_PER_SYNC: usize = 500;

struct Inner {
    wallet: PersistedWallet<Connection>,
    conn: Connection,
    full_scan_done: bool,
}

pub struct OnchainWallet {
    inner: Mutex<Inner>,
    chain: Arc<ChainSource>,
    network: Network,
    /// Serialises syncs: two overlapping syncs would apply updates out of order.
    sync_lock: tokio::sync::Mutex<()>,
    /// The last lapsed order address a sync looked up: the next slice starts after it.
    lapsed_cursor: AtomicU32,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct WalletBalance {
    pub confirmed_sat: u64,
    pub trusted_pending_sat: u64,
    pub untrusted_pending_sat: u64,
    pub immature_sat: u64,
    pub total_sat: u64,
    pub spendable_sat: u64,
}

impl OnchainWallet {
    pub fn open(db_path: &std::path::Path, seed: &[u8; 64], network: Network, chain: Arc<ChainSource>) -> Result<Self> {
        let xprv =
            Xpriv::new_master(network, seed).map_err(|e| Error::Wallet(format!("cannot derive wallet key: {e}")))?;
        let mut conn = Connection::open(db_path)
            .map_err(|e| Error::Storage(format!("cannot open wallet db {}: {e}", db_path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| Error::Storage(e.to_string()))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| Error::Storage(e.to_string()))?;
        let ext = Bip84(xprv, KeychainKind::External);
        let int = Bip84(xprv, KeychainKind::Internal);
        let loaded = Wallet::load()
            .descriptor(KeychainKind::External, Some(ext.clone()))
            .descriptor(KeychainKind::Internal, Some(int.clone()))
            .extract_keys()
            .check_network(network)
            .load_wallet(&mut conn)
            .map_err(|e| {
                Error::Wallet(format!(
                    "cannot load the wallet (was the data directory made for another network or seed?): {e}"
                ))
            })?;
        // Only a wallet made new here (first start, or its file lost: rebuilt from the seed) needs
        // a full scan; a loaded one knows its addresses, and a scan of every one at each start
        // would grow with the addresses lent to orders.
        let full_scan_done = loaded.is_some();
        let wallet = match loaded {
            Some(w) => w,
            None => Wallet::create(ext, int)
                .network(network)
                .create_wallet(&mut conn)
                .map_err(|e| Error::Wallet(format!("cannot create the wallet: {e}")))?,
        };
        Ok(Self {
            inner: Mutex::new(Inner { wallet, conn, full_scan_done }),
            chain,
            network,
            sync_lock: tokio::sync::Mutex::new(()),
            lapsed_cursor: AtomicU32::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(inner: &mut Inner) -> Result<()> {
        inner
            .wallet
            .persist(&mut inner.conn)
            .map(|_| ())
            .map_err(|e| Error::Storage(format!("cannot persist the wallet: {e}")))
    }

    pub fn network(&self) -> Network {
        self.network
    }

    pub fn new_address(&self) -> Result<Address> {
        self.new_address_indexed().map(|(_, a)| a)
    }

    /// The next external address with its derivation index.
    pub fn new_address_indexed(&self) -> Result<(u32, Address)> {
        let mut inner = self.lock();
        let info = inner.wallet.reveal_next_address(KeychainKind::External);
        // The address must be durable before anyone is told to pay it.
        Self::persist(&mut inner)?;
        Ok((info.index, info.address))
    }

    /// The derivation index of one of this wallet's revealed external addresses (None: not one).
    pub fn external_index_of(&self, address: &str) -> Option<u32> {
        let script = Address::from_str(address).ok()?.assume_checked().script_pubkey();
        match self.lock().wallet.spk_index().index_of_spk(script) {
            Some((KeychainKind::External, idx)) => Some(*idx),
            _ => None,
        }
    }

    /// Reveal the external addresses up to `idx`: a wallet rebuilt from the seed alone learns
    /// again every address handed to an order (its full scan stops at 20 unused in a row), so
    /// each is synced, and none is handed out a second time.
    pub fn reveal_to(&self, idx: u32) -> Result<()> {
        let mut inner = self.lock();
        let _ = inner.wallet.reveal_addresses_to(KeychainKind::External, idx).count();
        Self::persist(&mut inner)
    }

    pub fn balance(&self) -> WalletBalance {
        let b = self.lock().wallet.balance();
        WalletBalance {
            confirmed_sat: b.confirmed.to_sat(),
            trusted_pending_sat: b.trusted_pending.to_sat(),
            untrusted_pending_sat: b.untrusted_pending.to_sat(),
            immature_sat: b.immature.to_sat(),
            total_sat: b.total().to_sat(),
            spendable_sat: b.trusted_spendable().to_sat(),
        }
    }

    /// Full scan the first time (finds funds of a restored seed), then revealed scripts only.
    /// `lapsed`: external indexes handed to LSPS1 orders whose watch is over. Those still
    /// unused are looked up `LAPSED_PER_SYNC` a sync, in turn, not all at every sync: strangers'
    /// unpaid orders must not make each sync cost more for good. A late payment to one is still
    /// found, a few rounds later.
    pub async fn sync(&self, lapsed: &[u32]) -> Result<()> {
        let _guard = self.sync_lock.lock().await;
        let full = !self.lock().full_scan_done;
        if full {
            let request = self.lock().wallet.start_full_scan().build();
            let update = self
                .chain
                .client
                .full_scan(request, STOP_GAP, PARALLEL_REQUESTS)
                .await
                .map_err(|e| Error::ChainSource(format!("wallet scan via {} failed: {e}", self.chain.url)))?;
            let mut inner = self.lock();
            inner.wallet.apply_update(update).map_err(|e| Error::Wallet(format!("cannot apply chain update: {e}")))?;
            inner.full_scan_done = true;
            Self::persist(&mut inner)
        } else {
            let (request, looked_up_to) = {
                let inner = self.lock();
                let w = &inner.wallet;
                let index = w.spk_index();
                let unused: Vec<u32> =
                    lapsed.iter().copied().filter(|i| !index.is_used(KeychainKind::External, *i)).collect();
                let after = self.lapsed_cursor.load(Ordering::Relaxed);
                let (left_out, looked_up_to) = lapsed_left_out(&unused, after, LAPSED_PER_SYNC);
                let spks: Vec<_> = index
                    .revealed_spks(..)
                    .filter(|((k, i), _)| !(*k == KeychainKind::External && left_out.contains(i)))
                    .collect();
                let tip = w.local_chain().tip();
                let expected: Vec<_> =
                    w.tx_graph().list_expected_spk_txids(w.local_chain(), tip.block_id(), index, ..).collect();
                let request =
                    SyncRequest::builder().chain_tip(tip).spks_with_indexes(spks).expected_spk_txids(expected).build();
                (request, looked_up_to)
            };
            let update = self
                .chain
                .client
                .sync(request, PARALLEL_REQUESTS)
                .await
                .map_err(|e| Error::ChainSource(format!("wallet sync via {} failed: {e}", self.chain.url)))?;
            let mut inner = self.lock();
            inner.wallet.apply_update(update).map_err(|e| Error::Wallet(format!("cannot apply chain update: {e}")))?;
            // Only a slice applied counts as looked up: a failed sync tries it again.
            self.lapsed_cursor.store(looked_up_to, Ordering::Relaxed);
            Self::persist(&mut inner)
        }
    }

    pub fn parse_address(&self, address: &str) -> Result<Address> {
        let unchecked = Address::from_str(address.trim())
            .map_err(|e| Error::Address(format!("'{address}' is not a Bitcoin address: {e}")))?;
        unchecked.require_network(self.network).map_err(|_| {
            Error::Address(format!("'{address}' is not an address for {} (this node's network)", self.network))
        })
    }

    /// Build and sign a transaction paying `amount` (or everything, for None) to `script`.
    /// The transaction is recorded as unconfirmed so its inputs are not spent twice.
    pub fn build_payment(
        &self, script: ScriptBuf, amount: Option<Amount>, feerate_sat_per_kw: u32,
    ) -> Result<Transaction> {
        let mut inner = self.lock();
        let fee_rate = FeeRate::from_sat_per_kwu(feerate_sat_per_kw as u64);
        let mut psbt = {
            let mut b = inner.wallet.build_tx();
            match amount {
                Some(a) => {
                    b.add_recipient(script, a);
                }
                None => {
                    b.drain_wallet().drain_to(script);
                }
            }
            b.fee_rate(fee_rate);
            b.finish().map_err(|e| {
                let msg = e.to_string();
                if msg.contains("Insufficient funds")
                    || msg.contains("InsufficientFunds")
                    || msg.contains("insufficient")
                {
                    Error::InsufficientFunds(format!("the on-chain wallet cannot pay this: {msg}"))
                } else {
                    Error::Wallet(format!("cannot build the transaction: {msg}"))
                }
            })?
        };
        let finalized = inner
            .wallet
            .sign(&mut psbt, SignOptions::default())
            .map_err(|e| Error::Wallet(format!("cannot sign: {e}")))?;
        if !finalized {
            return Err(Error::Wallet("the wallet could not finalize the transaction".into()));
        }
        let tx = psbt.extract_tx().map_err(|e| Error::Wallet(format!("cannot extract the transaction: {e}")))?;
        inner.wallet.apply_unconfirmed_txs([(tx.clone(), crate::io::now_secs())]);
        Self::persist(&mut inner)?;
        Ok(tx)
    }

    /// Forget an unbroadcast transaction so its inputs become spendable again.
    pub fn cancel(&self, tx: &Transaction) {
        let mut inner = self.lock();
        inner.wallet.cancel_tx(tx);
        let _ = Self::persist(&mut inner);
    }

    pub async fn send(&self, address: &str, amount_sat: Option<u64>, feerate_sat_per_kw: u32) -> Result<Txid> {
        let addr = self.parse_address(address)?;
        if amount_sat == Some(0) {
            return Err(Error::InvalidArgument("amount must be positive".into()));
        }
        let tx = self.build_payment(addr.script_pubkey(), amount_sat.map(Amount::from_sat), feerate_sat_per_kw)?;
        if let Err(e) = self.chain.broadcast(&tx).await {
            self.cancel(&tx);
            return Err(e);
        }
        Ok(tx.compute_txid())
    }
}

impl OnchainWallet {
    /// Every confirmed output (spent or not) paying one of `addresses`, by address, with its
    /// confirmations at the wallet's tip and its block's time. An address that is not this
    /// network's is left out; one not the wallet's has no outputs.
    pub(crate) fn receipts(
        &self, addresses: &[String],
    ) -> std::collections::HashMap<String, Vec<crate::io::OnchainReceipt>> {
        let wanted: std::collections::HashMap<ScriptBuf, &String> = addresses
            .iter()
            .filter_map(|a| {
                let addr = Address::from_str(a).ok()?.require_network(self.network).ok()?;
                Some((addr.script_pubkey(), a))
            })
            .collect();
        let mut out: std::collections::HashMap<String, Vec<crate::io::OnchainReceipt>> = Default::default();
        if wanted.is_empty() {
            return out;
        }
        let inner = self.lock();
        let tip = inner.wallet.latest_checkpoint().height();
        for o in inner.wallet.list_output() {
            let Some(address) = wanted.get(&o.txout.script_pubkey) else { continue };
            let bdk_wallet::chain::ChainPosition::Confirmed { anchor, .. } = o.chain_position else { continue };
            out.entry((*address).clone()).or_default().push(crate::io::OnchainReceipt {
                outpoint: o.outpoint.to_string(),
                sat: o.txout.value.to_sat(),
                confirmations: tip.saturating_sub(anchor.block_id.height).saturating_add(1),
                block_time: anchor.confirmation_time,
            });
        }
        out
    }

    /// A new internal (change) script, persisted before it is handed out.
    pub(crate) fn fresh_script(&self) -> std::result::Result<ScriptBuf, ()> {
        let mut inner = self.lock();
        let info = inner.wallet.reveal_next_address(KeychainKind::Internal);
        Self::persist(&mut inner).map_err(|_| ())?;
        Ok(info.address.script_pubkey())
    }
}

impl ChangeDestinationSourceSync for OnchainWallet {
    fn get_change_destination_script(&self) -> std::result::Result<ScriptBuf, ()> {
        self.fresh_script()
    }
}

// ---- the node's wallet calls -----------------------------------------------------------

impl crate::node::Node {
    pub fn new_address(&self) -> Result<String> {
        Ok(self.core.wallet.new_address()?.to_string())
    }

    pub fn wallet_balance(&self) -> WalletBalance {
        self.core.wallet.balance()
    }

    /// Satoshis still held in closed or closing channels (claimable on chain, not yet swept).
    pub fn claimable_onchain_sat(&self) -> u64 {
        self.core.chain_monitor.get_claimable_balances(&[]).iter().map(|b| b.claimable_amount_satoshis()).sum()
    }

    /// The chain source's fee estimates (sat/vB) for these confirmation targets, from the cache
    /// each sync refreshes (no request here).
    pub fn fee_estimates(&self, targets: &[u16]) -> Vec<(u16, f64)> {
        targets.iter().map(|&t| (t, self.core.chain.sat_per_vb(t))).collect()
    }

    /// Send `amount_sat` (None: everything) to `address`. Refused when it would take coins
    /// owed to paid LSPS1 orders not yet opened, unless `force`.
    pub async fn send_onchain(&self, address: &str, amount_sat: Option<u64>, force: bool) -> Result<String> {
        self.check_running()?;
        self.core.lsps1_guard_spend(amount_sat, force)?;
        // Six blocks: an operator's withdrawal is not urgent, but should not linger for days.
        let feerate = self.core.chain.feerate_sat_per_kw(6);
        let txid = self.core.wallet.send(address, amount_sat, feerate).await?;
        Ok(txid.to_string())
    }
}

/// Of `unused` (lapsed order addresses never paid, ascending), which to leave out of this sync:
/// all but the `per_sync` after index `after` (wrapping round to the lowest), so that every one
/// is looked up in turn however the list changes. Returns them and the last index looked up.
fn lapsed_left_out(unused: &[u32], after: u32, per_sync: usize) -> (BTreeSet<u32>, u32) {
    if unused.len() <= per_sync {
        return (BTreeSet::new(), 0);
    }
    let start = unused.partition_point(|i| *i <= after);
    let looked_up: Vec<u32> = unused.iter().cycle().skip(start).take(per_sync).copied().collect();
    let last = looked_up.last().copied().unwrap_or(0);
    let looked_up: BTreeSet<u32> = looked_up.into_iter().collect();
    (unused.iter().copied().filter(|i| !looked_up.contains(i)).collect(), last)
}

#[cfg(test)]
mod lapsed_tests {
    use super::lapsed_left_out;

    #[test]
    fn lapsed_addresses_are_looked_up_a_slice_a_sync_and_each_in_turn() {
        // Few enough: all looked up every time.
        assert_eq!(lapsed_left_out(&[3, 9], 7, 2), (Default::default(), 0));
        let unused: Vec<u32> = (100..107).collect();
        let mut after = 0;
        let mut seen = std::collections::BTreeMap::<u32, u32>::new();
        for _ in 0..7 {
            let (left_out, last) = lapsed_left_out(&unused, after, 3);
            assert_eq!(left_out.len(), 4, "3 of 7 looked up");
            for i in unused.iter().filter(|i| !left_out.contains(i)) {
                *seen.entry(*i).or_default() += 1;
            }
            after = last;
        }
        // 7 syncs of 3: each of the 7 looked up exactly 3 times, none starved.
        assert_eq!(seen.values().copied().collect::<Vec<_>>(), vec![3; 7]);
        // The list shrinks (103 was paid, so it is used): the next slice still starts after the
        // last index looked up, skipping none.
        let shrunk: Vec<u32> = unused.iter().copied().filter(|i| *i != 103).collect();
        let (left_out, last) = lapsed_left_out(&shrunk, 102, 3);
        assert_eq!(
            (left_out.contains(&104), left_out.contains(&105), left_out.contains(&106), last),
            (false, false, false, 106)
        );
        // Past the highest: round to the lowest.
        assert_eq!(lapsed_left_out(&shrunk, 1_000, 3).1, 102);
    }
}
