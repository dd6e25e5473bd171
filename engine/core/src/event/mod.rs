//! Events the engine hands to Python. Each is written to SQLite before LDK is told it was
//! handled, and stays there until Python acknowledges it, so a crash replays, never loses.
//! `handler` turns LDK's events into these; `queue` is the consumer's side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lightning::util::logger::Level;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::io::{now_secs, ForwardRecord, PaymentRecord, SqliteStore};
use crate::logger::EngineLogger;

mod handler;
mod queue;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeEvent {
    ChannelPending {
        channel_id: String,
        user_channel_id: String,
        counterparty_node_id: String,
        funding_txo: String,
    },
    ChannelReady {
        channel_id: String,
        user_channel_id: String,
        counterparty_node_id: String,
    },
    ChannelClosed {
        channel_id: String,
        user_channel_id: String,
        counterparty_node_id: Option<String>,
        reason: String,
    },
    /// An inbound payment we could not claim by ourselves (no preimage known).
    PaymentClaimable {
        payment_hash: String,
        amount_msat: u64,
        claim_deadline: Option<u32>,
    },
    PaymentReceived {
        payment_id: String,
        payment_hash: String,
        amount_msat: u64,
    },
    PaymentSent {
        payment_id: String,
        payment_hash: String,
        preimage: String,
        amount_msat: Option<u64>,
        fee_paid_msat: Option<u64>,
    },
    PaymentFailed {
        payment_id: String,
        payment_hash: Option<String>,
        reason: String,
    },
    PaymentForwarded {
        prev_channel_id: Option<String>,
        next_channel_id: Option<String>,
        prev_node_id: Option<String>,
        next_node_id: Option<String>,
        fee_earned_msat: Option<u64>,
        outbound_amount_msat: Option<u64>,
        claim_from_onchain_tx: bool,
    },
    /// An HTLC we could not forward or receive was failed back over `prev_channel_id`.
    /// `failure_type` is LDK's description; its parts are in typed fields: `next_node_id` and
    /// `next_channel_id` for a forward that failed downstream, `requested_next_hop_scid` for
    /// an intercept SCID (or unknown SCID) we refused, `payment_hash` when LDK or the engine's
    /// intercept record knows it. `intercept_id` names the intercepted HTLC this failure
    /// belongs to when the engine can tell it unambiguously (see `Core::match_failed_forward`).
    HtlcHandlingFailed {
        prev_channel_id: String,
        failure_type: String,
        reason: Option<String>,
        #[serde(default)]
        next_node_id: Option<String>,
        #[serde(default)]
        next_channel_id: Option<String>,
        #[serde(default)]
        requested_next_hop_scid: Option<u64>,
        #[serde(default)]
        payment_hash: Option<String>,
        #[serde(default)]
        intercept_id: Option<String>,
    },
    /// An HTLC addressed to one of our intercept SCIDs is waiting for forward or fail.
    /// `prev_node_id` and `inbound_cltv_expiry` describe the inbound HTLC (looked up when the
    /// event is queued); None if it was no longer pending then, or for events queued by an
    /// older version.
    HtlcIntercepted {
        intercept_id: String,
        requested_next_hop_scid: u64,
        payment_hash: String,
        inbound_amount_msat: u64,
        expected_outbound_amount_msat: u64,
        #[serde(default)]
        prev_node_id: Option<String>,
        #[serde(default)]
        inbound_cltv_expiry: Option<u32>,
    },
    /// An onion message for a peer that is not connected; the application may keep it.
    /// `prev_node_id` is the peer the message arrived from (None for messages LDK itself
    /// generated, or events queued before the field existed): the key for per-sender quotas.
    OnionMessageIntercepted {
        peer_node_id: String,
        message: String,
        #[serde(default)]
        prev_node_id: Option<String>,
    },
    OnionMessagePeerConnected {
        peer_node_id: String,
    },
    /// An application onion message for us. `context` is set only when it came over a blinded
    /// path we built ourselves (so its contents are authenticated as ours); `responder` is the
    /// sender's reply path, to pass back to `reply_onion_message`.
    OnionMessageReceived {
        tlv_type: u64,
        payload: String,
        context: Option<String>,
        responder: Option<String>,
    },
    /// LSPS5: a notification lightning-liquidity signed for one webhook of a client. The
    /// application POSTs `body` with `headers` to `url`. The URL is the client's secret: it is
    /// never logged.
    Lsps5Notification {
        client_node_id: String,
        app_name: String,
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A client is needed online for `push_kind` (a push kind: `payment_incoming`, an LSPS2 payment
    /// waiting for it). The application wakes it one way: an apprise push to its LightningRod
    /// device if it has one, else LSPS5 notifications to its webhooks.
    ClientWanted {
        client_node_id: String,
        push_kind: String,
    },
    /// LSPS5 client side: an LSP's answer to our `set_webhook` or `remove_webhook`.
    Lsps5WebhookReply {
        lsp_node_id: String,
        app_name: String,
        ok: bool,
        detail: String,
    },
}

impl NodeEvent {
    /// Onion-message traffic: queued in the second lane, bounded, behind everything else.
    pub fn is_message_traffic(&self) -> bool {
        matches!(
            self,
            NodeEvent::OnionMessageIntercepted { .. }
                | NodeEvent::OnionMessagePeerConnected { .. }
                | NodeEvent::OnionMessageReceived { .. }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            NodeEvent::ChannelPending { .. } => "channel_pending",
            NodeEvent::ChannelReady { .. } => "channel_ready",
            NodeEvent::ChannelClosed { .. } => "channel_closed",
            NodeEvent::PaymentClaimable { .. } => "payment_claimable",
            NodeEvent::PaymentReceived { .. } => "payment_received",
            NodeEvent::PaymentSent { .. } => "payment_sent",
            NodeEvent::PaymentFailed { .. } => "payment_failed",
            NodeEvent::PaymentForwarded { .. } => "payment_forwarded",
            NodeEvent::HtlcHandlingFailed { .. } => "htlc_handling_failed",
            NodeEvent::HtlcIntercepted { .. } => "htlc_intercepted",
            NodeEvent::OnionMessageIntercepted { .. } => "onion_message_intercepted",
            NodeEvent::OnionMessagePeerConnected { .. } => "onion_message_peer_connected",
            NodeEvent::OnionMessageReceived { .. } => "onion_message_received",
            NodeEvent::Lsps5Notification { .. } => "lsps5_notification",
            NodeEvent::ClientWanted { .. } => "client_wanted",
            NodeEvent::Lsps5WebhookReply { .. } => "lsps5_webhook_reply",
        }
    }
}

/// The bounds of the message lane (from `NodeOptions`).
#[derive(Clone, Copy, Debug)]
pub struct MessageLaneLimits {
    pub max_total: u64,
    pub max_intercepted_per_peer: u64,
}

/// Where events go: the SQLite queue, then a wake-up for whoever waits in `next_event`.
pub struct EventSink {
    pub store: Arc<SqliteStore>,
    pub seq: watch::Sender<u64>,
    pub logger: Arc<EngineLogger>,
    pub limits: MessageLaneLimits,
    /// Message events refused because the lane (or one offline node's share) was full.
    pub refused: AtomicU64,
}

impl EventSink {
    pub fn new(store: Arc<SqliteStore>, logger: Arc<EngineLogger>, limits: MessageLaneLimits) -> Self {
        let (seq, _) = watch::channel(0u64);
        Self { store, seq, logger, limits, refused: AtomicU64::new(0) }
    }

    /// Queue durably (with the payment row it changes, in the same transaction). Err means
    /// nothing was written and the caller should have the event replayed. Message traffic that
    /// finds its lane full is dropped (Ok, counted in `refused`): a message is not money, and
    /// replaying it would only keep the flood going.
    pub fn emit(&self, event: NodeEvent, payment: Option<&PaymentRecord>) -> crate::Result<()> {
        self.queue(event, payment, None, 0)
    }

    /// `emit` for a `PaymentForwarded` that skimmed `skimmed_msat` off an intercepted HTLC: the
    /// skim is added to its JIT channel's total in the event's own transaction.
    pub fn emit_forward(&self, event: NodeEvent, skimmed_msat: u64) -> crate::Result<()> {
        self.queue(event, None, None, skimmed_msat)
    }

    /// `emit` for a message received from peer `sender`: no one peer may hold more than a
    /// quarter of the message lane, so one busy (or hostile) peer cannot crowd out the others'
    /// messages while the application catches up.
    pub fn emit_from(&self, event: NodeEvent, sender: Option<&str>) -> crate::Result<()> {
        self.queue(event, None, sender, 0)
    }

    fn queue(
        &self, event: NodeEvent, payment: Option<&PaymentRecord>, sender: Option<&str>, skimmed_msat: u64,
    ) -> crate::Result<()> {
        let json = serde_json::to_string(&event)
            .map_err(|e| crate::Error::Storage(format!("cannot encode the event: {e}")))?;
        let kind = event.kind();
        let limits = self.limits;
        let queued = match &event {
            NodeEvent::OnionMessageReceived { .. } => {
                let share = sender.map(|_| (limits.max_total / 4).max(1));
                self.store.push_message_event(kind, &json, sender, limits.max_total, share)
            }
            NodeEvent::OnionMessageIntercepted { peer_node_id, .. } => self.store.push_message_event(
                kind,
                &json,
                Some(peer_node_id),
                limits.max_total,
                Some(limits.max_intercepted_per_peer),
            ),
            // One pending "connected" per peer says all there is to say; the total bound does not
            // apply, or a message flood could hide a client's return (and its mail) from the LSP.
            NodeEvent::OnionMessagePeerConnected { peer_node_id } => {
                self.store.push_message_event(kind, &json, Some(peer_node_id), u64::MAX, Some(1))
            }
            // Booked in the forwarding history in the event's own transaction.
            NodeEvent::PaymentForwarded {
                prev_channel_id,
                next_channel_id,
                prev_node_id,
                next_node_id,
                fee_earned_msat,
                outbound_amount_msat,
                claim_from_onchain_tx,
            } => {
                let forward = ForwardRecord {
                    id: 0,
                    prev_channel_id: prev_channel_id.clone(),
                    next_channel_id: next_channel_id.clone(),
                    prev_node_id: prev_node_id.clone(),
                    next_node_id: next_node_id.clone(),
                    fee_earned_msat: *fee_earned_msat,
                    outbound_amount_msat: *outbound_amount_msat,
                    claim_from_onchain_tx: *claim_from_onchain_tx,
                    created_at: now_secs(),
                };
                self.store.push_forward_event(kind, &json, &forward, skimmed_msat).map(Some)
            }
            _ => self.store.push_event(kind, &json, payment).map(Some),
        };
        match queued {
            Ok(Some(_)) => {
                self.seq.send_modify(|v| *v += 1);
                Ok(())
            }
            Ok(None) => {
                let n = self.refused.fetch_add(1, Ordering::Relaxed);
                // Once, then every thousandth: a flood must not turn into a log flood.
                if n.is_multiple_of(1000) && !matches!(event, NodeEvent::OnionMessagePeerConnected { .. }) {
                    self.logger.engine(
                        Level::Warn,
                        format!("message queue full: dropped a {kind} event ({} dropped so far)", n + 1),
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.logger.engine(Level::Error, format!("cannot queue {} event: {e}", event.kind()));
                Err(e)
            }
        }
    }
}

/// An event as delivered: its queue id (pass it back to acknowledge) and the event.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedEvent {
    pub id: i64,
    pub event: NodeEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_kind_tag() {
        let e = NodeEvent::OnionMessagePeerConnected { peer_node_id: "02ab".into() };
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(j, r#"{"kind":"onion_message_peer_connected","peer_node_id":"02ab"}"#);
        assert_eq!(serde_json::from_str::<NodeEvent>(&j).unwrap(), e);
        assert_eq!(e.kind(), "onion_message_peer_connected");
    }

    #[test]
    fn intercepted_event_queued_before_the_new_fields_still_decodes() {
        let old = r#"{"kind":"htlc_intercepted","intercept_id":"aa","requested_next_hop_scid":7,
            "payment_hash":"bb","inbound_amount_msat":1000,"expected_outbound_amount_msat":900}"#;
        match serde_json::from_str::<NodeEvent>(old).unwrap() {
            NodeEvent::HtlcIntercepted { requested_next_hop_scid, prev_node_id, inbound_cltv_expiry, .. } => {
                assert_eq!(requested_next_hop_scid, 7);
                assert_eq!((prev_node_id, inbound_cltv_expiry), (None, None));
            }
            other => panic!("decoded as {other:?}"),
        }
    }
}

#[cfg(test)]
mod forward_tests {
    use super::*;

    #[test]
    fn a_forwarded_event_is_booked_in_the_history_with_its_queue_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("node.sqlite")).unwrap());
        let logger = Arc::new(EngineLogger::new(None, Level::Info, 0, 0).unwrap());
        let limits = MessageLaneLimits { max_total: 10, max_intercepted_per_peer: 2 };
        let sink = EventSink::new(Arc::clone(&store), logger, limits);
        let event = NodeEvent::PaymentForwarded {
            prev_channel_id: Some("c1".into()),
            next_channel_id: Some("c2".into()),
            prev_node_id: Some("02aa".into()),
            next_node_id: None,
            fee_earned_msat: Some(1_001),
            outbound_amount_msat: Some(20_000_000),
            claim_from_onchain_tx: false,
        };
        sink.emit(event.clone(), None).unwrap();
        let (_, kind, body) = store.first_event().unwrap().unwrap();
        assert_eq!(kind, "payment_forwarded");
        assert_eq!(serde_json::from_str::<NodeEvent>(&body).unwrap(), event);
        let [f] = store.forwards(10, 0).unwrap().try_into().unwrap();
        assert_eq!((f.prev_channel_id.as_deref(), f.next_node_id), (Some("c1"), None));
        assert_eq!((f.fee_earned_msat, f.outbound_amount_msat), (Some(1_001), Some(20_000_000)));
        // Other events leave the history alone.
        sink.emit(NodeEvent::OnionMessagePeerConnected { peer_node_id: "02aa".into() }, None).unwrap();
        assert_eq!(store.forward_totals().unwrap().count, 1);
    }
}
