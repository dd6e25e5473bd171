//! BOLT11 invoices: creating, decoding and paying them (held payments are in `held_pay`).

use std::str::FromStr;

use bitcoin::hashes::Hash;
use lightning::ln::channelmanager::{Bolt11InvoiceParameters, Bolt11PaymentError, PaymentId, Retry};
use lightning::routing::router::RouteParametersConfig;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Bolt11InvoiceDescriptionRef, Currency, Description};

use super::RETRY_FOR;
use crate::error::{Error, Result};
use crate::io::{now_secs, PaymentRecord, STATUS_FAILED, STATUS_PENDING};
use crate::model::InvoiceInfo;
use crate::node::Node;
use crate::parse::hexs;

impl Node {
    pub fn create_invoice(&self, amount_msat: Option<u64>, description: &str, expiry_secs: u32) -> Result<String> {
        self.check_running()?;
        if amount_msat == Some(0) {
            return Err(Error::InvalidArgument("invoice amount must be positive (or omitted for any amount)".into()));
        }
        let desc = Description::new(description.to_string())
            .map_err(|e| Error::InvalidArgument(format!("invalid description: {e}")))?;
        let params = Bolt11InvoiceParameters {
            amount_msats: amount_msat,
            description: Bolt11InvoiceDescription::Direct(desc),
            invoice_expiry_delta_secs: Some(expiry_secs),
            min_final_cltv_expiry_delta: None,
            payment_hash: None,
        };
        let invoice = self
            .core
            .channel_manager
            .create_bolt11_invoice(params)
            .map_err(|e| Error::Invoice(format!("cannot create the invoice: {e:?}")))?;
        let hash = hexs(invoice.payment_hash().as_byte_array());
        let now = now_secs();
        self.core.store.upsert_payment(&PaymentRecord {
            payment_id: hash.clone(),
            payment_hash: hash,
            direction: "inbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat,
            fee_msat: None,
            preimage: None,
            bolt11: Some(invoice.to_string()),
            failure: None,
            created_at: now,
            updated_at: now,
        })?;
        Ok(invoice.to_string())
    }

    pub(super) fn parse_invoice(&self, s: &str) -> Result<Bolt11Invoice> {
        let inv =
            Bolt11Invoice::from_str(s.trim()).map_err(|e| Error::Invoice(format!("not a BOLT11 invoice: {e}")))?;
        let ours = Currency::from(self.core.config.network);
        if inv.currency() != ours {
            return Err(Error::Invoice(format!(
                "the invoice is for {:?} but this node runs on {}",
                inv.currency(),
                self.core.config.network
            )));
        }
        Ok(inv)
    }

    pub fn decode_invoice(&self, s: &str) -> Result<InvoiceInfo> {
        let inv = self.parse_invoice(s)?;
        Ok(InvoiceInfo {
            payment_hash: hexs(inv.payment_hash().as_byte_array()),
            amount_msat: inv.amount_milli_satoshis(),
            description: match inv.description() {
                Bolt11InvoiceDescriptionRef::Direct(d) => Some(d.to_string()),
                Bolt11InvoiceDescriptionRef::Hash(_) => None,
            },
            payee_node_id: inv.get_payee_pub_key().to_string(),
            network: self.core.config.network.to_string(),
            timestamp: inv.duration_since_epoch().as_secs(),
            expiry_secs: inv.expiry_time().as_secs(),
            is_expired: inv.is_expired(),
            min_final_cltv_expiry_delta: inv.min_final_cltv_expiry_delta(),
            route_hints: inv.route_hints().len(),
            route_hint_sources: inv
                .route_hints()
                .iter()
                .filter_map(|h| h.0.first().map(|hop| hop.src_node_id.to_string()))
                .collect(),
        })
    }

    /// Check an invoice can be paid (not ours, not expired, not paid before) and record the
    /// outbound payment as pending before LDK sees it.
    pub(super) fn begin_outbound(&self, s: &str, amount_msat: Option<u64>) -> Result<(Bolt11Invoice, String, u64)> {
        self.check_running()?;
        let inv = self.parse_invoice(s)?;
        if inv.is_expired() {
            return Err(Error::Invoice("the invoice has expired".into()));
        }
        if inv.get_payee_pub_key() == self.core.channel_manager.get_our_node_id() {
            return Err(Error::Payment("this invoice was issued by this node; a node cannot pay itself".into()));
        }
        let hash = hexs(inv.payment_hash().as_byte_array());
        if let Some(prev) = self.core.store.payment(&hash)? {
            if prev.direction == "outbound" && prev.status != STATUS_FAILED {
                return Err(Error::DuplicatePayment(format!(
                    "invoice with payment hash {hash} was already paid or is being paid (status {})",
                    prev.status
                )));
            }
        }
        let amount = match (inv.amount_milli_satoshis(), amount_msat) {
            (Some(a), None) => a,
            (Some(a), Some(b)) if a == b => a,
            (Some(a), Some(b)) => {
                return Err(Error::Payment(format!("the invoice asks for {a} msat, not {b} msat")));
            }
            (None, Some(b)) if b > 0 => b,
            (None, _) => return Err(Error::Payment("the invoice has no amount: give amount_msat".into())),
        };
        let now = now_secs();
        self.core.store.upsert_payment(&PaymentRecord {
            payment_id: hash.clone(),
            payment_hash: hash.clone(),
            direction: "outbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat: Some(amount),
            fee_msat: None,
            preimage: None,
            bolt11: Some(s.trim().to_string()),
            failure: None,
            created_at: now,
            updated_at: now,
        })?;
        Ok((inv, hash, amount))
    }

    /// Start paying an invoice; the outcome arrives as payment_sent / payment_failed.
    pub fn pay_invoice(&self, s: &str, amount_msat: Option<u64>, max_fee_msat: Option<u64>) -> Result<String> {
        let (inv, hash, amount) = self.begin_outbound(s, amount_msat)?;
        let route_cfg = RouteParametersConfig { max_total_routing_fee_msat: max_fee_msat, ..Default::default() };
        let res = self.core.channel_manager.pay_for_bolt11_invoice(
            &inv,
            PaymentId(*inv.payment_hash().as_byte_array()),
            if inv.amount_milli_satoshis().is_some() { None } else { Some(amount) },
            route_cfg,
            Retry::Timeout(RETRY_FOR),
        );
        match res {
            Ok(()) => Ok(hash),
            Err(Bolt11PaymentError::SendingFailed(f)) => Err(self.send_failed(&hash, f)),
            Err(Bolt11PaymentError::InvalidAmount) => {
                Err(self.fail_before_send(&hash, Error::Payment("the amount does not match the invoice".into())))
            }
        }
    }
}
