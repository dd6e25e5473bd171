//! The LSPS1 orders this node took: one row per `lsps1.create_order` answered, with the
//! BOLT11 invoice that pays it, moved along as the payment arrives and the channel is opened.
//! Orders waiting for payment are bounded per client and in total (counted in the insert's
//! own transaction); unpaid orders that expired are failed, and deleted a day later with their
//! pending payment row, leaving a tombstone of the payment hash so the invoice stays unpayable.
//! A paid order whose open fails is retried with a growing delay and given up (FAILED, still
//! PAID: owed a refund) only after `MAX_OPEN_ATTEMPTS`. Payment on chain: `lsps1_onchain.rs`.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::sqlite_store::upsert_payment;
use super::{now_secs, PaymentRecord, SqliteStore, STATUS_PENDING};
use crate::error::Result;

/// Order states (bLIP-51 `order_state`).
pub const LSPS1_CREATED: &str = "CREATED";
pub const LSPS1_COMPLETED: &str = "COMPLETED";
pub const LSPS1_FAILED: &str = "FAILED";
/// Payment states (bLIP-51 `payment.bolt11.state`).
pub const LSPS1_EXPECT_PAYMENT: &str = "EXPECT_PAYMENT";
pub const LSPS1_PAID: &str = "PAID";
/// How a paid order was paid (`paid_by`).
pub const LSPS1_BY_BOLT11: &str = "bolt11";
pub const LSPS1_BY_ONCHAIN: &str = "onchain";

/// How long a failed unpaid order is kept (for the client's `get_order` and the operator).
pub(super) const KEEP_FAILED_UNPAID_SECS: u64 = 24 * 3600;
/// How long a deleted order's payment hash is refused: far past any invoice's expiry, even with
/// a chain source that lags (LDK judges an invoice's expiry by the block times it has seen).
const KEEP_TOMBSTONE_SECS: u64 = 30 * 24 * 3600;
/// The most tombstones kept, the oldest going first: orders from many node ids could otherwise
/// grow the table without bound within the 30 days. An invoice whose tombstone went is still
/// refused by LDK once expired; only a chain source lagging by weeks would let it through.
pub const MAX_TOMBSTONES: u64 = 100_000;
/// Failed opens of a paid order before it is given up. The delay before the next attempt
/// doubles from a minute up to an hour, so twelve attempts span about seven hours: a wallet
/// short of coins, a client that keeps dropping, get that long to come right.
pub const MAX_OPEN_ATTEMPTS: u32 = 12;
const FIRST_RETRY_SECS: u64 = 60;
const MAX_RETRY_SECS: u64 = 3600;

/// The delay before the next open after `attempts` failed ones.
pub(crate) fn retry_delay_secs(attempts: u32) -> u64 {
    FIRST_RETRY_SECS.saturating_mul(1u64 << attempts.saturating_sub(1).min(16)).min(MAX_RETRY_SECS)
}

/// An LSPS1 order as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Lsps1OrderRecord {
    pub order_id: String,
    pub client_node_id: String,
    /// The order's parameters as the client sent them (bLIP-51 JSON), answered back verbatim.
    pub params: String,
    pub lsp_balance_sat: u64,
    pub client_balance_sat: u64,
    pub user_channel_id: u128,
    pub state: String,
    pub payment_state: String,
    pub invoice: String,
    pub payment_hash: String,
    pub fee_sat: u64,
    pub total_sat: u64,
    pub channel_id: Option<String>,
    /// "txid:vout" of the funding transaction, once broadcast.
    pub funding_outpoint: Option<String>,
    pub funded_at: Option<u64>,
    pub created_at: u64,
    pub expires_at: u64,
    pub updated_at: u64,
    /// Where the client asked a refund be sent (bLIP-51 `refund_onchain_address`); refunds are
    /// the operator's to make.
    pub refund_onchain_address: Option<String>,
    /// Opens of the paid order that failed, the last one's reason, and when the sweep tries again.
    pub open_attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: u64,
    /// When its payment was judged claimable and its claim began (its coins are owed from then).
    pub claim_approved_at: Option<u64>,
    /// "txid:vout" of a funding transaction built for its channel and not discarded by LDK.
    pub funding_made: Option<String>,
    /// The on-chain payment offered with the order (None: BOLT11 only).
    pub onchain: Option<Lsps1OnchainTerms>,
    /// What confirmed at the order's address (with its confirmations): satoshis, and the
    /// outpoints ("txid:vout", comma-separated).
    pub onchain_received_sat: u64,
    pub onchain_outpoints: Option<String>,
    /// How the order was paid: `LSPS1_BY_BOLT11` or `LSPS1_BY_ONCHAIN`; None while unpaid.
    pub paid_by: Option<String>,
}

