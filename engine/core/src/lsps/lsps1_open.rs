//! LSPS1 orders from payment to channel: an order's invoice is claimed only while the order
//! can still be served; once paid (recorded with the payment's event, `io::lsps1::mark_paid`)
//! the channel is opened to the client (the whole channel funded by the LSP, the client side
//! pushed), the order completed when the funding is broadcast (`ChannelPending`). An open that
//! fails (LDK refuses it, the client drops before the funding, the wallet cannot fund it) leaves
//! the order paid and is retried by the periodic sweep after a growing delay; only after
//! `MAX_OPEN_ATTEMPTS` is the order given up (FAILED, still PAID: owed a refund, by hand). A paid
//! order whose client was offline, or whose open a restart cut short, is opened by the sweep too.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{ScriptBuf, Transaction, Txid};
use lightning::events::ReplayEvent;
use lightning::util::config::UserConfig;
use lightning::util::logger::Level;
use lightning_liquidity::lsps1::msgs::LSPS1OrderParams;

use crate::config::user_config;
use crate::io::{now_secs, Lsps1OrderRecord, LSPS1_COMPLETED, LSPS1_CREATED, LSPS1_PAID};
use crate::lsps::lsps1::order_hash_known;
use crate::lsps::lsps1_terms::{funding_fee_sat, funding_target, MIN_FUNDING_CONFIRMS_WITHIN};
use crate::node::Core;

/// LDK's config for an LSPS1 channel: unannounced, static_remote_key (the client needs no
/// on-chain reserve for anchors), and our `channel_ready` before confirmations only if the
/// client asked for none.
pub(crate) fn channel_config(base: &UserConfig, p: &LSPS1OrderParams) -> UserConfig {
    let mut c = base.clone();
    c.channel_handshake_config.announce_for_forwarding = false;
    c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = false;
    c.channel_handshake_limits.trust_own_funding_0conf = p.required_channel_confirmations == 0;
    c
}

/// Why spending `spend_sat` (None: everything) of `spendable_sat` on the operator's behalf
/// would take coins owed to LSPS1 orders: `owed_sat` for `orders` paid orders not yet opened,
/// `fee_sat` the fee of one funding transaction (one each, and one for this spend). None: fine.
pub(crate) fn eats_owed_coins(
    spendable_sat: u64, spend_sat: Option<u64>, owed_sat: u64, orders: u64, fee_sat: u64,
) -> Option<String> {
    if orders == 0 {
        return None;
    }
    let reserved = owed_sat.saturating_add(fee_sat.saturating_mul(orders));
    let left = match spend_sat {
        None => 0,
        Some(s) => spendable_sat.saturating_sub(s.saturating_add(fee_sat)),
    };
    (left < reserved).then(|| {
        format!(
            "{reserved} sat of the wallet's {spendable_sat} are owed to {orders} paid LSPS1 order(s) not opened yet \
             (channels and their funding fees); this would leave {left}"
        )
    })
}

impl Core {
    /// Refuse (unless `force`) an operator's spend of `spend_sat` (None: everything) that would
    /// take coins owed to paid LSPS1 orders not opened yet. A forced one is logged.
    pub(crate) fn lsps1_guard_spend(&self, spend_sat: Option<u64>, force: bool) -> crate::error::Result<()> {
        let Some(why) = self.lsps1_reserve_refusal(spend_sat)? else { return Ok(()) };
        if force {
            self.lsps1_log(Level::Warn, format!("forced by the operator: {why}"));
            return Ok(());
        }
        Err(crate::error::Error::InsufficientFunds(format!("{why}: refused (force overrides)")))
    }

    /// Why spending `spend_sat` (None: everything) now would take coins owed to paid LSPS1
    /// orders not opened yet; None: it would not. Every spend of the wallet that is not an
    /// order's own open asks this first: the operator's (`lsps1_guard_spend`) and LSPS2's JIT
    /// opens, which are refused outright (the payment is failed back).
    pub(crate) fn lsps1_reserve_refusal(&self, spend_sat: Option<u64>) -> crate::error::Result<Option<String>> {
        let (owed, orders) = self.store.lsps1_committed("")?;
        let fee = funding_fee_sat(self.chain.feerate_sat_per_kw(MIN_FUNDING_CONFIRMS_WITHIN));
        let spendable = self.wallet.balance().spendable_sat;
        Ok(eats_owed_coins(spendable, spend_sat, owed, orders, fee))
    }

    pub(crate) fn lsps1_log(&self, level: Level, msg: String) {
        self.logger.engine(level, format!("lsps1: {msg}"));
    }

