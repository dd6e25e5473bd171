//! The node's forwarding history: one row per `PaymentForwarded`, written in the transaction
//! that queues the event, so the history and the event queue never disagree. LDK's event has no
//! id of its own; an event LDK replays after a crash (its channel manager not yet persisted)
//! is booked again, as the event itself is delivered again: the history is at least once.

use rusqlite::{params, Connection, Row};

use super::SqliteStore;
use crate::error::{Error, Result};

/// The most rows one page may hold.
pub const MAX_PAGE: u32 = 500;

/// A forwarded payment as the node booked it; amounts in msat (None where LDK did not know).
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardRecord {
    /// Its place in the history (0 before it is written).
    pub id: i64,
    pub prev_channel_id: Option<String>,
    pub next_channel_id: Option<String>,
    pub prev_node_id: Option<String>,
    pub next_node_id: Option<String>,
    pub fee_earned_msat: Option<u64>,
    pub outbound_amount_msat: Option<u64>,
    pub claim_from_onchain_tx: bool,
    pub created_at: u64,
}

/// Totals over the whole history.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForwardTotals {
    pub count: u64,
    pub fees_msat: u64,
    pub amount_msat: u64,
}

const COLUMNS: &str = "id, prev_channel_id, next_channel_id, prev_node_id, next_node_id, fee_earned_msat,
    outbound_amount_msat, claim_from_onchain_tx, created_at";

fn record(r: &Row<'_>) -> rusqlite::Result<ForwardRecord> {
    Ok(ForwardRecord {
        id: r.get(0)?,
        prev_channel_id: r.get(1)?,
        next_channel_id: r.get(2)?,
        prev_node_id: r.get(3)?,
        next_node_id: r.get(4)?,
        fee_earned_msat: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
        outbound_amount_msat: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        claim_from_onchain_tx: r.get(7)?,
        created_at: r.get::<_, i64>(8)? as u64,
    })
}

/// Book one forward inside the caller's transaction.
pub(super) fn insert_forward(conn: &Connection, f: &ForwardRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO forwards (prev_channel_id, next_channel_id, prev_node_id, next_node_id, fee_earned_msat,
            outbound_amount_msat, claim_from_onchain_tx, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            f.prev_channel_id,
            f.next_channel_id,
            f.prev_node_id,
            f.next_node_id,
            f.fee_earned_msat.map(|v| v as i64),
            f.outbound_amount_msat.map(|v| v as i64),
            f.claim_from_onchain_tx,
            f.created_at as i64
        ],
    )?;
    Ok(())
}

/// A page's bounds, checked once for every paged listing of the store.
pub(crate) fn check_page(limit: u32) -> Result<()> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::InvalidArgument(format!("limit must be 1..{MAX_PAGE}, not {limit}")));
    }
    Ok(())
}

impl SqliteStore {
    /// Newest first: `limit` rows after skipping `offset`.
    pub fn forwards(&self, limit: u32, offset: u64) -> Result<Vec<ForwardRecord>> {
        check_page(limit)?;
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM forwards ORDER BY id DESC LIMIT ?1 OFFSET ?2"))?;
        let rows = stmt.query_map(params![limit, offset as i64], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn forward_totals(&self) -> Result<ForwardTotals> {
        Ok(self.lock().query_row(
            "SELECT COUNT(*), COALESCE(SUM(fee_earned_msat), 0), COALESCE(SUM(outbound_amount_msat), 0) FROM forwards",
            [],
            |r| {
                Ok(ForwardTotals {
                    count: r.get::<_, i64>(0)? as u64,
                    fees_msat: r.get::<_, i64>(1)? as u64,
                    amount_msat: r.get::<_, i64>(2)? as u64,
                })
            },
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(fee: Option<u64>, amount: u64) -> ForwardRecord {
        ForwardRecord {
            id: 0,
            prev_channel_id: Some("c1".into()),
            next_channel_id: Some("c2".into()),
            prev_node_id: Some("02aa".into()),
            next_node_id: Some("03bb".into()),
            fee_earned_msat: fee,
            outbound_amount_msat: Some(amount),
            claim_from_onchain_tx: false,
            created_at: 100,
        }
    }

    #[test]
    fn a_forward_is_booked_with_its_event_and_paged_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.forward_totals().unwrap(), ForwardTotals::default());
            for i in 1..=3u64 {
                store.push_forward_event("payment_forwarded", "{}", &fwd(Some(i * 10), i * 1000), 0).unwrap();
            }
            store.push_forward_event("payment_forwarded", "{}", &fwd(None, 50), 0).unwrap();
        }
        // Durable: a reopened file has the four rows and the four events.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.pending_event_count().unwrap(), 4);
        let t = store.forward_totals().unwrap();
        assert_eq!((t.count, t.fees_msat, t.amount_msat), (4, 60, 6050));
        let page = store.forwards(2, 0).unwrap();
        assert_eq!(page.iter().map(|f| f.outbound_amount_msat).collect::<Vec<_>>(), vec![Some(50), Some(3000)]);
        assert_eq!(page[0].fee_earned_msat, None);
        let rest = store.forwards(500, 2).unwrap();
        assert_eq!(rest.iter().map(|f| f.fee_earned_msat).collect::<Vec<_>>(), vec![Some(20), Some(10)]);
        assert_eq!(rest[1], ForwardRecord { id: 1, ..fwd(Some(10), 1000) });
        assert!(store.forwards(10, 4).unwrap().is_empty());
    }

    #[test]
    fn pages_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        for bad in [0, MAX_PAGE + 1] {
            let err = store.forwards(bad, 0).unwrap_err().to_string();
            assert!(err.contains("limit must be 1..500"), "{err}");
        }
    }
}
