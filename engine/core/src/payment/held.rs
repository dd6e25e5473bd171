//! Held payments (LightningRod), the payer's side, as pure functions over LDK's routing types:
//! which edges a held payment may not use, and how a route the router found is rewritten so the
//! payer's LSP sees each part on the intercept SCID of that part's next hop.
//!
//! The LSP cannot read the onion past its own hop, so the intercept SCID is how it knows where
//! each HTLC must go: one SCID per next node, and every path must leave the LSP towards one of
//! the hold's next nodes. `held_router` applies these functions around LDK's router.

use bitcoin::secp256k1::PublicKey;
use lightning::routing::gossip::NodeId;
use lightning::routing::router::{Payee, Route, RouteHint, RouteParameters};

use crate::config::MAX_TOTAL_CLTV;
use crate::error::{Error, Result};

/// The protocol's limit on next nodes per hold (HOLD_REQUEST key 5).
pub(crate) const MAX_NEXT_NODES: usize = 8;

/// One next hop of a hold: the node right after the LSP on a path, the intercept SCID the LSP
/// assigned to it, and what the LSP charges for holding and forwarding there.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeldNext {
    pub(crate) node: PublicKey,
    pub(crate) scid: u64,
    pub(crate) fee_base_msat: u32,
    pub(crate) fee_proportional_millionths: u32,
    pub(crate) cltv_expiry_delta: u16,
}

impl HeldNext {
    /// The LSP's fee for forwarding `forwarded_msat` to this next node.
    pub(crate) fn fee_msat(&self, forwarded_msat: u64) -> u64 {
        let prop = forwarded_msat as u128 * self.fee_proportional_millionths as u128 / 1_000_000;
        (self.fee_base_msat as u128 + prop).min(u64::MAX as u128) as u64
    }
}

/// A payment registered as held: which LSP holds it, its next hops, and the blocks added to the
/// final CLTV so the payee still accepts the HTLC after it was held that long.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeldPayment {
    pub(crate) lsp: PublicKey,
    pub(crate) hops: Vec<HeldNext>,
    pub(crate) extra_final_cltv: u32,
}

impl HeldPayment {
    /// Check what a caller asks for and build the hold; messages say what to change.
    pub(crate) fn new(lsp: PublicKey, hops: Vec<HeldNext>, extra_final_cltv: u32, payer: &PublicKey) -> Result<Self> {
        if hops.is_empty() || hops.len() > MAX_NEXT_NODES {
            return Err(Error::InvalidArgument(format!(
                "a held payment needs 1 to {MAX_NEXT_NODES} next hops, got {}",
                hops.len()
            )));
        }
        for (i, h) in hops.iter().enumerate() {
            if h.node == lsp {
                return Err(Error::InvalidArgument(
                    "a next hop is the LSP itself: next hops are the nodes after the LSP on the route".into(),
                ));
            }
            if h.node == *payer {
                return Err(Error::InvalidArgument("a next hop is this node itself".into()));
            }
            if hops[..i].iter().any(|o| o.node == h.node) {
                return Err(Error::InvalidArgument(format!("next hop {} is listed twice", h.node)));
            }
            if hops[..i].iter().any(|o| o.scid == h.scid) {
                return Err(Error::InvalidArgument(format!(
                    "intercept SCID {} is given for two next hops: each next hop needs its own",
                    h.scid
                )));
            }
        }
        let held = Self { lsp, hops, extra_final_cltv };
        if held.cltv_padding() >= MAX_TOTAL_CLTV {
            return Err(Error::InvalidArgument(format!(
                "the hold adds {} blocks of CLTV (extra_final_cltv {extra_final_cltv} plus the LSP's delta); \
                 LDK forwards at most {MAX_TOTAL_CLTV}: ask for a shorter hold",
                held.cltv_padding()
            )));
        }
        Ok(held)
    }

    pub(crate) fn next(&self, node: &PublicKey) -> Option<&HeldNext> {
        self.hops.iter().find(|h| h.node == *node)
    }

    fn next_by_id(&self, node: &NodeId) -> Option<&HeldNext> {
        self.hops.iter().find(|h| NodeId::from_pubkey(&h.node) == *node)
    }

    /// The most CLTV a rewrite can add to a path beyond what the router counted: the final
    /// padding plus the LSP's delta (the router counted the LSP's real delta too, so this bound
    /// is safe, if slightly loose).
    pub(crate) fn cltv_padding(&self) -> u32 {
        self.extra_final_cltv + self.hops.iter().map(|h| h.cltv_expiry_delta as u32).max().unwrap_or(0)
    }

    /// The route parameters the inner router gets for this hold: the LSP's edges to nodes that
    /// are not next hops excluded, and the edges to next hops whose intercept SCID already
    /// failed (LDK records the SCID that failed, here the intercept SCID, so only we can tell
    /// which real channels it stood for); the CLTV budget shrunk by what the rewrite adds; the
    /// fee budget by an estimate of the hold's fee (the rewritten route is checked exactly).
    ///
    /// `lsp_edges` are the LSP's channels in the network graph with their other end.
    pub(crate) fn restrict(
        &self, payer: &PublicKey, params: &RouteParameters, lsp_edges: &[(u64, NodeId)],
    ) -> std::result::Result<RouteParameters, &'static str> {
        let pp = &params.payment_params;
        let Payee::Clear { node_id: payee, route_hints, .. } = &pp.payee else {
            return Err("a held payment pays a BOLT11 payee, not blinded paths");
        };
        if *payee == self.lsp {
            return Err("the payee of a held payment is its LSP: there is nothing to hold");
        }
        let failed = &pp.previously_failed_channels;
        let blocked = |to: &NodeId| match self.next_by_id(to) {
            None => true,
            Some(h) => failed.contains(&h.scid),
        };
        let payer_id = NodeId::from_pubkey(payer);
        let excluded = lsp_edges_where(&self.lsp, payee, route_hints, lsp_edges, |to| *to != payer_id && blocked(to));

