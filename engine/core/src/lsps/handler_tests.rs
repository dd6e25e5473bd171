//! Raw LSPS messages, as a peer would send them, fed to the peer manager's handler (the
//! `LspsHandler` wrapper) with a real order store and LSPS1 service; the replies the peer
//! manager would collect are checked byte for byte where they are fixed. (ldk-node ignores
//! error replies, so only here can a wrong one be seen.) lightning-liquidity's manager is
//! stood in for by one that records what it is handed and queues what a test gives it: the
//! wrapper's job is the routing between the two.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning::sign::KeysManager;
use lightning::util::logger::Level;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Currency, Description, InvoiceBuilder};
use serde_json::{json, Value};

use lightning::ln::msgs::{DecodeError, Init, LightningError};
use lightning::ln::peer_handler::CustomMessageHandler;
use lightning::ln::wire::CustomMessageReader;
use lightning::types::features::{InitFeatures, NodeFeatures};
use lightning::util::ser::LengthLimitedRead;
use lightning_liquidity::lsps0::ser::RawLSPSMessage;

use super::{LspsHandler, LspsManager, OwnRequests, LSPS_FEATURE_BIT, MAX_QUEUED_PER_PEER, MAX_REPLY_BYTES};
use crate::config::Lsps1Options;
use crate::io::{now_secs, SqliteStore, STATUS_SUCCEEDED};
use crate::logger::EngineLogger;
use crate::lsps::lsps1::{Lsps1Node, Lsps1Service};
use crate::lsps::lsps1_terms::funding_fee_sat;

/// Invoices signed with a fixed key, a wallet balance the test sets, a fixed fee rate.
struct TestNode {
    spendable: Arc<AtomicU64>,
    count: AtomicU64,
}

const SAT_PER_KW: u32 = 2_500;

impl Lsps1Node for TestNode {
    fn invoice(
        &self, amount_msat: u64, description: Description, expiry_secs: u32,
    ) -> std::result::Result<Bolt11Invoice, String> {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let key = SecretKey::from_slice(&[7; 32]).map_err(|e| e.to_string())?;
        InvoiceBuilder::new(Currency::Regtest)
            .invoice_description(Bolt11InvoiceDescription::Direct(description))
            .payment_hash(sha256::Hash::hash(&n.to_be_bytes()))
            .payment_secret(lightning_types::payment::PaymentSecret([2; 32]))
            .current_timestamp()
            .min_final_cltv_expiry_delta(144)
            .expiry_time(std::time::Duration::from_secs(u64::from(expiry_secs)))
            .amount_milli_satoshis(amount_msat)
            .build_signed(|h| Secp256k1::new().sign_ecdsa_recoverable(h, &key))
            .map_err(|e| format!("{e:?}"))
    }

    fn spendable_sat(&self) -> u64 {
        self.spendable.load(Ordering::SeqCst)
    }

    fn feerate_sat_per_kw(&self, _target_blocks: u16) -> u32 {
        SAT_PER_KW
    }

    fn network(&self) -> bitcoin::Network {
        bitcoin::Network::Regtest
    }

    fn onchain_address(&self) -> std::result::Result<(u32, String), String> {
        // A distinct regtest P2WPKH address each time, like a wallet revealing its next one.
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let key =
            SecretKey::from_slice(&sha256::Hash::hash(&n.to_be_bytes()).to_byte_array()).map_err(|e| e.to_string())?;
        let pk = bitcoin::CompressedPublicKey(key.public_key(&Secp256k1::new()));
        let idx = u32::try_from(n).map_err(|e| e.to_string())?;
        Ok((idx, bitcoin::Address::p2wpkh(&pk, bitcoin::Network::Regtest).to_string()))
    }
}

/// lightning-liquidity's place: what it was handed, what it has to send, what it serves.
#[derive(Default)]
struct Manager {
    protocols: Vec<u16>,
    handed: Mutex<Vec<(PublicKey, String)>>,
    outbox: Mutex<Vec<(PublicKey, RawLSPSMessage)>>,
}

