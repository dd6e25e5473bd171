//! LDK's events as the LSPS2 service needs them: the intercepted HTLC of a JIT SCID (the
//! dispatcher decided), the JIT channel ready or closed, a forward over it (the skimmed fee)
//! or a failed one. Each step that reads or writes the store returns `ReplayEvent` when it
//! cannot, so LDK hands the event again rather than have it acknowledged half done.

use std::time::Instant;

use bitcoin::secp256k1::PublicKey;
use lightning::events::{HTLCHandlingFailureType, ReplayEvent};
use lightning::ln::channelmanager::InterceptId;
use lightning::ln::types::ChannelId;
use lightning::types::payment::PaymentHash;
use lightning::util::logger::Level;

use crate::io::{JitChannelRecord, JIT_FAILED, JIT_OPENING, JIT_READY};
use crate::node::Core;
use crate::parse::hexs;

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
    /// An HTLC for a JIT SCID (the dispatcher decided). lightning-liquidity fails it back
    /// itself when it does not fit the offer (too small or large, offer expired, underpaid);
    /// it answers Ok without a word for an SCID it forgot, so every HTLC handed over is
    /// remembered, durably and before it is handed, for `lsps2_sweep`. Err: have LDK hand the
    /// event again.
    pub(crate) async fn lsps2_htlc_intercepted(
        &self, scid: u64, intercept_id: InterceptId, expected_outbound_amount_msat: u64, payment_hash: PaymentHash,
    ) -> std::result::Result<(), ReplayEvent> {
        let Some(handler) = self.liquidity.lsps2_service_handler() else { return Ok(()) };
        if let Err(e) = self.lsps2_handed.handed(&self.store, intercept_id, scid, Instant::now()) {
            return Err(self.lsps2_replay(format!("cannot record an HTLC for JIT scid {scid}: {e}")));
        }
        let handled = handler.htlc_intercepted(scid, intercept_id, expected_outbound_amount_msat, payment_hash).await;
        let Err(e) = handled else { return Ok(()) };
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

    /// The JIT sale a channel was opened for (None: not a JIT channel). Err: the row could not
    /// be read; LDK replays the event.
    fn jit_of_channel(&self, user_channel_id: u128) -> std::result::Result<Option<JitChannelRecord>, ReplayEvent> {
        self.store
            .jit_by_user_channel_id(user_channel_id)
            .map_err(|e| self.lsps2_replay(format!("cannot read the JIT channel {user_channel_id}: {e}")))
    }

    /// LDK's `ChannelReady`: for a JIT channel, lightning-liquidity forwards the waiting
    /// payment over it, less the opening fee. The channel id is recorded first, whatever
    /// lightning-liquidity answers (forwards over the channel and its close find the row by
    /// it); `ready` once it took the channel (`channel_taken`). Err: our row could not be read
    /// or written; LDK replays the event.
    pub(crate) async fn lsps2_channel_ready(
        &self, user_channel_id: u128, channel_id: &ChannelId, client: &PublicKey,
    ) -> std::result::Result<(), ReplayEvent> {
        let Some(jit) = self.jit_of_channel(user_channel_id)? else { return Ok(()) };
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
        let Some(jit) = self.jit_of_channel(user_channel_id)? else { return Ok(()) };
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
}
