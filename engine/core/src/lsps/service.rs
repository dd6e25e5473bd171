//! Driving lightning-liquidity's LSPS2 service: answering its events (`get_info` with the
//! operator's fee offer, `buy` with a fresh intercept SCID, `OpenChannel` by funding the JIT
//! channel, within the limits on unpaid sales and channels). The LDK events it needs are fed
//! by `hooks`. lightning-liquidity forwards the payment itself, with the opening fee skimmed
//! (LDK signals the skim to the client in `update_add_htlc`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bitcoin::secp256k1::PublicKey;
use lightning::sign::EntropySource;
use lightning::util::logger::Level;
use lightning_liquidity::events::LiquidityEvent;
use lightning_liquidity::lsps0::ser::{LSPSDateTime, LSPSRequestId};
use lightning_liquidity::lsps2::event::LSPS2ServiceEvent;
use lightning_liquidity::lsps2::msgs::LSPS2OpeningFeeParams;

use super::client_wait::OpenRequest;
use super::params;
use crate::config::{user_config, Lsps2Options};
use crate::io::{JitChannelRecord, JitSale, JitUnpaid, JIT_FAILED, JIT_SOLD};
use crate::node::Core;
use crate::tasks::Stop;

/// Unexpired unpaid sales (`sold` rows) of every client together: each is a durable row and
/// an SCID, and `buy` costs a client nothing. Per client lightning-liquidity already answers
/// a `buy` past 10 pending requests and unpaid sales with an LSPS2 error.
const MAX_SOLD_TOTAL: u64 = 10_000;

/// How long a funded JIT channel that closed unpaid still counts against the limits on unpaid
/// channels: a client (or anyone with throwaway node ids) could otherwise have channel after
/// channel funded and closed, each freeing its place the moment it closes.
pub(crate) const CLOSED_UNPAID_COUNTS: Duration = Duration::from_secs(24 * 3600);

/// The `closed_since` cut-off of `SqliteStore::jit_unpaid` now.
fn closed_unpaid_since() -> u64 {
    crate::io::now_secs().saturating_sub(CLOSED_UNPAID_COUNTS.as_secs())
}

/// Now as the RFC 3339 text `valid_until` is recorded in (UTC, whole seconds).
pub(super) fn now_rfc3339() -> String {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    LSPSDateTime::new_from_duration_since_epoch(std::time::Duration::from_secs(now.as_secs())).to_rfc3339()
}

/// Why a buy is refused, if it is: everyone together holds too many unpaid sales.
pub(crate) fn buy_refusal(u: &JitUnpaid) -> Option<String> {
    if u.total_sold >= MAX_SOLD_TOTAL {
        return Some(format!("{} unpaid JIT offers are out (at most {MAX_SOLD_TOTAL})", u.total_sold));
    }
    None
}

/// Why funding a `channel_sat` JIT channel is refused, if it is: the client already has
/// `max_unpaid_per_client` funded and unpaid, or the total unpaid capacity would pass
/// `max_unpaid_total_sat`. Funded channels that closed unpaid within `CLOSED_UNPAID_COUNTS`
/// count with the open ones (`JitUnpaid`).
pub(crate) fn open_refusal(o: &Lsps2Options, u: &JitUnpaid, channel_sat: u64) -> Option<String> {
    if u.client_channels >= u64::from(o.max_unpaid_per_client) {
        return Some(format!(
            "the client has {} unpaid JIT channels, open or closed within a day (max_unpaid_per_client {})",
            u.client_channels, o.max_unpaid_per_client
        ));
    }
    if u.total_channel_sat.saturating_add(channel_sat) > o.max_unpaid_total_sat {
        return Some(format!(
            "{} sat of unpaid JIT channels plus {channel_sat} would pass max_unpaid_total_sat {}",
            u.total_channel_sat, o.max_unpaid_total_sat
        ));
    }
    None
}

impl Core {
    pub(super) fn lsps2_options(&self) -> Option<&Lsps2Options> {
        self.config.options.lsps2.as_ref()
    }