impl CustomMessageReader for Manager {
    type CustomMessage = RawLSPSMessage;

    fn read<R: LengthLimitedRead>(&self, _t: u16, _b: &mut R) -> Result<Option<RawLSPSMessage>, DecodeError> {
        Ok(None)
    }
}

impl CustomMessageHandler for Manager {
    fn handle_custom_message(&self, msg: RawLSPSMessage, sender: PublicKey) -> Result<(), LightningError> {
        self.handed.lock().unwrap().push((sender, msg.payload));
        Ok(())
    }

    fn get_and_clear_pending_msg(&self) -> Vec<(PublicKey, RawLSPSMessage)> {
        std::mem::take(&mut *self.outbox.lock().unwrap())
    }

    fn peer_disconnected(&self, _their_node_id: PublicKey) {}

    fn peer_connected(&self, _their_node_id: PublicKey, _msg: &Init, _inbound: bool) -> Result<(), ()> {
        Ok(())
    }

    fn provided_node_features(&self) -> NodeFeatures {
        NodeFeatures::empty()
    }

    fn provided_init_features(&self, _their_node_id: PublicKey) -> InitFeatures {
        InitFeatures::empty()
    }
}

impl LspsManager for Manager {
    fn protocols(&self) -> Vec<u16> {
        self.protocols.clone()
    }
}

struct Lsp {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    service: Arc<Lsps1Service>,
    handler: LspsHandler<Manager>,
    manager: Arc<Manager>,
    spendable: Arc<AtomicU64>,
}

impl Lsp {
    fn own(&self) -> &OwnRequests {
        self.handler.own.as_ref().unwrap()
    }
}

fn lsp(options: Lsps1Options, lsps2_on: bool, spendable: u64) -> Lsp {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("node.sqlite")).unwrap());
    let spendable = Arc::new(AtomicU64::new(spendable));
    let node = TestNode { spendable: Arc::clone(&spendable), count: AtomicU64::new(0) };
    let keys = Arc::new(KeysManager::new(&[9; 32], 1, 2, true));
    let logger = Arc::new(EngineLogger::new(None, Level::Info, 0, 0).unwrap());
    let service =
        Arc::new(Lsps1Service::new(options, Arc::clone(&store), Box::new(node), keys, Arc::clone(&logger)).unwrap());
    let manager = Arc::new(Manager { protocols: if lsps2_on { vec![2] } else { vec![] }, ..Default::default() });
    let handler = LspsHandler::new(Arc::clone(&manager), Some(Arc::clone(&service)), logger);
    Lsp { _dir: dir, store, service, handler, manager, spendable }
}

/// Whether feature bit `bit` is set in little-endian feature bytes.
fn has_bit(le_flags: &[u8], bit: usize) -> bool {
    le_flags.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

fn peer(n: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[n; 32]).unwrap())
}

/// Send `request` from `from` through the wrapper; the replies the peer manager collects,
/// parsed, with their payload sizes. The request must be ours: the manager is handed nothing.
fn send(lsp: &Lsp, from: PublicKey, request: &str) -> Vec<(Value, usize)> {
    lsp.handler.handle_custom_message(RawLSPSMessage { payload: request.to_string() }, from).unwrap();
    assert!(lsp.manager.handed.lock().unwrap().is_empty(), "ours: {}", &request[..request.len().min(80)]);
    lsp.handler
        .get_and_clear_pending_msg()
        .into_iter()
        .map(|(to, raw)| {
            assert_eq!(to, from);
            (serde_json::from_str(&raw.payload).unwrap(), raw.payload.len())
        })
        .collect()
}

/// The one reply to `request`.
fn ask(lsp: &Lsp, from: PublicKey, request: Value) -> Value {
    let replies = send(lsp, from, &request.to_string());
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies.into_iter().next().unwrap().0
}

fn create_order(id: &str, lsp_balance_sat: u64, extra: Value) -> Value {
    let mut params = json!({
        "lsp_balance_sat": lsp_balance_sat.to_string(),
        "client_balance_sat": "0",
        "required_channel_confirmations": 0,
        "funding_confirms_within_blocks": 6,
        "channel_expiry_blocks": 1000,
        "announce_channel": false,
    });
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "lsps1.create_order", "params": params})
}

