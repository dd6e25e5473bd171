//! HTLC interception (the LSP role): intercept SCIDs, forwarding or failing an intercepted HTLC,
//! and finding the inbound HTLC behind an interception (who sent it, when it expires).

use bitcoin::secp256k1::PublicKey;
use lightning::ln::channel_state::OutboundHTLCStateDetails;
use lightning::ln::types::ChannelId;
use lightning::types::payment::PaymentHash;
use lightning::util::logger::Level;

use crate::error::{Error, Result};
use crate::io::{InterceptRecord, INTERCEPT_PENDING};
use crate::model::InboundHtlc;
use crate::node::{Core, Node};
use crate::parse::{hexs, parse_intercept_id, parse_pubkey};

/// Where an outbound HTLC stands on its channel; `Gone` once removed from it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outbound {
    Live,
    Failing,
    Succeeding,
    Gone,
}

/// The inbound side of an intercepted HTLC, as the channel manager lists it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct InboundSide {
    pub(crate) channel_id: ChannelId,
    pub(crate) prev_node_id: PublicKey,
    pub(crate) cltv_expiry: u32,
}

impl Node {
    pub fn get_intercept_scid(&self) -> u64 {
        self.core.channel_manager.get_intercept_scid()
    }

    /// Forward an intercepted HTLC to `next_node_id` over a usable channel that can carry
    /// `amount_msat` now. `Error::NoUsableChannel` means no such channel exists yet (try
    /// again later); any other error means LDK no longer holds the HTLC.
    pub fn forward_intercepted_htlc(&self, intercept_id: &str, next_node_id: &str, amount_msat: u64) -> Result<()> {
        let id = parse_intercept_id(intercept_id)?;
        let next = parse_pubkey(next_node_id)?;
        let channel = self
            .core
            .channel_manager
            .list_channels_with_counterparty(&next)
            .into_iter()
            .find(|c| c.is_usable && c.next_outbound_htlc_limit_msat >= amount_msat)
            .ok_or_else(|| {
                Error::NoUsableChannel(format!(
                    "no usable channel to {next} can carry {amount_msat} msat now; cannot forward {intercept_id}"
                ))
            })?;
        self.core
            .channel_manager
            .forward_intercepted_htlc(id, &channel.channel_id, next, amount_msat)
            .map_err(|e| Error::Channel(format!("cannot forward intercepted HTLC {intercept_id}: {e:?}")))?;
        // Only bookkeeping for matching a later downstream failure: LDK holds the HTLC itself.
        if let Err(e) = self.core.store.intercept_forwarded(intercept_id, &hexs(&channel.channel_id.0)) {
            self.core.logger.engine(Level::Warn, format!("cannot record the forward of an intercepted HTLC: {e}"));
        }
        Ok(())
    }

    pub fn fail_intercepted_htlc(&self, intercept_id: &str) -> Result<()> {
        let id = parse_intercept_id(intercept_id)?;
        self.core
            .channel_manager
            .fail_intercepted_htlc(id)
            .map_err(|e| Error::Channel(format!("cannot fail intercepted HTLC {intercept_id}: {e:?}")))?;
        if let Err(e) = self.core.store.intercept_failed(intercept_id) {
            self.core.logger.engine(Level::Warn, format!("cannot record the fail of an intercepted HTLC: {e}"));
        }
        Ok(())
    }

    /// Whether LDK still holds the intercepted HTLC `intercept_id` (waiting for forward or
    /// fail), and its inbound amount if so. LDK does not replay `HTLCIntercepted` after a
    /// restart for an event already handled, so this is how the application reconciles its
    /// records with LDK's (an HTLC it believed forwarded may be back after a crash).
    pub fn intercept_pending_amount(&self, intercept_id: &str) -> Result<Option<u64>> {
        let id = parse_intercept_id(intercept_id)?;
        Ok(self.core.channel_manager.intercepted_htlc_inbound_amount_msat(id))
    }