/// The on-chain payment an order was offered: the wallet address to pay, the confirmations the
/// payment needs, and the 0-conf fee rate answered (bLIP-51 requires one; 0-conf is not offered).
#[derive(Clone, Debug, PartialEq)]
pub struct Lsps1OnchainTerms {
    pub address: String,
    pub min_confirmations: u16,
    pub min_fee_for_0conf_kwu: u64,
}

impl Lsps1OrderRecord {
    /// Satoshis the client is owed back at `now`, to be refunded by hand: on-chain coins that
    /// did not pay the order (it was paid by invoice, paid late, underpaid and expired, or the
    /// surplus of an overpayment), and the whole payment of a paid order given up.
    pub fn refund_owed_sat(&self, now: u64) -> u64 {
        let received = self.onchain_received_sat;
        let given_up = self.state == LSPS1_FAILED;
        if self.payment_state != LSPS1_PAID {
            // Underpaid so far: more may arrive until the order expires.
            let over = given_up || self.expires_at <= now;
            return if over { received } else { 0 };
        }
        match (self.paid_by.as_deref(), given_up) {
            (Some(LSPS1_BY_ONCHAIN), false) => received.saturating_sub(self.total_sat),
            (Some(LSPS1_BY_ONCHAIN), true) => received,
            (_, false) => received,
            (_, true) => received.saturating_add(self.total_sat),
        }
    }
}

pub(super) const COLUMNS: &str = "order_id, client_node_id, params, lsp_balance_sat, client_balance_sat, user_channel_id,
    state, payment_state, invoice, payment_hash, fee_sat, total_sat, channel_id, funding_outpoint, funded_at,
    created_at, expires_at, updated_at, refund_onchain_address, open_attempts, last_error, next_attempt_at, claim_approved_at, funding_made,
    onchain_address, onchain_confirmations, onchain_min_fee_kwu, onchain_received_sat, onchain_outpoints, paid_by";

