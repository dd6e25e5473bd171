//! The chain state: blocks, indexes, mempool acceptance, mining and the faucet.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::blockdata::constants::genesis_block;
use bitcoin::blockdata::opcodes::all::{OP_PUSHBYTES_0, OP_RETURN};
use bitcoin::blockdata::script::Builder;
use bitcoin::consensus::serialize;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, block, transaction, Amount, Block, BlockHash, CompactTarget, CompressedPublicKey, Network, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};

use crate::error::{ChainError, RPC_DESERIALIZATION_ERROR, RPC_TRANSACTION_ALREADY_IN_CHAIN, RPC_TRANSACTION_ERROR};
use crate::store::Store;

/// Regtest proof-of-work limit, as compact bits.
pub const REGTEST_BITS: u32 = 0x207f_ffff;
/// Regtest subsidy halving interval.
pub const HALVING_INTERVAL: u32 = 150;
/// Coinbase outputs can be spent once they have this many confirmations.
pub const COINBASE_MATURITY: u32 = 100;
/// Minimum relay fee, satoshis per 1000 weight units.
pub const MIN_RELAY_FEE_SAT_PER_KWU: u64 = 253;
/// Feerate (sat/vB) the faucet pays.
const FAUCET_FEERATE_SAT_VB: u64 = 2;
/// The faucet never creates change below this.
const FAUCET_DUST_LIMIT: u64 = 546;
/// Maximum block weight (consensus).
const MAX_BLOCK_WEIGHT: u64 = 4_000_000;
/// Maximum standard transaction weight.
const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
const MAX_MONEY: u64 = 21_000_000 * 100_000_000;

const META_FAUCET_KEY: &str = "faucet_secret_key";
const META_FEE_ESTIMATES: &str = "fee_estimates";

/// Script verification flags used for mempool acceptance (standard, taproot included).
const VERIFY_FLAGS: u32 = bitcoinconsensus::VERIFY_P2SH
    | bitcoinconsensus::VERIFY_DERSIG
    | bitcoinconsensus::VERIFY_NULLDUMMY
    | bitcoinconsensus::VERIFY_CHECKLOCKTIMEVERIFY
    | bitcoinconsensus::VERIFY_CHECKSEQUENCEVERIFY
    | bitcoinconsensus::VERIFY_WITNESS
    | bitcoinconsensus::VERIFY_TAPROOT;

/// The default fee estimates served on `/fee-estimates` (target in blocks -> sat/vB).
pub fn default_fee_estimates() -> BTreeMap<u16, f64> {
    [(1, 2.0), (3, 1.5), (6, 1.0), (12, 1.0), (144, 1.0), (1008, 1.0)].into_iter().collect()
}

/// Block subsidy at `height` on regtest (50 BTC halving every 150 blocks).
pub fn block_subsidy(height: u32) -> u64 {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        0
    } else {
        (50 * 100_000_000u64) >> halvings
    }
}

/// The sha256 of a scriptPubKey in natural byte order (Esplora's "scripthash").
pub(crate) fn script_hash(script: &bitcoin::Script) -> [u8; 32] {
    sha256::Hash::hash(script.as_bytes()).to_byte_array()
}

fn now_secs() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

/// An unspent confirmed output.
#[derive(Clone, Debug)]
pub(crate) struct Coin {
    pub txout: TxOut,
    pub height: u32,
    pub is_coinbase: bool,
}

/// A transaction accepted into the mempool.
#[derive(Clone, Debug)]
pub(crate) struct MempoolEntry {
    pub tx: Transaction,
    pub txid: Txid,
    pub fee: u64,
    pub weight: u64,
}

/// Confirmed spend of an output: (spending txid, input index, height of the spending block).
pub(crate) type Spend = (Txid, u32, u32);

