//! The onion-message front door. The peer manager hands every `onion_message` a peer sends to
//! `GuardedMessenger` instead of LDK's messenger, so two things happen before a message costs
//! a decryption or a SQLite write:
//!
//! - a per-peer token bucket drops what a peer sends beyond its rate (a flood from one peer
//!   cannot fill the event queue or starve the other peers);
//! - a message to be forwarded to an offline node is intercepted here rather than inside LDK,
//!   so the event can name the peer it came from (LDK's `OnionMessageIntercepted` names only
//!   the offline next hop, and the message it carries is re-encrypted, so it cannot be matched
//!   to its sender afterwards). The mailbox bounds what each sending peer may store.
//!
//! Everything else goes to LDK's messenger unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use lightning::blinded_path::message::NextMessageHop;
use lightning::blinded_path::NodeIdLookUp;
use lightning::ln::msgs::{BaseMessageHandler, Init, MessageSendEvent, OnionMessage, OnionMessageHandler};
use lightning::onion_message::messenger::{peel_onion_message, PeeledOnion, SendError};
use lightning::sign::KeysManager;
use lightning::types::features::{InitFeatures, NodeFeatures};
use lightning::util::logger::Level;
use lightning::util::ser::Writeable;

use super::AppMessageHandler;
use crate::event::{EventSink, NodeEvent};
use crate::logger::EngineLogger;
use crate::types::{ChannelManager, OnionMessenger};

thread_local! {
    /// The peer whose message LDK's messenger is handling on this thread right now. Set by the
    /// guard around its synchronous call into the messenger, read by the application handler
    /// the messenger calls back, so a received message can be charged to the peer it came from.
    static CURRENT_PREV_HOP: std::cell::Cell<Option<PublicKey>> = const { std::cell::Cell::new(None) };
}

/// The peer the message being handled on this thread came from (see `CURRENT_PREV_HOP`).
pub(crate) fn current_prev_hop() -> Option<PublicKey> {
    CURRENT_PREV_HOP.with(|c| c.get())
}

