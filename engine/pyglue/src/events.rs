//! One Python class per engine event, each with its queue `id` (pass the event back to
//! `event_handled`) and the event's fields; `kind` is the engine's name for it.

use lsp_engine::{NodeEvent, QueuedEvent};
use pyo3::prelude::*;

use crate::types::record;

record!(ChannelPending kind = "channel_pending" {
    id: i64,
    channel_id: String,
    user_channel_id: String,
    counterparty_node_id: String,
    funding_txo: String,
});

record!(ChannelReady kind = "channel_ready" {
    id: i64,
    channel_id: String,
    user_channel_id: String,
    counterparty_node_id: String,
});

record!(ChannelClosed kind = "channel_closed" {
    id: i64,
    channel_id: String,
    user_channel_id: String,
    counterparty_node_id: Option<String>,
    reason: String,
});

record!(
    /// An inbound payment the node could not claim by itself (no preimage known).
    PaymentClaimable kind = "payment_claimable" {
        id: i64,
        payment_hash: String,
        amount_msat: u64,
        claim_deadline: Option<u32>,
    }
);

record!(PaymentReceived kind = "payment_received" {
    id: i64,
    payment_id: String,
    payment_hash: String,
    amount_msat: u64,
});

record!(PaymentSent kind = "payment_sent" {
    id: i64,
    payment_id: String,
    payment_hash: String,
    preimage: String,
    amount_msat: Option<u64>,
    fee_paid_msat: Option<u64>,
});

record!(PaymentFailed kind = "payment_failed" {
    id: i64,
    payment_id: String,
    payment_hash: Option<String>,
    reason: String,
});

record!(PaymentForwarded kind = "payment_forwarded" {
    id: i64,
    prev_channel_id: Option<String>,
    next_channel_id: Option<String>,
    prev_node_id: Option<String>,
    next_node_id: Option<String>,
    fee_earned_msat: Option<u64>,
    outbound_amount_msat: Option<u64>,
    claim_from_onchain_tx: bool,
});

record!(
    /// An HTLC failed back over `prev_channel_id`. `next_node_id`/`next_channel_id`: a forward
    /// that failed downstream; `requested_next_hop_scid`: an intercept (or unknown) SCID LDK
    /// refused or expired; `payment_hash` when known; `intercept_id`: the intercepted HTLC this
    /// failure belongs to, when the engine can tell unambiguously (else None).
    HtlcHandlingFailed kind = "htlc_handling_failed" {
        id: i64,
        prev_channel_id: String,
        failure_type: String,
        reason: Option<String>,
    }
    added {
        next_node_id: Option<String>,
        next_channel_id: Option<String>,
        requested_next_hop_scid: Option<u64>,
        payment_hash: Option<String>,
        intercept_id: Option<String>,
    }
);

record!(
    /// An HTLC addressed to one of our intercept SCIDs, waiting for forward or fail.
    /// `prev_node_id` sent it and `inbound_cltv_expiry` is its expiry height; both are None
    /// if the engine no longer saw the inbound HTLC when it queued the event.
    HtlcIntercepted kind = "htlc_intercepted" {
        id: i64,
        intercept_id: String,
        requested_next_hop_scid: u64,
        payment_hash: String,
        inbound_amount_msat: u64,
        expected_outbound_amount_msat: u64,
        prev_node_id: Option<String>,
        inbound_cltv_expiry: Option<u32>,
    }
);

record!(
    /// An onion message for a peer that is not connected; `message` (hex) can be handed to
    /// `forward_onion_message` once the peer is back. `prev_node_id` is the peer it arrived
    /// from (None for messages LDK generated itself).
    OnionMessageIntercepted kind = "onion_message_intercepted" {
        id: i64,
        peer_node_id: String,
        message: String,
    }
    added {
        prev_node_id: Option<String>,
    }
);

record!(OnionMessagePeerConnected kind = "onion_message_peer_connected" {
    id: i64,
    peer_node_id: String,
});

record!(
    /// An application onion message for us; `payload` and `context` are hex. `context` is set
    /// only when it came over a blinded path we built (so it is authenticated as ours);
    /// `responder` is the sender's reply path for `reply_onion_message`.
    OnionMessageReceived kind = "onion_message_received" {
        id: i64,
        tlv_type: u64,
        payload: String,
        context: Option<String>,
        responder: Option<String>,
    }
);