pub(crate) struct State {
    store: Store,
    pub blocks: Vec<Block>,
    pub hashes: Vec<BlockHash>,
    pub height_by_hash: HashMap<BlockHash, u32>,
    /// txid -> (height, index in block)
    pub tx_index: HashMap<Txid, (u32, usize)>,
    pub utxos: HashMap<OutPoint, Coin>,
    pub spends: HashMap<OutPoint, Spend>,
    /// scripthash -> confirmed txids touching it, in chain order
    pub script_txs: HashMap<[u8; 32], Vec<Txid>>,
    /// Mempool in acceptance order (parents always precede children).
    pub mempool: Vec<MempoolEntry>,
    pub fee_estimates: BTreeMap<u16, f64>,
    faucet_key: SecretKey,
    faucet_pubkey: PublicKey,
    pub faucet_script: ScriptBuf,
    secp: Secp256k1<All>,
}

/// A local regtest chain (see the crate docs). All state is behind a mutex; the type is `Send + Sync`.
pub struct RegtestChain {
    state: Mutex<State>,
}

impl RegtestChain {
    /// Open or create the chain stored in the SQLite file at `db_path` (WAL, synchronous=FULL).
    /// A new chain starts at the real regtest genesis block and mines 101 blocks paying the
    /// chain-owned faucet key, so the faucet has mature coins.
    pub fn open(db_path: &Path) -> Result<Self, ChainError> {
        let store = Store::open(db_path)?;
        let secp = Secp256k1::new();
        let faucet_key = match store.get_meta(META_FAUCET_KEY)? {
            Some(hex_key) => SecretKey::from_str(&hex_key)
                .map_err(|e| ChainError::Storage(format!("stored faucet key is corrupt: {e}")))?,
            None => {
                let key = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
                store.set_meta(META_FAUCET_KEY, &key.display_secret().to_string())?;
                key
            }
        };
        let fee_estimates = match store.get_meta(META_FEE_ESTIMATES)? {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                log::warn!("stored fee estimates are unreadable ({e}); using defaults");
                default_fee_estimates()
            }),
            None => default_fee_estimates(),
        };
        let faucet_pubkey = PublicKey::from_secret_key(&secp, &faucet_key);
        let faucet_script = ScriptBuf::new_p2wpkh(&CompressedPublicKey(faucet_pubkey).wpubkey_hash());
        let stored_blocks = store.load_blocks()?;
        let stored_mempool = store.load_mempool()?;
        let mut state = State {
            store,
            blocks: Vec::new(),
            hashes: Vec::new(),
            height_by_hash: HashMap::new(),
            tx_index: HashMap::new(),
            utxos: HashMap::new(),
            spends: HashMap::new(),
            script_txs: HashMap::new(),
            mempool: Vec::new(),
            fee_estimates,
            faucet_key,
            faucet_pubkey,
            faucet_script,
            secp,
        };
        let genesis = genesis_block(Network::Regtest);
        if stored_blocks.is_empty() {
            state.store.insert_block(0, &genesis)?;
            state.connect_block(genesis);
            for _ in 0..=COINBASE_MATURITY {
                state.mine_one(None)?;
            }
        } else {
            if stored_blocks[0].block_hash() != genesis.block_hash() {
                return Err(ChainError::Storage(format!(
                    "{} does not hold a regtest chain: its genesis block is {}",
                    db_path.display(),
                    stored_blocks[0].block_hash()
                )));
            }
            for (height, block) in stored_blocks.into_iter().enumerate() {
                if height > 0 && block.header.prev_blockhash != state.hashes[height - 1] {
                    return Err(ChainError::Storage(format!(
                        "stored block at height {height} does not connect to the block below it"
                    )));
                }
                state.connect_block(block);
            }
        }
        // Re-validate the stored mempool against the rebuilt chain.
        state.store.clear_mempool()?;
        for tx in stored_mempool {
            let txid = tx.compute_txid();
            if let Err(e) = state.accept(tx) {
                log::warn!("dropping stored mempool transaction {txid}: {e}");
            }
        }
        Ok(RegtestChain { state: Mutex::new(state) })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("regtest chain state mutex poisoned")
    }

    /// Height of the chain tip (genesis is 0).
    pub fn height(&self) -> u32 {
        self.lock().tip_height()
    }

    /// Hash of the chain tip.
    pub fn tip_hash(&self) -> BlockHash {
        self.lock().tip_hash()
    }

    /// Hash of the block at `height`, if the chain is that long.
    pub fn block_hash(&self, height: u32) -> Option<BlockHash> {
        self.lock().hashes.get(height as usize).copied()
    }

    /// The block with hash `hash`, with its height.
    pub fn get_block(&self, hash: &BlockHash) -> Option<(Block, u32)> {
        let state = self.lock();
        let height = *state.height_by_hash.get(hash)?;
        state.blocks.get(height as usize).map(|b| (b.clone(), height))
    }

    /// The P2WPKH scriptPubKey of the chain's faucet.
    pub fn faucet_script(&self) -> ScriptBuf {
        self.lock().faucet_script.clone()
    }

    /// Mine `n` blocks. Mempool transactions go into the first one (parents before children);
    /// coinbases pay `to`, or the faucet when `to` is `None`.
    pub fn mine_blocks(&self, n: u32, to: Option<&ScriptBuf>) -> Result<Vec<BlockHash>, ChainError> {
        let mut state = self.lock();
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            out.push(state.mine_one(to)?);
        }
        Ok(out)
    }

    /// Pay `amount` from the faucet to `script`; the transaction is accepted into the mempool
    /// (the caller mines it).
    pub fn fund(&self, script: &ScriptBuf, amount: Amount) -> Result<Txid, ChainError> {
        self.lock().fund(script, amount)
    }

    /// Run mempool acceptance on `tx`. A transaction already in the mempool returns `Ok(txid)`.
    pub fn submit_transaction(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        self.lock().accept(tx.clone())
    }

    /// Decode a hex-encoded transaction and submit it (errors use code -22 "TX decode failed").
    pub fn submit_transaction_hex(&self, tx_hex: &str) -> Result<Txid, ChainError> {
        let tx = decode_tx_hex(tx_hex)?;
        self.submit_transaction(&tx)
    }

    /// Txids currently in the mempool, in acceptance order.
    pub fn mempool_txids(&self) -> Vec<Txid> {
        self.lock().mempool.iter().map(|e| e.txid).collect()
    }

    /// A transaction from the chain or mempool, with its confirmation height if confirmed.
    pub fn get_transaction(&self, txid: &Txid) -> Option<(Transaction, Option<u32>)> {
        let state = self.lock();
        if let Some((tx, height)) = state.confirmed_tx(txid) {
            return Some((tx.clone(), Some(height)));
        }
        state.mempool_entry(txid).map(|e| (e.tx.clone(), None))
    }

    /// Replace the fee estimates served on `/fee-estimates` (target in blocks -> sat/vB).
    pub fn set_fee_estimates(&self, map: BTreeMap<u16, f64>) {
        let mut state = self.lock();
        match serde_json::to_string(&map) {
            Ok(json) => {
                if let Err(e) = state.store.set_meta(META_FEE_ESTIMATES, &json) {
                    log::warn!("could not persist fee estimates: {e}");
                }
            }
            Err(e) => log::warn!("could not serialise fee estimates: {e}"),
        }
        state.fee_estimates = map;
    }

    /// Current fee estimates (target in blocks -> sat/vB).
    pub fn fee_estimates(&self) -> BTreeMap<u16, f64> {
        self.lock().fee_estimates.clone()
    }

    /// Look up the confirmed, unspent output `outpoint` (mempool spends are ignored).
    pub fn get_utxo(&self, outpoint: &OutPoint) -> Option<(TxOut, u32)> {
        self.lock().utxos.get(outpoint).map(|c| (c.txout.clone(), c.height))
    }
}

