//! The LSPS1 orders this node took: one row per `lsps1.create_order` answered, with the
//! BOLT11 invoice that pays it, moved along as the payment arrives and the channel is opened.
//! Orders waiting for payment are bounded per client and in total (counted in the insert's
//! own transaction); unpaid orders that expired are failed, and deleted a day later.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::sqlite_store::upsert_payment;
use super::{now_secs, PaymentRecord, SqliteStore};
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
}

const COLUMNS: &str = "order_id, client_node_id, params, lsp_balance_sat, client_balance_sat, user_channel_id,
    state, payment_state, invoice, payment_hash, fee_sat, total_sat, channel_id, funding_outpoint, funded_at,
    created_at, expires_at, updated_at";

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
    /// Record a new order and its invoice's pending payment row in one transaction, unless
    /// the client already has `max_per_client` orders waiting for payment or everyone has
    /// `max_total`: Ok(Some(reason)) then, and nothing is written.
    pub fn lsps1_insert_order(
        &self, r: &Lsps1OrderRecord, payment: &PaymentRecord, max_per_client: u32, max_total: u32,
    ) -> Result<Option<String>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let (client_n, total) = pending(&tx, &r.client_node_id, r.created_at)?;
        if client_n >= u64::from(max_per_client) {
            return Ok(Some(format!("{client_n} orders of this client wait for payment (at most {max_per_client})")));
        }
        if total >= u64::from(max_total) {
            return Ok(Some(format!("{total} orders wait for payment (at most {max_total})")));
        }
        tx.execute(
            &format!(
                "INSERT INTO lsps1_orders ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                NULL, NULL, NULL, ?13, ?14, ?13)"
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

    /// Paid orders with no channel yet: each is owed an open.
    pub fn lsps1_awaiting_channel(&self) -> Result<Vec<Lsps1OrderRecord>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {COLUMNS} FROM lsps1_orders WHERE state = ?1 AND payment_state = ?2 AND channel_id IS NULL
             ORDER BY created_at"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![LSPS1_CREATED, LSPS1_PAID], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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

    /// The order failed (its channel could not be opened); a paid one is owed a refund.
    pub fn lsps1_failed(&self, order_id: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE lsps1_orders SET state = ?2, updated_at = ?4 WHERE order_id = ?1 AND state = ?3",
            params![order_id, LSPS1_FAILED, LSPS1_CREATED, now_secs() as i64],
        )?;
        Ok(())
    }

    /// Unpaid orders past their expiry are failed; failed unpaid ones a day old are deleted,
    /// so the table stays bounded however many orders come. Paid orders are kept.
    pub fn lsps1_sweep(&self, now: u64) -> Result<(usize, usize)> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let failed = tx.execute(
            "UPDATE lsps1_orders SET state = ?1, updated_at = ?4
             WHERE state = ?2 AND payment_state = ?3 AND expires_at <= ?4",
            params![LSPS1_FAILED, LSPS1_CREATED, LSPS1_EXPECT_PAYMENT, now as i64],
        )?;
        let deleted = tx.execute(
            "DELETE FROM lsps1_orders WHERE state = ?1 AND payment_state = ?2 AND expires_at <= ?3",
            params![LSPS1_FAILED, LSPS1_EXPECT_PAYMENT, now.saturating_sub(KEEP_FAILED_UNPAID_SECS) as i64],
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
        assert_eq!(s.lsps1_awaiting_channel().unwrap().len(), 1);
        s.lsps1_completed("o0", "cc", "tx:0", now).unwrap();
        assert!(s.lsps1_awaiting_channel().unwrap().is_empty());
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
        s.lsps1_failed("b").unwrap();
        assert_eq!(s.lsps1_order("b").unwrap().unwrap().state, LSPS1_FAILED);
    }
}