    /// Before an invoice this node made is claimed: Some(false) if it is an LSPS1 order's that
    /// may not be paid now (already paid, failed, expired, or the wallet cannot fund the
    /// channel): the payment is failed back rather than taken for a channel the LSP cannot
    /// open. With LSPS1 off, every order's (or deleted order's) invoice is failed back. None:
    /// not an order's invoice. Err: the store cannot be read or written.
    pub(crate) fn lsps1_claimable(&self, payment_hash: &str) -> Result<Option<bool>, ReplayEvent> {
        let Some(service) = &self.lsps1 else {
            // Off now, maybe on when the order was taken: its invoice is failed back, not kept
            // as an ordinary payment with a channel owed that nothing would open.
            return match order_hash_known(&self.store, payment_hash) {
                Ok(false) => Ok(None),
                Ok(true) => {
                    self.lsps1_log(Level::Warn, format!("payment {payment_hash} failed back: LSPS1 is off"));
                    Ok(Some(false))
                }
                Err(e) => {
                    self.lsps1_log(Level::Error, format!("cannot read the order of payment {payment_hash}: {e}"));
                    Err(ReplayEvent())
                }
            };
        };
        match service.claimable(payment_hash) {
            Ok(None) => Ok(None),
            Ok(Some(Ok(()))) => Ok(Some(true)),
            Ok(Some(Err(why))) => {
                self.lsps1_log(Level::Warn, format!("payment {payment_hash} failed back: {why}"));
                Ok(Some(false))
            }
            Err(e) => {
                self.lsps1_log(Level::Error, format!("cannot read the order of payment {payment_hash}: {e}"));
                Err(ReplayEvent())
            }
        }
    }

    /// A claimed payment's event is queued (and with it any order it paid): open that order's
    /// channel now if its client is here; otherwise the sweep will.
    pub(crate) fn lsps1_payment_claimed(&self, payment_hash: &str) {
        if self.lsps1.is_none() {
            return;
        }
        match self.store.lsps1_order_by_hash(payment_hash) {
            Ok(Some(order)) if order.payment_state == LSPS1_PAID && order.state == LSPS1_CREATED => {
                self.lsps1_log(Level::Info, format!("order {} paid", order.order_id));
                self.lsps1_open(&order, true);
            }
            Ok(_) => {}
            Err(e) => self.lsps1_log(Level::Error, format!("cannot read the order of payment {payment_hash}: {e}")),
        }
    }

    /// Open the channel of a paid order, once: not if a channel for it exists already, not
    /// while its client is offline (left for the sweep; said once, at the payment, not at every
    /// sweep). An open LDK refuses is a failed attempt, retried later.
    pub(crate) fn lsps1_open(&self, order: &Lsps1OrderRecord, at_payment: bool) {
        let Some(service) = &self.lsps1 else { return };
        let _one_at_a_time = service.open_lock.lock().unwrap_or_else(|p| p.into_inner());
        let id = &order.order_id;
        let Ok(client) = order.client_node_id.parse::<PublicKey>() else {
            self.lsps1_log(Level::Error, format!("order {id} names no valid client: failed"));
            return self.lsps1_fail(id, "stored client node id unreadable");
        };
        if self
            .channel_manager
            .list_channels_with_counterparty(&client)
            .iter()
            .any(|c| c.user_channel_id == order.user_channel_id)
        {
            return;
        }
        if let Some(outpoint) = &order.funding_made {
            if self.monitored(outpoint) {
                // Its funding was signed by the client (LDK made the monitor), so broadcast, yet
                // LDK has no channel for it: a crash lost the channel manager's record of it
                // and LDK force-closed the channel at start-up. A new channel would fund it twice.
                let why = format!(
                    "its channel (funding {outpoint}) was lost in a restart and force-closed: not reopened \
                     (reopen or refund by hand)"
                );
                self.lsps1_log(Level::Error, format!("order {id}: {why}"));
                return self.lsps1_fail(id, &why);
            }
            // No monitor: the client never signed that funding, so it was never broadcast.
        }
        if self.peer_manager.peer_by_node_id(&client).is_none() {
            if at_payment {
                self.lsps1_log(
                    Level::Info,
                    format!("order {id}: client {client} offline, the channel opens when it is back"),
                );
            }
            return;
        }
        let params: LSPS1OrderParams = match serde_json::from_str(&order.params) {
            Ok(p) => p,
            Err(e) => {
                self.lsps1_log(Level::Error, format!("order {id}: stored params unreadable ({e}): failed"));
                return self.lsps1_fail(id, "stored params unreadable");
            }
        };
        let value = order.lsp_balance_sat.saturating_add(order.client_balance_sat);
        let push_msat = order.client_balance_sat.saturating_mul(1000);
        let cfg = channel_config(&user_config(&self.config.options), &params);
        match self.channel_manager.create_channel(client, value, push_msat, order.user_channel_id, None, Some(cfg)) {
            Ok(_) => self.lsps1_log(Level::Info, format!("order {id}: opening a {value} sat channel to {client}")),
            Err(e) => {
                // A record that fails is logged; the sweep then simply tries again at once.
                let _ = self.lsps1_open_failed(id, &format!("cannot open the channel to {client}: {e:?}"));
            }
        }
    }

