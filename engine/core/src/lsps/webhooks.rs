//! LSPS5 (bLIP-55 webhooks) over lightning-liquidity. Service side: a client registers
//! webhooks over LSPS0 (lightning-liquidity checks the limits and the prior activity); a
//! `notify_*` call has lightning-liquidity sign a notification per webhook, and each becomes a
//! durable engine event (`Lsps5Notification`, lane 0) that the application POSTs through its
//! push outbox. lightning-liquidity does no HTTP itself. Client side (off unless
//! `lsps5_client`): `set_webhook` to an LSP, its answers as `Lsps5WebhookReply` events.

use std::str::FromStr;

use lightning::util::logger::Level;
use lightning_liquidity::lsps0::ser::LSPSDateTime;
use lightning_liquidity::lsps5::event::{LSPS5ClientEvent, LSPS5ServiceEvent};
use lightning_liquidity::lsps5::msgs::{LSPS5ProtocolError, WebhookNotification};
use lightning_liquidity::lsps5::validator::LSPS5Validator;

use crate::error::{Error, Result};
use crate::event::NodeEvent;
use crate::node::{Core, Node};
use crate::parse::parse_pubkey;

/// The notifications the application may ask for, by their bLIP-55 method name.
/// (`webhook_registered` is lightning-liquidity's own, sent on registration.)
pub const NOTIFY_METHODS: [&str; 4] = [
    "lsps5.payment_incoming",
    "lsps5.expiry_soon",
    "lsps5.liquidity_management_request",
    "lsps5.onion_message_incoming",
];

/// What a `notify` call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Signed and queued for every webhook of the client (none if it has none).
    Queued,
    /// lightning-liquidity's cooldown: the client got a notification less than 60 s ago (on
    /// any webhook, any method). Not an error: the client is being woken already.
    Cooldown,
}

/// Whether `signature` (zbase32) over `body` at `timestamp` (the `x-lsps5-*` headers) is the
/// LSP `lsp_node_id`'s, per bLIP-55: lightning-liquidity's validator on the parsed body.
pub fn lsps5_verify(lsp_node_id: &str, timestamp: &str, signature: &str, body: &str) -> Result<bool> {
    let lsp = parse_pubkey(lsp_node_id)?;
    let ts = LSPSDateTime::from_str(timestamp)
        .map_err(|()| Error::InvalidArgument("timestamp is not an RFC 3339 date".into()))?;
    let notification: WebhookNotification = serde_json::from_str(body)
        .map_err(|e| Error::InvalidArgument(format!("body is not an LSPS5 notification: {e}")))?;
    // The validator signs over its own serialisation of the parsed body: a body that does not
    // re-serialise to the same bytes was not what the LSP signed, whatever the signature says.
    if serde_json::to_string(&notification).ok().as_deref() != Some(body) {
        return Ok(false);
    }
    Ok(LSPS5Validator::new().validate(lsp, &ts, signature, &notification).is_ok())
}

impl Core {
    /// A signed notification for one webhook: kept as a durable event for the application.
    /// lightning-liquidity has handed it out already, so a store error loses it (logged): a
    /// wake-up push is not money, and the client's next event brings another.
    pub(super) fn lsps5_service_event(&self, event: LSPS5ServiceEvent) {
        let LSPS5ServiceEvent::SendWebhookNotification { counterparty_node_id, app_name, url, notification, headers } =
            event;
        let body = match serde_json::to_string(&notification) {
            Ok(b) => b,
            Err(e) => return self.logger.engine(Level::Error, format!("lsps5: cannot encode a notification: {e}")),
        };
        let method = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("method").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let event = NodeEvent::Lsps5Notification {
            client_node_id: counterparty_node_id.to_string(),
            app_name: app_name.to_string(),
            url: url.to_string(),
            method,
            headers,
            body,
        };
        // The URL is a secret: the sink's error names the kind only.
        let _ = self.events.emit(event, None);
    }

    /// The LSP's answer to our `set_webhook` / `remove_webhook` (client side).
    pub(super) fn lsps5_client_event(&self, event: LSPS5ClientEvent) {
        let (lsp, app_name, ok, detail) = match event {
            LSPS5ClientEvent::WebhookRegistered {
                counterparty_node_id, app_name, num_webhooks, max_webhooks, ..
            } => (counterparty_node_id, app_name, true, format!("registered ({num_webhooks} of {max_webhooks})")),
            LSPS5ClientEvent::WebhookRegistrationFailed { counterparty_node_id, app_name, error, .. } => {
                (counterparty_node_id, app_name, false, format!("{error:?}"))
            }
            LSPS5ClientEvent::WebhookRemoved { counterparty_node_id, app_name, .. } => {
                (counterparty_node_id, app_name, true, "removed".into())
            }
            LSPS5ClientEvent::WebhookRemovalFailed { counterparty_node_id, app_name, error, .. } => {
                (counterparty_node_id, app_name, false, format!("{error:?}"))
            }
            LSPS5ClientEvent::WebhooksListed { .. } => return,
        };
        let event =
            NodeEvent::Lsps5WebhookReply { lsp_node_id: lsp.to_string(), app_name: app_name.to_string(), ok, detail };
        let _ = self.events.emit(event, None);
    }
}