    /// The intercepted HTLCs LDK holds right now (waiting for forward or fail), as the engine
    /// recorded them when LDK reported them; `state` says what was last asked of LDK (pending:
    /// nothing; forwarded or failed: that, undone since, e.g. by a crash before LDK persisted
    /// it). Meant for start-up reconciliation.
    pub fn pending_intercepts(&self) -> Result<Vec<InterceptRecord>> {
        let cm = &self.core.channel_manager;
        let mut out = Vec::new();
        for r in self.core.store.intercepts()? {
            let Ok(id) = parse_intercept_id(&r.intercept_id) else { continue };
            if cm.intercepted_htlc_inbound_amount_msat(id).is_some() {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// HTLCs offered to us and not yet settled, with their expiry heights.
    pub fn pending_inbound_htlcs(&self) -> Vec<InboundHtlc> {
        let mut out = Vec::new();
        for c in self.core.channel_manager.list_channels() {
            for h in &c.pending_inbound_htlcs {
                out.push(InboundHtlc {
                    channel_id: hexs(&c.channel_id.0),
                    counterparty_node_id: c.counterparty.node_id.to_string(),
                    payment_hash: hexs(&h.payment_hash.0),
                    amount_msat: h.amount_msat,
                    cltv_expiry: h.cltv_expiry,
                });
            }
        }
        out
    }
}

impl Core {
    /// The inbound HTLC an `HTLCIntercepted` event stands for. LDK's event names neither the
    /// sender nor the expiry, and its intercept id cannot be mapped back to a channel, so the
    /// HTLC is found by payment hash, preferring those of the intercepted amount; among several
    /// candidates the earliest expiry is reported, the safe choice for when to fail back.
    pub(crate) fn inbound_side(&self, payment_hash: &PaymentHash, inbound_amount_msat: u64) -> Option<InboundSide> {
        let mut same_hash = Vec::new();
        for c in self.channel_manager.list_channels() {
            for h in c.pending_inbound_htlcs.iter().filter(|h| h.payment_hash == *payment_hash) {
                same_hash.push((
                    h.amount_msat == inbound_amount_msat,
                    InboundSide {
                        channel_id: c.channel_id,
                        prev_node_id: c.counterparty.node_id,
                        cltv_expiry: h.cltv_expiry,
                    },
                ));
            }
        }
        let exact = same_hash.iter().any(|(exact, _)| *exact);
        same_hash.into_iter().filter(|(e, _)| *e == exact).map(|(_, side)| side).min_by_key(|s| s.cltv_expiry)
    }

    /// The recorded intercept an `HTLCHandlingFailed` stands for, when it can be told:
    /// - a forward that failed downstream (`next_channel_id`): among the intercepts forwarded
    ///   from `prev` over that channel, the one whose outbound HTLC is being failed, or else the
    ///   only one whose outbound HTLC is gone;
    /// - an intercept LDK failed itself (`scid`, e.g. it expired unforwarded): the pending
    ///   intercept from `prev` for that SCID.
    ///
    /// Anything ambiguous gives None and the application falls back to `pending_intercepts`
    /// and its own records: a wrong match would free the wrong hold.
    pub(crate) fn match_failed_intercept(
        &self, prev: &str, next_channel_id: Option<&str>, scid: Option<u64>,
    ) -> Option<InterceptRecord> {
        let mut candidates = match (next_channel_id, scid) {
            (Some(next), _) => {
                let forwarded = self.store.forwarded_intercepts(prev, next).ok()?;
                let states = self.outbound_states(next);
                let of = |r: &InterceptRecord| states.get(&r.payment_hash).copied().unwrap_or(Outbound::Gone);
                let failing: Vec<_> = forwarded.iter().filter(|r| of(r) == Outbound::Failing).cloned().collect();
                if failing.is_empty() {
                    forwarded.into_iter().filter(|r| of(r) == Outbound::Gone).collect()
                } else {
                    failing
                }
            }
            // Only intercepts nobody asked LDK about: a fail the application requested is not
            // news to it. (Its `failed` record stays until the age limit, so a fail undone by a
            // crash still shows in `pending_intercepts`.)
            (None, Some(scid)) => self.store.intercepts_for(prev, scid, INTERCEPT_PENDING).ok()?,
            (None, None) => return None,
        };
        if candidates.len() == 1 {
            candidates.pop()
        } else {
            None
        }
    }

    /// After a `PaymentForwarded` from `prev` over `next`: forget the forwarded intercepts
    /// whose outbound HTLC is being settled, so they cannot be matched to a later failure.
    pub(crate) fn forget_settled_intercepts(&self, prev: &str, next: &str) {
        let Ok(forwarded) = self.store.forwarded_intercepts(prev, next) else { return };
        let states = self.outbound_states(next);
        for r in forwarded {
            if states.get(&r.payment_hash) == Some(&Outbound::Succeeding) {
                let _ = self.store.forget_intercept(&r.intercept_id);
            }
        }
    }

    /// The outbound HTLCs on channel `channel_id` by payment hash, and where each stands.
    fn outbound_states(&self, channel_id: &str) -> std::collections::HashMap<String, Outbound> {
        let mut out = std::collections::HashMap::new();
        for c in self.channel_manager.list_channels().iter().filter(|c| hexs(&c.channel_id.0) == channel_id) {
            for h in &c.pending_outbound_htlcs {
                let state = match h.state {
                    Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveFailure) => Outbound::Failing,
                    Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveSuccess) => Outbound::Succeeding,
                    _ => Outbound::Live,
                };
                out.insert(hexs(&h.payment_hash.0), state);
            }
        }
        out
    }
}
