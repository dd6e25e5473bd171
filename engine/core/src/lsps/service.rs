//! Driving lightning-liquidity's LSPS2 service: answering its events (`get_info` with the
//! operator's fee offer, `buy` with a fresh intercept SCID, `OpenChannel` by funding the JIT
//! channel) and feeding it the LDK events it needs (the intercepted HTLC, channel ready or
//! failed, payment forwarded). lightning-liquidity forwards the payment itself, with the
//! opening fee skimmed (LDK signals the skim to the client in `update_add_htlc`).

use std::time::{Duration, Instant, SystemTime};

use bitcoin::secp256k1::PublicKey;
use lightning::events::{HTLCHandlingFailureType, ReplayEvent};
use lightning::ln::channelmanager::InterceptId;
use lightning::ln::types::ChannelId;
use lightning::sign::EntropySource;
use lightning::types::payment::PaymentHash;
use lightning::util::logger::Level;
use lightning_liquidity::events::LiquidityEvent;
use lightning_liquidity::lsps0::ser::{LSPSDateTime, LSPSRequestId};
use lightning_liquidity::lsps2::event::LSPS2ServiceEvent;
use lightning_liquidity::lsps2::msgs::LSPS2OpeningFeeParams;

use super::{params, timeout};
use crate::config::{user_config, Lsps2Options};
use crate::io::{JitChannelRecord, JitUnpaid, JIT_FAILED, JIT_OPENING, JIT_READY, JIT_SOLD};
use crate::node::Core;
use crate::parse::hexs;

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
fn now_rfc3339() -> String {
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

/// Whether lightning-liquidity's error from `channel_ready` (its `APIError`, as text) still
/// means it took the channel and forwarded the waiting payment: its state was written but not
/// persisted (it moved on in memory and writes with its next persist), or, when LDK replays
/// the event after our own write failed, it is already past the open (forwarding or paid).
/// Anything else (no payment left to forward, an SCID it forgot) means it did not.
pub(crate) fn channel_taken(why: &str) -> bool {
    why.contains("Failed to persist")
        || (why.contains("Channel ready received when JIT Channel was in state")
            && (why.contains("PendingPayment") || why.contains("PaymentForwarded")))
}

impl Core {
    fn lsps2_options(&self) -> Option<&Lsps2Options> {
        self.config.options.lsps2.as_ref()
    }

    fn lsps2_log(&self, level: Level, msg: String) {
        self.logger.engine(level, format!("lsps2: {msg}"));
    }

    /// One event of the liquidity manager (LSPS0 needs none: lightning-liquidity answers it).
    pub(crate) async fn handle_liquidity_event(&self, event: LiquidityEvent) {
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
                self.lsps2_open_channel(
                    their_network_key,
                    amt_to_forward_msat,
                    opening_fee_msat,
                    user_channel_id,
                    intercept_scid,
                )
                .await
            }
            // Services left off (LSPS1, LSPS5) and the client side raise nothing here.
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
        let sale = JitChannelRecord {
            scid,
            client_node_id: client.to_string(),
            user_channel_id,
            payment_size_msat,
            min_fee_msat: offer.min_fee_msat,
            proportional_ppm: offer.proportional,
            valid_until: offer.valid_until.to_rfc3339(),
            state: JIT_SOLD.into(),
            channel_id: None,
            opening_fee_msat: None,
            created_at: 0,
            updated_at: 0,
            channel_sat: None,
            skimmed_msat: 0,
        };
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
    async fn lsps2_open_channel(
        &self, client: PublicKey, amt_to_forward_msat: u64, opening_fee_msat: u64, user_channel_id: u128, scid: u64,
    ) {
        let Some(o) = self.lsps2_options() else { return };
        // lightning-liquidity may hand the event out again after a restart: open once.
        if self
            .channel_manager
            .list_channels_with_counterparty(&client)
            .iter()
            .any(|c| c.user_channel_id == user_channel_id)
        {
            return;
        }
        let refused = match params::channel_sat(o, amt_to_forward_msat) {
            None => Err(format!(
                "{amt_to_forward_msat} msat with the margin and room needs a channel past max_channel_sat {}",
                o.max_channel_sat
            )),
            Some(_) if self.peer_manager.peer_by_node_id(&client).is_none() => Err("client is not connected".into()),
            Some(sat) => match self.store.jit_unpaid(&client.to_string(), &now_rfc3339(), closed_unpaid_since()) {
                Err(e) => Err(format!("cannot count the unpaid JIT channels: {e}")),
                Ok(u) => open_refusal(o, &u, sat).map_or(Ok(sat), Err),
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
                // The sweep gave the sale up (and lightning-liquidity failed its payment) first.
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
    async fn lsps2_open_failed(&self, client: PublicKey, user_channel_id: u128, scid: u64) {
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
    async fn lsps2_open_abandoned(
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

    /// An HTLC for a JIT SCID (the dispatcher decided). lightning-liquidity fails it back
    /// itself when it does not fit the offer (too small or large, offer expired, underpaid);
    /// it answers Ok without a word for an SCID it forgot, so every HTLC handed over is
    /// remembered for `lsps2_sweep`. Err: have LDK hand the event again.
    pub(crate) async fn lsps2_htlc_intercepted(
        &self, scid: u64, intercept_id: InterceptId, expected_outbound_amount_msat: u64, payment_hash: PaymentHash,
    ) -> std::result::Result<(), ReplayEvent> {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return Ok(()) };
        let handled = handler.htlc_intercepted(scid, intercept_id, expected_outbound_amount_msat, payment_hash).await;
        let Err(e) = handled else {
            self.lsps2_handed.handed(intercept_id, scid, Instant::now());
            return Ok(());
        };
        // lightning-liquidity's errors are all APIMisuseError texts. After "Failed to persist"
        // the HTLC is queued in memory but not durable: have LDK hand it again rather than lose it.
        let why = format!("{e:?}");
        if why.contains("Failed to persist") {
            self.lsps2_log(Level::Error, format!("HTLC for JIT scid {scid} not persisted: {why}; will retry"));
            return Err(ReplayEvent());
        }
        // Any other error: it either failed the HTLC back itself (refused), or never took it
        // (its client unknown) or could not forward it (the client offline): if LDK still
        // holds it, nobody else will answer it.
        if self.channel_manager.intercepted_htlc_inbound_amount_msat(intercept_id).is_some() {
            self.lsps2_log(Level::Info, format!("HTLC for JIT scid {scid} failed back: {why}"));
            let _ = self.channel_manager.fail_intercepted_htlc(intercept_id);
        } else {
            self.lsps2_log(Level::Info, format!("HTLC for JIT scid {scid} refused: {why}"));
        }
        Ok(())
    }

    /// The periodic LSPS2 housekeeping: give up the sales with HTLCs nobody answered within
    /// the MPP timeout (`timeout::HandedHtlcs::overdue`), and mark unpaid sales past their
    /// offer `expired` so they stop counting against the limits.
    pub(crate) async fn lsps2_sweep(&self) {
        if self.liquidity.lsps2_service_handler().is_none() {
            return;
        }
        let cm = &self.channel_manager;
        let overdue = self
            .lsps2_handed
            .overdue(&self.store, Instant::now(), |id| cm.intercepted_htlc_inbound_amount_msat(*id).is_some());
        match overdue {
            Ok(sales) => {
                for sale in sales {
                    self.lsps2_give_up(sale).await;
                }
            }
            Err(e) => self.lsps2_log(Level::Warn, format!("cannot read the JIT channels: {e}")),
        }
        match self.store.jit_expire_sold(&now_rfc3339()) {
            Ok(0) => {}
            Ok(n) => self.lsps2_log(Level::Info, format!("{n} unpaid JIT offers expired")),
            Err(e) => self.lsps2_log(Level::Warn, format!("cannot expire unpaid JIT offers: {e}")),
        }
    }

    /// A sale whose HTLCs went unanswered past the MPP timeout: retired as a whole. The row
    /// is marked `failed` first, and only if still unopened, so an `OpenChannel` already
    /// queued cannot fund it (`jit_opening` then refuses); lightning-liquidity's
    /// `channel_open_abandoned` then fails every part it queued and forgets the SCID. Parts it
    /// does not know (it forgot the SCID before) are failed here: it counts none of them. A
    /// sale opened since `overdue` read it is left alone: lightning-liquidity would accept the
    /// abandon while the channel is being opened, and the channel would then be funded for an
    /// SCID it forgot.
    async fn lsps2_give_up(&self, sale: timeout::Overdue) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        let scid = sale.scid;
        let abandoned = match &sale.sale {
            None => Err("no JIT sale recorded".to_string()),
            Some(jit) => {
                match self.store.jit_fail_unopened(scid) {
                    // Failed now or before (abandon again: its parts may be queued still).
                    Ok(true) => {}
                    Ok(false) => {
                        let why = "being opened meanwhile: its HTLCs are lightning-liquidity's";
                        return self.lsps2_log(Level::Info, format!("JIT scid {scid} not given up: {why}"));
                    }
                    Err(e) => {
                        // Unrecorded, an open could race the abandon: leave it to LDK's timeout.
                        self.lsps2_log(Level::Error, format!("cannot record JIT scid {scid} as failed: {e}"));
                        return;
                    }
                }
                match jit.client_node_id.parse::<PublicKey>() {
                    Err(_) => Err("the recorded client does not parse".to_string()),
                    Ok(client) => {
                        handler.channel_open_abandoned(&client, jit.user_channel_id).await.map_err(|e| format!("{e:?}"))
                    }
                }
            }
        };
        let parts = sale.htlcs.len();
        match abandoned {
            Ok(()) => self.lsps2_log(
                Level::Info,
                format!(
                    "JIT scid {scid} unpaid past the MPP timeout ({parts} HTLC(s)): abandoned, payment failed back"
                ),
            ),
            // It cleared and failed the queue in memory; only the write failed.
            Err(why) if why.contains("Failed to persist") => {
                self.lsps2_log(Level::Warn, format!("JIT scid {scid} abandoned but not persisted: {why}"))
            }
            // A channel exists for it after all: its HTLCs are lightning-liquidity's.
            Err(why) if why.contains("Cannot abandon") => {
                self.lsps2_log(Level::Warn, format!("JIT scid {scid} left to its channel: {why}"))
            }
            Err(why) => {
                self.lsps2_log(
                    Level::Info,
                    format!("JIT scid {scid} unknown to lightning-liquidity ({why}): {parts} HTLC(s) failed back"),
                );
                for id in sale.htlcs {
                    let _ = self.channel_manager.fail_intercepted_htlc(id);
                }
            }
        }
    }

    /// At start-up: a sale left `opening` with no channel carrying its `user_channel_id` was
    /// recorded but never funded (the node stopped in between); fail its payment back and
    /// re-arm it, as lightning-liquidity still waits for that channel.
    pub(crate) async fn lsps2_reconcile(&self) {
        if self.liquidity.lsps2_service_handler().is_none() {
            return;
        }
        let opening = match self.store.jit_in_state(JIT_OPENING) {
            Ok(rows) => rows,
            Err(e) => return self.lsps2_log(Level::Warn, format!("cannot read the JIT channels at start: {e}")),
        };
        let channels = self.channel_manager.list_channels();
        for jit in opening {
            if channels.iter().any(|c| c.user_channel_id == jit.user_channel_id) {
                continue;
            }
            let Ok(client) = jit.client_node_id.parse::<PublicKey>() else { continue };
            self.lsps2_log(Level::Info, format!("JIT scid {} was never funded: failed back", jit.scid));
            self.lsps2_open_failed(client, jit.user_channel_id, jit.scid).await;
        }
    }

    /// LDK's `ChannelReady`: for a JIT channel, lightning-liquidity forwards the waiting
    /// payment over it, less the opening fee. The channel id is recorded first, whatever
    /// lightning-liquidity answers (forwards over the channel and its close find the row by
    /// it); `ready` once it took the channel (`channel_taken`). Err: our row could not be read
    /// or written; LDK replays the event.
    pub(crate) async fn lsps2_channel_ready(
        &self, user_channel_id: u128, channel_id: &ChannelId, client: &PublicKey,
    ) -> std::result::Result<(), ReplayEvent> {
        let jit = match self.store.jit_by_user_channel_id(user_channel_id) {
            Ok(Some(jit)) => jit,
            Ok(None) => return Ok(()),
            Err(e) => return Err(self.lsps2_replay(format!("cannot read the JIT channel {user_channel_id}: {e}"))),
        };
        let scid = jit.scid;
        let recorded = self.store.jit_record_channel(scid, &hexs(&channel_id.0));
        recorded.map_err(|e| self.lsps2_replay(format!("cannot record JIT channel {channel_id}: {e}")))?;
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return Ok(()) };
        let taken = match handler.channel_ready(user_channel_id, channel_id, client).await {
            Ok(()) => true,
            Err(e) => {
                let why = format!("{e:?}");
                let taken = channel_taken(&why);
                let level = if taken { Level::Warn } else { Level::Error };
                self.lsps2_log(level, format!("JIT channel {channel_id} of scid {scid} ready: {why}"));
                taken
            }
        };
        if !taken || jit.state != JIT_OPENING {
            return Ok(());
        }
        let written = self.store.jit_update(scid, JIT_READY, None, None);
        written.map_err(|e| self.lsps2_replay(format!("cannot record JIT channel {channel_id} ready: {e}")))
    }

    /// LDK's `ChannelClosed` (`funded_sat`: the capacity, when a funding transaction was
    /// made). A JIT channel that closed before it was ready failed to open: the SCID is
    /// retired, not re-armed. One that closed ready but unpaid never earns its fee: `failed`.
    /// Either way a funded one keeps counting against the unpaid limits for a day
    /// (`jit_unpaid`), so closing channels one after another frees nothing at once. A sale
    /// already `failed` as never funded (at start-up, before this close was handled) that was
    /// funded after all gets its channel back on the books. Err: our row could not be read or
    /// written; LDK replays the event.
    pub(crate) async fn lsps2_channel_closed(
        &self, user_channel_id: u128, client: Option<PublicKey>, funded_sat: Option<u64>,
    ) -> std::result::Result<(), ReplayEvent> {
        let jit = match self.store.jit_by_user_channel_id(user_channel_id) {
            Ok(Some(jit)) => jit,
            Ok(None) => return Ok(()),
            Err(e) => return Err(self.lsps2_replay(format!("cannot read the JIT channel {user_channel_id}: {e}"))),
        };
        let scid = jit.scid;
        let written = match (jit.state.as_str(), client, funded_sat) {
            (JIT_READY, _, _) => {
                self.lsps2_log(Level::Info, format!("JIT channel of scid {scid} closed unpaid"));
                self.store.jit_update(scid, JIT_FAILED, None, None)
            }
            (JIT_OPENING, Some(client), funded) => {
                self.lsps2_log(Level::Info, format!("JIT channel of scid {scid} closed before it was ready"));
                self.lsps2_open_abandoned(client, user_channel_id, scid, funded.is_some()).await
            }
            (JIT_FAILED, _, Some(sat)) if jit.channel_sat.is_none() => self.store.jit_failed_was_funded(scid, sat),
            _ => Ok(()),
        };
        written.map_err(|e| self.lsps2_replay(format!("cannot record the close of JIT scid {scid}: {e}")))
    }

    /// Log why an LDK event's LSPS2 step failed and have LDK replay the event.
    fn lsps2_replay(&self, why: String) -> ReplayEvent {
        self.lsps2_log(Level::Error, format!("{why}; will retry"));
        ReplayEvent()
    }

    /// LDK's `PaymentForwarded` over `next_channel_id`, which skimmed `skimmed_msat`:
    /// lightning-liquidity is told, whatever our row says, what forwards over the channel have
    /// skimmed in all (the row's total plus this one). It compares each call with the whole
    /// opening fee and moves on (forwards later payments in full) only once it is reached, so
    /// an MPP first payment, skimmed part by part, is told when its last part is claimed. The
    /// row's total, and `paid` once it reaches the fee, are booked with the event afterwards
    /// (`EventSink::emit_forward`): a replay after an error here counts nothing twice, and
    /// telling lightning-liquidity the same total again changes nothing. Err: have LDK replay
    /// the event (our row unreadable, or lightning-liquidity's state not written).
    pub(crate) async fn lsps2_payment_forwarded(
        &self, next_channel_id: ChannelId, skimmed_msat: u64,
    ) -> std::result::Result<(), ReplayEvent> {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return Ok(()) };
        let before = match self.store.jit_by_channel_id(&hexs(&next_channel_id.0)) {
            Ok(row) => row.map_or(0, |j| j.skimmed_msat),
            Err(e) => {
                self.lsps2_log(Level::Error, format!("cannot read the JIT channel {next_channel_id}: {e}; will retry"));
                return Err(ReplayEvent());
            }
        };
        let total = before.saturating_add(skimmed_msat);
        let Err(e) = handler.payment_forwarded(next_channel_id, total).await else { return Ok(()) };
        let why = format!("{e:?}");
        if why.contains("Failed to persist") {
            self.lsps2_log(Level::Error, format!("forward over JIT channel {next_channel_id} not persisted: {why}"));
            return Err(ReplayEvent());
        }
        // E.g. its first payment failed before this part's claim was reported (it waits for
        // another payment, which is skimmed again and adds to the total).
        self.lsps2_log(Level::Warn, format!("forward over JIT channel {next_channel_id} not booked: {why}"));
        Ok(())
    }

    /// LDK's `HTLCHandlingFailed`: a forward over a JIT channel that failed lets the next
    /// queued payment go.
    pub(crate) async fn lsps2_htlc_handling_failed(&self, failure_type: HTLCHandlingFailureType) {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return };
        if let Err(e) = handler.htlc_handling_failed(failure_type).await {
            self.lsps2_log(Level::Warn, format!("failed forward not booked: {e:?}"));
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
    fn a_ready_channel_counts_as_taken_when_its_state_was_only_not_persisted_or_is_past_the_open() {
        // lightning-liquidity 0.2.7's texts, as `{:?}` of its APIError prints them (states cut short).
        let api = |err: &str| format!("APIMisuseError {{ err: {err:?} }}");
        let ready = "Failed to transition to channel ready: ";
        let in_state = "Channel ready received when JIT Channel was in state: ";
        let persist = api("Failed to persist peer state for 02ab: disk full");
        let replayed = api(&format!("{ready}{in_state}PendingPaymentForward {{ opening_fee_msat: 2000000 }}"));
        let paid = api(&format!("{ready}{in_state}PaymentForwarded {{ channel_id: ChannelId(..) }}"));
        let empty = api(&format!("{ready}No forwardable payment available when moving to channel ready."));
        let reset = api(&format!("{ready}{in_state}PendingInitialPayment {{ payment_queue: PaymentQueue {{ }} }}"));
        let forgot = api("Could not find a channel with that user_channel_id 7");
        assert!(channel_taken(&persist) && channel_taken(&replayed) && channel_taken(&paid));
        assert!(!channel_taken(&empty) && !channel_taken(&reset) && !channel_taken(&forgot));
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