/// The Python object for a queued event.
pub fn to_py(py: Python<'_>, q: QueuedEvent) -> PyResult<Py<PyAny>> {
    let id = q.id;
    let obj = match q.event {
        NodeEvent::ChannelPending { channel_id, user_channel_id, counterparty_node_id, funding_txo } => {
            Py::new(py, ChannelPending { id, channel_id, user_channel_id, counterparty_node_id, funding_txo })?
                .into_any()
        }
        NodeEvent::ChannelReady { channel_id, user_channel_id, counterparty_node_id } => {
            Py::new(py, ChannelReady { id, channel_id, user_channel_id, counterparty_node_id })?.into_any()
        }
        NodeEvent::ChannelClosed { channel_id, user_channel_id, counterparty_node_id, reason } => {
            Py::new(py, ChannelClosed { id, channel_id, user_channel_id, counterparty_node_id, reason })?.into_any()
        }
        NodeEvent::PaymentClaimable { payment_hash, amount_msat, claim_deadline } => {
            Py::new(py, PaymentClaimable { id, payment_hash, amount_msat, claim_deadline })?.into_any()
        }
        NodeEvent::PaymentReceived { payment_id, payment_hash, amount_msat } => {
            Py::new(py, PaymentReceived { id, payment_id, payment_hash, amount_msat })?.into_any()
        }
        NodeEvent::PaymentSent { payment_id, payment_hash, preimage, amount_msat, fee_paid_msat } => {
            Py::new(py, PaymentSent { id, payment_id, payment_hash, preimage, amount_msat, fee_paid_msat })?.into_any()
        }
        NodeEvent::PaymentFailed { payment_id, payment_hash, reason } => {
            Py::new(py, PaymentFailed { id, payment_id, payment_hash, reason })?.into_any()
        }
        NodeEvent::PaymentForwarded {
            prev_channel_id,
            next_channel_id,
            prev_node_id,
            next_node_id,
            fee_earned_msat,
            outbound_amount_msat,
            claim_from_onchain_tx,
        } => Py::new(
            py,
            PaymentForwarded {
                id,
                prev_channel_id,
                next_channel_id,
                prev_node_id,
                next_node_id,
                fee_earned_msat,
                outbound_amount_msat,
                claim_from_onchain_tx,
            },
        )?
        .into_any(),
        NodeEvent::HtlcHandlingFailed {
            prev_channel_id,
            failure_type,
            reason,
            next_node_id,
            next_channel_id,
            requested_next_hop_scid,
            payment_hash,
            intercept_id,
        } => Py::new(
            py,
            HtlcHandlingFailed {
                id,
                prev_channel_id,
                failure_type,
                reason,
                next_node_id,
                next_channel_id,
                requested_next_hop_scid,
                payment_hash,
                intercept_id,
            },
        )?
        .into_any(),
        NodeEvent::HtlcIntercepted {
            intercept_id,
            requested_next_hop_scid,
            payment_hash,
            inbound_amount_msat,
            expected_outbound_amount_msat,
            prev_node_id,
            inbound_cltv_expiry,
        } => Py::new(
            py,
            HtlcIntercepted {
                id,
                intercept_id,
                requested_next_hop_scid,
                payment_hash,
                inbound_amount_msat,
                expected_outbound_amount_msat,
                prev_node_id,
                inbound_cltv_expiry,
            },
        )?
        .into_any(),
        NodeEvent::OnionMessageIntercepted { peer_node_id, message, prev_node_id } => {
            Py::new(py, OnionMessageIntercepted { id, peer_node_id, message, prev_node_id })?.into_any()
        }
        NodeEvent::OnionMessagePeerConnected { peer_node_id } => {
            Py::new(py, OnionMessagePeerConnected { id, peer_node_id })?.into_any()
        }
        NodeEvent::OnionMessageReceived { tlv_type, payload, context, responder } => {
            Py::new(py, OnionMessageReceived { id, tlv_type, payload, context, responder })?.into_any()
        }
        NodeEvent::Lsps5Notification { client_node_id, app_name, url, method, headers, body } => {
            Py::new(py, Lsps5Notification { id, client_node_id, app_name, url, method, headers, body })?.into_any()
        }
        NodeEvent::ClientWanted { client_node_id, push_kind } => {
            Py::new(py, ClientWanted { id, client_node_id, push_kind })?.into_any()
        }
        NodeEvent::Lsps5WebhookReply { lsp_node_id, app_name, ok, detail } => {
            Py::new(py, Lsps5WebhookReply { id, lsp_node_id, app_name, ok, detail })?.into_any()
        }
    };
    Ok(obj)
}

record!(
    /// LSPS5: a signed notification to POST to one webhook of a client (`url` is a secret).
    Lsps5Notification kind = "lsps5_notification" {
        id: i64,
        client_node_id: String,
        app_name: String,
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        body: String,
    }
);

record!(
    /// A client is needed online for `push_kind` (`payment_incoming`: an LSPS2 payment waits
    /// for it): an apprise push to its device if it has one, else its LSPS5 webhooks.
    ClientWanted kind = "client_wanted" {
        id: i64,
        client_node_id: String,
        push_kind: String,
    }
);

record!(
    /// LSPS5 client side: an LSP's answer to our `lsps5_set_webhook`.
    Lsps5WebhookReply kind = "lsps5_webhook_reply" {
        id: i64,
        lsp_node_id: String,
        app_name: String,
        ok: bool,
        detail: String,
    }
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ChannelPending>()?;
    m.add_class::<ChannelReady>()?;
    m.add_class::<ChannelClosed>()?;
    m.add_class::<PaymentClaimable>()?;
    m.add_class::<PaymentReceived>()?;
    m.add_class::<PaymentSent>()?;
    m.add_class::<PaymentFailed>()?;
    m.add_class::<PaymentForwarded>()?;
    m.add_class::<HtlcHandlingFailed>()?;
    m.add_class::<HtlcIntercepted>()?;
    m.add_class::<OnionMessageIntercepted>()?;
    m.add_class::<OnionMessagePeerConnected>()?;
    m.add_class::<OnionMessageReceived>()?;
    m.add_class::<Lsps5Notification>()?;
    m.add_class::<ClientWanted>()?;
    m.add_class::<Lsps5WebhookReply>()
}
