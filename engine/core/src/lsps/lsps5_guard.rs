//! LSPS5 requests checked before lightning-liquidity sees them.
//!
//! lightning-liquidity 0.2.7 answers an `lsps5.*` request whose params do not deserialise (an
//! app name over 64 bytes, a URL its parser refuses, a field of the wrong type) with -32700 and
//! then ignores every LSPS message of that peer -- its LSPS2 requests too -- until it
//! disconnects. And it takes `lsps5.set_webhook` as fast as a peer sends it: each new URL for a
//! known app name is answered by a `webhook_registered` POST, exempt from every cooldown, so a
//! client alternating URLs would make the LSP POST wherever it likes as fast as it can type.
//!
//! So for each `lsps5.*` request (with a string id) this guard first spends a token of the
//! peer's bucket -- `set_webhook` has its own, small one -- and over the limit answers 1002
//! (bLIP-55's "slow down"); then checks the params as lightning-liquidity will parse them and
//! answers bLIP-55's codes itself: 500 (app name or URL too long), 501 (URL does not parse), 502
//! (not `https`: lightning-liquidity registers nothing else, whatever `allow_http` says), or
//! JSON-RPC's -32602 for params of the wrong shape. Only requests lightning-liquidity will parse
//! are passed on. The buckets outlive a disconnect (reconnecting must not refill them); a full
//! bucket is the same as none, so full ones are dropped when the map reaches its cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use lightning::util::logger::Level;
use lightning_liquidity::lsps0::ser::{LSPSResponseError, RawLSPSMessage};
use lightning_liquidity::lsps5::msgs::{
    LSPS5ProtocolError, LSPS5WebhookUrl, ListWebhooksRequest, RemoveWebhookRequest, SetWebhookRequest,
    LSPS5_SLOW_DOWN_ERROR_CODE, MAX_APP_NAME_LENGTH,
};
use serde_json::{Map, Value};

use super::handler::MAX_ID_BYTES;
use super::replies::Replies;
use crate::logger::EngineLogger;

/// `lsps5.set_webhook` requests a peer may send per hour (and at once, after an idle hour).
pub(crate) const SET_WEBHOOK_PER_HOUR: u32 = 5;
/// `lsps5.list_webhooks` and `lsps5.remove_webhook` requests, together, per peer and hour.
pub(crate) const OTHER_PER_HOUR: u32 = 60;
/// Peers whose buckets are kept; past this (after dropping the full ones) a new peer's request
/// is refused rather than letting an old peer's drained bucket go.
pub(crate) const MAX_TRACKED_PEERS: usize = 10_000;
/// JSON-RPC "invalid params" and "method not found".
const INVALID_PARAMS: i32 = -32602;
const METHOD_NOT_FOUND: i32 = -32601;
const HOUR_SECS: f64 = 3600.0;

/// A token bucket refilled continuously, `per_hour` tokens an hour, holding at most `per_hour`.
#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(per_hour: u32, now: Instant) -> Self {
        Self { tokens: f64::from(per_hour), at: now }
    }

    fn refill(&mut self, per_hour: u32, now: Instant) {
        let cap = f64::from(per_hour);
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * cap / HOUR_SECS).min(cap);
        self.at = now;
    }

    /// Spend one token, or the wait until one is there.
    fn spend(&mut self, per_hour: u32, now: Instant) -> Result<(), Duration> {
        self.refill(per_hour, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) * HOUR_SECS / f64::from(per_hour)))
    }

    fn is_full(mut self, per_hour: u32, now: Instant) -> bool {
        self.refill(per_hour, now);
        self.tokens >= f64::from(per_hour)
    }
}

#[derive(Clone, Copy)]
struct PeerBuckets {
    set: Bucket,
    other: Bucket,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Method {
    SetWebhook,
    ListWebhooks,
    RemoveWebhook,
}

/// An `lsps5.*` request: its id, method name and params (None when absent).
struct Request {
    id: String,
    method: String,
    params: Option<Value>,
}

/// The `lsps5.*` request in `payload`, if it is one: a JSON object with a string `id` and a
/// `method` starting `lsps5.`. Anything else is lightning-liquidity's to judge.
fn lsps5_request(payload: &str) -> Option<Request> {
    let mut v: Value = serde_json::from_str(payload).ok()?;
    let obj = v.as_object_mut()?;
    let method = obj.get("method")?.as_str()?;
    if !method.starts_with("lsps5.") {
        return None;
    }
    let method = method.to_string();
    let id = obj.get("id")?.as_str()?.to_string();
    Some(Request { id, method, params: obj.remove("params") })
}

fn invalid(message: &str) -> LSPSResponseError {
    LSPSResponseError { code: INVALID_PARAMS, message: format!("Invalid params: {message}"), data: None }
}

/// A string field of `params`, or the -32602 naming it.
fn string_field<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, LSPSResponseError> {
    match params.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(&format!("{name} must be a string"))),
        None => Err(invalid(&format!("{name} is missing"))),
    }
}

fn app_name(params: &Map<String, Value>) -> Result<(), LSPSResponseError> {
    // bLIP-55 counts bytes (UTF-8), as lightning-liquidity does.
    if string_field(params, "app_name")?.len() > MAX_APP_NAME_LENGTH {
        return Err(LSPS5ProtocolError::AppNameTooLong.into());
    }
    Ok(())
}

