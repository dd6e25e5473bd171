//! The node's onion-message calls (send, reply, build a blinded path to us, forward a message
//! kept for an offline peer) and node-key message signing.

use std::io::Cursor;

use bitcoin::secp256k1::Secp256k1;
use lightning::blinded_path::message::{BlindedMessagePath, MessageContext, MessageForwardNode};
use lightning::ln::msgs::OnionMessage;
use lightning::onion_message::messenger::{Destination, MessageSendInstructions, Responder};
use lightning::sign::NodeSigner;
use lightning::util::ser::{LengthReadable, Readable, Writeable};

use super::{is_app_tlv_type, RawOnionMessage, APP_TLV_TYPES};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::parse::{hexs, parse_blinded_path, parse_pubkey};

impl Node {
    /// Send everything we cannot deliver directly through this peer (a client sets its LSP).
    pub fn set_message_relay(&self, node_id: Option<&str>) -> Result<()> {
        let relay = node_id.map(parse_pubkey).transpose()?;
        self.core.message_router.set_relay(relay);
        Ok(())
    }

    /// Send an application message to a node or along a blinded path. With `reply_context`,
    /// a reply path is attached whose replies reach us carrying that context.
    pub fn send_onion_message(
        &self, tlv_type: u64, payload: Vec<u8>, to_node: Option<&str>, to_path: Option<&str>,
        reply_context: Option<Vec<u8>>,
    ) -> Result<()> {
        self.check_running()?;
        if !is_app_tlv_type(tlv_type) {
            return Err(Error::InvalidArgument(format!(
                "message type {tlv_type} is not an odd type in {}..={}",
                APP_TLV_TYPES.start(),
                APP_TLV_TYPES.end()
            )));
        }
        let destination = match (to_node, to_path) {
            (Some(n), None) => Destination::Node(parse_pubkey(n)?),
            (None, Some(p)) => Destination::BlindedPath(parse_blinded_path(p)?),
            _ => return Err(Error::InvalidArgument("give exactly one of to_node and to_path".into())),
        };
        let instructions = match reply_context {
            Some(ctx) => MessageSendInstructions::WithReplyPath { destination, context: MessageContext::Custom(ctx) },
            None => MessageSendInstructions::WithoutReplyPath { destination },
        };
        self.core
            .onion_messenger
            .send_onion_message(RawOnionMessage { tlv_type, payload }, instructions)
            .map_err(|e| Error::OnionMessage(format!("cannot send the onion message: {e:?}")))?;
        self.flush_messages();
        Ok(())
    }

    /// Answer a received message along the reply path it carried (`responder` from the event).
    pub fn reply_onion_message(&self, responder: &str, tlv_type: u64, payload: Vec<u8>) -> Result<()> {
        self.check_running()?;
        let bytes = hex::decode(responder).map_err(|_| Error::InvalidArgument("responder is not hex".into()))?;
        let responder = Responder::read(&mut Cursor::new(bytes)).map_err(|e| {
            Error::InvalidArgument(format!("not a responder from an onion_message_received event: {e:?}"))
        })?;
        self.core
            .onion_messenger
            .handle_onion_message_response(RawOnionMessage { tlv_type, payload }, responder.respond())
            .map_err(|e| Error::OnionMessage(format!("cannot send the reply: {e:?}")))?;
        self.flush_messages();
        Ok(())
    }

    /// A blinded path ending at this node, entered at the first of `intermediate_nodes` (or at
    /// us if none). A message sent along it arrives with `context`, authenticated as ours.
    pub fn create_blinded_path(&self, context: Vec<u8>, intermediate_nodes: &[String]) -> Result<String> {
        let hops = intermediate_nodes
            .iter()
            .map(|n| Ok(MessageForwardNode { node_id: parse_pubkey(n)?, short_channel_id: None }))
            .collect::<Result<Vec<_>>>()?;
        let secp = Secp256k1::new();
        let path = BlindedMessagePath::new(
            &hops,
            self.core.channel_manager.get_our_node_id(),
            self.core.keys.get_receive_auth_key(),
            MessageContext::Custom(context),
            &*self.core.keys,
            &secp,
        );
        Ok(hexs(&path.encode()))
    }

    /// Hand an intercepted onion message (from onion_message_intercepted) to a connected peer.
    pub fn forward_onion_message(&self, message: &str, peer_node_id: &str) -> Result<()> {
        let pk = parse_pubkey(peer_node_id)?;
        let bytes = hex::decode(message).map_err(|_| Error::InvalidArgument("message is not hex".into()))?;
        let msg = OnionMessage::read_from_fixed_length_buffer(&mut &bytes[..])
            .map_err(|e| Error::InvalidArgument(format!("not an onion message: {e:?}")))?;
        self.core
            .onion_messenger
            .forward_onion_message(msg, &pk)
            .map_err(|e| Error::OnionMessage(format!("cannot forward the onion message to {pk}: {e:?}")))?;
        self.flush_messages();
        Ok(())
    }

    /// Onion messages wait in LDK's buffers until the peer manager next runs (up to the 10 s
    /// onion-message timer); run it now so a message leaves when it is sent.
    fn flush_messages(&self) {
        self.core.peer_manager.process_events();
    }

    /// Sign with the node key (the zbase32 format of lightning `signmessage`).
    pub fn sign_message(&self, message: &[u8]) -> String {
        lightning::util::message_signing::sign(message, &self.core.keys.get_node_secret_key())
    }
}

/// Check a zbase32 node-key signature (lightning `signmessage` format) by `node_id`.
pub fn verify_message(message: &[u8], signature: &str, node_id: &str) -> Result<bool> {
    let pk = parse_pubkey(node_id)?;
    Ok(lightning::util::message_signing::verify(message, signature, &pk))
}
