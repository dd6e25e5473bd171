//! Held payments (LightningRod), the payer's calls: which next hops after its LSP a payment
//! would take now (to ask the LSP for a hold with one intercept SCID per next hop), and paying
//! with that hold through the router's registry (`held_router.rs`).

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields, Retry, RetryableSendFailure};
use lightning::routing::gossip::NodeId;
use lightning::routing::router::{PaymentParameters, RouteParameters, Router};
use lightning::types::payment::PaymentHash;
use lightning_invoice::Bolt11Invoice;

use super::held::{lsp_edges_where, next_nodes, HeldNext, HeldPayment, MAX_NEXT_NODES};
use super::held_router::Refused;
use super::RETRY_FOR;
use crate::config::MAX_TOTAL_CLTV;
use crate::error::{Error, Result};
use crate::model::HeldHop;
use crate::node::Node;
use crate::parse::parse_pubkey;

/// Routes looked for beyond the first, each avoiding the next hops found so far.
const MAX_ALTERNATES: usize = 2;

/// How the invoice is routed, held or not: its hints, features, expiry and final CLTV, within
/// the CLTV LDK forwards.
fn invoice_params(inv: &Bolt11Invoice) -> PaymentParameters {
    PaymentParameters::from_bolt11_invoice(inv).with_max_total_cltv_expiry_delta(MAX_TOTAL_CLTV)
}

impl Node {
    /// The distinct nodes right after `lsp_node_id` on the paths LDK's router would take now to
    /// pay `invoice` with first hops through that LSP only, in order of first appearance.
    pub fn held_route_next_hops(&self, invoice: &str, lsp_node_id: &str) -> Result<Vec<String>> {
        self.check_running()?;
        let lsp = parse_pubkey(lsp_node_id)?;
        let inv = self.parse_invoice(invoice)?;
        let amount = self.check_held_invoice(&inv, &lsp)?;
        let cm = &self.core.channel_manager;
        let us = cm.get_our_node_id();
        let first: Vec<ChannelDetails> =
            cm.list_usable_channels().into_iter().filter(|c| c.counterparty.node_id == lsp).collect();
        if first.is_empty() {
            return Err(Error::Payment(format!(
                "no usable channel to the LSP {lsp}: open one, or wait until it is ready and the LSP is connected"
            )));
        }
        let mut params = RouteParameters::from_payment_params_and_value(invoice_params(&inv), amount);
        // pay_invoice_held sets no fee budget unless asked; look for routes the same way.
        params.max_total_routing_fee_msat = None;
        let refs: Vec<&ChannelDetails> = first.iter().collect();
        let route = self
            .core
            .router
            .inner()
            .find_route(&us, &params, Some(&refs), cm.compute_inflight_htlcs())
            .map_err(|e| {
                Error::Payment(format!("no route to the payee {} through the LSP {lsp}: {e}", inv.get_payee_pub_key()))
            })?;
        let mut next = next_nodes(&route, &lsp).map_err(|e| Error::Payment(e.into()))?;
        // Alternates: the next hops of routes that avoid the ones found so far. A part that fails
        // downstream after the release is retried by LDK through the same hold, and only towards
        // the hold's next hops (SPEC.md §4.3): with alternates in the hold, a retry can go around
        // a routing node short of liquidity instead of failing the payment.
        let payee = inv.get_payee_pub_key();
        let graph_edges = self.core.router.lsp_edges(&lsp);
        let hints = inv.route_hints();
        for _ in 0..MAX_ALTERNATES {
            if next.len() >= MAX_NEXT_NODES {
                break;
            }
            let found: Vec<NodeId> = next.iter().map(NodeId::from_pubkey).collect();
            let mut avoid = params.clone();
            avoid.payment_params.previously_failed_channels.extend(lsp_edges_where(
                &lsp,
                &payee,
                &hints,
                &graph_edges,
                |to| found.contains(to),
            ));
            let Ok(other) = self.core.router.inner().find_route(&us, &avoid, Some(&refs), cm.compute_inflight_htlcs())
            else {
                break;
            };
            let Ok(more) = next_nodes(&other, &lsp) else { break };
            let fresh: Vec<PublicKey> = more.into_iter().filter(|n| !next.contains(n)).collect();
            if fresh.is_empty() {
                break;
            }
            next.extend(fresh.into_iter().take(MAX_NEXT_NODES - next.len()));
        }
        Ok(next.iter().map(PublicKey::to_string).collect())
    }

