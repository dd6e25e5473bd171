//! The LSPS1 orders this node took: one row per `lsps1.create_order` answered, with the
//! BOLT11 invoice that pays it, moved along as the payment arrives and the channel is opened.
//! Orders waiting for payment are bounded per client and in total (counted in the insert's
//! own transaction); unpaid orders that expired are failed, and deleted a day later with their
//! pending payment row, leaving a tombstone of the payment hash so the invoice stays unpayable.
//! A paid order whose open fails is retried with a growing delay and given up (FAILED, still
//! PAID: owed a refund) only after `MAX_OPEN_ATTEMPTS`.

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

/// How long a failed unpaid order is kept (for the client's `get_order` and the operator).
const KEEP_FAILED_UNPAID_SECS: u64 = 24 * 3600;
/// How long a deleted order's payment hash is refused: far past any invoice's expiry, even with
/// a chain source that lags (LDK judges an invoice's expiry by the block times it has seen).
const KEEP_TOMBSTONE_SECS: u64 = 30 * 24 * 3600;
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
}

const COLUMNS: &str = "order_id, client_node_id, params, lsp_balance_sat, client_balance_sat, user_channel_id,
    state, payment_state, invoice, payment_hash, fee_sat, total_sat, channel_id, funding_outpoint, funded_at,
    created_at, expires_at, updated_at, refund_onchain_address, open_attempts, last_error, next_attempt_at";

fn record(r: &Row<'_>) -> rusqlite::Result<Lsps1OrderRecord> {
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
    })
}