fn error(id: &str, code: i32, message: &str, property: Option<&str>) -> Value {
    let data = property.map(|p| json!({"property": p, "message": message}).to_string());
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": data}})
}

const PLENTY: u64 = 100_000_000;

#[test]
fn get_info_and_list_protocols_are_answered_exactly() {
    let a = peer(1);
    let l = lsp(Lsps1Options::default(), false, PLENTY);
    let info = ask(&l, a, json!({"jsonrpc": "2.0", "id": "i1", "method": "lsps1.get_info", "params": {}}));
    assert_eq!(
        info,
        json!({"jsonrpc": "2.0", "id": "i1", "result": {
            "min_required_channel_confirmations": 0,
            "min_funding_confirms_within_blocks": 6,
            "supports_zero_channel_reserve": false,
            "max_channel_expiry_blocks": 13140,
            "min_initial_client_balance_sat": "0",
            "max_initial_client_balance_sat": "0",
            "min_initial_lsp_balance_sat": "100000",
            "max_initial_lsp_balance_sat": "16777215",
            "min_channel_balance_sat": "100000",
            "max_channel_balance_sat": "16777215",
        }})
    );
    let list = json!({"jsonrpc": "2.0", "id": "p1", "method": "lsps0.list_protocols", "params": {}});
    assert_eq!(ask(&l, a, list.clone()), json!({"jsonrpc": "2.0", "id": "p1", "result": {"protocols": [1]}}));
    let both = lsp(Lsps1Options::default(), true, PLENTY);
    assert_eq!(ask(&both, a, list), json!({"jsonrpc": "2.0", "id": "p1", "result": {"protocols": [1, 2]}}));
    assert_eq!(
        ask(&l, a, json!({"jsonrpc": "2.0", "id": "m1", "method": "lsps1.cancel_order", "params": {}})),
        json!({"jsonrpc": "2.0", "id": "m1", "error": {"code": -32601, "message": "method not found", "data": null}})
    );
    // Not ours: left to lightning-liquidity.
    assert!(!l.own().handle(a, r#"{"jsonrpc":"2.0","id":"x","method":"lsps2.get_info","params":{}}"#, &[]));
}

#[test]
fn oversized_input_gets_a_small_fixed_error_and_never_an_oversized_reply() {
    let a = peer(1);
    let l = lsp(Lsps1Options::default(), false, PLENTY);
    // A 70 KB bad field: the parser's message would quote it; the answer is the fixed text.
    let huge = "9".repeat(70_000) + "x";
    let replies = send(&l, a, &create_order("c1", 0, json!({"lsp_balance_sat": huge})).to_string());
    assert_eq!(replies.len(), 1);
    assert_eq!(
        replies[0].0,
        json!({"jsonrpc": "2.0", "id": "c1", "error": {"code": -32602, "message": "invalid params", "data": null}})
    );
    assert!(replies[0].1 < 200, "{} bytes", replies[0].1);
    let bad_id = json!({"jsonrpc": "2.0", "id": "g1", "method": "lsps1.get_order", "params": {"order_id": 5}});
    assert_eq!(
        ask(&l, a, bad_id),
        json!({"jsonrpc": "2.0", "id": "g1", "error": {"code": -32602, "message": "invalid params", "data": null}})
    );
    // A 70 KB token would be mirrored in the answer: refused, naming the property.
    let token = "t".repeat(70_000);
    let replies = send(&l, a, &create_order("c2", 200_000, json!({"token": token})).to_string());
    assert_eq!(replies[0].0, error("c2", -32602, "token longer than 512 bytes", Some("token")));
    assert!(replies[0].1 < 300);
    assert!(l.store.lsps1_orders(10, 0).unwrap().is_empty());
    // 512 bytes is taken and mirrored.
    let token = "t".repeat(512);
    let ok = ask(&l, a, create_order("c3", 200_000, json!({"token": token})));
    assert_eq!(ok["result"]["token"], token.as_str());
    // A request id that long is not answered (it would be echoed), nor handed on.
    let long_id = "i".repeat(200);
    let get_info = json!({"jsonrpc": "2.0", "id": long_id, "method": "lsps1.get_info", "params": {}});
    assert!(send(&l, a, &get_info.to_string()).is_empty());
    // Whatever else could make one: a reply past one Lightning message is dropped, not queued.
    l.own().push(a, "x".repeat(MAX_REPLY_BYTES + 1));
    l.own().push(a, "x".repeat(MAX_REPLY_BYTES));
    let queued: Vec<usize> = l.own().take().into_iter().map(|(_, m)| m.payload.len()).collect();
    assert_eq!(queued, [MAX_REPLY_BYTES]);
}

#[test]
fn refusals_carry_the_blip51_codes() {
    let (a, b) = (peer(1), peer(2));
    let o = Lsps1Options { max_pending_per_client: 2, ..Default::default() };
    let l = lsp(o, false, PLENTY);
    // Outside the terms: 100, naming the option.
    assert_eq!(
        ask(&l, a, create_order("c1", 99_999, json!({}))),
        error("c1", 100, "lsp_balance_sat must be 100000..=16777215", Some("lsp_balance_sat"))
    );
    let refund =
        bitcoin::Address::p2wpkh(&bitcoin::CompressedPublicKey(peer(3)), bitcoin::Network::Regtest).to_string();
    let first = ask(&l, a, create_order("c2", 200_000, json!({ "refund_onchain_address": refund })));
    let order_id = first["result"]["order_id"].as_str().unwrap().to_string();
    assert_eq!(first["result"]["payment"]["bolt11"]["state"], "EXPECT_PAYMENT");
    assert_eq!(first["result"]["payment"]["bolt11"]["order_total_sat"], "4000");
    let stored = l.store.lsps1_order(&order_id).unwrap().unwrap();
    assert_eq!(stored.refund_onchain_address, Some(refund));
    ask(&l, a, create_order("c3", 200_000, json!({})));
    // The client's third unpaid order: LSPS0 client_rejected (1), before any invoice is made.
    assert_eq!(
        ask(&l, a, create_order("c4", 200_000, json!({}))),
        error("c4", 1, "2 orders of this client wait for payment (at most 2)", None)
    );
    assert_eq!(l.store.lsps1_orders(10, 0).unwrap().len(), 2);
    // get_order: the client's own order as created; anyone else's, or none, is 101.
    let get = |id: &str| json!({"jsonrpc": "2.0", "id": "g", "method": "lsps1.get_order", "params": {"order_id": id}});
    assert_eq!(ask(&l, a, get(&order_id))["result"], first["result"]);
    let not_found = json!({"jsonrpc": "2.0", "id": "g", "error": {"code": 101, "message": "not found", "data": null}});
    assert_eq!(ask(&l, b, get(&order_id)), not_found);
    assert_eq!(ask(&l, a, get(&"00".repeat(16))), not_found);
    // A wallet that cannot fund the channel: client_rejected too.
    l.spendable.store(200_000, Ordering::SeqCst);
    assert_eq!(
        ask(&l, b, create_order("c5", 200_000, json!({}))),
        error("c5", 1, "the LSP cannot fund this channel now", None)
    );
}

/// Pay `order_id`'s invoice as the claim's event does.
fn pay(l: &Lsp, order_id: &str) -> String {
    let hash = l.store.lsps1_order(order_id).unwrap().unwrap().payment_hash;
    let mut p = l.store.payment(&hash).unwrap().unwrap();
    p.status = STATUS_SUCCEEDED.into();
    l.store.push_event("payment_received", "{}", Some(&p)).unwrap();
    hash
}

#[test]
fn coins_owed_to_paid_orders_and_the_funding_fee_are_not_promised_twice() {
    let a = peer(1);
    let fee = funding_fee_sat(SAT_PER_KW);
    assert_eq!(fee, 10_000, "1,000 vbytes at 10 sat/vB");
    // Enough for one 200,000 sat channel and its funding fee, not two.
    let l = lsp(Lsps1Options::default(), false, 200_000 + fee + 50_000);
    let id = |r: Value| r["result"]["order_id"].as_str().unwrap().to_string();
    let first = id(ask(&l, a, create_order("c1", 200_000, json!({}))));
    let second = id(ask(&l, a, create_order("c2", 200_000, json!({}))));
    let second_hash = l.store.lsps1_order(&second).unwrap().unwrap().payment_hash;
    assert_eq!(l.service.claimable(&second_hash).unwrap(), Some(Ok(())));
    pay(&l, &first);
    // The first order's channel is owed: the second can no longer be paid, nor a third taken.
    let refused = l.service.claimable(&second_hash).unwrap().unwrap().unwrap_err();
    assert!(refused.contains("200000 owed to paid orders"), "{refused}");
    assert_eq!(
        ask(&l, a, create_order("c3", 200_000, json!({}))),
        error("c3", 1, "the LSP cannot fund this channel now", None)
    );
    // The funding fee counts too: a wallet holding the channel and less than the fee is short.
    let l = lsp(Lsps1Options::default(), false, 200_000 + fee - 1);
    assert_eq!(
        ask(&l, a, create_order("c1", 200_000, json!({}))),
        error("c1", 1, "the LSP cannot fund this channel now", None)
    );
}

#[test]
fn a_deleted_orders_invoice_stays_unpayable_and_its_payment_row_goes_with_it() {
    let a = peer(1);
    let l = lsp(Lsps1Options::default(), false, PLENTY);
    let r = ask(&l, a, create_order("c1", 200_000, json!({})));
    let order = l.store.lsps1_order(r["result"]["order_id"].as_str().unwrap()).unwrap().unwrap();
    assert!(l.store.payment(&order.payment_hash).unwrap().is_some());
    // Expired, then deleted a day later.
    let (failed, deleted) = l.store.lsps1_sweep(order.expires_at + 2 * 24 * 3600).unwrap();
    assert_eq!((failed, deleted), (1, 1));
    assert!(l.store.lsps1_order(&order.order_id).unwrap().is_none());
    assert!(l.store.payment(&order.payment_hash).unwrap().is_none(), "the pending payment row is deleted too");
    let refused = l.service.claimable(&order.payment_hash).unwrap();
    assert_eq!(refused, Some(Err("its order expired and was deleted".into())));
    // Any other payment hash is no order's: an ordinary payment.
    assert_eq!(l.service.claimable(&"ab".repeat(32)).unwrap(), None);
    // Long after, the tombstone goes too.
    l.store.lsps1_sweep(now_secs() + 40 * 24 * 3600).unwrap();
    assert_eq!(l.service.claimable(&order.payment_hash).unwrap(), None);
}

#[test]
fn replies_are_bounded_per_peer_and_a_request_without_room_is_not_served() {
    let (a, b) = (peer(1), peer(2));
    let l = lsp(Lsps1Options::default(), false, PLENTY);
    let get_info = json!({"jsonrpc": "2.0", "id": "i", "method": "lsps1.get_info", "params": {}}).to_string();
    for _ in 0..MAX_QUEUED_PER_PEER + 4 {
        assert!(l.own().handle(a, &get_info, &[]));
    }
    // No room for its reply: the order is not taken (no row, no invoice) rather than taken
    // and its answer dropped.
    assert!(l.own().handle(a, &create_order("c1", 200_000, json!({})).to_string(), &[]));
    assert!(l.store.lsps1_orders(10, 0).unwrap().is_empty());
    assert!(l.own().handle(b, &get_info, &[]));
    let replies = l.own().take();
    assert_eq!(replies.iter().filter(|(p, _)| *p == a).count(), MAX_QUEUED_PER_PEER);
    assert_eq!(replies.iter().filter(|(p, _)| *p == b).count(), 1, "another peer is still answered");
    // Collected: room again.
    assert_eq!(send(&l, a, &get_info).len(), 1);
    assert_eq!(send(&l, a, &create_order("c2", 200_000, json!({})).to_string()).len(), 1);
    assert_eq!(l.store.lsps1_orders(10, 0).unwrap().len(), 1);
}

#[test]
fn the_wrapper_routes_lsps1_to_us_and_the_rest_to_lightning_liquidity() {
    let a = peer(1);
    let l = lsp(Lsps1Options::default(), true, PLENTY);
    let theirs = [
        r#"{"jsonrpc":"2.0","id":"x1","method":"lsps2.get_info","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":"x2","result":{"protocols":[1]}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"lsps1.get_info","params":{}}"#,
        "not json",
    ];
    for m in theirs {
        l.handler.handle_custom_message(RawLSPSMessage { payload: m.into() }, a).unwrap();
    }
    let handed: Vec<String> = l.manager.handed.lock().unwrap().iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(handed, theirs);
    l.manager.handed.lock().unwrap().clear();
    // Both sides' replies reach the peer manager in one collection.
    let from_manager = RawLSPSMessage { payload: r#"{"jsonrpc":"2.0","id":"x1","result":{}}"#.into() };
    l.manager.outbox.lock().unwrap().push((a, from_manager.clone()));
    let get_info = json!({"jsonrpc": "2.0", "id": "i1", "method": "lsps1.get_info", "params": {}}).to_string();
    l.handler.handle_custom_message(RawLSPSMessage { payload: get_info }, a).unwrap();
    assert!(l.manager.handed.lock().unwrap().is_empty());
    let out: Vec<String> = l.handler.get_and_clear_pending_msg().into_iter().map(|(_, m)| m.payload).collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], from_manager.payload);
    assert_eq!(serde_json::from_str::<Value>(&out[1]).unwrap()["id"], "i1");
    assert!(l.handler.get_and_clear_pending_msg().is_empty());
    // bLIP-50's bit is advertised while LSPS1 runs, whatever the manager advertises.
    assert!(has_bit(l.handler.provided_node_features().le_flags(), LSPS_FEATURE_BIT));
    assert!(has_bit(l.handler.provided_init_features(a).le_flags(), LSPS_FEATURE_BIT));
    // Without LSPS1 everything is the manager's, list_protocols included.
    let off =
        LspsHandler::new(Arc::clone(&l.manager), None, Arc::new(EngineLogger::new(None, Level::Info, 0, 0).unwrap()));
    let list = r#"{"jsonrpc":"2.0","id":"p","method":"lsps0.list_protocols","params":{}}"#;
    off.handle_custom_message(RawLSPSMessage { payload: list.into() }, a).unwrap();
    assert_eq!(l.manager.handed.lock().unwrap().len(), 1);
    assert!(!has_bit(off.provided_node_features().le_flags(), LSPS_FEATURE_BIT));
}

#[test]
fn list_protocols_names_what_runs() {
    let a = peer(1);
    let list = json!({"jsonrpc": "2.0", "id": "p1", "method": "lsps0.list_protocols", "params": {}});
    for (manager, expected) in [(vec![], json!([1])), (vec![2], json!([1, 2])), (vec![5, 2], json!([1, 2, 5]))] {
        let l = lsp(Lsps1Options::default(), false, PLENTY);
        let l = Lsp { manager: Arc::new(Manager { protocols: manager, ..Default::default() }), ..l };
        let handler = LspsHandler::new(
            Arc::clone(&l.manager),
            Some(Arc::clone(&l.service)),
            Arc::new(EngineLogger::new(None, Level::Info, 0, 0).unwrap()),
        );
        let l = Lsp { handler, ..l };
        assert_eq!(ask(&l, a, list.clone())["result"]["protocols"], expected);
    }
}

#[test]
fn two_payments_judged_in_one_batch_are_not_both_approved_for_one_channels_coins() {
    let a = peer(1);
    let fee = funding_fee_sat(SAT_PER_KW);
    // Coins for one 200,000 sat channel and its funding, not two.
    let l = lsp(Lsps1Options::default(), false, 200_000 + 2 * fee);
    let id = |r: Value| r["result"]["order_id"].as_str().unwrap().to_string();
    let first = id(ask(&l, a, create_order("c1", 200_000, json!({}))));
    let second = id(ask(&l, a, create_order("c2", 200_000, json!({}))));
    let hash = |o: &str| l.store.lsps1_order(o).unwrap().unwrap().payment_hash;
    // Both PaymentClaimable events come before either PaymentClaimed.
    assert_eq!(l.service.claimable(&hash(&first)).unwrap(), Some(Ok(())));
    let refused = l.service.claimable(&hash(&second)).unwrap().unwrap().unwrap_err();
    assert!(refused.contains("200000 owed to paid orders"), "{refused}");
    // The approved one, replayed, is approved again.
    assert_eq!(l.service.claimable(&hash(&first)).unwrap(), Some(Ok(())));
}

#[test]
fn a_funding_fee_is_held_back_for_every_order_owed() {
    let a = peer(1);
    let fee = funding_fee_sat(SAT_PER_KW);
    // Two 100,000 sat channels and one funding fee: the second order's own fee is missing.
    let l = lsp(Lsps1Options::default(), false, 200_000 + 2 * fee - 1);
    let id = |r: Value| r["result"]["order_id"].as_str().unwrap().to_string();
    let first = id(ask(&l, a, create_order("c1", 100_000, json!({}))));
    pay(&l, &first);
    assert_eq!(
        ask(&l, a, create_order("c2", 100_000, json!({}))),
        error("c2", 1, "the LSP cannot fund this channel now", None)
    );
    l.spendable.store(200_000 + 2 * fee, Ordering::SeqCst);
    assert!(ask(&l, a, create_order("c3", 100_000, json!({})))["result"].is_object());
}

#[test]
fn a_refund_address_of_another_chain_is_refused_naming_it() {
    let a = peer(1);
    let l = lsp(Lsps1Options::default(), false, PLENTY);
    let mainnet =
        bitcoin::Address::p2wpkh(&bitcoin::CompressedPublicKey(peer(3)), bitcoin::Network::Bitcoin).to_string();
    assert_eq!(
        ask(&l, a, create_order("c1", 200_000, json!({ "refund_onchain_address": mainnet }))),
        error("c1", -32602, "refund_onchain_address is not a regtest address", Some("refund_onchain_address"))
    );
    assert!(l.store.lsps1_orders(10, 0).unwrap().is_empty());
}

#[test]
fn the_lsps5_guard_stands_in_front_only_while_the_manager_serves_lsps5() {
    let a = peer(1);
    let unknown = r#"{"jsonrpc":"2.0","id":"w1","method":"lsps5.no_such_method","params":{}}"#;
    let logger = || Arc::new(EngineLogger::new(None, Level::Info, 0, 0).unwrap());
    // LSPS5 off: lsps5.* is lightning-liquidity's to judge.
    let off = Arc::new(Manager { protocols: vec![2], ..Default::default() });
    LspsHandler::new(Arc::clone(&off), None, logger())
        .handle_custom_message(RawLSPSMessage { payload: unknown.into() }, a)
        .unwrap();
    assert_eq!(off.handed.lock().unwrap().len(), 1);
    // LSPS5 on (with or without LSPS1): the guard answers what it refuses; the manager never sees it.
    for lsps1 in [false, true] {
        let on = Arc::new(Manager { protocols: vec![2, 5], ..Default::default() });
        let l = lsp(Lsps1Options::default(), false, PLENTY);
        let handler = LspsHandler::new(Arc::clone(&on), lsps1.then(|| Arc::clone(&l.service)), logger());
        handler.handle_custom_message(RawLSPSMessage { payload: unknown.into() }, a).unwrap();
        assert!(on.handed.lock().unwrap().is_empty());
        let out = handler.get_and_clear_pending_msg();
        assert_eq!(out.len(), 1);
        let reply: Value = serde_json::from_str(&out[0].1.payload).unwrap();
        assert_eq!((&reply["id"], &reply["error"]["code"]), (&json!("w1"), &json!(-32601)));
    }
}

#[path = "handler_onchain_tests.rs"]
mod onchain;
