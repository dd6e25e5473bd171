//! Replies our own LSPS request handlers (LSPS1, the LSPS5 guard) queue for the peer manager to
//! collect after its next read. Bounded: a few waiting per peer, a thousand in all, none larger
//! than a Lightning message, so a flood of requests cannot grow them.

use std::sync::{Arc, Mutex};

use bitcoin::secp256k1::PublicKey;
use lightning::util::logger::Level;
use lightning_liquidity::lsps0::ser::{LSPSResponseError, RawLSPSMessage};

use crate::logger::EngineLogger;

/// Replies waiting for the peer manager to collect them; past this a request goes unanswered
/// (the peer manager collects after every read, so only a flood gets here).
pub(crate) const MAX_QUEUED_REPLIES: usize = 1_000;
/// Replies waiting for one peer: one peer's flood must not take the others' room.
pub(crate) const MAX_QUEUED_PER_PEER: usize = 16;
/// The largest reply payload: a Lightning message is at most 65,535 bytes, two of them the
/// message type. LDK debug-asserts on anything larger when it encrypts it.
pub(crate) const MAX_REPLY_BYTES: usize = 65_533;

/// One handler's reply queue; `tag` names the handler in the log.
pub(crate) struct Replies {
    tag: &'static str,
    queue: Mutex<Vec<(PublicKey, RawLSPSMessage)>>,
    logger: Arc<EngineLogger>,
}

impl Replies {
    pub(crate) fn new(tag: &'static str, logger: Arc<EngineLogger>) -> Self {
        Self { tag, queue: Mutex::new(Vec::new()), logger }
    }

    pub(crate) fn logger(&self) -> &EngineLogger {
        &self.logger
    }

    /// The replies waiting, for the peer manager to send.
    pub(crate) fn take(&self) -> Vec<(PublicKey, RawLSPSMessage)> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A JSON-RPC error answering the request `id` (`LSPSMessage::Invalid` carries no id).
    pub(crate) fn error(&self, to: PublicKey, id: &str, err: LSPSResponseError) {
        self.push(to, serde_json::json!({"jsonrpc": "2.0", "id": id, "error": err}).to_string());
    }

    /// Why no reply to `to` may be queued now: checked before a request is served, so no work
    /// is done for an answer that could not be sent.
    pub(crate) fn no_room(&self, to: PublicKey) -> Option<&'static str> {
        room(&self.queue.lock().unwrap_or_else(|p| p.into_inner()), to)
    }

    pub(crate) fn push(&self, to: PublicKey, payload: String) {
        let tag = self.tag;
        if payload.len() > MAX_REPLY_BYTES {
            let n = payload.len();
            return self.logger.engine(Level::Warn, format!("{tag}: a {n} byte reply to {to} dropped (too large)"));
        }
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        // Checked before the work too (`no_room`); again here, under the lock, as requests of
        // one peer may be served side by side.
        if let Some(why) = room(&queue, to) {
            return self.logger.engine(Level::Warn, format!("{tag}: a reply to {to} dropped: {why}"));
        }
        queue.push((to, RawLSPSMessage { payload }));
    }
}

/// Why `queue` has no room for one more reply to `to`.
fn room(queue: &[(PublicKey, RawLSPSMessage)], to: PublicKey) -> Option<&'static str> {
    if queue.len() >= MAX_QUEUED_REPLIES {
        return Some("reply queue full");
    }
    (queue.iter().filter(|(p, _)| *p == to).count() >= MAX_QUEUED_PER_PEER).then_some("too many replies waiting")
}
