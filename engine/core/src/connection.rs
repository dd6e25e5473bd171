//! Peer connections: dialling a node and waiting for the handshake, keeping channel peers
//! connected, and the peer list. Addresses of peers we dialled are remembered in the store.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::SocketAddress;
use lightning::routing::gossip::NodeId;
use lightning::util::logger::Level;

use crate::error::{Error, Result};
use crate::model::PeerInfo;
use crate::node::{Core, Node};
use crate::parse::parse_pubkey;

/// How long a dialled peer has to complete the noise handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Nagle off on a peer socket. LDK writes small messages (a ping after every 32 onion messages,
/// `update_add_htlc`, `commitment_signed`) and waits for the answer: with Nagle on, each such
/// write can wait ~40 ms for the other side's delayed ACK (measured by `make bench-flood`).
pub(crate) fn no_delay(stream: tokio::net::TcpStream) -> tokio::net::TcpStream {
    // Best effort: a socket that refuses the option still works, only slower.
    let _ = stream.set_nodelay(true);
    stream
}
/// Longest a dial requested by LDK (`ConnectionNeeded`) may take, all addresses together.
pub(crate) const REQUESTED_DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Dials requested by LDK waiting for the dialler; more are dropped (LDK asks again when it
/// still needs the peer, and its messages for it time out on their own).
pub(crate) const DIAL_QUEUE: usize = 32;
/// Requested dials in flight at once.
pub(crate) const DIALS_IN_FLIGHT: usize = 4;

/// A dial LDK asked for: the node and the addresses it announced.
pub(crate) type DialRequest = (PublicKey, Vec<SocketAddress>);

impl Node {
    pub async fn connect(&self, node_id: &str, address: &str) -> Result<()> {
        self.check_running()?;
        let pk = parse_pubkey(node_id)?;
        if pk == self.core.channel_manager.get_our_node_id() {
            return Err(Error::Peer("cannot connect to ourselves".into()));
        }
        self.core.connect(pk, address).await?;
        self.core.store.save_peer(&pk.to_string(), address)?;
        Ok(())
    }

    pub fn disconnect(&self, node_id: &str) -> Result<()> {
        let pk = parse_pubkey(node_id)?;
        if self.core.peer_manager.peer_by_node_id(&pk).is_none() {
            return Err(Error::Peer(format!("not connected to {pk}")));
        }
        // Forget the address too, or the reconnect task would dial it again.
        self.core.store.forget_peer(&pk.to_string())?;
        self.core.peer_manager.disconnect_by_node_id(pk);
        Ok(())
    }

    /// The addresses ("host:port") in the node announcement of `node_id` that our gossip holds,
    /// in the announcement's order; empty if we have none (unknown node, or no announcement).
    pub fn node_addresses(&self, node_id: &str) -> Result<Vec<String>> {
        let pk = parse_pubkey(node_id)?;
        let graph = self.core.network_graph.read_only();
        let addresses = graph
            .node(&NodeId::from_pubkey(&pk))
            .and_then(|n| n.announcement_info.as_ref())
            .map(|a| a.addresses().iter().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        Ok(addresses)
    }

    pub fn list_peers(&self) -> Vec<PeerInfo> {
        self.core
            .peer_manager
            .list_peers()
            .into_iter()
            .map(|p| PeerInfo {
                node_id: p.counterparty_node_id.to_string(),
                address: p.socket_address.map(|a| a.to_string()),
                inbound: p.is_inbound_connection,
            })
            .collect()
    }
}

impl Core {
    /// Dial `pk` at `address` and return once the handshake completed (or failed).
    pub(crate) async fn connect(&self, pk: PublicKey, address: &str) -> Result<()> {
        if self.peer_manager.peer_by_node_id(&pk).is_some() {
            return Ok(());
        }
        let addr: SocketAddr = tokio::net::lookup_host(address)
            .await
            .map_err(|e| Error::Peer(format!("cannot resolve '{address}': {e}")))?
            .next()
            .ok_or_else(|| Error::Peer(format!("'{address}' resolves to no address")))?;
        let refused = || Error::Peer(format!("cannot connect to {pk} at {addr}: connection refused or timed out"));
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| refused())?
            .map_err(|_| refused())?;
        let stream = no_delay(stream).into_std().map_err(|_| refused())?;
        let fut = lightning_net_tokio::setup_outbound(Arc::clone(&self.peer_manager), pk, stream);
        let mut connection = tokio::spawn(fut);
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            if self.peer_manager.peer_by_node_id(&pk).is_some() {
                return Ok(());
            }
            tokio::select! {
                _ = &mut connection => {
                    return Err(Error::Peer(format!(
                        "{addr} closed the connection during the handshake: is {pk} the node listening there?"
                    )));
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Peer(format!("handshake with {pk} at {addr} timed out")));
            }
        }
    }

    /// Hand a `ConnectionNeeded` to the dialler task without waiting. Requests beyond the
    /// queue, or for a peer already connected, are dropped.
    pub(crate) fn request_dial(&self, node_id: PublicKey, addresses: Vec<SocketAddress>) {
        if self.peer_manager.peer_by_node_id(&node_id).is_some() || addresses.is_empty() {
            return;
        }
        if self.dial_requests.try_send((node_id, addresses)).is_err() {
            self.logger.engine(Level::Debug, format!("dial request for {node_id} dropped: too many pending"));
        }
    }

    /// Try the addresses of a requested dial in turn, all within `REQUESTED_DIAL_TIMEOUT`.
    pub(crate) async fn dial_requested(&self, node_id: PublicKey, addresses: Vec<SocketAddress>) {
        let attempt = async {
            for a in addresses {
                if self.connect(node_id, &a.to_string()).await.is_ok() {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(REQUESTED_DIAL_TIMEOUT, attempt).await {
            Ok(true) => {}
            Ok(false) => self.logger.engine(Level::Debug, format!("requested dial of {node_id} failed")),
            Err(_) => self.logger.engine(Level::Debug, format!("requested dial of {node_id} timed out")),
        }
    }

    /// One round of redialling the disconnected peers we share a channel with.
    pub(crate) async fn reconnect_channel_peers(&self) {
        let Ok(known) = self.store.peers() else { return };
        let with_channels: HashSet<PublicKey> =
            self.channel_manager.list_channels().iter().map(|c| c.counterparty.node_id).collect();
        for (node_id, address) in known {
            let Ok(pk) = PublicKey::from_str(&node_id) else { continue };
            if with_channels.contains(&pk) && self.peer_manager.peer_by_node_id(&pk).is_none() {
                if let Err(e) = self.connect(pk, &address).await {
                    self.logger.engine(Level::Debug, format!("reconnect to {pk} failed: {e}"));
                }
            }
        }
    }
}
