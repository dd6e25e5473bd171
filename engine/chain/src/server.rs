//! The Esplora-compatible HTTP API (plus `/regtest/*` operator extensions), served with axum.

// Helpers return a ready `Response` as their error so handlers can `return` it directly.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bitcoin::consensus::{serialize, Encodable};
use bitcoin::hashes::Hash;
use bitcoin::{Address, Amount, BlockHash, MerkleBlock, Network, OutPoint, Transaction, Txid};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::chain::{script_hash, RegtestChain, State as ChainState};
use crate::error::ChainError;

type AppState = Arc<RegtestChain>;

/// Largest number of blocks one `/regtest/mine` call may ask for.
const MAX_MINE_PER_CALL: u32 = 10_000;

/// A running HTTP server for a [`RegtestChain`]; owns the serving task.
pub struct ChainServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ChainServer {
    /// Bind `bind` (port 0 = ephemeral) and serve the HTTP API on the current tokio runtime.
    pub async fn start(chain: Arc<RegtestChain>, bind: SocketAddr) -> Result<ChainServer, ChainError> {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| ChainError::Invalid(format!("cannot listen on {bind}: {e}")))?;
        let addr =
            listener.local_addr().map_err(|e| ChainError::Invalid(format!("cannot read the bound address: {e}")))?;
        let app = router(chain);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                log::error!("regtest chain HTTP server on {addr} failed: {e}");
            }
        });
        log::info!("regtest chain HTTP server listening on {addr}");
        Ok(ChainServer { addr, shutdown: Some(tx), task: Some(task) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for Esplora clients, e.g. `http://127.0.0.1:3002` (no trailing slash).
    pub fn url(&self) -> String {
        let ip = self.addr.ip();
        let host = if ip.is_unspecified() {
            if ip.is_ipv4() {
                "127.0.0.1".to_string()
            } else {
                "[::1]".to_string()
            }
        } else if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        format!("http://{host}:{}", self.addr.port())
    }

    /// Stop serving: graceful shutdown, forced after 5 seconds.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for ChainServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Build the axum router (exposed for embedding in another server).
pub fn router(chain: Arc<RegtestChain>) -> Router {
    Router::new()
        .route("/blocks/tip/hash", get(tip_hash))
        .route("/blocks/tip/height", get(tip_height))
        .route("/blocks", get(blocks_tip))
        .route("/blocks/{start}", get(blocks_from))
        .route("/block-height/{height}", get(block_at_height))
        .route("/block/{hash}", get(block_info))
        .route("/block/{hash}/header", get(block_header))
        .route("/block/{hash}/status", get(block_status))
        .route("/block/{hash}/raw", get(block_raw))
        .route("/block/{hash}/txids", get(block_txids))
        .route("/block/{hash}/txid/{index}", get(block_txid_at))
        .route("/tx", post(post_tx))
        .route("/tx/{txid}", get(tx_json))
        .route("/tx/{txid}/raw", get(tx_raw))
        .route("/tx/{txid}/hex", get(tx_hex))
        .route("/tx/{txid}/status", get(tx_status))
        .route("/tx/{txid}/merkleblock-proof", get(tx_merkleblock_proof))
        .route("/tx/{txid}/merkle-proof", get(tx_merkle_proof))
        .route("/tx/{txid}/outspend/{vout}", get(tx_outspend))
        .route("/tx/{txid}/outspends", get(tx_outspends))
        .route("/scripthash/{hash}/txs", get(scripthash_txs))
        .route("/scripthash/{hash}/txs/chain/{last_seen}", get(scripthash_txs_chain))
        .route("/scripthash/{hash}/txs/mempool", get(scripthash_txs_mempool))
        .route("/mempool/txids", get(mempool_txids))
        .route("/fee-estimates", get(fee_estimates))
        .route("/regtest/mine", post(regtest_mine))
        .route("/regtest/fund", post(regtest_fund))
        .with_state(chain)
}

// ---------- response helpers ----------

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body.into()).into_response()
}

fn ok_text(body: impl Into<String>) -> Response {
    text(StatusCode::OK, body)
}

fn not_found(what: &str) -> Response {
    text(StatusCode::NOT_FOUND, format!("{what} not found"))
}

fn bad_request(msg: impl Into<String>) -> Response {
    text(StatusCode::BAD_REQUEST, msg)
}