    /// Pay `invoice` through the hold the LSP `lsp_node_id` armed: every path goes through the
    /// LSP, leaves it on the intercept SCID of one of `hops`' next nodes, pays it that hop's fee
    /// and CLTV delta, and gives the payee `extra_final_cltv` more blocks. LDK's retries go
    /// through the same hold. Returns the payment hash.
    pub fn pay_invoice_held(
        &self, invoice: &str, lsp_node_id: &str, hops: &[HeldHop], extra_final_cltv: u32, max_fee_msat: Option<u64>,
    ) -> Result<String> {
        self.check_running()?;
        let lsp = parse_pubkey(lsp_node_id)?;
        let us = self.core.channel_manager.get_our_node_id();
        if lsp == us {
            return Err(Error::InvalidArgument("the LSP is this node itself".into()));
        }
        let next = hops
            .iter()
            .map(|h| {
                Ok(HeldNext {
                    node: parse_pubkey(&h.next_node_id)?,
                    scid: h.short_channel_id,
                    fee_base_msat: h.fee_base_msat,
                    fee_proportional_millionths: h.fee_proportional_millionths,
                    cltv_expiry_delta: h.cltv_expiry_delta,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let held = HeldPayment::new(lsp, next, extra_final_cltv, &us)?;
        let inv = self.parse_invoice(invoice)?;
        self.check_held_invoice(&inv, &lsp)?;
        let least = inv.min_final_cltv_expiry_delta() as u32 + held.cltv_padding();
        if least > MAX_TOTAL_CLTV {
            return Err(Error::InvalidArgument(format!(
                "the payment would lock funds for at least {least} blocks (the invoice's final CLTV, \
                 extra_final_cltv and the LSP's delta); LDK forwards at most {MAX_TOTAL_CLTV}: ask for a shorter hold"
            )));
        }

        let (inv, hash, amount) = self.begin_outbound(invoice, None)?;
        let id = PaymentId(*inv.payment_hash().as_byte_array());
        match self.core.router.register(id, held) {
            Ok(()) => {}
            Err(Refused::Registered) => {
                return Err(Error::DuplicatePayment(format!("payment {hash} is already being paid as held")));
            }
            Err(Refused::Full) => {
                let why = "too many held payments in flight; try again when some have ended";
                return Err(self.fail_before_send(&hash, Error::Payment(why.into())));
            }
        }
        let mut params = RouteParameters::from_payment_params_and_value(invoice_params(&inv), amount);
        params.max_total_routing_fee_msat = max_fee_msat;
        let sent = self.core.channel_manager.send_payment(
            PaymentHash(*inv.payment_hash().as_byte_array()),
            RecipientOnionFields::secret_only(*inv.payment_secret()),
            id,
            params,
            Retry::Timeout(RETRY_FOR),
        );
        let refusal = self.core.router.forget_if(&id, sent.is_err());
        match sent {
            Ok(()) => Ok(hash),
            Err(RetryableSendFailure::RouteNotFound) => {
                let why = refusal.unwrap_or("no path through the LSP's channels to the hold's next hops");
                Err(self.fail_before_send(&hash, Error::Payment(format!("no route for the held payment: {why}"))))
            }
            Err(f) => Err(self.send_failed(&hash, f)),
        }
    }

    /// What both held calls require of the invoice; returns its amount.
    fn check_held_invoice(&self, inv: &Bolt11Invoice, lsp: &PublicKey) -> Result<u64> {
        if inv.is_expired() {
            return Err(Error::Invoice("the invoice has expired".into()));
        }
        let payee = inv.get_payee_pub_key();
        if payee == self.core.channel_manager.get_our_node_id() {
            return Err(Error::Payment("this invoice was issued by this node; a node cannot pay itself".into()));
        }
        if payee == *lsp {
            return Err(Error::Payment(
                "the payee is the LSP itself: there is no hop after it to hold; pay the invoice directly".into(),
            ));
        }
        inv.amount_milli_satoshis()
            .ok_or_else(|| Error::Payment("the invoice has no amount: a held payment needs one".into()))
    }
}
