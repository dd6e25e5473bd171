//! Onion message routing for a node whose only peer is its LSP.

use std::sync::RwLock;

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use lightning::blinded_path::message::{BlindedMessagePath, MessageContext, MessageForwardNode};
use lightning::onion_message::messenger::{Destination, MessageRouter, OnionMessagePath};
use lightning::sign::ReceiveAuthKey;

/// Routes onion messages like LDK's default router, except that a node with a relay set (a
/// client of an LSP) sends everything it cannot deliver directly through that relay, since a
/// phone's only peer is its LSP and it knows no graph.
pub struct RelayMessageRouter<M> {
    inner: M,
    relay: RwLock<Option<PublicKey>>,
}

impl<M> RelayMessageRouter<M> {
    /// Route like `inner` until a relay is set.
    pub fn new(inner: M) -> Self {
        Self { inner, relay: RwLock::new(None) }
    }

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

impl<M: MessageRouter> MessageRouter for RelayMessageRouter<M> {
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
            Some(r) if peers.iter().any(|p| p.node_id == r) => peers.into_iter().filter(|p| p.node_id == r).collect(),
            _ => peers,
        };
        self.inner.create_blinded_paths(recipient, local_node_receive_key, context, peers, secp_ctx)
    }
}
