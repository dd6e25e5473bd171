//! The peer manager's custom-message handler: LSPS messages (BOLT8 type 37913) go to
//! lightning-liquidity's `LiquidityManager`, except `lsps1.*` requests, which our own LSPS1
//! service answers (lightning-liquidity's is compiled out), and, while LSPS1 runs,
//! `lsps0.list_protocols`, whose answer must name 1 too, beside what the manager serves (2
//! and 5 when they run). While LSPS5 runs, `lsps5.*` requests pass the `lsps5_guard` first (a
//! rate limit per peer, the params checked), which answers those it refuses. Everything else
//! (reading, features, peer connections, lightning-liquidity's own replies) is the manager's.
//! Our replies are bounded (`replies`); a request with no room left for its reply is not served.

#[cfg(test)]
use super::replies::{MAX_QUEUED_PER_PEER, MAX_REPLY_BYTES};
use std::sync::Arc;

use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::{DecodeError, LightningError};
use lightning::ln::peer_handler::CustomMessageHandler;
use lightning::ln::wire::CustomMessageReader;
use lightning::types::features::{InitFeatures, NodeFeatures};
use lightning::util::logger::Level;
use lightning::util::ser::LengthLimitedRead;
use lightning_liquidity::lsps0::msgs::{LSPS0ListProtocolsResponse, LSPS0Message, LSPS0Response};
use lightning_liquidity::lsps0::ser::{LSPSMessage, LSPSRequestId, LSPSResponseError, RawLSPSMessage};
use lightning_liquidity::lsps1::msgs::LSPS1Message;
use serde_json::Value;

use super::lsps1::Lsps1Service;
use super::lsps5_guard::Lsps5Guard;
use super::replies::Replies;
use super::Liquidity;
use crate::logger::EngineLogger;

/// bLIP-50's feature bit for "this node runs an LSPS service".
const LSPS_FEATURE_BIT: usize = 729;
/// The longest request id answered (it is echoed in the reply); lightning-liquidity's are 32.
pub(crate) const MAX_ID_BYTES: usize = 128;
/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i32 = -32601;

/// What the wrapper needs of lightning-liquidity's manager: its message handling, and the
/// LSPS protocols it serves itself (named in our `list_protocols` answer beside LSPS1).
pub trait LspsManager: CustomMessageReader<CustomMessage = RawLSPSMessage> + CustomMessageHandler {
    fn protocols(&self) -> Vec<u16>;
}

impl LspsManager for Liquidity {
    fn protocols(&self) -> Vec<u16> {
        // A service lightning-liquidity runs is one line here.
        [(2, self.lsps2_service_handler().is_some()), (5, self.lsps5_service_handler().is_some())]
            .into_iter()
            .filter_map(|(p, on)| on.then_some(p))
            .collect()
    }
}

/// The `CustomMessageHandler` given to the peer manager.
pub struct LspsHandler<M: LspsManager = Liquidity> {
    liquidity: Arc<M>,
    own: Option<OwnRequests>,
    lsps5: Option<Lsps5Guard>,
}

/// The requests we answer ourselves while LSPS1 runs, and our replies waiting for the peer
/// manager.
pub(crate) struct OwnRequests {
    lsps1: Arc<Lsps1Service>,
    replies: Replies,
}

/// A request this handler answers itself: its id, method and params.
struct Request {
    id: LSPSRequestId,
    method: String,
    params: Value,
}

/// The request in `payload` if it is one we answer: a JSON-RPC 2.0 request with a string id
/// whose method is `lsps1.*` or `lsps0.list_protocols`. Anything else (responses, other
/// protocols, JSON lightning-liquidity must judge) is left to the manager.
fn ours(payload: &str) -> Option<Request> {
    let mut v: Value = serde_json::from_str(payload).ok()?;
    let obj = v.as_object_mut()?;
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return None;
    }
    let method = obj.get("method")?.as_str()?.to_string();
    if !(method.starts_with("lsps1.") || method == "lsps0.list_protocols") {
        return None;
    }
    let id = LSPSRequestId(obj.get("id")?.as_str()?.to_string());
    let params = obj.remove("params").unwrap_or(Value::Object(Default::default()));
    Some(Request { id, method, params })
}

impl<M: LspsManager> LspsHandler<M> {
    pub(crate) fn new(liquidity: Arc<M>, lsps1: Option<Arc<Lsps1Service>>, logger: Arc<EngineLogger>) -> Self {
        let lsps5 = liquidity.protocols().contains(&5).then(|| Lsps5Guard::new(Arc::clone(&logger)));
        Self { liquidity, own: lsps1.map(|lsps1| OwnRequests::new(lsps1, logger)), lsps5 }
    }
}

impl OwnRequests {
    pub(crate) fn new(lsps1: Arc<Lsps1Service>, logger: Arc<EngineLogger>) -> Self {
        Self { lsps1, replies: Replies::new("lsps1", logger) }
    }