pub(super) fn record(r: &Row<'_>) -> rusqlite::Result<Lsps1OrderRecord> {
    let user_channel_id: String = r.get(5)?;
    Ok(Lsps1OrderRecord {
        order_id: r.get(0)?,
        client_node_id: r.get(1)?,
        params: r.get(2)?,
        lsp_balance_sat: r.get::<_, i64>(3)? as u64,
        client_balance_sat: r.get::<_, i64>(4)? as u64,
        // Written from a u128 by `lsps1_insert_order`; 0 would only mean a hand edit.
        user_channel_id: user_channel_id.parse().unwrap_or(0),
        state: r.get(6)?,
        payment_state: r.get(7)?,
        invoice: r.get(8)?,
        payment_hash: r.get(9)?,
        fee_sat: r.get::<_, i64>(10)? as u64,
        total_sat: r.get::<_, i64>(11)? as u64,
        channel_id: r.get(12)?,
        funding_outpoint: r.get(13)?,
        funded_at: r.get::<_, Option<i64>>(14)?.map(|v| v as u64),
        created_at: r.get::<_, i64>(15)? as u64,
        expires_at: r.get::<_, i64>(16)? as u64,
        updated_at: r.get::<_, i64>(17)? as u64,
        refund_onchain_address: r.get(18)?,
        open_attempts: r.get::<_, i64>(19)?.clamp(0, i64::from(u32::MAX)) as u32,
        last_error: r.get(20)?,
        next_attempt_at: r.get::<_, i64>(21)?.max(0) as u64,
        claim_approved_at: r.get::<_, Option<i64>>(22)?.map(|v| v.max(0) as u64),
        funding_made: r.get(23)?,
        onchain: match r.get::<_, Option<String>>(24)? {
            None => None,
            Some(address) => Some(Lsps1OnchainTerms {
                address,
                min_confirmations: r.get::<_, Option<i64>>(25)?.unwrap_or(1).clamp(1, i64::from(u16::MAX)) as u16,
                min_fee_for_0conf_kwu: r.get::<_, Option<i64>>(26)?.unwrap_or(0).max(0) as u64,
            }),
        },
        onchain_received_sat: r.get::<_, i64>(27)?.max(0) as u64,
        onchain_outpoints: r.get(28)?,
        paid_by: r.get(29)?,
    })
}

/// Inside the transaction that queues a claimed payment's event: the order this invoice pays
/// (if any) is paid. An order the sweep failed as expired while its payment was being claimed
/// is created again: the money was taken, so the channel is owed.
pub(super) fn mark_paid(conn: &Connection, payment_hash: &str) -> Result<()> {
    conn.execute(
        "UPDATE lsps1_orders SET payment_state = ?2, state = ?3, updated_at = ?5, paid_by = ?6
         WHERE payment_hash = ?1 AND payment_state = ?4",
        params![payment_hash, LSPS1_PAID, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, now_secs() as i64, LSPS1_BY_BOLT11],
    )?;
    Ok(())
}

/// Why no order may be added when `client_n` of the client's and `total` orders wait for payment.
fn full(client_n: u64, total: u64, max_per_client: u32, max_total: u32) -> Option<String> {
    if client_n >= u64::from(max_per_client) {
        return Some(format!("{client_n} orders of this client wait for payment (at most {max_per_client})"));
    }
    if total >= u64::from(max_total) {
        return Some(format!("{total} orders wait for payment (at most {max_total})"));
    }
    None
}

/// Orders waiting for payment at `now`: of one client, and of everyone.
fn pending(conn: &Connection, client: &str, now: u64) -> rusqlite::Result<(u64, u64)> {
    let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| conn.query_row(sql, p, |r| r.get::<_, i64>(0));
    let now = now as i64;
    let client_n = count(
        "SELECT COUNT(*) FROM lsps1_orders WHERE client_node_id = ?1 AND state = ?2 AND payment_state = ?3
            AND expires_at > ?4",
        &[&client, &LSPS1_CREATED, &LSPS1_EXPECT_PAYMENT, &now],
    )?;
    let total = count(
        "SELECT COUNT(*) FROM lsps1_orders WHERE state = ?1 AND payment_state = ?2 AND expires_at > ?3",
        &[&LSPS1_CREATED, &LSPS1_EXPECT_PAYMENT, &now],
    )?;
    Ok((client_n.max(0) as u64, total.max(0) as u64))
}

impl SqliteStore {
    /// Why a new order of `client` may not be taken at `now` (too many wait for payment), read
    /// before any work is done for it; the insert checks again in its own transaction.
    pub fn lsps1_no_room(&self, client: &str, now: u64, max_per_client: u32, max_total: u32) -> Result<Option<String>> {
        let conn = self.lock();
        let (client_n, total) = pending(&conn, client, now)?;
        Ok(full(client_n, total, max_per_client, max_total))
    }

