//! Raw `lsps5.*` requests, as a peer would send them, fed to the guard; what it refuses is
//! answered here (checked byte for byte), what it passes on is lightning-liquidity's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning::util::logger::Level;
use lightning_liquidity::lsps5::msgs::{ListWebhooksRequest, RemoveWebhookRequest, SetWebhookRequest};
use serde_json::{json, Value};

use super::{Lsps5Guard, MAX_TRACKED_PEERS, OTHER_PER_HOUR, SET_WEBHOOK_PER_HOUR};
use crate::logger::EngineLogger;

fn guard() -> Lsps5Guard {
    Lsps5Guard::new(Arc::new(EngineLogger::new(None, Level::Info, 0, 0).unwrap()))
}

fn peer(n: u32) -> PublicKey {
    let mut b = [1u8; 32];
    b[28..].copy_from_slice(&n.to_be_bytes());
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&b).unwrap())
}

fn set(id: &str, app_name: &str, webhook: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "lsps5.set_webhook",
           "params": {"app_name": app_name, "webhook": webhook}})
    .to_string()
}

/// Whether lightning-liquidity's parser takes `payload`'s params: it reads them (absent ones as
/// {}) into these types, and on failure answers -32700 and ignores the peer.
fn ll_parses(payload: &str) -> bool {
    let v: Value = serde_json::from_str(payload).unwrap();
    let params = v.get("params").cloned().unwrap_or(json!({}));
    match v["method"].as_str() {
        Some("lsps5.set_webhook") => serde_json::from_value::<SetWebhookRequest>(params).is_ok(),
        Some("lsps5.list_webhooks") => serde_json::from_value::<ListWebhooksRequest>(params).is_ok(),
        Some("lsps5.remove_webhook") => serde_json::from_value::<RemoveWebhookRequest>(params).is_ok(),
        _ => false,
    }
}

const URL: &str = "https://wallet.example.com/push/abc";

/// The one reply queued for `to`, parsed; panics unless there is exactly one.
fn reply(g: &Lsps5Guard, to: PublicKey) -> Value {
    let replies = g.take();
    assert_eq!(replies.len(), 1, "{:?}", replies.iter().map(|(_, m)| &m.payload).collect::<Vec<_>>());
    assert_eq!(replies[0].0, to);
    serde_json::from_str(&replies[0].1.payload).unwrap()
}

fn error(id: &str, code: i32, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": null}})
}

/// Answered here: refused with `code`, not passed on.
fn refused(g: &Lsps5Guard, from: PublicKey, payload: &str, now: Instant) -> i32 {
    assert!(g.handle_at(from, payload, now), "passed on: {payload}");
    let r = reply(g, from);
    r["error"]["code"].as_i64().unwrap() as i32
}

#[test]
fn set_webhook_is_limited_per_peer_and_hour_and_refused_with_slow_down() {
    let (a, b) = (peer(1), peer(2));
    let g = guard();
    let t0 = Instant::now();
    for i in 0..SET_WEBHOOK_PER_HOUR {
        assert!(!g.handle_at(a, &set(&format!("s{i}"), "app", URL), t0), "request {i} passed on");
    }
    assert!(g.take().is_empty());
    assert!(g.handle_at(a, &set("s5", "app", URL), t0));
    assert_eq!(reply(&g, a), error("s5", 1002, "Too many lsps5.set_webhook requests: retry in 720 s"));
    // The answer parses as lightning-liquidity's client reads it (slow down).
    let payload = set("s5", "app", URL);
    assert!(g.handle_at(a, &payload, t0 + Duration::from_secs(60)));
    let raw = g.take().remove(0).1.payload;
    assert!(raw.contains("\"code\":1002"), "{raw}");
    // Another peer has its own bucket; list and remove theirs.
    assert!(!g.handle_at(b, &set("t1", "app", URL), t0));
    let list = json!({"jsonrpc": "2.0", "id": "l1", "method": "lsps5.list_webhooks", "params": {}}).to_string();
    assert!(!g.handle_at(a, &list, t0));
    // One more set_webhook every 12 minutes.
    let later = t0 + Duration::from_secs(3600 / u64::from(SET_WEBHOOK_PER_HOUR) + 1);
    assert!(!g.handle_at(a, &set("s6", "app", URL), later));
    assert_eq!(refused(&g, a, &set("s7", "app", URL), later), 1002);
    // A refused request spends nothing: after the wait named, one passes.
    assert!(!g.handle_at(a, &set("s8", "app", URL), later + Duration::from_secs(720)));
    assert!(g.take().is_empty());
}