    /// Answer `payload` of `from` if it is a request of ours (`list_protocols` naming LSPS1 and
    /// `others`); false: it is the manager's. A request whose reply would find no room waiting
    /// is not served at all: no order is written, no invoice made, for an answer never sent.
    pub(crate) fn handle(&self, from: PublicKey, payload: &str, others: &[u16]) -> bool {
        let Some(req) = ours(payload) else { return false };
        if req.id.0.len() > MAX_ID_BYTES {
            self.replies.logger().engine(
                Level::Warn,
                format!("lsps1: a request of {from} with a {} byte id unanswered", req.id.0.len()),
            );
            return true;
        }
        if let Some(why) = self.replies.no_room(from) {
            self.replies.logger().engine(Level::Warn, format!("lsps1: a request of {from} unanswered: {why}"));
            return true;
        }
        self.answer(from, req, others);
        true
    }

    /// The replies waiting, for the peer manager to send.
    pub(crate) fn take(&self) -> Vec<(PublicKey, RawLSPSMessage)> {
        self.replies.take()
    }

    fn reply(&self, to: PublicKey, msg: &LSPSMessage) {
        match serde_json::to_string(msg) {
            Ok(payload) => self.push(to, payload),
            Err(e) => self.replies.logger().engine(Level::Error, format!("lsps1: cannot encode a reply: {e}")),
        }
    }

    pub(crate) fn push(&self, to: PublicKey, payload: String) {
        self.replies.push(to, payload)
    }

    /// Answer `req` of `from` with the LSPS1 service.
    fn answer(&self, from: PublicKey, req: Request, others: &[u16]) {
        if req.method == "lsps0.list_protocols" {
            let mut protocols = vec![1];
            protocols.extend(others.iter().filter(|p| **p != 1));
            protocols.sort_unstable();
            let resp = LSPS0Response::ListProtocols(LSPS0ListProtocolsResponse { protocols });
            return self.reply(from, &LSPSMessage::LSPS0(LSPS0Message::Response(req.id, resp)));
        }
        match self.lsps1.handle(from, &req.method, req.params) {
            Some(resp) => self.reply(from, &LSPSMessage::LSPS1(LSPS1Message::Response(req.id, resp))),
            None => {
                let err = LSPSResponseError { code: METHOD_NOT_FOUND, message: "method not found".into(), data: None };
                self.replies.error(from, &req.id.0, err);
            }
        }
    }
}

impl<M: LspsManager> CustomMessageReader for LspsHandler<M> {
    type CustomMessage = RawLSPSMessage;

    fn read<R: LengthLimitedRead>(
        &self, message_type: u16, buffer: &mut R,
    ) -> Result<Option<Self::CustomMessage>, DecodeError> {
        self.liquidity.read(message_type, buffer)
    }
}

impl<M: LspsManager> CustomMessageHandler for LspsHandler<M> {
    fn handle_custom_message(&self, msg: RawLSPSMessage, sender: PublicKey) -> Result<(), LightningError> {
        if let Some(guard) = &self.lsps5 {
            if guard.handle(sender, &msg.payload) {
                return Ok(());
            }
        }
        if let Some(own) = &self.own {
            if own.handle(sender, &msg.payload, &self.liquidity.protocols()) {
                return Ok(());
            }
        }
        self.liquidity.handle_custom_message(msg, sender)
    }

    fn get_and_clear_pending_msg(&self) -> Vec<(PublicKey, RawLSPSMessage)> {
        let mut msgs = self.liquidity.get_and_clear_pending_msg();
        if let Some(own) = &self.own {
            msgs.extend(own.take());
        }
        if let Some(guard) = &self.lsps5 {
            msgs.extend(guard.take());
        }
        msgs
    }

    fn provided_node_features(&self) -> NodeFeatures {
        let mut f = self.liquidity.provided_node_features();
        if self.own.is_some() {
            // Cannot fail: the bit is an optional (odd) custom bit.
            let _ = f.set_optional_custom_bit(LSPS_FEATURE_BIT);
        }
        f
    }

    fn provided_init_features(&self, their_node_id: PublicKey) -> InitFeatures {
        let mut f = self.liquidity.provided_init_features(their_node_id);
        if self.own.is_some() {
            let _ = f.set_optional_custom_bit(LSPS_FEATURE_BIT);
        }
        f
    }

    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.liquidity.peer_disconnected(their_node_id);
    }

    fn peer_connected(
        &self, their_node_id: PublicKey, msg: &lightning::ln::msgs::Init, inbound: bool,
    ) -> Result<(), ()> {
        self.liquidity.peer_connected(their_node_id, msg, inbound)
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod handler_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lsps1_requests_and_list_protocols_are_ours() {
        let r = ours(r#"{"jsonrpc":"2.0","id":"a1","method":"lsps1.get_info","params":{}}"#).unwrap();
        assert_eq!((r.id.0.as_str(), r.method.as_str()), ("a1", "lsps1.get_info"));
        let r = ours(r#"{"jsonrpc":"2.0","id":"a2","method":"lsps0.list_protocols"}"#).unwrap();
        assert_eq!(r.params, Value::Object(Default::default()));
        for other in [
            r#"{"jsonrpc":"2.0","id":"a","method":"lsps2.get_info","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":"a","result":{}}"#,
            r#"{"jsonrpc":"1.0","id":"a","method":"lsps1.get_info"}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"lsps1.get_info"}"#,
            r#"["lsps1.get_info"]"#,
            "not json",
        ] {
            assert!(ours(other).is_none(), "{other}");
        }
    }
}