    /// Record a new order and its invoice's pending payment row in one transaction, unless
    /// the client already has `max_per_client` orders waiting for payment or everyone has
    /// `max_total`: Ok(Some(reason)) then, and nothing is written.
    pub fn lsps1_insert_order(
        &self, r: &Lsps1OrderRecord, payment: &PaymentRecord, max_per_client: u32, max_total: u32,
    ) -> Result<Option<String>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let (client_n, total) = pending(&tx, &r.client_node_id, r.created_at)?;
        if let Some(why) = full(client_n, total, max_per_client, max_total) {
            return Ok(Some(why));
        }
        tx.execute(
            &format!(
                "INSERT INTO lsps1_orders ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                NULL, NULL, NULL, ?13, ?14, ?13, ?15, 0, NULL, 0, NULL, NULL, ?16, ?17, ?18, 0, NULL, NULL)"
            ),
            params![
                r.order_id,
                r.client_node_id,
                r.params,
                r.lsp_balance_sat as i64,
                r.client_balance_sat as i64,
                r.user_channel_id.to_string(),
                LSPS1_CREATED,
                LSPS1_EXPECT_PAYMENT,
                r.invoice,
                r.payment_hash,
                r.fee_sat as i64,
                r.total_sat as i64,
                r.created_at as i64,
                r.expires_at as i64,
                r.refund_onchain_address,
                r.onchain.as_ref().map(|o| o.address.clone()),
                r.onchain.as_ref().map(|o| i64::from(o.min_confirmations)),
                r.onchain.as_ref().map(|o| i64::try_from(o.min_fee_for_0conf_kwu).unwrap_or(i64::MAX)),
            ],
        )?;
        upsert_payment(&tx, payment)?;
        tx.commit()?;
        Ok(None)
    }

    fn lsps1_one(&self, column: &str, value: &str) -> Result<Option<Lsps1OrderRecord>> {
        let conn = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM lsps1_orders WHERE {column} = ?1");
        Ok(conn.query_row(&sql, params![value], record).optional()?)
    }

    pub fn lsps1_order(&self, order_id: &str) -> Result<Option<Lsps1OrderRecord>> {
        self.lsps1_one("order_id", order_id)
    }

    pub fn lsps1_order_by_hash(&self, payment_hash: &str) -> Result<Option<Lsps1OrderRecord>> {
        self.lsps1_one("payment_hash", payment_hash)
    }

    pub fn lsps1_order_by_user_channel_id(&self, user_channel_id: u128) -> Result<Option<Lsps1OrderRecord>> {
        self.lsps1_one("user_channel_id", &user_channel_id.to_string())
    }

    /// Orders newest first, a page at a time.
    pub fn lsps1_orders(&self, limit: u32, offset: u32) -> Result<Vec<Lsps1OrderRecord>> {
        let conn = self.lock();
        let sql =
            format!("SELECT {COLUMNS} FROM lsps1_orders ORDER BY created_at DESC, order_id DESC LIMIT ?1 OFFSET ?2");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![limit, offset], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Paid orders with no channel yet whose next open is due at `now`: each is owed an open.
    pub fn lsps1_awaiting_channel(&self, now: u64) -> Result<Vec<Lsps1OrderRecord>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {COLUMNS} FROM lsps1_orders WHERE state = ?1 AND payment_state = ?2 AND channel_id IS NULL
                AND next_attempt_at <= ?3 ORDER BY created_at"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![LSPS1_CREATED, LSPS1_PAID, now as i64], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// What the wallet owes to orders still without a funded channel, but `except` (the order
    /// being judged): the satoshis (the whole channel each) and how many orders, each of which
    /// needs its own funding transaction. Owed from the moment the payment was judged claimable
    /// (`claim_approved_at`), not only once `PaymentClaimed` marked it paid: two payments
    /// judged in one batch of events must not both be promised the same coins.
    pub fn lsps1_committed(&self, except: &str) -> Result<(u64, u64)> {
        let conn = self.lock();
        let (sum, n): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(lsp_balance_sat + client_balance_sat), 0), COUNT(*) FROM lsps1_orders
             WHERE state = ?1 AND (payment_state = ?2 OR claim_approved_at IS NOT NULL) AND channel_id IS NULL
                AND order_id != ?3",
            params![LSPS1_CREATED, LSPS1_PAID, except],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((sum.max(0) as u64, n.max(0) as u64))
    }

    /// The order's payment was judged claimable at `now`: recorded before the claim, so its
    /// coins count as owed (`lsps1_committed`) while `PaymentClaimed` is on its way. False: the
    /// order is no longer waiting for payment (nothing written).
    pub fn lsps1_approve_claim(&self, order_id: &str, now: u64) -> Result<bool> {
        let n = self.lock().execute(
            "UPDATE lsps1_orders SET claim_approved_at = COALESCE(claim_approved_at, ?4), updated_at = ?4
             WHERE order_id = ?1 AND state = ?2 AND payment_state = ?3",
            params![order_id, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, now as i64],
        )?;
        Ok(n == 1)
    }

    /// A funding transaction paying `outpoint` ("txid:vout") was built for the order's channel:
    /// recorded before LDK is given it, so that after a crash the order is known to have one.
    pub fn lsps1_funding_made(&self, order_id: &str, outpoint: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE lsps1_orders SET funding_made = ?2, updated_at = ?3 WHERE order_id = ?1",
            params![order_id, outpoint, now_secs() as i64],
        )?;
        Ok(())
    }

    /// LDK discarded the funding transaction `txid` (never broadcast), or it was never handed
    /// to a channel: the order that recorded it may be opened again. Returns the orders cleared.
    pub fn lsps1_funding_discarded(&self, txid: &str) -> Result<usize> {
        let n = self.lock().execute(
            "UPDATE lsps1_orders SET funding_made = NULL, updated_at = ?2
             WHERE funding_made IS NOT NULL AND substr(funding_made, 1, length(?1) + 1) = ?1 || ':'",
            params![txid, now_secs() as i64],
        )?;
        Ok(n)
    }

    /// An open of the paid order failed at `now` for `why`: counted, retried after a delay, or
    /// given up (FAILED, still PAID) at the `MAX_OPEN_ATTEMPTS`th. Returns whether it was given up.
    pub fn lsps1_open_failed(&self, order_id: &str, why: &str, now: u64) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let attempts: Option<i64> = tx
            .query_row(
                "SELECT open_attempts FROM lsps1_orders WHERE order_id = ?1 AND state = ?2 AND payment_state = ?3",
                params![order_id, LSPS1_CREATED, LSPS1_PAID],
                |r| r.get(0),
            )
            .optional()?;
        let Some(attempts) = attempts else { return Ok(false) };
        let attempts = u32::try_from(attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let give_up = attempts >= MAX_OPEN_ATTEMPTS;
        let (state, last_error) = if give_up {
            (LSPS1_FAILED, format!("given up after {attempts} failed opens (refund by hand): {why}"))
        } else {
            (LSPS1_CREATED, why.to_string())
        };
        tx.execute(
            "UPDATE lsps1_orders SET state = ?2, open_attempts = ?3, last_error = ?4, next_attempt_at = ?5,
                updated_at = ?6 WHERE order_id = ?1",
            params![
                order_id,
                state,
                i64::from(attempts),
                last_error,
                now.saturating_add(retry_delay_secs(attempts)) as i64,
                now as i64
            ],
        )?;
        tx.commit()?;
        Ok(give_up)
    }

    /// Whether `payment_hash` was a deleted order's: its invoice must not be taken.
    pub fn lsps1_tombstoned(&self, payment_hash: &str) -> Result<bool> {
        let conn = self.lock();
        let found = conn
            .query_row("SELECT 1 FROM lsps1_tombstones WHERE payment_hash = ?1", params![payment_hash], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }

    /// The order's channel was funded and broadcast: completed, with the channel's identity.
    pub fn lsps1_completed(
        &self, order_id: &str, channel_id: &str, funding_outpoint: &str, funded_at: u64,
    ) -> Result<()> {
        self.lock().execute(
            "UPDATE lsps1_orders SET state = ?2, channel_id = ?3, funding_outpoint = ?4, funded_at = ?5,
                updated_at = ?6 WHERE order_id = ?1 AND state != ?2",
            params![order_id, LSPS1_COMPLETED, channel_id, funding_outpoint, funded_at as i64, now_secs() as i64],
        )?;
        Ok(())
    }

    /// The order failed for good (`why`: its stored data is unusable); a paid one is owed a refund.
    pub fn lsps1_failed(&self, order_id: &str, why: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE lsps1_orders SET state = ?2, last_error = ?4, updated_at = ?5 WHERE order_id = ?1 AND state = ?3",
            params![order_id, LSPS1_FAILED, LSPS1_CREATED, why, now_secs() as i64],
        )?;
        Ok(())
    }

    /// Unpaid orders past their expiry are failed; failed unpaid ones a day old are deleted with
    /// their pending payment row, leaving a tombstone of the payment hash, so the table stays
    /// bounded however many orders come and their invoices are never taken. Paid orders are kept.
    pub fn lsps1_sweep(&self, now: u64) -> Result<(usize, usize)> {
        self.lsps1_sweep_capped(now, MAX_TOMBSTONES)
    }

    /// `lsps1_sweep`, keeping at most `max_tombstones` (the newest).
    pub(crate) fn lsps1_sweep_capped(&self, now: u64, max_tombstones: u64) -> Result<(usize, usize)> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let failed = tx.execute(
            "UPDATE lsps1_orders SET state = ?1, updated_at = ?4
             WHERE state = ?2 AND payment_state = ?3 AND expires_at <= ?4",
            params![LSPS1_FAILED, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, now as i64],
        )?;
        // An order that received coins on chain is kept: they are owed back (`refund_owed_sat`).
        // One with an address is kept while the address is watched: a payment made in time may
        // need many blocks (or a chain source back from an outage) to reach its confirmations.
        let stale = "state = ?1 AND payment_state = ?2 AND expires_at <= ?3 AND onchain_received_sat = 0
            AND (onchain_address IS NULL OR created_at <= ?4)";
        let args = params![
            LSPS1_FAILED,
            LSPS1_EXPECT_PAYMENT,
            now.saturating_sub(KEEP_FAILED_UNPAID_SECS) as i64,
            now.saturating_sub(super::lsps1_onchain::WATCH_ADDRESS_SECS) as i64
        ];
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO lsps1_tombstones (payment_hash, deleted_at)
                 SELECT payment_hash, {now} FROM lsps1_orders WHERE {stale}"
            ),
            args,
        )?;
        tx.execute(
            &format!(
                "DELETE FROM payments WHERE status = '{STATUS_PENDING}' AND payment_hash IN
                 (SELECT payment_hash FROM lsps1_orders WHERE {stale})"
            ),
            args,
        )?;
        let deleted = tx.execute(&format!("DELETE FROM lsps1_orders WHERE {stale}"), args)?;
        tx.execute(
            "DELETE FROM lsps1_tombstones WHERE deleted_at <= ?1",
            params![now.saturating_sub(KEEP_TOMBSTONE_SECS) as i64],
        )?;
        tx.execute(
            "DELETE FROM lsps1_tombstones WHERE payment_hash IN (SELECT payment_hash FROM lsps1_tombstones
                ORDER BY deleted_at DESC, payment_hash DESC LIMIT -1 OFFSET ?1)",
            params![i64::try_from(max_tombstones).unwrap_or(i64::MAX)],
        )?;
        tx.commit()?;
        Ok((failed, deleted))
    }
}

#[cfg(test)]
#[path = "lsps1_tests.rs"]
pub(super) mod tests;