/// Decode a hex transaction the way bitcoind's `sendrawtransaction` does.
pub(crate) fn decode_tx_hex(tx_hex: &str) -> Result<Transaction, ChainError> {
    let bytes = hex::decode(tx_hex.trim())
        .map_err(|e| ChainError::rejected(RPC_DESERIALIZATION_ERROR, format!("TX decode failed: {e}")))?;
    bitcoin::consensus::deserialize::<Transaction>(&bytes)
        .map_err(|e| ChainError::rejected(RPC_DESERIALIZATION_ERROR, format!("TX decode failed: {e}")))
}

fn is_final_tx(tx: &Transaction, next_height: u32, mtp: u32) -> bool {
    let lock = tx.lock_time.to_consensus_u32();
    if lock == 0 {
        return true;
    }
    let threshold = if lock < absolute::LOCK_TIME_THRESHOLD { next_height } else { mtp };
    if lock < threshold {
        return true;
    }
    tx.input.iter().all(|i| i.sequence == Sequence::MAX)
}

impl State {
    pub fn tip_height(&self) -> u32 {
        (self.blocks.len() as u32).saturating_sub(1)
    }

    pub fn tip_hash(&self) -> BlockHash {
        self.hashes.last().copied().unwrap_or_else(BlockHash::all_zeros)
    }

