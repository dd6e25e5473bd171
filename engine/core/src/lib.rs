//! lsp_engine: an LDK Lightning node with a BDK wallet, an Esplora chain source and SQLite
//! storage. Pure Rust; the Python bindings live in the `lsp_node_ldk` crate.

mod async_held;
mod async_server;
mod builder;
pub mod chain;
mod channels;
pub mod config;
mod connection;
pub mod error;
pub mod event;
pub mod io;
pub mod keys;
pub mod logger;
pub mod lsps;
pub mod model;
pub mod node;
pub mod onion;
mod parse;
pub mod payment;
mod seed;
mod tasks;
pub mod types;
pub mod wallet;

pub use async_held::HeldAsyncHtlc;
pub use async_server::{recipient_label, MAX_PATHS_VALID_DAYS};
pub use config::{Lsps1Options, Lsps2Options, NodeConfig, NodeOptions};
pub use error::{Error, Result};
pub use event::{NodeEvent, QueuedEvent};
pub use io::StaticInvoiceRecord;
pub use io::{ForwardRecord, ForwardTotals, PaymentRecord};
pub use io::{InterceptRecord, JitChannelRecord, Lsps1OrderRecord};
pub use lsps::webhooks::NotifyOutcome as Lsps5NotifyOutcome;
pub use lsps::{lsps5_verify, MAX_WEBHOOKS_PER_CLIENT};
pub use model::{ChannelInfo, HeldHop, InboundHtlc, InvoiceInfo, OnionMessageStats, PeerInfo};
pub use node::Node;
pub use onion::verify_message;
pub use wallet::WalletBalance;
