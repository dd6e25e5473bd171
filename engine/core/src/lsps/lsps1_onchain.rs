//! LSPS1 orders paid on chain, judged after every wallet sync: what confirmed at each watched
//! order's address is recorded, an order it pays is marked paid in the same transaction
//! (`io::lsps1_onchain`) and opened like an order paid by invoice (`lsps1_open`). Coins that
//! do not pay an order (it was paid already, they came late or short, or beyond its total) are
//! recorded and shown as owed a refund, made by hand.

use lightning::util::logger::Level;

use crate::io::{now_secs, tally, LSPS1_CREATED, LSPS1_PAID};
use crate::node::Core;

impl Core {
    /// After a wallet sync: record on-chain payments to orders' addresses; open the orders they pay.
    pub(crate) fn lsps1_onchain_check(&self) {
        if self.lsps1.is_none() {
            return;
        }
        let now = now_secs();
        let orders = match self.store.lsps1_onchain_watched(now) {
            Ok(o) => o,
            Err(e) => return self.lsps1_log(Level::Warn, format!("cannot read the orders paid on chain: {e}")),
        };
        if orders.is_empty() {
            return;
        }
        let addresses: Vec<String> =
            orders.iter().filter_map(|o| o.onchain.as_ref().map(|t| t.address.clone())).collect();
        let receipts = self.wallet.receipts(&addresses);
        for order in orders {
            let Some(terms) = &order.onchain else { continue };
            let seen = receipts.get(&terms.address).map(Vec::as_slice).unwrap_or_default();
            let t = tally(seen, terms.min_confirmations, order.expires_at);
            let unchanged = t.received_sat == order.onchain_received_sat
                && t.outpoints == order.onchain_outpoints.clone().unwrap_or_default();
            let cannot_pay =
                order.paid_by.is_some() || order.claim_approved_at.is_some() || t.in_time_sat < order.total_sat;
            if unchanged && cannot_pay {
                continue;
            }
            let id = &order.order_id;
            let paid = match self.store.lsps1_onchain_seen(id, &t) {
                Ok(p) => p,
                Err(e) => {
                    self.lsps1_log(Level::Error, format!("cannot record the on-chain payment of order {id}: {e}"));
                    continue;
                }
            };
            let after = match self.store.lsps1_order(id) {
                Ok(Some(o)) => o,
                Ok(None) => continue,
                Err(e) => {
                    self.lsps1_log(Level::Error, format!("cannot read order {id}: {e}"));
                    continue;
                }
            };
            let owed = after.refund_owed_sat(now);
            if paid {
                self.lsps1_log(
                    Level::Info,
                    format!("order {id} paid on chain: {} sat ({})", t.received_sat, t.outpoints),
                );
            } else if !unchanged {
                self.lsps1_log(
                    Level::Info,
                    format!("order {id}: {} sat confirmed at its address ({})", t.received_sat, t.outpoints),
                );
            }
            if owed > 0 && !unchanged {
                self.lsps1_log(
                    Level::Warn,
                    format!("order {id}: {owed} sat received on chain are owed back (by hand)"),
                );
            }
            if paid && after.state == LSPS1_CREATED && after.payment_state == LSPS1_PAID {
                self.lsps1_open(&after, true);
            }
        }
    }
}
