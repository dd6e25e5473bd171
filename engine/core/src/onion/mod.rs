//! Application onion messages: raw payloads of the odd TLV types the LightningRod protocol uses,
//! handed to Python as events (`handler` here), a message router that sends through the node's
//! LSP (`router`), and the node's calls to send, answer and forward messages (`send`).

use std::sync::Arc;

use lightning::ln::msgs::DecodeError;
use lightning::onion_message::messenger::{
    CustomOnionMessageHandler, MessageSendInstructions, Responder, ResponseInstruction,
};
use lightning::onion_message::packet::OnionMessageContents;
use lightning::util::logger::Level;
use lightning::util::ser::{Writeable, Writer};

use crate::event::{EventSink, NodeEvent};

mod guard;
mod router;
mod send;

pub use guard::{GuardCounters, GuardedMessenger};
pub use router::RelayMessageRouter;
pub use send::verify_message;

/// Application messages use odd TLV types in this range (just above 2^16, outside the types the
/// BOLTs assign), so nodes that do not know them ignore them.
pub const APP_TLV_TYPES: std::ops::RangeInclusive<u64> = 65_537..=65_791;
/// Onion message payloads are at most about 32 KiB; anything larger is refused unread.
const MAX_PAYLOAD: u64 = 32_768;

pub fn is_app_tlv_type(t: u64) -> bool {
    APP_TLV_TYPES.contains(&t) && t % 2 == 1
}

/// An application message: its TLV type and the payload bytes, uninterpreted.
#[derive(Clone)]
pub struct RawOnionMessage {
    pub tlv_type: u64,
    pub payload: Vec<u8>,
}

/// LDK logs received messages with `{:?}` (at trace level); a payload can carry a hold's
/// secret, so only its type and size are shown.
impl std::fmt::Debug for RawOnionMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawOnionMessage {{ tlv_type: {}, payload: {} bytes }}", self.tlv_type, self.payload.len())
    }
}

impl Writeable for RawOnionMessage {
    fn write<W: Writer>(&self, w: &mut W) -> Result<(), lightning::io::Error> {
        w.write_all(&self.payload)
    }
}

impl OnionMessageContents for RawOnionMessage {
    fn tlv_type(&self) -> u64 {
        self.tlv_type
    }
    fn msg_type(&self) -> &'static str {
        "application"
    }
}

/// Queues every application message addressed to us as an `OnionMessageReceived` event.
pub struct AppMessageHandler {
    pub sink: Arc<EventSink>,
}

impl CustomOnionMessageHandler for AppMessageHandler {
    type CustomMessage = RawOnionMessage;

    fn handle_custom_message(
        &self, message: RawOnionMessage, context: Option<Vec<u8>>, responder: Option<Responder>,
    ) -> Option<(RawOnionMessage, ResponseInstruction)> {
        // Replies are sent later by Python with reply_onion_message; the responder (a reply
        // path) travels with the event so a reply is possible even after a restart.
        let event = NodeEvent::OnionMessageReceived {
            tlv_type: message.tlv_type,
            payload: hex::encode(&message.payload),
            context: context.map(hex::encode),
            responder: responder.map(|r| hex::encode(r.encode())),
        };
        let sender = guard::current_prev_hop().map(|p| p.to_string());
        if self.sink.emit_from(event, sender.as_deref()).is_err() {
            self.sink.logger.engine(Level::Error, "dropped an onion message: the event queue is not writable".into());
        }
        None
    }

    fn read_custom_message<R: lightning::io::Read>(
        &self, message_type: u64, buffer: &mut R,
    ) -> Result<Option<RawOnionMessage>, DecodeError> {
        if !is_app_tlv_type(message_type) {
            return Ok(None);
        }
        let mut payload = Vec::new();
        buffer.read_to_limit(&mut payload, MAX_PAYLOAD + 1).map_err(|_| DecodeError::InvalidValue)?;
        if payload.len() as u64 > MAX_PAYLOAD {
            // Refuse rather than truncate: a cut message must not reach the application.
            return Err(DecodeError::InvalidValue);
        }
        Ok(Some(RawOnionMessage { tlv_type: message_type, payload }))
    }

    fn release_pending_custom_messages(&self) -> Vec<(RawOnionMessage, MessageSendInstructions)> {
        Vec::new()
    }
}