fn binary(bytes: Vec<u8>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

fn json_ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn parse_block_hash(s: &str) -> Result<BlockHash, Response> {
    BlockHash::from_str(s).map_err(|_| bad_request(format!("Invalid block hash: {s}")))
}

fn parse_txid(s: &str) -> Result<Txid, Response> {
    Txid::from_str(s).map_err(|_| bad_request(format!("Invalid txid: {s}")))
}

fn chain_error_response(e: ChainError) -> Response {
    match e {
        ChainError::Rejected { code, reason } => {
            let inner = json!({ "code": code, "message": reason });
            bad_request(format!("sendrawtransaction RPC error: {inner}"))
        }
        ChainError::Invalid(msg) => bad_request(msg),
        ChainError::Storage(msg) => text(StatusCode::INTERNAL_SERVER_ERROR, msg),
    }
}

// ---------- JSON builders (called with the state locked) ----------

fn status_json(s: &ChainState, height: Option<u32>) -> Value {
    match height.and_then(|h| s.blocks.get(h as usize).map(|b| (h, b))) {
        Some((h, b)) => json!({
            "confirmed": true,
            "block_height": h,
            "block_hash": s.hashes[h as usize].to_string(),
            "block_time": b.header.time,
        }),
        None => json!({ "confirmed": false }),
    }
}

fn tx_to_json(s: &ChainState, tx: &Transaction, height: Option<u32>) -> Value {
    let is_coinbase = tx.is_coinbase();
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let prevout = if is_coinbase {
                Value::Null
            } else {
                s.find_output(&i.previous_output).map_or(Value::Null, txout_json)
            };
            json!({
                "txid": i.previous_output.txid.to_string(),
                "vout": i.previous_output.vout,
                "prevout": prevout,
                "scriptsig": hex::encode(i.script_sig.as_bytes()),
                "scriptsig_asm": i.script_sig.to_asm_string(),
                "witness": i.witness.iter().map(hex::encode).collect::<Vec<_>>(),
                "is_coinbase": is_coinbase,
                "sequence": i.sequence.to_consensus_u32(),
            })
        })
        .collect();
    let vout: Vec<Value> = tx.output.iter().map(txout_json).collect();
    json!({
        "txid": tx.compute_txid().to_string(),
        "version": tx.version.0,
        "locktime": tx.lock_time.to_consensus_u32(),
        "vin": vin,
        "vout": vout,
        "size": tx.total_size(),
        "weight": tx.weight().to_wu(),
        "fee": s.tx_fee(tx),
        "status": status_json(s, height),
    })
}

fn txout_json(o: &bitcoin::TxOut) -> Value {
    let spk = &o.script_pubkey;
    let kind = if spk.is_p2wpkh() {
        "v0_p2wpkh"
    } else if spk.is_p2wsh() {
        "v0_p2wsh"
    } else if spk.is_p2tr() {
        "v1_p2tr"
    } else if spk.is_p2pkh() {
        "p2pkh"
    } else if spk.is_p2sh() {
        "p2sh"
    } else if spk.is_op_return() {
        "op_return"
    } else if spk.is_p2pk() {
        "p2pk"
    } else {
        "unknown"
    };
    let mut v = json!({
        "scriptpubkey": hex::encode(spk.as_bytes()),
        "scriptpubkey_asm": spk.to_asm_string(),
        "scriptpubkey_type": kind,
        "value": o.value.to_sat(),
    });
    if let Ok(addr) = Address::from_script(spk, Network::Regtest) {
        v["scriptpubkey_address"] = Value::String(addr.to_string());
    }
    v
}

fn block_info_json(s: &ChainState, height: u32) -> Value {
    let b = &s.blocks[height as usize];
    json!({
        "id": s.hashes[height as usize].to_string(),
        "height": height,
        "version": b.header.version.to_consensus(),
        "timestamp": b.header.time,
        "tx_count": b.txdata.len(),
        "size": b.total_size(),
        "weight": b.weight().to_wu(),
        "merkle_root": b.header.merkle_root.to_string(),
        "previousblockhash": if height == 0 { Value::Null } else { Value::String(b.header.prev_blockhash.to_string()) },
        "mediantime": s.median_time_past(height),
        "nonce": b.header.nonce,
        "bits": b.header.bits.to_consensus(),
        "difficulty": b.header.difficulty_float(),
    })
}

fn blocks_list(s: &ChainState, start: u32) -> Value {
    let start = start.min(s.tip_height());
    let lowest = start.saturating_sub(9);
    Value::Array((lowest..=start).rev().map(|h| block_info_json(s, h)).collect())
}