    /// Median time past of the block at `height` (median of the last 11 block times).
    pub fn median_time_past(&self, height: u32) -> u32 {
        let end = (height as usize).min(self.blocks.len().saturating_sub(1));
        let start = end.saturating_sub(10);
        let mut times: Vec<u32> = self.blocks[start..=end].iter().map(|b| b.header.time).collect();
        times.sort_unstable();
        times[times.len() / 2]
    }

    pub fn confirmed_tx(&self, txid: &Txid) -> Option<(&Transaction, u32)> {
        let (height, idx) = *self.tx_index.get(txid)?;
        let tx = self.blocks.get(height as usize)?.txdata.get(idx)?;
        Some((tx, height))
    }

    pub fn mempool_entry(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.mempool.iter().find(|e| e.txid == *txid)
    }

    /// The output `op` whether spent or not, from the chain or the mempool.
    pub fn find_output(&self, op: &OutPoint) -> Option<&TxOut> {
        if let Some((tx, _)) = self.confirmed_tx(&op.txid) {
            return tx.output.get(op.vout as usize);
        }
        self.mempool_entry(&op.txid).and_then(|e| e.tx.output.get(op.vout as usize))
    }

    /// The mempool transaction spending `op`, with the input index.
    pub fn mempool_spender(&self, op: &OutPoint) -> Option<(Txid, u32)> {
        self.mempool
            .iter()
            .find_map(|e| e.tx.input.iter().position(|i| i.previous_output == *op).map(|vin| (e.txid, vin as u32)))
    }

    /// Fee of a transaction (0 for coinbases or when a prevout is unknown).
    pub fn tx_fee(&self, tx: &Transaction) -> u64 {
        if tx.is_coinbase() {
            return 0;
        }
        let mut input = 0u64;
        for i in &tx.input {
            match self.find_output(&i.previous_output) {
                Some(o) => input += o.value.to_sat(),
                None => return 0,
            }
        }
        let output: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        input.saturating_sub(output)
    }

