//! Application onion messages: raw payloads of the odd TLV types the LightningRod protocol uses,
//! handed to Python as events, and a message router that sends through the node's LSP.

use std::sync::{Arc, RwLock};

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use lightning::blinded_path::message::{BlindedMessagePath, MessageContext, MessageForwardNode};
use lightning::ln::msgs::DecodeError;
use lightning::onion_message::messenger::{
    CustomOnionMessageHandler, Destination, MessageRouter, MessageSendInstructions, OnionMessagePath,
    Responder, ResponseInstruction,
};
use lightning::onion_message::packet::OnionMessageContents;
use lightning::sign::ReceiveAuthKey;
use lightning::util::logger::Level;
use lightning::util::ser::{Writeable, Writer};

use crate::events::{EventSink, NodeEvent};
use crate::types::MessageRouter as DefaultRouter;

/// Application messages use odd TLV types in this range (just above 2^16, outside the types the
/// BOLTs assign), so nodes that do not know them ignore them.
pub const APP_TLV_TYPES: std::ops::RangeInclusive<u64> = 65_537..=65_791;
/// Onion message payloads are at most about 32 KiB; anything larger is refused unread.
const MAX_PAYLOAD: u64 = 32_768;

pub fn is_app_tlv_type(t: u64) -> bool {
    APP_TLV_TYPES.contains(&t) && t % 2 == 1
}

#[derive(Clone, Debug)]
pub struct RawOnionMessage {
    pub tlv_type: u64,
    pub payload: Vec<u8>,
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
        if self.sink.emit(event, None).is_err() {
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

/// Routes onion messages like LDK's default router, except that a node with a relay set (a
/// client of an LSP) sends everything it cannot deliver directly through that relay, since a
/// phone's only peer is its LSP and it knows no graph.
pub struct RelayMessageRouter {
    pub inner: DefaultRouter,
    pub relay: RwLock<Option<PublicKey>>,
}

impl RelayMessageRouter {
    pub fn set_relay(&self, relay: Option<PublicKey>) {
        *self.relay.write().unwrap_or_else(|p| p.into_inner()) = relay;
    }
}

fn first_node(destination: &Destination) -> Option<PublicKey> {
    match destination {
        Destination::Node(pk) => Some(*pk),
        Destination::BlindedPath(path) => match path.introduction_node() {
            lightning::blinded_path::IntroductionNode::NodeId(pk) => Some(*pk),
            lightning::blinded_path::IntroductionNode::DirectedShortChannelId(..) => None,
        },
    }
}

impl MessageRouter for RelayMessageRouter {
    fn find_path(
        &self, sender: PublicKey, peers: Vec<PublicKey>, destination: Destination,
    ) -> Result<OnionMessagePath, ()> {
        let relay = *self.relay.read().unwrap_or_else(|p| p.into_inner());
        let first = first_node(&destination);
        if let (Some(relay), Some(first)) = (relay, first) {
            if first != relay && !peers.contains(&first) && peers.contains(&relay) {
                return Ok(OnionMessagePath {
                    intermediate_nodes: vec![relay],
                    destination,
                    first_node_addresses: vec![],
                });
            }
        }
        self.inner.find_path(sender, peers, destination)
    }

    fn create_blinded_paths<T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification>(
        &self, recipient: PublicKey, local_node_receive_key: ReceiveAuthKey, context: MessageContext,
        peers: Vec<MessageForwardNode>, secp_ctx: &Secp256k1<T>,
    ) -> Result<Vec<BlindedMessagePath>, ()> {
        // A client's reply paths go through its relay, the only node that can reach it.
        let relay = *self.relay.read().unwrap_or_else(|p| p.into_inner());
        let peers = match relay {
            Some(r) if peers.iter().any(|p| p.node_id == r) => {
                peers.into_iter().filter(|p| p.node_id == r).collect()
            }
            _ => peers,
        };
        self.inner.create_blinded_paths(recipient, local_node_receive_key, context, peers, secp_ctx)
    }
}