    pub(super) fn lsps2_log(&self, level: Level, msg: String) {
        self.logger.engine(level, format!("lsps2: {msg}"));
    }

    /// One event of the liquidity manager (LSPS0 needs none: lightning-liquidity answers it).
    /// `stop`: the node's, which ends a wait for an offline client (`client_wait`).
    pub(crate) async fn handle_liquidity_event(self: &Arc<Self>, event: LiquidityEvent, stop: &Stop) {
        match event {
            LiquidityEvent::LSPS2Service(LSPS2ServiceEvent::GetInfo { request_id, counterparty_node_id, .. }) => {
                self.lsps2_get_info(request_id, counterparty_node_id)
            }
            LiquidityEvent::LSPS2Service(LSPS2ServiceEvent::BuyRequest {
                request_id,
                counterparty_node_id,
                opening_fee_params,
                payment_size_msat,
            }) => self.lsps2_buy(request_id, counterparty_node_id, opening_fee_params, payment_size_msat).await,
            LiquidityEvent::LSPS2Service(LSPS2ServiceEvent::OpenChannel {
                their_network_key,
                amt_to_forward_msat,
                opening_fee_msat,
                user_channel_id,
                intercept_scid,
            }) => {
                let req = OpenRequest {
                    client: their_network_key,
                    amt_to_forward_msat,
                    opening_fee_msat,
                    user_channel_id,
                    scid: intercept_scid,
                };
                self.lsps2_open_channel(req, stop).await
            }
            LiquidityEvent::LSPS5Service(e) => self.lsps5_service_event(e),
            LiquidityEvent::LSPS5Client(e) => self.lsps5_client_event(e),
            // Services left off (LSPS1) and the other client sides raise nothing here.
            _ => {}
        }
    }

    /// Any client may ask (no token is required): the offer is the operator's public price list.
    fn lsps2_get_info(&self, request_id: LSPSRequestId, client: PublicKey) {
        let (Some(o), Some(handler)) = (self.lsps2_options(), self.liquidity.lsps2_service_handler()) else { return };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        if let Err(e) = handler.opening_fee_params_generated(&client, request_id, params::fee_menu(o, now)) {
            self.lsps2_log(Level::Warn, format!("cannot answer get_info of {client}: {e:?}"));
        }
    }

    /// lightning-liquidity has checked the promise, its expiry and the payment size against
    /// the offer; what is left is to hand out an SCID, recorded first so the dispatcher knows it.
    async fn lsps2_buy(
        &self, request_id: LSPSRequestId, client: PublicKey, offer: LSPS2OpeningFeeParams,
        payment_size_msat: Option<u64>,
    ) {
        let (Some(o), Some(handler)) = (self.lsps2_options(), self.liquidity.lsps2_service_handler()) else { return };
        let refusal = match self.store.jit_unpaid(&client.to_string(), &now_rfc3339(), closed_unpaid_since()) {
            Ok(u) => buy_refusal(&u),
            Err(e) => Some(format!("cannot count the unpaid sales: {e}")),
        };
        if let Some(why) = refusal {
            // lightning-liquidity 0.2 has no call to answer a buy with an error (its
            // `invalid_token_provided` answers get_info only): unanswered, the client's request
            // times out; no row, no SCID. lightning-liquidity drops the pending request when
            // the peer disconnects after the offer expired.
            self.lsps2_log(Level::Warn, format!("buy of {client} refused: {why}"));
            return;
        }
        let scid = self.channel_manager.get_intercept_scid();
        let random = self.keys.get_secure_random_bytes();
        let user_channel_id = u128::from_be_bytes(random[..16].try_into().unwrap_or([1; 16]));
        let (client_id, valid_until) = (client.to_string(), offer.valid_until.to_rfc3339());
        let sale = JitChannelRecord::sold(JitSale {
            scid,
            client_node_id: &client_id,
            user_channel_id,
            payment_size_msat,
            min_fee_msat: offer.min_fee_msat,
            proportional_ppm: offer.proportional,
            valid_until: &valid_until,
        });
        if let Err(e) = self.store.record_jit_sale(&sale) {
            // Unanswered, the client's request times out: better than an SCID nobody knows.
            self.lsps2_log(Level::Error, format!("cannot record a JIT sale to {client}: {e}"));
            return;
        }
        // "LSP trusts client": the funding is broadcast as usual, before the client claims.
        let answered = handler
            .invoice_parameters_generated(&client, request_id, scid, o.cltv_expiry_delta, false, user_channel_id)
            .await;
        match answered {
            Ok(()) => self.lsps2_log(Level::Info, format!("sold JIT channel scid {scid} to {client}")),
            Err(e) => self.lsps2_log(Level::Warn, format!("cannot answer buy of {client}: {e:?}")),
        }
    }