fn outspend_json(s: &ChainState, op: &OutPoint) -> Value {
    if let Some((txid, vin, height)) = s.spends.get(op) {
        return json!({
            "spent": true,
            "txid": txid.to_string(),
            "vin": vin,
            "status": status_json(s, Some(*height)),
        });
    }
    if let Some((txid, vin)) = s.mempool_spender(op) {
        return json!({
            "spent": true,
            "txid": txid.to_string(),
            "vin": vin,
            "status": { "confirmed": false },
        });
    }
    json!({ "spent": false })
}

/// Find a transaction in the chain or mempool: (tx, confirmation height).
fn lookup_tx(s: &ChainState, txid: &Txid) -> Option<(Transaction, Option<u32>)> {
    if let Some((tx, h)) = s.confirmed_tx(txid) {
        return Some((tx.clone(), Some(h)));
    }
    s.mempool_entry(txid).map(|e| (e.tx.clone(), None))
}

// ---------- handlers: blocks ----------

async fn tip_hash(State(c): State<AppState>) -> Response {
    ok_text(c.tip_hash().to_string())
}

async fn tip_height(State(c): State<AppState>) -> Response {
    ok_text(c.height().to_string())
}

async fn blocks_tip(State(c): State<AppState>) -> Response {
    let s = c.lock();
    json_ok(blocks_list(&s, s.tip_height()))
}

async fn blocks_from(State(c): State<AppState>, Path(start): Path<String>) -> Response {
    let Ok(start) = start.parse::<u32>() else {
        return bad_request(format!("Invalid height: {start}"));
    };
    // A start above the tip is clamped to the tip (never an empty list, which clients reject).
    let s = c.lock();
    json_ok(blocks_list(&s, start))
}

async fn block_at_height(State(c): State<AppState>, Path(height): Path<String>) -> Response {
    let Ok(height) = height.parse::<u32>() else {
        return bad_request(format!("Invalid height: {height}"));
    };
    let s = c.lock();
    match s.hashes.get(height as usize) {
        Some(h) => ok_text(h.to_string()),
        None => not_found("Block"),
    }
}

fn with_block<F: FnOnce(&ChainState, u32) -> Response>(c: &AppState, hash: &str, f: F) -> Response {
    let hash = match parse_block_hash(hash) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = c.lock();
    match s.height_by_hash.get(&hash).copied() {
        Some(h) => f(&s, h),
        None => not_found("Block"),
    }
}

async fn block_info(State(c): State<AppState>, Path(hash): Path<String>) -> Response {
    with_block(&c, &hash, |s, h| json_ok(block_info_json(s, h)))
}

async fn block_header(State(c): State<AppState>, Path(hash): Path<String>) -> Response {
    with_block(&c, &hash, |s, h| ok_text(hex::encode(serialize(&s.blocks[h as usize].header))))
}

async fn block_status(State(c): State<AppState>, Path(hash): Path<String>) -> Response {
    let hash = match parse_block_hash(&hash) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = c.lock();
    match s.height_by_hash.get(&hash).copied() {
        Some(h) => json_ok(json!({
            "in_best_chain": true,
            "height": h,
            "next_best": s.hashes.get(h as usize + 1).map(|n| n.to_string()),
        })),
        // Unknown blocks are "not in the best chain", never a 404 (LDK's sync depends on it).
        None => json_ok(json!({ "in_best_chain": false, "height": null, "next_best": null })),
    }
}

async fn block_raw(State(c): State<AppState>, Path(hash): Path<String>) -> Response {
    with_block(&c, &hash, |s, h| binary(serialize(&s.blocks[h as usize])))
}

async fn block_txids(State(c): State<AppState>, Path(hash): Path<String>) -> Response {
    with_block(&c, &hash, |s, h| {
        let ids: Vec<String> = s.blocks[h as usize].txdata.iter().map(|t| t.compute_txid().to_string()).collect();
        json_ok(json!(ids))
    })
}

async fn block_txid_at(State(c): State<AppState>, Path((hash, index)): Path<(String, String)>) -> Response {
    let Ok(index) = index.parse::<usize>() else {
        return bad_request(format!("Invalid index: {index}"));
    };
    with_block(&c, &hash, |s, h| match s.blocks[h as usize].txdata.get(index) {
        Some(t) => ok_text(t.compute_txid().to_string()),
        None => not_found("Transaction index"),
    })
}

// ---------- handlers: transactions ----------

fn with_tx<F: FnOnce(&ChainState, Transaction, Option<u32>) -> Response>(c: &AppState, txid: &str, f: F) -> Response {
    let txid = match parse_txid(txid) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let s = c.lock();
    match lookup_tx(&s, &txid) {
        Some((tx, h)) => f(&s, tx, h),
        None => not_found("Transaction"),
    }
}

