//! The engine's record of intercepted HTLCs (the LSP role): written when LDK reports one,
//! marked when it is forwarded, removed when it is failed or its failure is reported. LDK keeps
//! the HTLCs themselves; this only remembers what its later events leave out.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_secs, SqliteStore};
use crate::error::Result;

pub const INTERCEPT_PENDING: &str = "pending";
pub const INTERCEPT_FORWARDED: &str = "forwarded";
/// The application asked LDK to fail it. Kept (not deleted) until LDK reports the failure, so
/// that if a crash undid the fail, `pending_intercepts` still lists it.
pub const INTERCEPT_FAILED: &str = "failed";

/// Rows this old are gone from LDK whatever happened (no HTLC lives 2016 blocks, ~14 days).
const MAX_AGE_SECS: u64 = 30 * 24 * 3600;

/// An intercepted HTLC as the engine recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct InterceptRecord {
    pub intercept_id: String,
    pub requested_next_hop_scid: u64,
    pub payment_hash: String,
    pub prev_channel_id: Option<String>,
    pub prev_node_id: Option<String>,
    pub inbound_amount_msat: u64,
    pub expected_outbound_amount_msat: u64,
    pub inbound_cltv_expiry: Option<u32>,
    /// Set once forwarded: the channel it went out on.
    pub next_channel_id: Option<String>,
    /// pending or forwarded.
    pub state: String,
}

const COLUMNS: &str = "intercept_id, scid, payment_hash, prev_channel_id, prev_node_id, inbound_amount_msat,
    expected_outbound_amount_msat, inbound_cltv_expiry, next_channel_id, state";

fn record(r: &Row<'_>) -> rusqlite::Result<InterceptRecord> {
    Ok(InterceptRecord {
        intercept_id: r.get(0)?,
        requested_next_hop_scid: r.get::<_, i64>(1)? as u64,
        payment_hash: r.get(2)?,
        prev_channel_id: r.get(3)?,
        prev_node_id: r.get(4)?,
        inbound_amount_msat: r.get::<_, i64>(5)? as u64,
        expected_outbound_amount_msat: r.get::<_, i64>(6)? as u64,
        inbound_cltv_expiry: r.get(7)?,
        next_channel_id: r.get(8)?,
        state: r.get(9)?,
    })
}

impl SqliteStore {
    /// Remember an intercepted HTLC; a replayed event leaves the first record as it is.
    pub fn record_intercept(&self, r: &InterceptRecord) -> Result<()> {
        let conn = self.lock();
        let now = now_secs();
        conn.execute("DELETE FROM intercepts WHERE created_at < ?1", params![now.saturating_sub(MAX_AGE_SECS) as i64])?;
        conn.execute(
            "INSERT OR IGNORE INTO intercepts (intercept_id, scid, payment_hash, prev_channel_id, prev_node_id,
                inbound_amount_msat, expected_outbound_amount_msat, inbound_cltv_expiry, next_channel_id, state,
                created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10)",
            params![
                r.intercept_id,
                r.requested_next_hop_scid as i64,
                r.payment_hash,
                r.prev_channel_id,
                r.prev_node_id,
                r.inbound_amount_msat as i64,
                r.expected_outbound_amount_msat as i64,
                r.inbound_cltv_expiry,
                INTERCEPT_PENDING,
                now as i64
            ],
        )?;
        Ok(())
    }

    pub fn intercept_failed(&self, intercept_id: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE intercepts SET state = ?2 WHERE intercept_id = ?1",
            params![intercept_id, INTERCEPT_FAILED],
        )?;
        Ok(())
    }

    pub fn intercept_forwarded(&self, intercept_id: &str, next_channel_id: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE intercepts SET state = ?2, next_channel_id = ?3 WHERE intercept_id = ?1",
            params![intercept_id, INTERCEPT_FORWARDED, next_channel_id],
        )?;
        Ok(())
    }

    pub fn forget_intercept(&self, intercept_id: &str) -> Result<()> {
        self.lock().execute("DELETE FROM intercepts WHERE intercept_id = ?1", params![intercept_id])?;
        Ok(())
    }

    pub fn intercept(&self, intercept_id: &str) -> Result<Option<InterceptRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM intercepts WHERE intercept_id = ?1");
        Ok(self.lock().query_row(&sql, params![intercept_id], record).optional()?)
    }

    pub fn intercepts(&self) -> Result<Vec<InterceptRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM intercepts ORDER BY created_at, intercept_id"))?;
        let rows = stmt.query_map([], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Forwarded intercepts that went from `prev_channel_id` out over `next_channel_id`.
    pub fn forwarded_intercepts(&self, prev_channel_id: &str, next_channel_id: &str) -> Result<Vec<InterceptRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM intercepts WHERE prev_channel_id = ?1 AND state = ?2 AND next_channel_id = ?3"
        ))?;
        let rows = stmt.query_map(params![prev_channel_id, INTERCEPT_FORWARDED, next_channel_id], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Intercepts in `state` from `prev_channel_id` for `scid`.
    pub fn intercepts_for(&self, prev_channel_id: &str, scid: u64, state: &str) -> Result<Vec<InterceptRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM intercepts WHERE prev_channel_id = ?1 AND state = ?2 AND scid = ?3"
        ))?;
        let rows = stmt.query_map(params![prev_channel_id, state, scid as i64], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, prev: &str) -> InterceptRecord {
        InterceptRecord {
            intercept_id: id.into(),
            requested_next_hop_scid: 7,
            payment_hash: format!("hash-{id}"),
            prev_channel_id: Some(prev.into()),
            prev_node_id: Some("02aa".into()),
            inbound_amount_msat: 1000,
            expected_outbound_amount_msat: 900,
            inbound_cltv_expiry: Some(500),
            next_channel_id: None,
            state: INTERCEPT_PENDING.into(),
        }
    }

    #[test]
    fn intercept_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        store.record_intercept(&rec("a", "c1")).unwrap();
        store.record_intercept(&rec("b", "c1")).unwrap();
        // A replay does not reset a record.
        store.intercept_forwarded("a", "c2").unwrap();
        store.record_intercept(&rec("a", "c1")).unwrap();
        assert_eq!(store.intercept("a").unwrap().unwrap().state, INTERCEPT_FORWARDED);
        assert_eq!(store.forwarded_intercepts("c1", "c2").unwrap().len(), 1);
        assert_eq!(store.intercepts_for("c1", 7, INTERCEPT_PENDING).unwrap()[0].intercept_id, "b");
        store.intercept_failed("b").unwrap();
        assert!(store.intercepts_for("c1", 7, INTERCEPT_PENDING).unwrap().is_empty());
        assert_eq!(store.intercepts_for("c1", 7, INTERCEPT_FAILED).unwrap().len(), 1);
        store.forget_intercept("b").unwrap();
        assert_eq!(store.intercepts().unwrap().len(), 1);
    }
}
