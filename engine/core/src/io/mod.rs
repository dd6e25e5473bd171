//! Persistence: one SQLite file (`node.sqlite`) holding LDK's key-value namespaces, the event
//! queue, payment records, the forwarding history and known peer addresses, with a versioned schema.

mod forwards;
mod intercepts;
mod jit;
mod jit_htlcs;
mod lsps1;
mod lsps1_onchain;
mod migrations;
mod sqlite_store;
mod static_invoices;

pub use forwards::{ForwardRecord, ForwardTotals, MAX_PAGE};
pub use intercepts::{InterceptRecord, INTERCEPT_FAILED, INTERCEPT_FORWARDED, INTERCEPT_PENDING};
pub use jit::{
    JitChannelRecord, JitSale, JitUnpaid, JIT_EXPIRED, JIT_FAILED, JIT_OPENING, JIT_PAID, JIT_READY, JIT_SOLD,
};
pub use lsps1::{
    Lsps1OnchainTerms, Lsps1OrderRecord, LSPS1_BY_BOLT11, LSPS1_BY_ONCHAIN, LSPS1_COMPLETED, LSPS1_CREATED,
    LSPS1_EXPECT_PAYMENT, LSPS1_FAILED, LSPS1_PAID,
};
pub use lsps1_onchain::{tally, OnchainReceipt, OnchainTally, WATCH_ADDRESS_SECS};
pub use migrations::SCHEMA_VERSION;
pub use sqlite_store::{PaymentRecord, SqliteStore, STATUS_FAILED, STATUS_PENDING, STATUS_SUCCEEDED};
pub use static_invoices::{StaticInvoiceRecord, MAX_INVOICE_BYTES, MAX_SLOTS_PER_RECIPIENT};

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
