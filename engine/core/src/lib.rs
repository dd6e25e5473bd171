//! lsp_engine: an LDK Lightning node with a BDK wallet, an Esplora chain source and SQLite
//! storage. Pure Rust; the Python bindings live in the `lsp_node_ldk` crate.

pub mod chain;
pub mod error;
pub mod events;
pub mod keys;
pub mod logger;
pub mod node;
pub mod onion;
pub mod store;
pub mod types;
pub mod wallet;

pub use error::{Error, Result};
pub use events::{NodeEvent, QueuedEvent};
pub use node::{ChannelInfo, InvoiceInfo, Node, NodeConfig, PeerInfo};
pub use store::PaymentRecord;
pub use wallet::WalletBalance;