async fn tx_json(State(c): State<AppState>, Path(txid): Path<String>) -> Response {
    with_tx(&c, &txid, |s, tx, h| json_ok(tx_to_json(s, &tx, h)))
}

async fn tx_raw(State(c): State<AppState>, Path(txid): Path<String>) -> Response {
    with_tx(&c, &txid, |_, tx, _| binary(serialize(&tx)))
}

async fn tx_hex(State(c): State<AppState>, Path(txid): Path<String>) -> Response {
    with_tx(&c, &txid, |_, tx, _| ok_text(hex::encode(serialize(&tx))))
}

async fn tx_status(State(c): State<AppState>, Path(txid): Path<String>) -> Response {
    with_tx(&c, &txid, |s, _, h| json_ok(status_json(s, h)))
}

async fn tx_merkleblock_proof(State(c): State<AppState>, Path(txid): Path<String>) -> Response {
    let id = match parse_txid(&txid) {
        Ok(t) => t,
        Err(r) => return r,
    };
    with_tx(&c, &txid, |s, _, h| match h {
        Some(h) => {
            let mb = MerkleBlock::from_block_with_predicate(&s.blocks[h as usize], |t| *t == id);
            ok_text(hex::encode(serialize(&mb)))
        }
        None => not_found("Transaction is unconfirmed; merkle block proof"),
    })
}

async fn tx_merkle_proof(State(c): State<AppState>, Path(txid): Path<String>) -> Response {
    let id = match parse_txid(&txid) {
        Ok(t) => t,
        Err(r) => return r,
    };
    with_tx(&c, &txid, |s, _, h| {
        let Some(h) = h else {
            return not_found("Transaction is unconfirmed; merkle proof");
        };
        let block = &s.blocks[h as usize];
        let mut level: Vec<bitcoin::hashes::sha256d::Hash> =
            block.txdata.iter().map(|t| t.compute_txid().to_raw_hash()).collect();
        let Some(pos) = block.txdata.iter().position(|t| t.compute_txid() == id) else {
            return not_found("Transaction in block");
        };
        let mut idx = pos;
        let mut branch = Vec::new();
        while level.len() > 1 {
            let sibling = (idx ^ 1).min(level.len() - 1);
            branch.push(Txid::from_raw_hash(level[sibling]).to_string());
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                let left = pair[0];
                let right = pair.get(1).copied().unwrap_or(left);
                let mut engine = bitcoin::hashes::sha256d::Hash::engine();
                left.consensus_encode(&mut engine).expect("hash engines do not fail");
                right.consensus_encode(&mut engine).expect("hash engines do not fail");
                next.push(bitcoin::hashes::sha256d::Hash::from_engine(engine));
            }
            level = next;
            idx /= 2;
        }
        json_ok(json!({ "block_height": h, "merkle": branch, "pos": pos }))
    })
}

async fn tx_outspend(State(c): State<AppState>, Path((txid, vout)): Path<(String, String)>) -> Response {
    let Ok(vout) = vout.parse::<u32>() else {
        return bad_request(format!("Invalid output index: {vout}"));
    };
    with_tx(&c, &txid, |s, tx, _| {
        if vout as usize >= tx.output.len() {
            return not_found("Output");
        }
        json_ok(outspend_json(s, &OutPoint { txid: tx.compute_txid(), vout }))
    })
}

async fn tx_outspends(State(c): State<AppState>, Path(txid): Path<String>) -> Response {
    with_tx(&c, &txid, |s, tx, _| {
        let id = tx.compute_txid();
        let list: Vec<Value> =
            (0..tx.output.len() as u32).map(|vout| outspend_json(s, &OutPoint { txid: id, vout })).collect();
        json_ok(Value::Array(list))
    })
}

async fn post_tx(State(c): State<AppState>, body: Bytes) -> Response {
    let Ok(body) = std::str::from_utf8(&body) else {
        return chain_error_response(ChainError::Rejected {
            code: crate::error::RPC_DESERIALIZATION_ERROR,
            reason: "TX decode failed: body is not hex text".into(),
        });
    };
    match c.submit_transaction_hex(body) {
        Ok(txid) => ok_text(txid.to_string()),
        Err(e) => {
            log::debug!("rejected broadcast: {e}");
            chain_error_response(e)
        }
    }
}

// ---------- handlers: scripthash, mempool, fees ----------

