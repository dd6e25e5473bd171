//! Payments, one module per kind: BOLT11 invoices, keysend, and HTLC interception (the LSP
//! role). Every outbound payment is recorded as pending before LDK sees it, so its outcome
//! always has a row to land in.

use lightning::ln::channelmanager::RetryableSendFailure;

use crate::error::{Error, Result};
use crate::io::{now_secs, ForwardRecord, ForwardTotals, PaymentRecord, STATUS_FAILED};
use crate::node::Node;

mod bolt11;
mod held;
mod held_pay;
mod held_router;
mod intercept;
mod keysend;

pub use held_router::HeldRouter;

/// How long LDK keeps retrying a payment over other routes before it reports failure.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

impl Node {
    pub fn list_payments(&self) -> Result<Vec<PaymentRecord>> {
        self.core.store.payments()
    }

    /// One page of payments, newest first (`SqliteStore::payments_page`).
    pub fn payments_page(
        &self, direction: Option<&str>, status: Option<&str>, invoices_only: bool, limit: u32, offset: u64,
    ) -> Result<Vec<PaymentRecord>> {
        self.core.store.payments_page(direction, status, invoices_only, limit, offset)
    }

    /// (direction, status, count) of the recorded payments (`SqliteStore::payment_counts`).
    pub fn payment_counts(&self) -> Result<Vec<(String, String, u64)>> {
        self.core.store.payment_counts()
    }

    /// The forwarding history, newest first.
    pub fn list_forwards(&self, limit: u32, offset: u64) -> Result<Vec<ForwardRecord>> {
        self.core.store.forwards(limit, offset)
    }

    pub fn forward_totals(&self) -> Result<ForwardTotals> {
        self.core.store.forward_totals()
    }

    pub fn payment(&self, payment_id: &str) -> Result<Option<PaymentRecord>> {
        self.core.store.payment(payment_id)
    }

    /// Turn LDK's refusal to start a payment into our error, marking the record failed unless
    /// the refusal was that the payment already exists.
    fn send_failed(&self, hash: &str, failure: RetryableSendFailure) -> Error {
        let (err, mark_failed) = match failure {
            RetryableSendFailure::DuplicatePayment => {
                (Error::DuplicatePayment(format!("invoice with payment hash {hash} is already being paid")), false)
            }
            RetryableSendFailure::RouteNotFound => {
                (Error::Payment("no route to the payee with enough outbound capacity".into()), true)
            }
            other => (Error::Payment(format!("cannot send: {other:?}")), true),
        };
        if mark_failed {
            self.fail_before_send(hash, err)
        } else {
            err
        }
    }

    /// Record a payment that never left as failed, with the reason the caller gets.
    fn fail_before_send(&self, hash: &str, err: Error) -> Error {
        if let Ok(Some(prev)) = self.core.store.payment(hash) {
            let _ = self.core.store.upsert_payment(&PaymentRecord {
                status: STATUS_FAILED.into(),
                failure: Some(err.to_string()),
                updated_at: now_secs(),
                ..prev
            });
        }
        err
    }
}