    /// The first payment for a JIT SCID arrived: fund the channel, within the operator's
    /// limits on unpaid channels. A refusal before anything was funded ends in
    /// `channel_open_failed` (the payment is failed back, the payer may retry); `opening` is
    /// recorded before the channel is asked for, so a channel that later closes before it is
    /// ready is abandoned rather than re-armed (see `lsps2_channel_closed`).
    async fn lsps2_open_channel(self: &Arc<Self>, req: OpenRequest, stop: &Stop) {
        let Some(o) = self.lsps2_options() else { return };
        // lightning-liquidity may hand the event out again after a restart: open once.
        if self
            .channel_manager
            .list_channels_with_counterparty(&req.client)
            .iter()
            .any(|c| c.user_channel_id == req.user_channel_id)
        {
            return;
        }
        // An offline client is woken (LSPS5) and waited for, if it can be, before `lsps2_open`.
        if params::channel_sat(o, req.amt_to_forward_msat).is_some()
            && self.peer_manager.peer_by_node_id(&req.client).is_none()
            && self.wait_for_client(req, stop)
        {
            return;
        }
        self.lsps2_open(req).await
    }

    /// Open the channel `req` asks for, or refuse and fail the payment back.
    pub(super) async fn lsps2_open(&self, req: OpenRequest) {
        let Some(o) = self.lsps2_options() else { return };
        let OpenRequest { client, amt_to_forward_msat, opening_fee_msat, user_channel_id, scid } = req;
        let refused = match params::channel_sat(o, amt_to_forward_msat) {
            None => Err(format!(
                "{amt_to_forward_msat} msat with the margin and room needs a channel past max_channel_sat {}",
                o.max_channel_sat
            )),
            Some(_) if self.peer_manager.peer_by_node_id(&client).is_none() => Err("client is not connected".into()),
            Some(sat) => match self.store.jit_unpaid(&client.to_string(), &now_rfc3339(), closed_unpaid_since()) {
                Err(e) => Err(format!("cannot count the unpaid JIT channels: {e}")),
                Ok(u) => match open_refusal(o, &u, sat) {
                    Some(why) => Err(why),
                    // The JIT channel is funded from the same wallet as paid LSPS1 orders.
                    None => match self.lsps1_reserve_refusal(Some(sat)) {
                        Ok(None) => Ok(sat),
                        Ok(Some(why)) => Err(why),
                        Err(e) => Err(format!("cannot count the coins owed to LSPS1 orders: {e}")),
                    },
                },
            },
        };
        let sat = match refused {
            Ok(sat) => sat,
            Err(why) => {
                self.lsps2_log(Level::Warn, format!("cannot open the JIT channel to {client} for scid {scid}: {why}"));
                return self.lsps2_open_failed(client, user_channel_id, scid).await;
            }
        };
        match self.store.jit_opening(scid, sat, opening_fee_msat) {
            Ok(true) => {}
            Ok(false) => {
                // Given up first (by the sweep, or at start-up for an open the stop cut short; an
                // OpenChannel lightning-liquidity handed out before may come after): no funding.
                self.lsps2_log(Level::Info, format!("JIT scid {scid} was abandoned before its open: not funded"));
                return;
            }
            Err(e) => {
                // Unrecorded, the channel would escape the limits: do not fund it.
                self.lsps2_log(Level::Error, format!("cannot record the JIT open of scid {scid}: {e}"));
                return self.lsps2_open_failed(client, user_channel_id, scid).await;
            }
        }
        let cfg = params::channel_config(&user_config(&self.config.options), o);
        match self.channel_manager.create_channel(client, sat, 0, user_channel_id, None, Some(cfg)) {
            Ok(_) => self.lsps2_log(
                Level::Info,
                format!("opening a {sat} sat JIT channel to {client} for scid {scid} (fee {opening_fee_msat} msat)"),
            ),
            Err(e) => {
                self.lsps2_log(Level::Warn, format!("cannot open the JIT channel to {client} for scid {scid}: {e:?}"));
                self.lsps2_open_failed(client, user_channel_id, scid).await;
            }
        }
    }