    /// Add a block (already stored) to the in-memory indexes.
    fn connect_block(&mut self, block: Block) {
        let height = self.blocks.len() as u32;
        let hash = block.block_hash();
        for (idx, tx) in block.txdata.iter().enumerate() {
            let txid = tx.compute_txid();
            self.tx_index.insert(txid, (height, idx));
            let mut touched: Vec<[u8; 32]> = Vec::new();
            if !tx.is_coinbase() {
                for (vin, input) in tx.input.iter().enumerate() {
                    if let Some(coin) = self.utxos.remove(&input.previous_output) {
                        touched.push(script_hash(&coin.txout.script_pubkey));
                    }
                    self.spends.insert(input.previous_output, (txid, vin as u32, height));
                }
            }
            for (vout, out) in tx.output.iter().enumerate() {
                touched.push(script_hash(&out.script_pubkey));
                // The genesis coinbase is not spendable (as in Bitcoin Core).
                if height > 0 {
                    self.utxos.insert(
                        OutPoint { txid, vout: vout as u32 },
                        Coin { txout: out.clone(), height, is_coinbase: tx.is_coinbase() },
                    );
                }
            }
            for sh in touched {
                let list = self.script_txs.entry(sh).or_default();
                if list.last() != Some(&txid) {
                    list.push(txid);
                }
            }
        }
        self.hashes.push(hash);
        self.height_by_hash.insert(hash, height);
        self.blocks.push(block);
    }