    /// Whether LDK holds a channel monitor for the funding outpoint "txid:vout".
    fn monitored(&self, outpoint: &str) -> bool {
        self.chain_monitor.list_monitors().into_iter().any(|id| {
            self.chain_monitor.get_monitor(id).is_ok_and(|m| {
                let txo = m.get_funding_txo();
                format!("{}:{}", txo.txid, txo.index) == outpoint
            })
        })
    }

    /// `FundingGenerationReady`: the funding `tx` paying `script` was built for the channel
    /// `user_channel_id`; an order's records its outpoint before LDK is given the transaction
    /// (Err: have LDK replay the event, the transaction unused).
    pub(crate) fn lsps1_funding_made(
        &self, user_channel_id: u128, tx: &Transaction, script: &ScriptBuf,
    ) -> Result<(), ReplayEvent> {
        let order = match self.store.lsps1_order_by_user_channel_id(user_channel_id) {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.lsps1_log(Level::Error, format!("cannot read the order of a channel being funded: {e}"));
                return Err(ReplayEvent());
            }
        };
        let Some(vout) = tx.output.iter().position(|o| &o.script_pubkey == script) else { return Ok(()) };
        let outpoint = format!("{}:{vout}", tx.compute_txid());
        self.store.lsps1_funding_made(&order.order_id, &outpoint).map_err(|e| {
            self.lsps1_log(Level::Error, format!("cannot record the funding of order {}: {e}", order.order_id));
            ReplayEvent()
        })
    }

    /// The funding transaction `txid` will never be broadcast (LDK discarded it, or refused
    /// it): an order that recorded it may be opened again. false: not recorded (log said why).
    pub(crate) fn lsps1_funding_discarded(&self, txid: &Txid) -> bool {
        match self.store.lsps1_funding_discarded(&txid.to_string()) {
            Ok(_) => true,
            Err(e) => {
                self.lsps1_log(Level::Error, format!("cannot record the discarded funding {txid}: {e}"));
                false
            }
        }
    }

    fn lsps1_fail(&self, order_id: &str, why: &str) {
        if let Err(e) = self.store.lsps1_failed(order_id, why) {
            self.lsps1_log(Level::Error, format!("cannot record order {order_id} as failed: {e}"));
        }
    }

    /// An open of a paid order failed, most likely for a passing reason (the client dropped,
    /// the wallet was short): the order stays paid and the sweep tries again later; given up
    /// only after `MAX_OPEN_ATTEMPTS`.
    fn lsps1_open_failed(&self, order_id: &str, why: &str) -> Result<(), ()> {
        match self.store.lsps1_open_failed(order_id, why, now_secs()) {
            Ok(true) => {
                self.lsps1_log(Level::Error, format!("order {order_id}: {why}; given up, the client is owed a refund"));
                Ok(())
            }
            Ok(false) => {
                self.lsps1_log(Level::Warn, format!("order {order_id}: {why}; will try again"));
                Ok(())
            }
            Err(e) => {
                self.lsps1_log(Level::Error, format!("cannot record the failed open of order {order_id}: {e}"));
                Err(())
            }
        }
    }

    /// The confirmation target for the funding of the channel `user_channel_id`: its order's
    /// (bLIP-51 `funding_confirms_within_blocks`), or None if it is no order's.
    pub(crate) fn lsps1_funding_target(&self, user_channel_id: u128) -> Option<u16> {
        self.lsps1.as_ref()?;
        let order = match self.store.lsps1_order_by_user_channel_id(user_channel_id) {
            Ok(o) => o?,
            Err(e) => {
                // Unreadable: the fastest target an order may have, so no promise is broken.
                self.lsps1_log(Level::Error, format!("cannot read the order of a channel being funded: {e}"));
                return Some(MIN_FUNDING_CONFIRMS_WITHIN);
            }
        };
        let target = serde_json::from_str::<LSPS1OrderParams>(&order.params)
            .map(|p| funding_target(&p))
            .unwrap_or(MIN_FUNDING_CONFIRMS_WITHIN);
        Some(target)
    }

    /// `ChannelPending`: the funding is broadcast; an order's channel completes the order
    /// (recorded before the event is acknowledged).
    pub(crate) fn lsps1_channel_pending(
        &self, user_channel_id: u128, channel_id: &str, funding_outpoint: &str,
    ) -> Result<(), ReplayEvent> {
        let order = match self.store.lsps1_order_by_user_channel_id(user_channel_id) {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.lsps1_log(Level::Error, format!("cannot read the order of channel {channel_id}: {e}"));
                return Err(ReplayEvent());
            }
        };
        if order.state == LSPS1_COMPLETED {
            return Ok(());
        }
        self.store.lsps1_completed(&order.order_id, channel_id, funding_outpoint, now_secs()).map_err(|e| {
            self.lsps1_log(Level::Error, format!("cannot record order {} completed: {e}", order.order_id));
            ReplayEvent()
        })?;
        self.lsps1_log(
            Level::Info,
            format!("order {} completed: channel {channel_id} ({funding_outpoint})", order.order_id),
        );
        Ok(())
    }

    /// `ChannelClosed`: an order's channel that closed before its funding was broadcast (the
    /// client refused or dropped it, the funding failed, LDK timed it out) is a failed open:
    /// the order stays paid and is retried; one that completed stays so.
    pub(crate) fn lsps1_channel_closed(&self, user_channel_id: u128, reason: &str) -> Result<(), ReplayEvent> {
        match self.store.lsps1_order_by_user_channel_id(user_channel_id) {
            Ok(Some(o)) if o.state == LSPS1_CREATED && o.payment_state == LSPS1_PAID => self
                .lsps1_open_failed(&o.order_id, &format!("the channel closed before it was funded: {reason}"))
                .map_err(|()| ReplayEvent()),
            Ok(_) => Ok(()),
            Err(e) => {
                self.lsps1_log(Level::Error, format!("cannot read the order of a closed channel: {e}"));
                Err(ReplayEvent())
            }
        }
    }

    /// Every few seconds: unpaid orders past their expiry fail (and go a day later); paid
    /// orders still without a channel are opened if their client is here.
    pub(crate) fn lsps1_sweep(&self) {
        if self.lsps1.is_none() {
            return;
        }
        match self.store.lsps1_sweep(now_secs()) {
            Ok((0, 0)) => {}
            Ok((failed, deleted)) => {
                self.lsps1_log(Level::Info, format!("{failed} unpaid order(s) expired, {deleted} old one(s) deleted"))
            }
            Err(e) => self.lsps1_log(Level::Warn, format!("cannot sweep the orders: {e}")),
        }
        match self.store.lsps1_awaiting_channel(now_secs()) {
            Ok(orders) => orders.iter().for_each(|o| self.lsps1_open(o, false)),
            Err(e) => self.lsps1_log(Level::Warn, format!("cannot read the paid orders: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_spend_may_not_take_coins_owed_to_paid_orders() {
        // Nothing owed: anything goes.
        assert_eq!(eats_owed_coins(100, None, 0, 0, 10), None);
        // 200,000 owed to two orders, 1,000 a funding: 202,000 must stay.
        let (owed, n, fee) = (200_000, 2, 1_000);
        assert_eq!(eats_owed_coins(500_000, Some(297_000), owed, n, fee), None);
        let why = eats_owed_coins(500_000, Some(297_001), owed, n, fee).unwrap();
        assert!(why.contains("202000 sat of the wallet's 500000 are owed to 2 paid LSPS1 order(s)"), "{why}");
        assert!(why.ends_with("this would leave 201999"), "{why}");
        // Sending everything always takes them.
        assert!(eats_owed_coins(10_000_000, None, owed, n, fee).is_some());
        // A wallet already short refuses any spend.
        assert!(eats_owed_coins(100_000, Some(1), owed, n, fee).is_some());
    }

    #[test]
    fn the_channel_is_private_static_remote_key_and_zero_conf_only_when_asked() {
        let mut base = UserConfig::default();
        base.channel_handshake_config.announce_for_forwarding = true;
        base.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = true;
        let p = LSPS1OrderParams {
            lsp_balance_sat: 1,
            client_balance_sat: 0,
            required_channel_confirmations: 0,
            funding_confirms_within_blocks: 6,
            channel_expiry_blocks: 144,
            token: None,
            announce_channel: false,
        };
        let c = channel_config(&base, &p);
        assert!(!c.channel_handshake_config.announce_for_forwarding);
        assert!(!c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx);
        assert!(c.channel_handshake_limits.trust_own_funding_0conf);
        let p = LSPS1OrderParams { required_channel_confirmations: 3, ..p };
        assert!(!channel_config(&base, &p).channel_handshake_limits.trust_own_funding_0conf);
    }
}