fn parse_scripthash(s: &str) -> Result<[u8; 32], Response> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| bad_request(format!("Invalid scripthash (want 64 hex chars): {s}")))?;
    Ok(out)
}

fn mempool_touching(s: &ChainState, sh: &[u8; 32]) -> Vec<Value> {
    s.mempool
        .iter()
        .rev()
        .filter(|e| {
            e.tx.output.iter().any(|o| script_hash(&o.script_pubkey) == *sh)
                || e.tx
                    .input
                    .iter()
                    .any(|i| s.find_output(&i.previous_output).is_some_and(|o| script_hash(&o.script_pubkey) == *sh))
        })
        .map(|e| tx_to_json(s, &e.tx, None))
        .collect()
}

async fn scripthash_txs(State(c): State<AppState>, Path(hash): Path<String>) -> Response {
    let sh = match parse_scripthash(&hash) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = c.lock();
    let mut out = mempool_touching(&s, &sh);
    if let Some(list) = s.script_txs.get(&sh) {
        for txid in list.iter().rev() {
            if let Some((tx, h)) = s.confirmed_tx(txid) {
                out.push(tx_to_json(&s, tx, Some(h)));
            }
        }
    }
    json_ok(Value::Array(out))
}

async fn scripthash_txs_chain(
    State(_c): State<AppState>, Path((hash, _last_seen)): Path<(String, String)>,
) -> Response {
    // Everything is returned on the first page, so later pages are empty.
    if let Err(r) = parse_scripthash(&hash) {
        return r;
    }
    json_ok(Value::Array(Vec::new()))
}

async fn scripthash_txs_mempool(State(c): State<AppState>, Path(hash): Path<String>) -> Response {
    let sh = match parse_scripthash(&hash) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let s = c.lock();
    json_ok(Value::Array(mempool_touching(&s, &sh)))
}

async fn mempool_txids(State(c): State<AppState>) -> Response {
    let ids: Vec<String> = c.mempool_txids().iter().map(|t| t.to_string()).collect();
    json_ok(json!(ids))
}

async fn fee_estimates(State(c): State<AppState>) -> Response {
    let map: serde_json::Map<String, Value> =
        c.fee_estimates().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json_ok(Value::Object(map))
}

// ---------- handlers: /regtest extensions ----------

#[derive(serde::Deserialize)]
struct MineRequest {
    #[serde(default = "one")]
    blocks: u32,
    #[serde(default)]
    address: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(serde::Deserialize)]
struct FundRequest {
    address: String,
    amount_sat: u64,
}

fn parse_regtest_address(s: &str) -> Result<bitcoin::ScriptBuf, Response> {
    let addr = Address::from_str(s.trim())
        .map_err(|e| bad_request(format!("invalid address {s:?}: {e}")))?
        .require_network(Network::Regtest)
        .map_err(|e| {
            bad_request(format!("address {s:?} is not a regtest address (bcrt1.../m.../n.../2... required): {e}"))
        })?;
    Ok(addr.script_pubkey())
}

async fn regtest_mine(State(c): State<AppState>, body: Bytes) -> Response {
    let req: MineRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        MineRequest { blocks: 1, address: None }
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return bad_request(format!(
                    "invalid JSON body (expected {{\"blocks\": n, \"address\": optional string}}): {e}"
                ))
            }
        }
    };
    if req.blocks > MAX_MINE_PER_CALL {
        return bad_request(format!("at most {MAX_MINE_PER_CALL} blocks per call"));
    }
    let script = match req.address.as_deref() {
        Some(a) => match parse_regtest_address(a) {
            Ok(s) => Some(s),
            Err(r) => return r,
        },
        None => None,
    };
    let chain = c.clone();
    let result = tokio::task::spawn_blocking(move || chain.mine_blocks(req.blocks, script.as_ref())).await;
    match result {
        Ok(Ok(hashes)) => json_ok(json!({
            "hashes": hashes.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            "height": c.height(),
        })),
        Ok(Err(e)) => chain_error_response(e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("mining task failed: {e}")),
    }
}

async fn regtest_fund(State(c): State<AppState>, body: Bytes) -> Response {
    let req: FundRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(format!(
                "invalid JSON body (expected {{\"address\": \"bcrt1...\", \"amount_sat\": n}}): {e}"
            ))
        }
    };
    let script = match parse_regtest_address(&req.address) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c.fund(&script, Amount::from_sat(req.amount_sat)) {
        Ok(txid) => json_ok(json!({ "txid": txid.to_string() })),
        Err(e) => chain_error_response(e),
    }
}