#[test]
fn list_and_remove_share_a_larger_bucket() {
    let a = peer(1);
    let g = guard();
    let t0 = Instant::now();
    let remove = |id: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "lsps5.remove_webhook", "params": {"app_name": "app"}}).to_string()
    };
    let list = |id: &str| json!({"jsonrpc": "2.0", "id": id, "method": "lsps5.list_webhooks"}).to_string();
    for i in 0..OTHER_PER_HOUR {
        let payload = if i % 2 == 0 { remove(&format!("r{i}")) } else { list(&format!("l{i}")) };
        assert!(!g.handle_at(a, &payload, t0), "{payload}");
    }
    assert_eq!(refused(&g, a, &list("l"), t0), 1002);
    assert_eq!(refused(&g, a, &remove("r"), t0), 1002);
    // set_webhook's own bucket is untouched.
    assert!(!g.handle_at(a, &set("s", "app", URL), t0));
}

#[test]
fn bad_set_webhook_params_get_blip55_codes_instead_of_reaching_the_parser() {
    let a = peer(1);
    let t0 = Instant::now();
    let cases: Vec<(String, Value)> = vec![
        (set("a", &"x".repeat(65), URL), error("a", 500, "App name exceeds maximum length")),
        // 33 two-byte characters: 66 bytes, though 33 characters.
        (set("b", &"é".repeat(33), URL), error("b", 500, "App name exceeds maximum length")),
        (
            set("c", "app", &format!("https://h.example/{}", "p".repeat(1024))),
            error("c", 500, "Webhook URL exceeds maximum length"),
        ),
        (set("d", "app", "no scheme here"), error("d", 501, "Error parsing URL")),
        (set("e", "app", "https://bad host/"), error("e", 501, "Error parsing URL")),
        (set("f", "app", "http://wallet.example.com/push"), error("f", 502, "Unsupported protocol: HTTPS is required")),
        (
            json!({"jsonrpc": "2.0", "id": "g", "method": "lsps5.set_webhook", "params": {"app_name": 7, "webhook": URL}})
                .to_string(),
            error("g", -32602, "Invalid params: app_name must be a string"),
        ),
        (
            json!({"jsonrpc": "2.0", "id": "h", "method": "lsps5.set_webhook", "params": {"app_name": "app"}})
                .to_string(),
            error("h", -32602, "Invalid params: webhook is missing"),
        ),
        (
            json!({"jsonrpc": "2.0", "id": "i", "method": "lsps5.set_webhook", "params": ["app", URL]}).to_string(),
            error("i", -32602, "Invalid params: params must be an object"),
        ),
        (
            json!({"jsonrpc": "2.0", "id": "j", "method": "lsps5.set_webhook"}).to_string(),
            error("j", -32602, "Invalid params: app_name is missing"),
        ),
        (
            json!({"jsonrpc": "2.0", "id": "k", "method": "lsps5.remove_webhook", "params": {"app_name": "y".repeat(65)}})
                .to_string(),
            error("k", 500, "App name exceeds maximum length"),
        ),
        (
            json!({"jsonrpc": "2.0", "id": "l", "method": "lsps5.list_webhooks", "params": "all"}).to_string(),
            error("l", -32602, "Invalid params: params must be an object"),
        ),
        (
            json!({"jsonrpc": "2.0", "id": "m", "method": "lsps5.set_webhooks", "params": {}}).to_string(),
            error("m", -32601, "method not found"),
        ),
    ];
    for (i, (payload, expected)) in cases.into_iter().enumerate() {
        // A fresh guard per case: the point here is the params, not the rate limit.
        let g = guard();
        assert!(g.handle_at(a, &payload, t0), "case {i} passed on: {payload}");
        assert_eq!(reply(&g, a), expected, "case {i}: {payload}");
        // Each refused payload is one lightning-liquidity's parser would refuse (and then
        // ignore the peer): that is why it must be answered here. Except params by position,
        // which serde takes for a struct: refused anyway, LSPS0's params are an object.
        if expected["id"] != "i" {
            assert!(!ll_parses(&payload), "case {i} parses: {payload}");
        }
    }
    // At the limits exactly, and with the fields lightning-liquidity ignores: passed on, and
    // lightning-liquidity parses them.
    let g = guard();
    for payload in [
        set("n", &"x".repeat(64), URL),
        set("o", &"é".repeat(32), &format!("https://h.example/{}", "p".repeat(1024 - 18))),
        json!({"jsonrpc": "2.0", "id": "p", "method": "lsps5.list_webhooks"}).to_string(),
        json!({"jsonrpc": "2.0", "id": "q", "method": "lsps5.remove_webhook", "params": {"app_name": "a", "x": 1}})
            .to_string(),
    ] {
        assert!(!g.handle_at(a, &payload, t0), "{payload}");
        assert!(ll_parses(&payload), "{payload}");
    }
    assert!(g.take().is_empty());
}

