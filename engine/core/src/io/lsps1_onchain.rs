//! LSPS1 orders paid on chain: what confirmed at each order's wallet address, recorded after
//! every wallet sync, and the order marked paid in the same transaction when enough arrived in
//! time. An order is paid one way only: not on chain once its invoice's claim was approved
//! (`claim_approved_at`), and its invoice is refused once it is paid on chain (`claimable`
//! sees it PAID). Coins that did not pay the order stay recorded for a refund by hand.

use rusqlite::{params, OptionalExtension};

use super::lsps1::{Lsps1OrderRecord, LSPS1_BY_ONCHAIN, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, LSPS1_FAILED, LSPS1_PAID};
use super::{now_secs, SqliteStore};
use crate::error::Result;

/// How long after its creation an order's address is watched: later coins are not attributed
/// to the order (they still reach the wallet; the operator sees them in its balance only).
pub const WATCH_ADDRESS_SECS: u64 = 30 * 24 * 3600;
/// Beyond an order's expiry and 20 minutes a confirmation, how long a payment confirmed in time
/// may still come to count: a block's time may run two hours ahead, the chain source be down a day.
pub const PAYABLE_AFTER_EXPIRY_SECS: u64 = 2 * 3600 + 24 * 3600;

/// What confirmed at an order's address, with at least the order's confirmations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OnchainTally {
    /// Every such output: satoshis and "txid:vout" outpoints (sorted, comma-separated).
    pub received_sat: u64,
    pub outpoints: String,
    /// The part in blocks timed at or before the order's expiry: what may pay it.
    pub in_time_sat: u64,
}

/// One output paying an order's address, as the wallet sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct OnchainReceipt {
    pub outpoint: String,
    pub sat: u64,
    pub confirmations: u32,
    pub block_time: u64,
}

/// Tally the `receipts` of an order needing `min_confirmations`, expiring at `expires_at`.
pub fn tally(receipts: &[OnchainReceipt], min_confirmations: u16, expires_at: u64) -> OnchainTally {
    let mut counted: Vec<&OnchainReceipt> =
        receipts.iter().filter(|r| r.confirmations >= u32::from(min_confirmations.max(1))).collect();
    counted.sort_by(|a, b| a.outpoint.cmp(&b.outpoint));
    counted.dedup_by(|a, b| a.outpoint == b.outpoint);
    let sum = |it: &mut dyn Iterator<Item = &&OnchainReceipt>| it.fold(0u64, |s, r| s.saturating_add(r.sat));
    OnchainTally {
        received_sat: sum(&mut counted.iter()),
        outpoints: counted.iter().map(|r| r.outpoint.as_str()).collect::<Vec<_>>().join(","),
        in_time_sat: sum(&mut counted.iter().filter(|r| r.block_time <= expires_at)),
    }
}