impl Node {
    /// Whether the LSPS5 service runs (`[lsps5] enabled`).
    pub fn lsps5_enabled(&self) -> bool {
        self.core.liquidity.lsps5_service_handler().is_some()
    }

    /// Have lightning-liquidity sign `method` (one of `NOTIFY_METHODS`) for every webhook of
    /// `client`; each comes back as an `Lsps5Notification` event. `timeout` is the block height
    /// `lsps5.expiry_soon` names (required for it, ignored otherwise).
    pub fn lsps5_notify(&self, client: &str, method: &str, timeout: Option<u32>) -> Result<NotifyOutcome> {
        let handler = self
            .core
            .liquidity
            .lsps5_service_handler()
            .ok_or_else(|| Error::InvalidArgument("the LSPS5 service is off".into()))?;
        let client = parse_pubkey(client)?;
        let sent = match method {
            "lsps5.payment_incoming" => handler.notify_payment_incoming(client),
            "lsps5.expiry_soon" => {
                let t = timeout.ok_or_else(|| Error::InvalidArgument("lsps5.expiry_soon needs a timeout".into()))?;
                handler.notify_expiry_soon(client, t)
            }
            "lsps5.liquidity_management_request" => handler.notify_liquidity_management_request(client),
            "lsps5.onion_message_incoming" => handler.notify_onion_message_incoming(client),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown LSPS5 notification {other:?}; expected one of {NOTIFY_METHODS:?}"
                )))
            }
        };
        match sent {
            Ok(()) => Ok(NotifyOutcome::Queued),
            Err(LSPS5ProtocolError::SlowDownError) => Ok(NotifyOutcome::Cooldown),
            Err(e) => Err(Error::InvalidArgument(format!("LSPS5 notification refused: {e:?}"))),
        }
    }

    /// Client side: ask LSP `lsp_node_id` (connected) to POST its notifications for `app_name`
    /// to `url`. The answer comes as an `Lsps5WebhookReply` event; returns the request id.
    pub fn lsps5_set_webhook(&self, lsp_node_id: &str, app_name: &str, url: &str) -> Result<String> {
        let handler = self
            .core
            .liquidity
            .lsps5_client_handler()
            .ok_or_else(|| Error::InvalidArgument("the LSPS5 client is off (lsps5_client)".into()))?;
        let lsp = parse_pubkey(lsp_node_id)?;
        let id = handler
            .set_webhook(lsp, app_name.to_owned(), url.to_owned())
            .map_err(|e| Error::InvalidArgument(format!("webhook refused before sending: {e:?}")))?;
        Ok(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
    use lightning::util::message_signing::sign;

    fn signed(body: &str, ts: &str) -> (String, String) {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[7; 32]).unwrap();
        let msg = format!("LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At {ts} I notify {body}");
        (PublicKey::from_secret_key(&secp, &sk).to_string(), sign(msg.as_bytes(), &sk))
    }

    #[test]
    fn a_notification_signed_per_blip55_verifies_and_a_changed_one_does_not() {
        let body = r#"{"jsonrpc":"2.0","method":"lsps5.expiry_soon","params":{"timeout":812}}"#;
        // As lightning-liquidity writes the header (chrono's RFC 3339), which the validator re-formats.
        let ts = "2030-01-01T00:00:00+00:00";
        let (lsp, sig) = signed(body, ts);
        assert!(lsps5_verify(&lsp, ts, &sig, body).unwrap());
        let other = body.replace("812", "813");
        assert!(!lsps5_verify(&lsp, ts, &sig, &other).unwrap());
        assert!(!lsps5_verify(&lsp, "2030-01-01T00:00:01+00:00", &sig, body).unwrap());
        // Same JSON with other spacing: not the bytes that were signed.
        let spaced = body.replace(",\"params\"", ", \"params\"");
        assert!(!lsps5_verify(&lsp, ts, &sig, &spaced).unwrap());
        assert!(lsps5_verify(&lsp, "not a date", &sig, body).is_err());
    }
}
