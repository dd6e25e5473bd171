//! The LSPS2 housekeeping: the periodic sweep (sales whose HTLCs nobody answered within the
//! MPP timeout given up whole, unpaid offers marked `expired`, sales that ended without a
//! channel deleted a day later) and the start-up check of sales left `opening` by a stop.

use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use lightning::ln::channelmanager::InterceptId;
use lightning::util::logger::Level;

use super::service::now_rfc3339;
use super::timeout;
use crate::io::{now_secs, JIT_OPENING};
use crate::node::Core;

/// How long a sale that ended without a channel (`expired`, or `failed` unfunded) is kept
/// for the operator to see before the sweep deletes it (`SqliteStore::jit_delete_stale`).
const ENDED_SALES_KEPT: Duration = Duration::from_secs(24 * 3600);

impl Core {
    /// The periodic LSPS2 housekeeping: give up the sales with HTLCs nobody answered within
    /// the MPP timeout (`timeout::HandedHtlcs::overdue`), mark unpaid sales past their offer
    /// `expired` so they stop counting against the limits, and delete the sales that ended
    /// without a channel a day ago (the table stays bounded however many buys come). With LSPS2 turned off since
    /// HTLCs were handed over (before a restart), nobody will answer them: they are failed.
    pub(crate) async fn lsps2_sweep(&self) {
        let lsps2_on = self.liquidity.lsps2_service_handler().is_some();
        let cm = &self.channel_manager;
        let still_pending = |id: &InterceptId| cm.intercepted_htlc_inbound_amount_msat(*id).is_some();
        match self.lsps2_handed.overdue(&self.store, Instant::now(), !lsps2_on, still_pending) {
            Ok(sales) => {
                for sale in sales {
                    let (scid, htlcs) = (sale.scid, sale.htlcs.clone());
                    if lsps2_on {
                        self.lsps2_give_up(sale).await;
                    } else {
                        let n = htlcs.len();
                        self.lsps2_log(
                            Level::Info,
                            format!("LSPS2 is off: {n} HTLC(s) for JIT scid {scid} failed back"),
                        );
                        for id in &htlcs {
                            let _ = self.channel_manager.fail_intercepted_htlc(*id);
                        }
                    }
                    if let Err(e) = self.lsps2_handed.resolved(&self.store, &htlcs) {
                        self.lsps2_log(Level::Warn, format!("cannot forget the HTLCs of JIT scid {scid}: {e}"));
                    }
                }
            }
            Err(e) => self.lsps2_log(Level::Warn, format!("cannot read the JIT channels: {e}")),
        }
        if !lsps2_on {
            return;
        }
        match self.store.jit_expire_sold(&now_rfc3339()) {
            Ok(0) => {}
            Ok(n) => self.lsps2_log(Level::Info, format!("{n} unpaid JIT offers expired")),
            Err(e) => self.lsps2_log(Level::Warn, format!("cannot expire unpaid JIT offers: {e}")),
        }
        match self.store.jit_delete_stale(now_secs().saturating_sub(ENDED_SALES_KEPT.as_secs())) {
            Ok(0) => {}
            Ok(n) => self.lsps2_log(Level::Info, format!("{n} JIT sales that ended without a channel deleted")),
            Err(e) => self.lsps2_log(Level::Warn, format!("cannot delete old JIT sales: {e}")),
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
    /// recorded but never funded (the node stopped before the channel was funded, and LDK
    /// keeps no unfunded channel across a restart). It is given up for good: lightning-liquidity
    /// abandons it (fails the HTLCs it queued and forgets the SCID) and the row is `failed`, as
    /// never funded. Re-arming it instead (`channel_open_failed`) would put lightning-liquidity
    /// back in wait for a first payment while an `OpenChannel` it handed out before the stop
    /// may still come and fund a channel it no longer expects. A sale whose channel exists is
    /// left to `ChannelReady`; one whose funded channel closed meanwhile is put back on the
    /// books by that close (`lsps2_channel_closed`).
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
            let scid = jit.scid;
            self.lsps2_log(Level::Info, format!("JIT scid {scid} was never funded before the stop: given up"));
            if let Err(e) = self.lsps2_open_abandoned(client, jit.user_channel_id, scid, false).await {
                self.lsps2_log(Level::Error, format!("cannot record JIT scid {scid} as failed: {e}"));
            }
        }
    }
}
