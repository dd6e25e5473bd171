//! The LSPS2 JIT channels this node sold: one row per `lsps2.buy` answered, keyed by the
//! intercept SCID handed out, moved along as the channel is opened and the fee is paid.
//! lightning-liquidity keeps the protocol state itself; this is the index the intercept
//! dispatcher and the operator read.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_secs, SqliteStore};
use crate::error::Result;

/// `lsps2.buy` answered; the client's invoice names the SCID, no payment yet.
pub const JIT_SOLD: &str = "sold";
/// The first payment arrived; the channel is being opened.
pub const JIT_OPENING: &str = "opening";
/// The channel is ready; the payment (less the fee) was forwarded over it.
pub const JIT_READY: &str = "ready";
/// The forwarded payment was claimed by the client: the opening fee is earned.
pub const JIT_PAID: &str = "paid";
/// The channel could not be opened; the payment was failed back.
pub const JIT_FAILED: &str = "failed";

/// A JIT channel as the engine recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct JitChannelRecord {
    pub scid: u64,
    pub client_node_id: String,
    pub user_channel_id: u128,
    /// What the client said it would receive (`payment_size_msat` of `lsps2.buy`), if it said.
    pub payment_size_msat: Option<u64>,
    /// The fee offer the client bought with.
    pub min_fee_msat: u64,
    pub proportional_ppm: u32,
    pub valid_until: String,
    pub state: String,
    pub channel_id: Option<String>,
    /// The fee taken from the first payment, once known.
    pub opening_fee_msat: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
}

const COLUMNS: &str = "scid, client_node_id, user_channel_id, payment_size_msat, min_fee_msat, proportional_ppm,
    valid_until, state, channel_id, opening_fee_msat, created_at, updated_at";

fn record(r: &Row<'_>) -> rusqlite::Result<JitChannelRecord> {
    let user_channel_id: String = r.get(2)?;
    Ok(JitChannelRecord {
        scid: r.get::<_, i64>(0)? as u64,
        client_node_id: r.get(1)?,
        // Written by `record_jit_sale` from a u128, so it parses; 0 would only mean a hand edit.
        user_channel_id: user_channel_id.parse().unwrap_or(0),
        payment_size_msat: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
        min_fee_msat: r.get::<_, i64>(4)? as u64,
        proportional_ppm: r.get(5)?,
        valid_until: r.get(6)?,
        state: r.get(7)?,
        channel_id: r.get(8)?,
        opening_fee_msat: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        created_at: r.get::<_, i64>(10)? as u64,
        updated_at: r.get::<_, i64>(11)? as u64,
    })
}

impl SqliteStore {
    /// Record a sale before the client is told its SCID, so a payment to it is always known.
    pub fn record_jit_sale(&self, r: &JitChannelRecord) -> Result<()> {
        let now = now_secs() as i64;
        self.lock().execute(
            "INSERT INTO jit_channels (scid, client_node_id, user_channel_id, payment_size_msat, min_fee_msat,
                proportional_ppm, valid_until, state, channel_id, opening_fee_msat, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, ?9, ?9)",
            params![
                r.scid as i64,
                r.client_node_id,
                r.user_channel_id.to_string(),
                r.payment_size_msat.map(|v| v as i64),
                r.min_fee_msat as i64,
                r.proportional_ppm,
                r.valid_until,
                JIT_SOLD,
                now
            ],
        )?;
        Ok(())
    }

    pub fn jit_by_scid(&self, scid: u64) -> Result<Option<JitChannelRecord>> {
        let conn = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM jit_channels WHERE scid = ?1");
        Ok(conn.query_row(&sql, params![scid as i64], record).optional()?)
    }

    pub fn jit_by_user_channel_id(&self, user_channel_id: u128) -> Result<Option<JitChannelRecord>> {
        let conn = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM jit_channels WHERE user_channel_id = ?1");
        Ok(conn.query_row(&sql, params![user_channel_id.to_string()], record).optional()?)
    }

    pub fn jit_by_channel_id(&self, channel_id: &str) -> Result<Option<JitChannelRecord>> {
        let conn = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM jit_channels WHERE channel_id = ?1");
        Ok(conn.query_row(&sql, params![channel_id], record).optional()?)
    }

    /// Move a JIT channel to `state`; a channel id or fee given is kept, None leaves the old one.
    pub fn jit_update(
        &self, scid: u64, state: &str, channel_id: Option<&str>, opening_fee_msat: Option<u64>,
    ) -> Result<()> {
        self.lock().execute(
            "UPDATE jit_channels SET state = ?2, channel_id = COALESCE(?3, channel_id),
                opening_fee_msat = COALESCE(?4, opening_fee_msat), updated_at = ?5 WHERE scid = ?1",
            params![scid as i64, state, channel_id, opening_fee_msat.map(|v| v as i64), now_secs() as i64],
        )?;
        Ok(())
    }

    /// The newest JIT channels first, `limit` of them from `offset`.
    pub fn jit_channels(&self, limit: u32, offset: u32) -> Result<Vec<JitChannelRecord>> {
        let conn = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM jit_channels ORDER BY created_at DESC, scid LIMIT ?1 OFFSET ?2");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![limit, offset], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(scid: u64, user_channel_id: u128) -> JitChannelRecord {
        JitChannelRecord {
            scid,
            client_node_id: "02aa".into(),
            user_channel_id,
            payment_size_msat: None,
            min_fee_msat: 2_000_000,
            proportional_ppm: 10_000,
            valid_until: "2030-01-01T00:00:00+00:00".into(),
            state: JIT_SOLD.into(),
            channel_id: None,
            opening_fee_msat: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_sale_is_found_by_scid_user_channel_id_and_then_channel_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        let big = u128::MAX - 7;
        store.record_jit_sale(&sale(42, big)).unwrap();
        assert!(store.record_jit_sale(&sale(42, 1)).is_err(), "an SCID is sold once");
        assert_eq!(store.jit_by_scid(42).unwrap().unwrap().user_channel_id, big);
        assert_eq!(store.jit_by_user_channel_id(big).unwrap().unwrap().scid, 42);
        assert!(store.jit_by_scid(43).unwrap().is_none());
        store.jit_update(42, JIT_READY, Some("c1"), None).unwrap();
        store.jit_update(42, JIT_PAID, None, Some(2_000_000)).unwrap();
        let r = store.jit_by_channel_id("c1").unwrap().unwrap();
        assert_eq!((r.state.as_str(), r.opening_fee_msat), (JIT_PAID, Some(2_000_000)));
        assert_eq!(store.jit_channels(10, 0).unwrap(), vec![r]);
    }
}