    /// Build, grind and connect one block on top of the tip.
    fn mine_one(&mut self, to: Option<&ScriptBuf>) -> Result<BlockHash, ChainError> {
        let height = self.blocks.len() as u32;
        let payout = to.cloned().unwrap_or_else(|| self.faucet_script.clone());

        // Take a prefix of the mempool that fits in the block (a prefix keeps parents first).
        let mut txs: Vec<Transaction> = Vec::new();
        let mut fees = 0u64;
        let mut weight = 4_000u64; // header + coinbase allowance
        for e in &self.mempool {
            if weight + e.weight > MAX_BLOCK_WEIGHT {
                break;
            }
            weight += e.weight;
            fees += e.fee;
            txs.push(e.tx.clone());
        }

        let script_sig = Builder::new().push_int(height as i64).push_opcode(OP_PUSHBYTES_0).into_script();
        let mut coinbase = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig,
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(block_subsidy(height) + fees), script_pubkey: payout }],
        };
        let has_witness = txs.iter().any(|t| t.input.iter().any(|i| !i.witness.is_empty()));
        if has_witness {
            coinbase.input[0].witness = Witness::from_slice(&[[0u8; 32]]);
        }
        let prev = &self.blocks[self.blocks.len() - 1].header;
        let time = now_secs().max(prev.time + 1).max(self.median_time_past(height - 1) + 1);
        let mut txdata = Vec::with_capacity(txs.len() + 1);
        txdata.push(coinbase);
        txdata.extend(txs);
        let mut block = Block {
            header: block::Header {
                version: block::Version::from_consensus(0x2000_0000),
                prev_blockhash: self.tip_hash(),
                merkle_root: TxMerkleNode::all_zeros(),
                time,
                bits: CompactTarget::from_consensus(REGTEST_BITS),
                nonce: 0,
            },
            txdata,
        };
        if has_witness {
            let root = block.witness_root().ok_or_else(|| ChainError::Invalid("cannot compute witness root".into()))?;
            let commitment = Block::compute_witness_commitment(&root, &[0u8; 32]);
            let mut data = [0u8; 36];
            data[..4].copy_from_slice(&[0xaa, 0x21, 0xa9, 0xed]);
            data[4..].copy_from_slice(commitment.as_byte_array());
            let script = Builder::new().push_opcode(OP_RETURN).push_slice(data).into_script();
            block.txdata[0].output.push(TxOut { value: Amount::ZERO, script_pubkey: script });
        }
        block.header.merkle_root =
            block.compute_merkle_root().ok_or_else(|| ChainError::Invalid("cannot compute merkle root".into()))?;
        let target = block.header.target();
        while block.header.validate_pow(target).is_err() {
            block.header.nonce = block.header.nonce.wrapping_add(1);
            if block.header.nonce == 0 {
                block.header.time += 1;
            }
        }
        debug_assert!(block.check_merkle_root() && block.check_witness_commitment());

        self.store.insert_block(height, &block)?;
        let hash = block.block_hash();
        let included: HashSet<Txid> = block.txdata.iter().skip(1).map(|t| t.compute_txid()).collect();
        self.mempool.retain(|e| !included.contains(&e.txid));
        self.connect_block(block);
        log::debug!("mined regtest block {height} {hash}");
        Ok(hash)
    }

    /// Mempool acceptance, bitcoind-style.
    pub fn accept(&mut self, tx: Transaction) -> Result<Txid, ChainError> {
        let txid = tx.compute_txid();
        if self.mempool_entry(&txid).is_some() {
            return Ok(txid);
        }
        if self.tx_index.contains_key(&txid) {
            return Err(ChainError::rejected(RPC_TRANSACTION_ALREADY_IN_CHAIN, "Transaction already in block chain"));
        }
        if tx.is_coinbase() {
            return Err(ChainError::policy("coinbase"));
        }
        if tx.input.is_empty() {
            return Err(ChainError::policy("bad-txns-vin-empty"));
        }
        if tx.output.is_empty() {
            return Err(ChainError::policy("bad-txns-vout-empty"));
        }
        if tx.base_size() < 65 {
            return Err(ChainError::policy("tx-size-small"));
        }
        let weight = tx.weight().to_wu();
        if weight > MAX_STANDARD_TX_WEIGHT {
            return Err(ChainError::policy(format!("tx-size, weight {weight} > {MAX_STANDARD_TX_WEIGHT}")));
        }
        let mut value_out = 0u64;
        for o in &tx.output {
            let v = o.value.to_sat();
            if v > MAX_MONEY {
                return Err(ChainError::policy("bad-txns-vout-toolarge"));
            }
            value_out += v;
            if value_out > MAX_MONEY {
                return Err(ChainError::policy("bad-txns-txouttotal-toolarge"));
            }
        }
        let mut seen = HashSet::new();
        for i in &tx.input {
            if i.previous_output.is_null() {
                return Err(ChainError::policy("bad-txns-prevout-null"));
            }
            if !seen.insert(i.previous_output) {
                return Err(ChainError::policy("bad-txns-inputs-duplicate"));
            }
        }
        let tip = self.tip_height();
        let next_height = tip + 1;
        let tip_mtp = self.median_time_past(tip);
        if !is_final_tx(&tx, next_height, tip_mtp) {
            return Err(ChainError::policy("non-final"));
        }

        // Direct mempool conflicts and the full set of transactions a replacement would evict.
        let direct: Vec<usize> = self
            .mempool
            .iter()
            .enumerate()
            .filter(|(_, e)| e.tx.input.iter().any(|i| seen.contains(&i.previous_output)))
            .map(|(idx, _)| idx)
            .collect();
        let mut evict: HashSet<Txid> = direct.iter().map(|&i| self.mempool[i].txid).collect();
        if !evict.is_empty() {
            // Mempool order puts parents first, so one pass collects all descendants.
            for e in &self.mempool {
                if e.tx.input.iter().any(|i| evict.contains(&i.previous_output.txid)) {
                    evict.insert(e.txid);
                }
            }
        }

        // Look up every spent output: confirmed UTXO set first, then mempool outputs.
        // (coin, confirmation height or None for mempool)
        let mut spent: Vec<(TxOut, Option<u32>)> = Vec::with_capacity(tx.input.len());
        for i in &tx.input {
            let op = &i.previous_output;
            if let Some(coin) = self.utxos.get(op) {
                if coin.is_coinbase && next_height - coin.height < COINBASE_MATURITY {
                    return Err(ChainError::policy(format!(
                        "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth {}",
                        next_height - coin.height
                    )));
                }
                spent.push((coin.txout.clone(), Some(coin.height)));
            } else if let Some(out) = self.mempool_entry(&op.txid).and_then(|e| e.tx.output.get(op.vout as usize)) {
                if evict.contains(&op.txid) {
                    return Err(ChainError::policy(format!(
                        "bad-txns-spends-conflicting-tx, {txid} spends conflicting transaction {}",
                        op.txid
                    )));
                }
                spent.push((out.clone(), None));
            } else {
                return Err(ChainError::rejected(RPC_TRANSACTION_ERROR, "bad-txns-inputs-missingorspent"));
            }
        }

        let value_in: u64 = spent.iter().map(|(o, _)| o.value.to_sat()).sum();
        if value_in > MAX_MONEY {
            return Err(ChainError::policy("bad-txns-inputvalues-outofrange"));
        }
        if value_in < value_out {
            return Err(ChainError::policy(format!(
                "bad-txns-in-belowout, value in ({value_in}) < value out ({value_out})"
            )));
        }
        let fee = value_in - value_out;

        // BIP68 relative locktimes. A mempool parent counts as confirming in the next block.
        if tx.version.0 >= 2 {
            for (i, (_, coin_height)) in tx.input.iter().zip(&spent) {
                let Some(lock) = i.sequence.to_relative_lock_time() else {
                    continue;
                };
                let coin_height = coin_height.unwrap_or(next_height);
                let ok = match lock {
                    bitcoin::relative::LockTime::Blocks(h) => {
                        coin_height as u64 + h.value() as u64 <= next_height as u64
                    }
                    bitcoin::relative::LockTime::Time(t) => {
                        let coin_time = self.median_time_past(coin_height.saturating_sub(1)) as u64;
                        coin_time + t.value() as u64 * 512 < tip_mtp as u64 + 1
                    }
                };
                if !ok {
                    return Err(ChainError::policy("non-BIP68-final"));
                }
            }
        }

        let min_fee = weight * MIN_RELAY_FEE_SAT_PER_KWU / 1000;
        if fee < min_fee {
            return Err(ChainError::policy(format!("min relay fee not met, {fee} < {min_fee}")));
        }

        // Full RBF: must beat every direct conflict's feerate and the total fee of all evictions.
        if !direct.is_empty() {
            for &idx in &direct {
                let c = &self.mempool[idx];
                if (fee as u128) * (c.weight as u128) <= (c.fee as u128) * (weight as u128) {
                    return Err(ChainError::policy(format!(
                        "txn-mempool-conflict, replacement {txid} feerate is not higher than that of {}",
                        c.txid
                    )));
                }
            }
            let evicted_fees: u64 = self.mempool.iter().filter(|e| evict.contains(&e.txid)).map(|e| e.fee).sum();
            if fee <= evicted_fees {
                return Err(ChainError::policy(format!(
                    "txn-mempool-conflict, replacement {txid} pays {fee} sat, not more than the {evicted_fees} sat of the {} transaction(s) it replaces",
                    evict.len()
                )));
            }
        }

        // Script verification with every spent output (so taproot is checked too).
        let raw = serialize(&tx);
        let scripts: Vec<&[u8]> = spent.iter().map(|(o, _)| o.script_pubkey.as_bytes()).collect();
        let utxos: Vec<bitcoinconsensus::Utxo> = spent
            .iter()
            .zip(&scripts)
            .map(|((o, _), s)| bitcoinconsensus::Utxo {
                script_pubkey: s.as_ptr(),
                script_pubkey_len: s.len() as u32,
                value: o.value.to_sat() as i64,
            })
            .collect();
        for (idx, (o, _)) in spent.iter().enumerate() {
            if let Err(e) = bitcoinconsensus::verify_with_flags(
                o.script_pubkey.as_bytes(),
                o.value.to_sat(),
                &raw,
                Some(&utxos),
                idx,
                VERIFY_FLAGS,
            ) {
                let why = match e {
                    bitcoinconsensus::Error::ERR_SCRIPT => {
                        "script evaluation failed: bad signature, witness or script".to_string()
                    }
                    other => other.to_string(),
                };
                return Err(ChainError::policy(format!("mandatory-script-verify-flag-failed (input {idx}: {why})")));
            }
        }

        let evicted: Vec<Txid> = evict.into_iter().collect();
        self.store.mempool_add(&tx, &evicted)?;
        if !evicted.is_empty() {
            log::debug!("replacement {txid} evicted {evicted:?}");
            self.mempool.retain(|e| !evicted.contains(&e.txid));
        }
        self.mempool.push(MempoolEntry { tx, txid, fee, weight });
        Ok(txid)
    }

    /// Faucet payment: spend mature faucet coins (and unconfirmed faucet change) to `script`.
    fn fund(&mut self, script: &ScriptBuf, amount: Amount) -> Result<Txid, ChainError> {
        let amount = amount.to_sat();
        if amount == 0 || amount > MAX_MONEY {
            return Err(ChainError::Invalid(format!(
                "fund amount must be between 1 and {MAX_MONEY} sat, got {amount}"
            )));
        }
        let next_height = self.tip_height() + 1;
        let spent_in_mempool: HashSet<OutPoint> =
            self.mempool.iter().flat_map(|e| e.tx.input.iter().map(|i| i.previous_output)).collect();
        // Candidates: (outpoint, value, confirmed?)
        let mut candidates: Vec<(OutPoint, u64, bool)> = self
            .utxos
            .iter()
            .filter(|(op, c)| {
                c.txout.script_pubkey == self.faucet_script
                    && !spent_in_mempool.contains(op)
                    && (!c.is_coinbase || next_height - c.height >= COINBASE_MATURITY)
            })
            .map(|(op, c)| (*op, c.txout.value.to_sat(), true))
            .collect();
        for e in &self.mempool {
            for (vout, o) in e.tx.output.iter().enumerate() {
                let op = OutPoint { txid: e.txid, vout: vout as u32 };
                if o.script_pubkey == self.faucet_script && !spent_in_mempool.contains(&op) {
                    candidates.push((op, o.value.to_sat(), false));
                }
            }
        }
        // Confirmed first, then largest first; ties broken by outpoint for determinism.
        candidates.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));

        let dummy_witness = Witness::from_slice(&[vec![0u8; 72], vec![0u8; 33]]);
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: Vec::new(),
            output: vec![
                TxOut { value: Amount::from_sat(amount), script_pubkey: script.clone() },
                TxOut { value: Amount::ZERO, script_pubkey: self.faucet_script.clone() },
            ],
        };
        let mut values = Vec::new();
        let mut total = 0u64;
        let mut fee = 0u64;
        let mut enough = false;
        for (op, value, _) in candidates {
            tx.input.push(TxIn {
                previous_output: op,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: dummy_witness.clone(),
            });
            values.push(value);
            total += value;
            fee = tx.vsize() as u64 * FAUCET_FEERATE_SAT_VB;
            if total >= amount + fee {
                enough = true;
                break;
            }
        }
        if !enough {
            return Err(ChainError::Invalid(format!(
                "the faucet cannot pay {amount} sat: it holds {total} sat of spendable coins (mine more blocks to the faucet)"
            )));
        }
        let change = total - amount - fee;
        if change < FAUCET_DUST_LIMIT {
            tx.output.pop();
        } else {
            tx.output[1].value = Amount::from_sat(change);
        }

        let mut witnesses = Vec::with_capacity(tx.input.len());
        {
            let mut cache = SighashCache::new(&tx);
            for (idx, value) in values.iter().enumerate() {
                let sighash = cache
                    .p2wpkh_signature_hash(idx, &self.faucet_script, Amount::from_sat(*value), EcdsaSighashType::All)
                    .map_err(|e| ChainError::Invalid(format!("faucet signing failed: {e}")))?;
                let msg = Message::from_digest(sighash.to_byte_array());
                let signature = self.secp.sign_ecdsa(&msg, &self.faucet_key);
                let sig = bitcoin::ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All };
                witnesses.push(Witness::p2wpkh(&sig, &self.faucet_pubkey));
            }
        }
        for (input, w) in tx.input.iter_mut().zip(witnesses) {
            input.witness = w;
        }
        self.accept(tx)
    }
}