impl SqliteStore {
    /// Orders with an address still watched at `now`.
    pub fn lsps1_onchain_watched(&self, now: u64) -> Result<Vec<Lsps1OrderRecord>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {} FROM lsps1_orders WHERE onchain_address IS NOT NULL AND created_at > ?1 ORDER BY created_at",
            super::lsps1::COLUMNS
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![now.saturating_sub(WATCH_ADDRESS_SECS) as i64], super::lsps1::record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The channels of unpaid orders offered on-chain payment, not lapsed: their sum and count.
    /// A payment to such an address cannot be refused as an invoice's can, so a new on-chain
    /// offer is made only while the wallet could fund these too (`Lsps1Service::create_order`).
    /// Nothing else holds coins back for them: a stranger's unpaid orders must not lock the
    /// wallet against invoice orders, LSPS2 or the operator.
    ///
    /// An order failed at its expiry still counts while a payment confirmed in a block timed
    /// before that expiry may reach its confirmations (`lsps1_onchain_seen` then marks it paid):
    /// 20 minutes a confirmation, the two hours a block's time may run ahead, and a day for a
    /// chain source outage (`PAYABLE_AFTER_EXPIRY_SECS`).
    pub fn lsps1_onchain_offered(&self, now: u64) -> Result<(u64, u64)> {
        let (sum, n): (i64, i64) = self.lock().query_row(
            "SELECT COALESCE(SUM(lsp_balance_sat + client_balance_sat), 0), COUNT(*) FROM lsps1_orders
             WHERE payment_state = ?2 AND onchain_address IS NOT NULL AND paid_by IS NULL
                AND claim_approved_at IS NULL AND channel_id IS NULL
                AND (state = ?1 OR (state = ?3 AND last_error IS NULL
                     AND expires_at + COALESCE(onchain_confirmations, 1) * 1200 + ?4 > ?5))",
            params![
                LSPS1_CREATED,
                LSPS1_EXPECT_PAYMENT,
                LSPS1_FAILED,
                PAYABLE_AFTER_EXPIRY_SECS as i64,
                i64::try_from(now).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((u64::try_from(sum).unwrap_or(0), u64::try_from(n).unwrap_or(0)))
    }

    /// The wallet's external address `idx` was handed to an order at `now`: recorded before the
    /// order is answered (see migration 14).
    pub fn lsps1_lend_address(&self, idx: u32, now: u64) -> Result<()> {
        self.lock().execute(
            "INSERT OR IGNORE INTO wallet_lent_addresses (idx, lent_at) VALUES (?1, ?2)",
            params![idx, i64::try_from(now).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// The indexes handed to orders at or before `t`, ascending.
    pub fn lsps1_lent_before(&self, t: u64) -> Result<Vec<u32>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT idx FROM wallet_lent_addresses WHERE lent_at <= ?1 ORDER BY idx")?;
        let rows = stmt.query_map(params![i64::try_from(t).unwrap_or(i64::MAX)], |r| r.get::<_, u32>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every order's address with the order's creation time.
    pub fn lsps1_order_addresses(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT onchain_address, created_at FROM lsps1_orders WHERE onchain_address IS NOT NULL ORDER BY created_at",
        )?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0))))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The highest index ever handed to an order (None: none).
    pub fn lsps1_max_lent(&self) -> Result<Option<u32>> {
        Ok(self.lock().query_row("SELECT MAX(idx) FROM wallet_lent_addresses", [], |r| r.get(0))?)
    }

    /// Addresses lent to orders after `since` (an order refused after its address was lent
    /// counts too: the address is revealed all the same).
    pub fn lsps1_onchain_offers_since(&self, since: u64) -> Result<u64> {
        let n: i64 = self.lock().query_row(
            "SELECT COUNT(*) FROM wallet_lent_addresses WHERE lent_at > ?1",
            params![i64::try_from(since).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Record what confirmed at the order's address and, in the same transaction, mark it paid
    /// on chain if that pays it: unpaid, no invoice claim under way, and at least its total
    /// confirmed in blocks timed before its expiry (an order the sweep failed as expired
    /// meanwhile is created again, as for a late-detected invoice payment). Returns whether it
    /// was marked paid now.
    pub fn lsps1_onchain_seen(&self, order_id: &str, t: &OnchainTally) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let now = now_secs() as i64;
        let payable: Option<i64> = tx
            .query_row(
                "SELECT total_sat FROM lsps1_orders WHERE order_id = ?1 AND payment_state = ?2
                    AND claim_approved_at IS NULL AND paid_by IS NULL
                    AND (state = ?3 OR (state = ?4 AND last_error IS NULL))",
                params![order_id, LSPS1_EXPECT_PAYMENT, LSPS1_CREATED, LSPS1_FAILED],
                |r| r.get(0),
            )
            .optional()?;
        let received = i64::try_from(t.received_sat).unwrap_or(i64::MAX);
        let paid = payable.is_some_and(|total| u64::try_from(total).is_ok_and(|total| t.in_time_sat >= total));
        if paid {
            tx.execute(
                "UPDATE lsps1_orders SET payment_state = ?2, state = ?3, paid_by = ?4, onchain_received_sat = ?5,
                    onchain_outpoints = ?6, updated_at = ?7 WHERE order_id = ?1",
                params![order_id, LSPS1_PAID, LSPS1_CREATED, LSPS1_BY_ONCHAIN, received, t.outpoints, now],
            )?;
        } else {
            tx.execute(
                "UPDATE lsps1_orders SET onchain_received_sat = ?2, onchain_outpoints = ?3, updated_at = ?4
                 WHERE order_id = ?1 AND (onchain_received_sat != ?2 OR COALESCE(onchain_outpoints, '') != ?3)",
                params![order_id, received, t.outpoints, now],
            )?;
        }
        tx.commit()?;
        Ok(paid)
    }
}

#[cfg(test)]
#[path = "lsps1_onchain_tests.rs"]
mod tests;