/// Buckets kept at most; beyond it a new peer is refused until idle buckets are forgotten.
/// The peer manager bounds connections far below this.
const MAX_BUCKETS: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// How often `allow` drops the buckets of peers gone quiet. (LDK's background processor ticks
/// the messenger itself, not this wrapper, so the limiter keeps its own time.)
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Per-peer token buckets: `rate` messages a second on average, `burst` at once.
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<PublicKey, Bucket>>,
    last_sweep: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `rate` 0 means no limit.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: rate as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(None),
        }
    }

    /// Take a token for `peer` if it has one.
    pub(crate) fn allow(&self, peer: PublicKey, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY) {
                *last = Some(now);
                self.forget_idle_locked(&mut buckets, now);
            }
        }
        if !buckets.contains_key(&peer) && buckets.len() >= MAX_BUCKETS {
            self.forget_idle_locked(&mut buckets, now);
            if buckets.len() >= MAX_BUCKETS {
                return false;
            }
        }
        let b = buckets.entry(peer).or_insert(Bucket { tokens: self.burst, last: now });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drop the buckets that have refilled: a full bucket and no bucket behave alike, so only
    /// peers that sent recently take memory.
    pub(crate) fn forget_idle(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        self.forget_idle_locked(&mut buckets, now);
    }

    fn forget_idle_locked(&self, buckets: &mut HashMap<PublicKey, Bucket>, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

/// What the front door did with the messages it saw (since start).
#[derive(Debug, Default)]
pub struct GuardCounters {
    /// Passed the rate limit.
    pub accepted: AtomicU64,
    /// Dropped by the per-peer rate limit, unread.
    pub rate_limited: AtomicU64,
    /// Forwarded to a connected next hop.
    pub forwarded: AtomicU64,
    /// Addressed to an offline next hop and queued as `OnionMessageIntercepted`.
    pub intercepted: AtomicU64,
    /// Could not be decrypted, or had nowhere to go (unknown SCID, full outbound buffer).
    pub undeliverable: AtomicU64,
}

/// Wraps LDK's messenger for the peer manager; see the module comment.
pub struct GuardedMessenger {
    inner: Arc<OnionMessenger>,
    keys: Arc<KeysManager>,
    logger: Arc<EngineLogger>,
    channel_manager: Arc<ChannelManager>,
    app: Arc<AppMessageHandler>,
    sink: Arc<EventSink>,
    limiter: RateLimiter,
    secp: Secp256k1<All>,
    pub counters: GuardCounters,
}

impl GuardedMessenger {
    pub(crate) fn new(
        inner: Arc<OnionMessenger>, keys: Arc<KeysManager>, logger: Arc<EngineLogger>,
        channel_manager: Arc<ChannelManager>, app: Arc<AppMessageHandler>, sink: Arc<EventSink>,
        (rate, burst): (u32, u32),
    ) -> Self {
        Self {
            inner,
            keys,
            logger,
            channel_manager,
            app,
            sink,
            limiter: RateLimiter::new(rate, burst),
            secp: Secp256k1::new(),
            counters: GuardCounters::default(),
        }
    }

    fn forward(&self, prev: PublicKey, next_hop: NextMessageHop, message: OnionMessage) {
        let next = match next_hop {
            NextMessageHop::NodeId(pk) => Some(pk),
            NextMessageHop::ShortChannelId(scid) => self.channel_manager.next_node_id(scid),
        };
        let Some(next) = next else {
            self.counters.undeliverable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match self.inner.forward_onion_message(message.clone(), &next) {
            Ok(()) => {
                self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
            }
            Err(SendError::InvalidFirstHop(_)) => {
                // Not connected: the application decides whether to keep it for the peer.
                self.counters.intercepted.fetch_add(1, Ordering::Relaxed);
                let event = NodeEvent::OnionMessageIntercepted {
                    peer_node_id: next.to_string(),
                    message: hex::encode(message.encode()),
                    prev_node_id: Some(prev.to_string()),
                };
                if self.sink.emit(event, None).is_err() {
                    self.logger.engine(
                        Level::Error,
                        "dropped an intercepted onion message: the event queue is not writable".into(),
                    );
                }
            }
            Err(_) => {
                // The next hop's outbound buffer is full: LDK would drop it as well.
                self.counters.undeliverable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl BaseMessageHandler for GuardedMessenger {
    fn get_and_clear_pending_msg_events(&self) -> Vec<MessageSendEvent> {
        self.inner.get_and_clear_pending_msg_events()
    }
    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.inner.peer_disconnected(their_node_id)
    }
    fn provided_node_features(&self) -> NodeFeatures {
        self.inner.provided_node_features()
    }
    fn provided_init_features(&self, their_node_id: PublicKey) -> InitFeatures {
        self.inner.provided_init_features(their_node_id)
    }
    fn peer_connected(&self, their_node_id: PublicKey, msg: &Init, inbound: bool) -> Result<(), ()> {
        self.inner.peer_connected(their_node_id, msg, inbound)
    }
}

impl OnionMessageHandler for GuardedMessenger {
    fn handle_onion_message(&self, peer_node_id: PublicKey, msg: &OnionMessage) {
        if !self.limiter.allow(peer_node_id, Instant::now()) {
            let n = self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(1000) {
                self.logger.engine(
                    Level::Warn,
                    format!(
                        "onion messages over the rate limit dropped ({} so far; latest from {})",
                        n + 1,
                        // Node ids in logs are cut to 8 hex characters (SPEC.md §11.2).
                        &peer_node_id.to_string()[..8]
                    ),
                );
            }
            return;
        }
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        match peel_onion_message(msg, &self.secp, &*self.keys, &*self.logger, &*self.app) {
            Ok(PeeledOnion::Forward(next_hop, message)) => self.forward(peer_node_id, next_hop, message),
            // For us: LDK's messenger peels it again and dispatches it (offers, application
            // messages). The second decryption costs far less than the event write after it.
            Ok(_) => {
                CURRENT_PREV_HOP.with(|c| c.set(Some(peer_node_id)));
                self.inner.handle_onion_message(peer_node_id, msg);
                CURRENT_PREV_HOP.with(|c| c.set(None));
            }
            Err(()) => {
                self.counters.undeliverable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn next_onion_message_for_peer(&self, peer_node_id: PublicKey) -> Option<OnionMessage> {
        self.inner.next_onion_message_for_peer(peer_node_id)
    }

    fn timer_tick_occurred(&self) {
        self.limiter.forget_idle(Instant::now());
        self.inner.timer_tick_occurred()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bitcoin::secp256k1::SecretKey;

    use super::*;

    fn peer(i: u8) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[i.max(1); 32]).unwrap())
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let limiter = RateLimiter::new(10, 5);
        let t0 = Instant::now();
        let a = peer(1);
        assert_eq!((0..20).filter(|_| limiter.allow(a, t0)).count(), 5);
        // One second refills ten tokens, capped at the burst of five.
        assert_eq!((0..20).filter(|_| limiter.allow(a, t0 + Duration::from_secs(1))).count(), 5);
        // 100 ms later: one token.
        assert_eq!((0..20).filter(|_| limiter.allow(a, t0 + Duration::from_millis(1100))).count(), 1);
    }

    #[test]
    fn one_peer_flooding_does_not_limit_another() {
        let limiter = RateLimiter::new(1, 2);
        let t0 = Instant::now();
        for _ in 0..1000 {
            limiter.allow(peer(1), t0);
        }
        assert!(limiter.allow(peer(2), t0));
        assert!(limiter.allow(peer(2), t0));
        assert!(!limiter.allow(peer(2), t0));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let limiter = RateLimiter::new(0, 1);
        assert!((0..10_000).all(|_| limiter.allow(peer(1), Instant::now())));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn quiet_peers_are_swept_as_others_send() {
        let limiter = RateLimiter::new(10, 5);
        let t0 = Instant::now();
        limiter.allow(peer(1), t0);
        limiter.allow(peer(2), t0);
        limiter.allow(peer(3), t0 + SWEEP_EVERY);
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let limiter = RateLimiter::new(10, 5);
        let t0 = Instant::now();
        limiter.allow(peer(1), t0);
        limiter.allow(peer(2), t0);
        assert_eq!(limiter.tracked(), 2);
        limiter.forget_idle(t0 + Duration::from_secs(1));
        assert_eq!(limiter.tracked(), 0);
    }
}
