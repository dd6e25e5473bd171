//! The router the channel manager uses: LDK's `DefaultRouter`, plus a registry of payments the
//! payer asked its LSP to hold. A registered payment is routed through the LSP only, leaving it
//! towards the hold's next nodes only, and each path is rewritten onto the next node's intercept
//! SCID (`held.rs`). LDK's own retries call this router too, so a retry after a downstream
//! failure goes through the same hold.
//!
//! The registry lives in memory: LDK does not keep a payment's retry strategy across a restart
//! either (it never retries a payment it reloaded), so no route is asked for after a restart for
//! a payment registered before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bitcoin::secp256k1::{self, PublicKey, Secp256k1};
use lightning::blinded_path::payment::{BlindedPaymentPath, ReceiveTlvs};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::PaymentId;
use lightning::routing::gossip::NodeId;
use lightning::routing::router::{InFlightHtlcs, Route, RouteParameters, Router};
use lightning::types::payment::PaymentHash;
use lightning::util::logger::Level;

use super::held::HeldPayment;
use crate::logger::EngineLogger;
use crate::types::{InnerRouter, NetworkGraph};

/// Ids in logs: the first 4 bytes in hex, like the LSP role's short ids (SPEC.md §7.3).
fn short(bytes: &[u8]) -> String {
    crate::parse::hexs(&bytes[..bytes.len().min(4)])
}

/// Held payments in flight at once; past it a new one is refused rather than an old one
/// forgotten (a forgotten payment's retries would bypass its hold).
pub(crate) const MAX_HELD_PAYMENTS: usize = 10_000;

/// Why a payment could not be registered as held.
#[derive(Debug, PartialEq)]
pub(crate) enum Refused {
    /// It is registered already (being paid).
    Registered,
    /// `MAX_HELD_PAYMENTS` are in flight.
    Full,
}

struct Entry {
    held: HeldPayment,
    /// Why the last route asked for could not be found (LDK only says "route not found").
    refusal: Option<&'static str>,
}

pub struct HeldRouter {
    inner: InnerRouter,
    graph: Arc<NetworkGraph>,
    logger: Arc<EngineLogger>,
    held: Mutex<HashMap<PaymentId, Entry>>,
}

impl HeldRouter {
    pub(crate) fn new(inner: InnerRouter, graph: Arc<NetworkGraph>, logger: Arc<EngineLogger>) -> Self {
        Self { inner, graph, logger, held: Mutex::new(HashMap::new()) }
    }

    /// LDK's router, unrestricted (for asking which route a payment would take).
    pub(crate) fn inner(&self) -> &InnerRouter {
        &self.inner
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<PaymentId, Entry>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Route payment `id` as held from now on.
    pub(crate) fn register(&self, id: PaymentId, held: HeldPayment) -> Result<(), Refused> {
        let mut map = self.entries();
        if map.contains_key(&id) {
            return Err(Refused::Registered);
        }
        if map.len() >= MAX_HELD_PAYMENTS {
            return Err(Refused::Full);
        }
        map.insert(id, Entry { held, refusal: None });
        Ok(())
    }

    /// Called when the payment ended (sent or failed).
    pub(crate) fn forget(&self, id: &PaymentId) {
        self.entries().remove(id);
    }

    /// Why the last route for `id` was not found, if it was not; the entry is dropped when
    /// `drop` (the payment never started).
    pub(crate) fn forget_if(&self, id: &PaymentId, drop: bool) -> Option<&'static str> {
        let mut map = self.entries();
        let refusal = map.get(id).and_then(|e| e.refusal);
        if drop {
            map.remove(id);
        }
        refusal
    }

    fn registered(&self, id: &PaymentId) -> Option<HeldPayment> {
        self.entries().get(id).map(|e| e.held.clone())
    }

    /// The LSP's channels in the public graph, with the node at their other end.
    pub(crate) fn lsp_edges(&self, lsp: &PublicKey) -> Vec<(u64, NodeId)> {
        let graph = self.graph.read_only();
        let lsp = NodeId::from_pubkey(lsp);
        let Some(node) = graph.node(&lsp) else { return Vec::new() };
        node.channels
            .iter()
            .filter_map(|scid| {
                let c = graph.channel(*scid)?;
                Some((*scid, if c.node_one == lsp { c.node_two } else { c.node_one }))
            })
            .collect()
    }

    fn find_held_route(
        &self, held: &HeldPayment, payer: &PublicKey, params: &RouteParameters, first_hops: Option<&[&ChannelDetails]>,
        inflight: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        let to_lsp: Vec<&ChannelDetails> = first_hops
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|c| c.counterparty.node_id == held.lsp && c.is_usable)
            .collect();
        if to_lsp.is_empty() {
            return Err("no usable channel to the LSP holding this payment");
        }
        let restricted = held.restrict(payer, params, &self.lsp_edges(&held.lsp))?;
        let mut route = self.inner.find_route(payer, &restricted, Some(&to_lsp), inflight)?;
        held.rewrite(&mut route, params.max_total_routing_fee_msat)?;
        // LDK expects the parameters it asked with back, not our restricted copy.
        route.route_params = Some(params.clone());
        Ok(route)
    }
}

impl Router for HeldRouter {
    fn find_route(
        &self, payer: &PublicKey, route_params: &RouteParameters, first_hops: Option<&[&ChannelDetails]>,
        inflight_htlcs: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        self.inner.find_route(payer, route_params, first_hops, inflight_htlcs)
    }

    fn find_route_with_id(
        &self, payer: &PublicKey, route_params: &RouteParameters, first_hops: Option<&[&ChannelDetails]>,
        inflight_htlcs: InFlightHtlcs, payment_hash: PaymentHash, payment_id: PaymentId,
    ) -> Result<Route, &'static str> {
        let Some(held) = self.registered(&payment_id) else {
            return self.inner.find_route(payer, route_params, first_hops, inflight_htlcs);
        };
        let found = self.find_held_route(&held, payer, route_params, first_hops, inflight_htlcs);
        if let Some(entry) = self.entries().get_mut(&payment_id) {
            entry.refusal = found.as_ref().err().copied();
        }
        match &found {
            Ok(route) => self.logger.engine(
                Level::Debug,
                format!(
                    "held payment {}: {} path(s) through LSP {}",
                    short(&payment_hash.0),
                    route.paths.len(),
                    short(&held.lsp.serialize())
                ),
            ),
            // LDK only logs that no route was found; say why.
            Err(why) => self.logger.engine(
                Level::Warn,
                format!(
                    "held payment {}: no route through LSP {}: {why}",
                    short(&payment_hash.0),
                    short(&held.lsp.serialize())
                ),
            ),
        }
        found
    }

    fn create_blinded_payment_paths<T: secp256k1::Signing + secp256k1::Verification>(
        &self, recipient: PublicKey, first_hops: Vec<ChannelDetails>, tlvs: ReceiveTlvs, amount_msats: Option<u64>,
        secp_ctx: &Secp256k1<T>,
    ) -> Result<Vec<BlindedPaymentPath>, ()> {
        self.inner.create_blinded_payment_paths(recipient, first_hops, tlvs, amount_msats, secp_ctx)
    }
}