/// Check `params` of `method` as lightning-liquidity will parse them; Err: the error to answer.
fn check_params(method: Method, params: Option<Value>) -> Result<(), LSPSResponseError> {
    // lightning-liquidity reads absent params as {}.
    let params = params.unwrap_or_else(|| Value::Object(Map::new()));
    let Value::Object(obj) = &params else { return Err(invalid("params must be an object")) };
    let parses = match method {
        Method::SetWebhook => {
            app_name(obj)?;
            LSPS5WebhookUrl::new(string_field(obj, "webhook")?.to_string()).map_err(LSPSResponseError::from)?;
            serde_json::from_value::<SetWebhookRequest>(params).is_ok()
        }
        Method::RemoveWebhook => {
            app_name(obj)?;
            serde_json::from_value::<RemoveWebhookRequest>(params).is_ok()
        }
        Method::ListWebhooks => serde_json::from_value::<ListWebhooksRequest>(params).is_ok(),
    };
    // A backstop: whatever the checks above missed must not reach a parser that would then
    // ignore the peer.
    if !parses {
        return Err(invalid("not of the request's shape"));
    }
    Ok(())
}

/// The guard in front of lightning-liquidity's LSPS5 service.
pub(crate) struct Lsps5Guard {
    peers: Mutex<HashMap<PublicKey, PeerBuckets>>,
    replies: Replies,
}

impl Lsps5Guard {
    pub(crate) fn new(logger: Arc<EngineLogger>) -> Self {
        Self { peers: Mutex::new(HashMap::new()), replies: Replies::new("lsps5", logger) }
    }

    /// Answer `payload` of `from` here if it is an `lsps5.*` request to refuse; false: pass it
    /// on to lightning-liquidity.
    pub(crate) fn handle(&self, from: PublicKey, payload: &str) -> bool {
        self.handle_at(from, payload, Instant::now())
    }

    pub(crate) fn handle_at(&self, from: PublicKey, payload: &str, now: Instant) -> bool {
        let Some(req) = lsps5_request(payload) else { return false };
        if req.id.len() > MAX_ID_BYTES {
            let n = req.id.len();
            self.log(Level::Warn, format!("lsps5: a request of {from} with a {n} byte id unanswered"));
            return true;
        }
        let method = match req.method.as_str() {
            "lsps5.set_webhook" => Method::SetWebhook,
            "lsps5.list_webhooks" => Method::ListWebhooks,
            "lsps5.remove_webhook" => Method::RemoveWebhook,
            _ => {
                // lightning-liquidity would not parse it either (and then ignore the peer).
                let err = LSPSResponseError { code: METHOD_NOT_FOUND, message: "method not found".into(), data: None };
                self.replies.error(from, &req.id, err);
                return true;
            }
        };
        if let Err(wait) = self.spend(from, method, now) {
            let secs = wait.as_secs().max(1);
            self.log(Level::Info, format!("lsps5: {from} sends {} too often, refused", req.method));
            let message = format!("Too many {} requests: retry in {secs} s", req.method);
            self.replies.error(
                from,
                &req.id,
                LSPSResponseError { code: LSPS5_SLOW_DOWN_ERROR_CODE, message, data: None },
            );
            return true;
        }
        match check_params(method, req.params) {
            Ok(()) => false,
            Err(err) => {
                self.log(Level::Info, format!("lsps5: {} of {from} refused ({})", req.method, err.code));
                self.replies.error(from, &req.id, err);
                true
            }
        }
    }

    /// Spend a token of `from`'s bucket for `method`, or the wait until one is there.
    fn spend(&self, from: PublicKey, method: Method, now: Instant) -> Result<(), Duration> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if !peers.contains_key(&from) && peers.len() >= MAX_TRACKED_PEERS {
            peers.retain(|_, b| !(b.set.is_full(SET_WEBHOOK_PER_HOUR, now) && b.other.is_full(OTHER_PER_HOUR, now)));
            if peers.len() >= MAX_TRACKED_PEERS {
                drop(peers);
                self.log(Level::Warn, format!("lsps5: {MAX_TRACKED_PEERS} peers rate-limited, {from} refused"));
                return Err(Duration::from_secs(60));
            }
        }
        let b = peers.entry(from).or_insert_with(|| PeerBuckets {
            set: Bucket::full(SET_WEBHOOK_PER_HOUR, now),
            other: Bucket::full(OTHER_PER_HOUR, now),
        });
        match method {
            Method::SetWebhook => b.set.spend(SET_WEBHOOK_PER_HOUR, now),
            Method::ListWebhooks | Method::RemoveWebhook => b.other.spend(OTHER_PER_HOUR, now),
        }
    }

    /// The replies waiting, for the peer manager to send.
    pub(crate) fn take(&self) -> Vec<(PublicKey, RawLSPSMessage)> {
        self.replies.take()
    }

    #[cfg(test)]
    pub(crate) fn tracked_peers(&self) -> usize {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn log(&self, level: Level, msg: String) {
        self.replies.logger().engine(level, msg);
    }
}

#[cfg(test)]
#[path = "lsps5_guard_tests.rs"]
mod lsps5_guard_tests;