/// Inside the transaction that queues a claimed payment's event: the order this invoice pays
/// (if any) is paid. An order the sweep failed as expired while its payment was being claimed
/// is created again: the money was taken, so the channel is owed.
pub(super) fn mark_paid(conn: &Connection, payment_hash: &str) -> Result<()> {
    conn.execute(
        "UPDATE lsps1_orders SET payment_state = ?2, state = ?3, updated_at = ?5
         WHERE payment_hash = ?1 AND payment_state = ?4",
        params![payment_hash, LSPS1_PAID, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, now_secs() as i64],
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
                NULL, NULL, NULL, ?13, ?14, ?13, ?15, 0, NULL, 0)"
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

    /// Satoshis the wallet owes to paid orders still without a funded channel (the whole
    /// channel each), but `except` (the order being judged).
    pub fn lsps1_committed_sat(&self, except: &str) -> Result<u64> {
        let conn = self.lock();
        let sum: i64 = conn.query_row(
            "SELECT COALESCE(SUM(lsp_balance_sat + client_balance_sat), 0) FROM lsps1_orders
             WHERE state = ?1 AND payment_state = ?2 AND channel_id IS NULL AND order_id != ?3",
            params![LSPS1_CREATED, LSPS1_PAID, except],
            |r| r.get(0),
        )?;
        Ok(sum.max(0) as u64)
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
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let failed = tx.execute(
            "UPDATE lsps1_orders SET state = ?1, updated_at = ?4
             WHERE state = ?2 AND payment_state = ?3 AND expires_at <= ?4",
            params![LSPS1_FAILED, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, now as i64],
        )?;
        let stale = "state = ?1 AND payment_state = ?2 AND expires_at <= ?3";
        let args = params![LSPS1_FAILED, LSPS1_EXPECT_PAYMENT, now.saturating_sub(KEEP_FAILED_UNPAID_SECS) as i64];
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
        tx.commit()?;
        Ok((failed, deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{STATUS_PENDING, STATUS_SUCCEEDED};

    fn order(id: &str, client: &str, created_at: u64) -> (Lsps1OrderRecord, PaymentRecord) {
        let hash = format!("{id}-hash");
        let r = Lsps1OrderRecord {
            order_id: id.into(),
            client_node_id: client.into(),
            params: "{}".into(),
            lsp_balance_sat: 100_000,
            client_balance_sat: 0,
            user_channel_id: id.bytes().fold(u128::from(created_at), |a, b| a * 257 + u128::from(b)),
            state: LSPS1_CREATED.into(),
            payment_state: LSPS1_EXPECT_PAYMENT.into(),
            invoice: "lnbcrt1".into(),
            payment_hash: hash.clone(),
            fee_sat: 3_000,
            total_sat: 3_000,
            channel_id: None,
            funding_outpoint: None,
            funded_at: None,
            created_at,
            expires_at: created_at + 600,
            updated_at: created_at,
            refund_onchain_address: None,
            open_attempts: 0,
            last_error: None,
            next_attempt_at: 0,
        };
        let p = PaymentRecord {
            payment_id: hash.clone(),
            payment_hash: hash,
            direction: "inbound".into(),
            status: STATUS_PENDING.into(),
            amount_msat: Some(3_000_000),
            fee_msat: None,
            preimage: None,
            bolt11: Some("lnbcrt1".into()),
            failure: None,
            created_at,
            updated_at: created_at,
        };
        (r, p)
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn orders_waiting_for_payment_are_bounded_per_client_and_in_total() {
        let (_d, s) = store();
        let now = now_secs();
        for (i, client) in ["02a", "02a", "02b"].iter().enumerate() {
            let (r, p) = order(&format!("o{i}"), client, now + i as u64);
            assert_eq!(s.lsps1_insert_order(&r, &p, 2, 3).unwrap(), None);
        }
        let (r, p) = order("o3", "02a", now + 3);
        assert!(s.lsps1_insert_order(&r, &p, 2, 10).unwrap().unwrap().contains("this client"));
        let (r, p) = order("o4", "02c", now + 4);
        assert!(s.lsps1_insert_order(&r, &p, 2, 3).unwrap().unwrap().contains("at most 3"));
        assert!(s.lsps1_order("o4").unwrap().is_none());
        assert!(s.payment("o4-hash").unwrap().is_none(), "a refused order writes no payment row");
        // A paid order no longer waits: its client may order again.
        let paid = PaymentRecord { status: STATUS_SUCCEEDED.into(), ..order("o0", "02a", now).1 };
        s.push_event("payment_received", "{}", Some(&paid)).unwrap();
        let o0 = s.lsps1_order("o0").unwrap().unwrap();
        assert_eq!((o0.state.as_str(), o0.payment_state.as_str()), (LSPS1_CREATED, LSPS1_PAID));
        let (r, p) = order("o5", "02a", now + 5);
        assert_eq!(s.lsps1_insert_order(&r, &p, 2, 10).unwrap(), None);
        let newest: Vec<_> = s.lsps1_orders(10, 0).unwrap().into_iter().map(|o| o.order_id).collect();
        assert_eq!(newest, ["o5", "o2", "o1", "o0"]);
        assert_eq!(s.lsps1_awaiting_channel(now).unwrap().len(), 1);
        s.lsps1_completed("o0", "cc", "tx:0", now).unwrap();
        assert!(s.lsps1_awaiting_channel(now).unwrap().is_empty());
        assert_eq!(s.lsps1_order_by_user_channel_id(r.user_channel_id).unwrap().unwrap().order_id, "o5");
    }

    #[test]
    fn expired_unpaid_orders_fail_then_go_and_a_late_payment_revives_its_order() {
        let (_d, s) = store();
        let t = 1_000_000;
        let (a, pa) = order("a", "02a", t);
        let (b, pb) = order("b", "02a", t);
        s.lsps1_insert_order(&a, &pa, 5, 5).unwrap();
        s.lsps1_insert_order(&b, &pb, 5, 5).unwrap();
        assert_eq!(s.lsps1_sweep(t + 600).unwrap(), (2, 0));
        // The payment of `b` was being claimed when the sweep ran: the order is owed its channel.
        s.push_event("payment_received", "{}", Some(&PaymentRecord { status: STATUS_SUCCEEDED.into(), ..pb })).unwrap();
        let b = s.lsps1_order("b").unwrap().unwrap();
        assert_eq!((b.state.as_str(), b.payment_state.as_str()), (LSPS1_CREATED, LSPS1_PAID));
        assert_eq!(s.lsps1_sweep(t + 600 + KEEP_FAILED_UNPAID_SECS).unwrap(), (0, 1));
        assert!(s.lsps1_order("a").unwrap().is_none());
        assert!(s.lsps1_order("b").unwrap().is_some(), "a paid order is never deleted");
        s.lsps1_failed("b", "test").unwrap();
        assert_eq!(s.lsps1_order("b").unwrap().unwrap().state, LSPS1_FAILED);
    }

    #[test]
    fn a_failed_open_keeps_the_order_paid_and_is_retried_later_until_given_up() {
        let (_d, s) = store();
        let t = now_secs();
        let (a, pa) = order("a", "02a", t);
        let (b, pb) = order("b", "02b", t);
        s.lsps1_insert_order(&a, &pa, 5, 5).unwrap();
        s.lsps1_insert_order(&b, &pb, 5, 5).unwrap();
        assert_eq!(s.lsps1_committed_sat("").unwrap(), 0, "unpaid orders owe nothing");
        for p in [pa, pb] {
            s.push_event("payment_received", "{}", Some(&PaymentRecord { status: STATUS_SUCCEEDED.into(), ..p }))
                .unwrap();
        }
        assert_eq!(s.lsps1_committed_sat("").unwrap(), 200_000);
        assert_eq!(s.lsps1_committed_sat("a").unwrap(), 100_000);
        // A transient failure: still owed, not due again for a minute.
        assert!(!s.lsps1_open_failed("a", "peer not connected", t).unwrap());
        let a1 = s.lsps1_order("a").unwrap().unwrap();
        assert_eq!((a1.state.as_str(), a1.payment_state.as_str(), a1.open_attempts), (LSPS1_CREATED, LSPS1_PAID, 1));
        assert_eq!(a1.last_error.as_deref(), Some("peer not connected"));
        let due = |now: u64| -> Vec<String> {
            s.lsps1_awaiting_channel(now).unwrap().into_iter().map(|o| o.order_id).collect()
        };
        assert_eq!(due(t), ["b"]);
        assert_eq!(due(t + 60), ["a", "b"]);
        assert_eq!(s.lsps1_committed_sat("").unwrap(), 200_000, "a retried order still owes its channel");
        // The delay doubles up to an hour; the twelfth failure gives the order up, still paid.
        assert_eq!((retry_delay_secs(2), retry_delay_secs(6), retry_delay_secs(30)), (120, 1920, 3600));
        for n in 2..MAX_OPEN_ATTEMPTS {
            assert!(!s.lsps1_open_failed("a", "wallet short", t + u64::from(n)).unwrap());
        }
        assert!(s.lsps1_open_failed("a", "wallet short", t + 100).unwrap());
        let gone = s.lsps1_order("a").unwrap().unwrap();
        assert_eq!((gone.state.as_str(), gone.payment_state.as_str()), (LSPS1_FAILED, LSPS1_PAID));
        assert_eq!(gone.open_attempts, MAX_OPEN_ATTEMPTS);
        assert!(gone.last_error.unwrap().starts_with("given up after 12 failed opens"));
        assert_eq!(due(t + 100_000), ["b"]);
        assert_eq!(s.lsps1_committed_sat("").unwrap(), 100_000);
        // A given-up (or completed) order counts no more failures.
        assert!(!s.lsps1_open_failed("a", "late close", t + 200).unwrap());
        assert_eq!(s.lsps1_order("a").unwrap().unwrap().open_attempts, MAX_OPEN_ATTEMPTS);
    }
}
