//! The intercepted HTLCs the engine handed to lightning-liquidity's LSPS2 service, kept until
//! LDK no longer holds them. LDK does not hand an `HTLCIntercepted` event out again once it
//! was handled, and lightning-liquidity keeps no timer: after a restart this table is the only
//! record that such an HTLC is waiting, so the MPP timeout (`lsps::timeout`) can still end it.
//! Bounded by the HTLCs LDK itself holds: a row goes when its HTLC does.

use rusqlite::params;

use super::SqliteStore;
use crate::error::Result;

impl SqliteStore {
    /// Record that intercept `intercept_id` (hex) for JIT SCID `scid` was handed over at
    /// `handed_at` (Unix seconds); a second record of the same HTLC (a replayed event) keeps
    /// the first.
    pub fn jit_htlc_handed(&self, intercept_id: &str, scid: u64, handed_at: u64) -> Result<()> {
        self.lock().execute(
            "INSERT OR IGNORE INTO jit_htlcs (intercept_id, scid, handed_at) VALUES (?1, ?2, ?3)",
            params![intercept_id, scid as i64, handed_at as i64],
        )?;
        Ok(())
    }

    /// Every HTLC recorded as handed over: (intercept id, SCID).
    pub fn jit_htlcs(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT intercept_id, scid FROM jit_htlcs ORDER BY handed_at, intercept_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Forget these HTLCs (LDK no longer holds them, or their sale was given up), in one
    /// transaction.
    pub fn jit_htlcs_forget(&self, intercept_ids: &[String]) -> Result<()> {
        if intercept_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for id in intercept_ids {
            tx.execute("DELETE FROM jit_htlcs WHERE intercept_id = ?1", params![id])?;
        }
        tx.commit()?;
        Ok(())
    }
}