#[test]
fn other_messages_are_left_to_lightning_liquidity() {
    let a = peer(1);
    let g = guard();
    let t0 = Instant::now();
    for other in [
        r#"{"jsonrpc":"2.0","id":"a","method":"lsps2.get_info","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":"a","method":"lsps0.list_protocols"}"#,
        r#"{"jsonrpc":"2.0","id":"a","result":{}}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"lsps5.set_webhook","params":{}}"#,
        r#"["lsps5.set_webhook"]"#,
        "not json",
    ] {
        assert!(!g.handle_at(a, other, t0), "{other}");
    }
    // Not counted against the peer either.
    for i in 0..SET_WEBHOOK_PER_HOUR {
        assert!(!g.handle_at(a, &set(&format!("s{i}"), "app", URL), t0));
    }
    assert!(g.take().is_empty());
    // An id too long to echo: dropped unanswered.
    assert!(g.handle_at(a, &set(&"i".repeat(129), "app", URL), t0));
    assert!(g.take().is_empty());
}

#[test]
fn the_peer_map_is_bounded_and_forgets_idle_peers() {
    let g = guard();
    let t0 = Instant::now();
    let n = u32::try_from(MAX_TRACKED_PEERS).unwrap();
    for i in 0..n {
        assert!(!g.handle_at(peer(i), &set("s", "app", URL), t0));
    }
    assert_eq!(g.tracked_peers(), MAX_TRACKED_PEERS);
    // Full of peers with spent tokens: a new peer is refused, not let in by forgetting one
    // (whose bucket would then start full again).
    assert_eq!(refused(&g, peer(n), &set("s", "app", URL), t0 + Duration::from_secs(60)), 1002);
    // An hour later every bucket is full again: the idle peers are dropped, the new one kept.
    let hour = t0 + Duration::from_secs(3601);
    assert!(!g.handle_at(peer(n), &set("s", "app", URL), hour));
    assert_eq!(g.tracked_peers(), 1);
    // A known peer keeps its bucket across the eviction check.
    for _ in 1..SET_WEBHOOK_PER_HOUR {
        assert!(!g.handle_at(peer(n), &set("s", "app", URL), hour));
    }
    assert_eq!(refused(&g, peer(n), &set("s", "app", URL), hour), 1002);
}
