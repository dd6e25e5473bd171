//! BOLT11 invoices: creating, decoding and paying them, directly or through the payer's LSP's
//! intercept SCID (a LightningRod hold).

use std::str::FromStr;

use bitcoin::hashes::Hash;
use lightning::ln::channelmanager::{
    Bolt11InvoiceParameters, Bolt11PaymentError, PaymentId, RecipientOnionFields, Retry,
};
use lightning::routing::gossip::RoutingFees;
use lightning::routing::router::{PaymentParameters, RouteHint, RouteHintHop, RouteParameters, RouteParametersConfig};
use lightning::types::payment::PaymentHash;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Bolt11InvoiceDescriptionRef, Currency, Description};

use super::RETRY_FOR;
use crate::config::MAX_TOTAL_CLTV;
use crate::error::{Error, Result};
use crate::io::{now_secs, PaymentRecord, STATUS_FAILED, STATUS_PENDING};
use crate::model::{InterceptHop, InvoiceInfo};
use crate::node::Node;
use crate::parse::{hexs, parse_pubkey};

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

    fn parse_invoice(&self, s: &str) -> Result<Bolt11Invoice> {
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
    fn begin_outbound(&self, s: &str, amount_msat: Option<u64>) -> Result<(Bolt11Invoice, String, u64)> {
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

    /// Pay an invoice through the payer's LSP's intercept SCID, so the LSP can hold the HTLCs.
    /// The intercept hop is put in front of the invoice's first route hint (or straight to the
    /// payee), and the final CLTV is padded by `extra_final_cltv` so the payee still accepts the
    /// HTLC after it was held that many blocks.
    pub fn pay_invoice_via(
        &self, s: &str, hop: &InterceptHop, extra_final_cltv: u32, max_fee_msat: Option<u64>,
    ) -> Result<String> {
        let lsp = parse_pubkey(&hop.lsp_node_id)?;
        let (inv, hash, amount) = self.begin_outbound(s, None)?;
        let first = RouteHintHop {
            src_node_id: lsp,
            short_channel_id: hop.short_channel_id,
            fees: RoutingFees {
                base_msat: hop.fee_base_msat,
                proportional_millionths: hop.fee_proportional_millionths,
            },
            cltv_expiry_delta: hop.cltv_expiry_delta,
            htlc_minimum_msat: None,
            htlc_maximum_msat: None,
        };
        let mut chain = vec![first];
        if let Some(h) = inv.route_hints().into_iter().next() {
            chain.extend(h.0);
        }
        let final_delta = inv.min_final_cltv_expiry_delta() as u32 + extra_final_cltv;
        let total: u32 = final_delta + chain.iter().map(|h| h.cltv_expiry_delta as u32).sum::<u32>();
        if total > MAX_TOTAL_CLTV {
            let why = format!(
                "the route would lock funds for {total} blocks; LDK forwards at most {MAX_TOTAL_CLTV}: ask for a shorter hold"
            );
            return Err(self.fail_before_send(&hash, Error::InvalidArgument(why)));
        }
        let mut params = PaymentParameters::from_node_id(inv.get_payee_pub_key(), final_delta)
            .with_route_hints(vec![RouteHint(chain)])
            .map_err(|_| Error::Invoice("the invoice's route hints cannot be used".into()))?
            .with_max_total_cltv_expiry_delta(MAX_TOTAL_CLTV);
        if let Some(expiry) = inv.expires_at() {
            params = params.with_expiry_time(expiry.as_secs());
        }
        if let Some(features) = inv.features() {
            params = params
                .with_bolt11_features(features.clone())
                .map_err(|_| Error::Invoice("the invoice's features cannot be used".into()))?;
        }
        let mut route_params = RouteParameters::from_payment_params_and_value(params, amount);
        route_params.max_total_routing_fee_msat = max_fee_msat;
        self.core
            .channel_manager
            .send_payment(
                PaymentHash(*inv.payment_hash().as_byte_array()),
                RecipientOnionFields::secret_only(*inv.payment_secret()),
                PaymentId(*inv.payment_hash().as_byte_array()),
                route_params,
                Retry::Timeout(RETRY_FOR),
            )
            .map_err(|f| self.send_failed(&hash, f))?;
        Ok(hash)
    }
}