        let mut restricted = params.clone();
        let rp = &mut restricted.payment_params;
        for scid in excluded {
            if !rp.previously_failed_channels.contains(&scid) {
                rp.previously_failed_channels.push(scid);
            }
        }
        rp.max_total_cltv_expiry_delta = rp
            .max_total_cltv_expiry_delta
            .min(MAX_TOTAL_CLTV)
            .checked_sub(self.cltv_padding())
            .ok_or("the hold's CLTV padding exceeds the payment's CLTV budget")?;
        if let Some(max_fee) = restricted.max_total_routing_fee_msat.as_mut() {
            let estimate = self.hops.iter().map(|h| h.fee_msat(params.final_value_msat)).max().unwrap_or(0);
            *max_fee = max_fee.checked_sub(estimate).ok_or("the hold's fee alone exceeds the payment's fee budget")?;
        }
        Ok(restricted)
    }

    /// Rewrite a route found under `restrict`: on each path the LSP's outgoing hop takes the
    /// next node's intercept SCID, the LSP's fee and CLTV delta become the hold's, and the final
    /// CLTV grows by `extra_final_cltv`. `max_fee_msat` is the caller's fee budget, if any.
    pub(crate) fn rewrite(
        &self, route: &mut Route, max_fee_msat: Option<u64>,
    ) -> std::result::Result<(), &'static str> {
        for path in &mut route.paths {
            if path.blinded_tail.is_some() {
                return Err("a held payment cannot end in a blinded path");
            }
            if path.hops.len() < 2 {
                return Err("a held payment's path must go past the LSP");
            }
            if path.hops[0].pubkey != self.lsp {
                return Err("a held payment's path must start at the LSP");
            }
            let next = self
                .next(&path.hops[1].pubkey)
                .ok_or("a path leaves the LSP towards a node the hold does not cover")?;
            let forwarded: u64 = path.hops[1..].iter().map(|h| h.fee_msat).sum();
            path.hops[1].short_channel_id = next.scid;
            path.hops[1].maybe_announced_channel = false;
            path.hops[0].fee_msat = next.fee_msat(forwarded);
            path.hops[0].cltv_expiry_delta = next.cltv_expiry_delta as u32;
            if let Some(last) = path.hops.last_mut() {
                last.cltv_expiry_delta += self.extra_final_cltv;
            }
            let total: u32 = path.hops.iter().map(|h| h.cltv_expiry_delta).sum();
            if total > MAX_TOTAL_CLTV {
                return Err("a held payment's path would lock funds longer than LDK forwards");
            }
        }
        if let Some(max) = max_fee_msat {
            let fees: u64 = route.paths.iter().map(|p| p.fee_msat()).sum();
            if fees > max {
                return Err("the hold's fee takes the route's fees past the payment's fee budget");
            }
        }
        Ok(())
    }
}

/// The hops of the invoice's route hints that leave `lsp`, with the node each one leads to (the
/// next hint hop's source, or the payee after the last).
pub(crate) fn lsp_hint_edges(lsp: &PublicKey, payee: &PublicKey, hints: &[RouteHint]) -> Vec<(u64, PublicKey)> {
    let mut out = Vec::new();
    for hint in hints {
        for (i, hop) in hint.0.iter().enumerate() {
            if hop.src_node_id == *lsp {
                let to = hint.0.get(i + 1).map(|n| n.src_node_id).unwrap_or(*payee);
                out.push((hop.short_channel_id, to));
            }
        }
    }
    out
}

/// The SCIDs of the LSP's edges, in the public graph (`graph_edges`, with their other end) and in
/// the route hints, that lead to a node `pick` selects: what a route must not take.
pub(crate) fn lsp_edges_where(
    lsp: &PublicKey, payee: &PublicKey, hints: &[RouteHint], graph_edges: &[(u64, NodeId)],
    pick: impl Fn(&NodeId) -> bool,
) -> Vec<u64> {
    let mut out: Vec<u64> = graph_edges.iter().filter(|(_, other)| pick(other)).map(|(scid, _)| *scid).collect();
    out.extend(
        lsp_hint_edges(lsp, payee, hints)
            .into_iter()
            .filter_map(|(scid, to)| pick(&NodeId::from_pubkey(&to)).then_some(scid)),
    );
    out
}

/// The distinct nodes right after `lsp` on the route's paths, in order of first appearance.
pub(crate) fn next_nodes(route: &Route, lsp: &PublicKey) -> std::result::Result<Vec<PublicKey>, &'static str> {
    let mut out: Vec<PublicKey> = Vec::new();
    for path in &route.paths {
        match path.hops.as_slice() {
            [first, second, ..] if first.pubkey == *lsp => {
                if !out.contains(&second.pubkey) {
                    out.push(second.pubkey);
                }
            }
            [first, ..] if first.pubkey == *lsp => return Err("the route ends at the LSP: the payee is the LSP"),
            _ => return Err("the route does not go through the LSP"),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "held_tests.rs"]
mod tests;
