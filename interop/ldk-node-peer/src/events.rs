//! ldk-node's events and channels as JSON: ids in hex, amounts in msat (or sat where ldk-node
//! counts in sat), one `kind` name per `Event` variant.

use ldk_node::{ChannelDetails, Event};
use serde_json::{json, Value};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn kind(e: &Event) -> &'static str {
    match e {
        Event::PaymentSuccessful { .. } => "payment_successful",
        Event::PaymentFailed { .. } => "payment_failed",
        Event::PaymentReceived { .. } => "payment_received",
        Event::PaymentForwarded { .. } => "payment_forwarded",
        Event::PaymentClaimable { .. } => "payment_claimable",
        Event::ChannelPending { .. } => "channel_pending",
        Event::ChannelReady { .. } => "channel_ready",
        Event::ChannelClosed { .. } => "channel_closed",
        Event::SplicePending { .. } => "splice_pending",
        Event::SpliceFailed { .. } => "splice_failed",
    }
}

pub fn event(e: &Event) -> Value {
    let id = |p: &Option<ldk_node::lightning::ln::channelmanager::PaymentId>| p.map(|p| hex(&p.0));
    let node = |n: &Option<ldk_node::bitcoin::secp256k1::PublicKey>| n.map(|n| n.to_string());
    let fields = match e {
        Event::PaymentSuccessful { payment_id, payment_hash, fee_paid_msat, .. } => json!({
            "payment_id": id(payment_id),
            "payment_hash": hex(&payment_hash.0),
            "fee_paid_msat": fee_paid_msat,
        }),
        Event::PaymentFailed { payment_id, payment_hash, reason } => json!({
            "payment_id": id(payment_id),
            "payment_hash": payment_hash.map(|h| hex(&h.0)),
            "reason": reason.map(|r| format!("{r:?}")),
        }),
        Event::PaymentReceived { payment_id, payment_hash, amount_msat, .. } => json!({
            "payment_id": id(payment_id),
            "payment_hash": hex(&payment_hash.0),
            "amount_msat": amount_msat,
        }),
        Event::PaymentClaimable { payment_id, payment_hash, claimable_amount_msat, claim_deadline, .. } => json!({
            "payment_id": hex(&payment_id.0),
            "payment_hash": hex(&payment_hash.0),
            "claimable_amount_msat": claimable_amount_msat,
            "claim_deadline": claim_deadline,
        }),
        Event::PaymentForwarded {
            prev_channel_id,
            next_channel_id,
            prev_node_id,
            next_node_id,
            total_fee_earned_msat,
            skimmed_fee_msat,
            claim_from_onchain_tx,
            outbound_amount_forwarded_msat,
            ..
        } => json!({
            "prev_channel_id": hex(&prev_channel_id.0),
            "next_channel_id": hex(&next_channel_id.0),
            "prev_node_id": node(prev_node_id),
            "next_node_id": node(next_node_id),
            "total_fee_earned_msat": total_fee_earned_msat,
            "skimmed_fee_msat": skimmed_fee_msat,
            "claim_from_onchain_tx": claim_from_onchain_tx,
            "outbound_amount_forwarded_msat": outbound_amount_forwarded_msat,
        }),
        Event::ChannelPending { channel_id, user_channel_id, counterparty_node_id, funding_txo, .. } => json!({
            "channel_id": hex(&channel_id.0),
            "user_channel_id": user_channel_id.0.to_string(),
            "counterparty_node_id": counterparty_node_id.to_string(),
            "funding_txo": funding_txo.to_string(),
        }),
        Event::ChannelReady { channel_id, user_channel_id, counterparty_node_id, .. } => json!({
            "channel_id": hex(&channel_id.0),
            "user_channel_id": user_channel_id.0.to_string(),
            "counterparty_node_id": node(counterparty_node_id),
        }),
        Event::ChannelClosed { channel_id, user_channel_id, counterparty_node_id, reason } => json!({
            "channel_id": hex(&channel_id.0),
            "user_channel_id": user_channel_id.0.to_string(),
            "counterparty_node_id": node(counterparty_node_id),
            "reason": reason.as_ref().map(|r| r.to_string()),
        }),
        Event::SplicePending { channel_id, user_channel_id, counterparty_node_id, .. }
        | Event::SpliceFailed { channel_id, user_channel_id, counterparty_node_id, .. } => json!({
            "channel_id": hex(&channel_id.0),
            "user_channel_id": user_channel_id.0.to_string(),
            "counterparty_node_id": counterparty_node_id.to_string(),
        }),
    };
    let mut out = json!({"kind": kind(e)});
    if let (Value::Object(o), Value::Object(f)) = (&mut out, fields) {
        o.extend(f);
    }
    out
}

pub fn channel(c: &ChannelDetails) -> Value {
    json!({
        "channel_id": hex(&c.channel_id.0),
        "user_channel_id": c.user_channel_id.0.to_string(),
        "counterparty_node_id": c.counterparty_node_id.to_string(),
        "short_channel_id": c.short_channel_id,
        "channel_value_sat": c.channel_value_sats,
        "outbound_capacity_msat": c.outbound_capacity_msat,
        "inbound_capacity_msat": c.inbound_capacity_msat,
        "confirmations": c.confirmations,
        "is_outbound": c.is_outbound,
        "is_channel_ready": c.is_channel_ready,
        "is_usable": c.is_usable,
        "is_announced": c.is_announced,
        "fee_base_msat": c.config.forwarding_fee_base_msat,
        "fee_ppm": c.config.forwarding_fee_proportional_millionths,
    })
}