    /// Nothing was funded: fail the payment back and re-arm the SCID for a retry (or, if
    /// lightning-liquidity cannot reset it, retire it). Either way the row holds no channel.
    pub(super) async fn lsps2_open_failed(&self, client: PublicKey, user_channel_id: u128, scid: u64) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        let state = match handler.channel_open_failed(&client, user_channel_id).await {
            // Re-armed: the next payment may open it; the dispatcher must let it through.
            Ok(()) => JIT_SOLD,
            Err(e) => {
                self.lsps2_log(Level::Warn, format!("cannot reset JIT scid {scid} after a failed open: {e:?}"));
                JIT_FAILED
            }
        };
        if let Err(e) = self.store.jit_update_unfunded(scid, state) {
            self.lsps2_log(Level::Error, format!("cannot record JIT scid {scid} as {state}: {e}"));
        }
    }

    /// A channel for `scid` closed before it was ready, or was never funded at all before a
    /// restart: fail the payment back and retire the SCID for good (`failed`), so a client
    /// cannot have the LSP fund channel after channel. `funded`: a funding transaction was
    /// made, and the row keeps its `channel_sat` (it counts against the limits for a day);
    /// else it is cleared. Err: the row could not be written.
    pub(super) async fn lsps2_open_abandoned(
        &self, client: PublicKey, user_channel_id: u128, scid: u64, funded: bool,
    ) -> crate::Result<()> {
        if let Some(handler) = self.liquidity.lsps2_service_handler() {
            // Fails every HTLC it queued and forgets the SCID. Refused once it forwarded a
            // payment over a channel (not the case here); unknown: it forgot the SCID before.
            if let Err(e) = handler.channel_open_abandoned(&client, user_channel_id).await {
                self.lsps2_log(Level::Warn, format!("cannot retire JIT scid {scid} in lightning-liquidity: {e:?}"));
            }
        }
        if funded {
            self.store.jit_update(scid, JIT_FAILED, None, None)
        } else {
            self.store.jit_update_unfunded(scid, JIT_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buy_is_refused_once_everyone_together_holds_too_many_unpaid_offers() {
        // One client's count is lightning-liquidity's to limit (10), not ours.
        let u = JitUnpaid { client_sold: 1_000, total_sold: MAX_SOLD_TOTAL - 1, ..Default::default() };
        assert_eq!(buy_refusal(&u), None);
        assert!(buy_refusal(&JitUnpaid { total_sold: MAX_SOLD_TOTAL, ..u }).unwrap().contains("unpaid JIT offers"));
    }

    #[test]
    fn funding_is_refused_past_the_unpaid_channel_limits() {
        let o = Lsps2Options { max_unpaid_per_client: 1, max_unpaid_total_sat: 1_000_000, ..Default::default() };
        let none = JitUnpaid::default();
        assert_eq!(open_refusal(&o, &none, 1_000_000), None);
        assert!(open_refusal(&o, &none, 1_000_001).unwrap().contains("max_unpaid_total_sat"));
        let one = JitUnpaid { client_channels: 1, ..none };
        assert!(open_refusal(&o, &one, 10).unwrap().contains("max_unpaid_per_client"));
        let busy = JitUnpaid { total_channel_sat: 900_000, ..none };
        assert_eq!(open_refusal(&o, &busy, 100_000), None);
        assert!(open_refusal(&o, &busy, 100_001).is_some());
    }
}
