//! The LSPS2 JIT channels this node sold: one row per `lsps2.buy` answered, keyed by the
//! intercept SCID handed out, moved along as the channel is opened and the fee is paid.
//! lightning-liquidity keeps the protocol state itself; this is the index the intercept
//! dispatcher and the operator read.

use rusqlite::{params, Connection, OptionalExtension, Row};

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
/// Sold, never paid, and its offer's `valid_until` passed (the periodic sweep says so).
pub const JIT_EXPIRED: &str = "expired";

/// How many of a client's (or everyone's) JIT sales and channels are not paid for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitUnpaid {
    /// The client's `sold` rows whose offer has not expired.
    pub client_sold: u64,
    /// Everyone's.
    pub total_sold: u64,
    /// The client's channels being opened or ready, the fee not yet earned, and those funded
    /// that closed unpaid lately (`failed` with a `channel_sat`, updated since the cut-off
    /// given to `jit_unpaid`): closing an unpaid channel must not free the limits at once.
    pub client_channels: u64,
    /// The capacity of everyone's such channels (satoshis).
    pub total_channel_sat: u64,
}

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
    /// The size of the channel funded (or about to be), satoshis; None while none was.
    pub channel_sat: Option<u64>,
    /// What forwards over the channel have skimmed so far: the fee is earned once this reaches
    /// `opening_fee_msat` (an MPP payment is skimmed part by part).
    pub skimmed_msat: u64,
}

/// What a client bought: the offer's terms and its SCID.
pub struct JitSale<'a> {
    pub scid: u64,
    pub client_node_id: &'a str,
    pub user_channel_id: u128,
    pub payment_size_msat: Option<u64>,
    pub min_fee_msat: u64,
    pub proportional_ppm: u32,
    pub valid_until: &'a str,
}

impl JitChannelRecord {
    /// A new sale's row: `sold`, nothing funded, nothing skimmed (the store sets the times).
    pub fn sold(s: JitSale<'_>) -> Self {
        Self {
            scid: s.scid,
            client_node_id: s.client_node_id.to_string(),
            user_channel_id: s.user_channel_id,
            payment_size_msat: s.payment_size_msat,
            min_fee_msat: s.min_fee_msat,
            proportional_ppm: s.proportional_ppm,
            valid_until: s.valid_until.to_string(),
            state: JIT_SOLD.into(),
            channel_id: None,
            opening_fee_msat: None,
            created_at: 0,
            updated_at: 0,
            channel_sat: None,
            skimmed_msat: 0,
        }
    }
}

const COLUMNS: &str = "scid, client_node_id, user_channel_id, payment_size_msat, min_fee_msat, proportional_ppm,
    valid_until, state, channel_id, opening_fee_msat, created_at, updated_at, channel_sat, skimmed_msat";

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
        channel_sat: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        skimmed_msat: r.get::<_, i64>(13)?.max(0) as u64,
    })
}

/// Inside the transaction that books a forward over `channel_id` (and queues its event): add
/// what it skimmed to the JIT channel's total, and book the fee `paid` once the total reaches
/// it. Booked with the event, so an event LDK replays after a failed write is not counted
/// twice. A `failed` row was `ready` when its channel closed: a claim settled on-chain still
/// earns its fee.
pub(super) fn add_skim(conn: &Connection, channel_id: &str, skimmed_msat: u64) -> Result<()> {
    if skimmed_msat == 0 {
        return Ok(());
    }
    conn.execute(
        "UPDATE jit_channels SET skimmed_msat = skimmed_msat + ?2,
            state = CASE WHEN state IN (?3, ?4) AND opening_fee_msat IS NOT NULL
                AND skimmed_msat + ?2 >= opening_fee_msat THEN ?5 ELSE state END,
            updated_at = ?6
         WHERE channel_id = ?1",
        params![channel_id, skimmed_msat as i64, JIT_READY, JIT_FAILED, JIT_PAID, now_secs() as i64],
    )?;
    Ok(())
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

    /// Record the channel `scid`'s JIT channel got (at `ChannelReady`), its state unchanged.
    pub fn jit_record_channel(&self, scid: u64, channel_id: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE jit_channels SET channel_id = ?2, updated_at = ?3 WHERE scid = ?1",
            params![scid as i64, channel_id, now_secs() as i64],
        )?;
        Ok(())
    }

    /// Record the size of the channel about to be funded for `scid`, with the state `opening`,
    /// if its sale is still unopened (`sold`, or `expired` after the payment came in time).
    /// false: the sweep abandoned it first (`jit_fail_unopened`), do not fund it. The two
    /// conditional updates decide, under the store's lock, which of them wins.
    pub fn jit_opening(&self, scid: u64, channel_sat: u64, opening_fee_msat: u64) -> Result<bool> {
        let n = self.lock().execute(
            "UPDATE jit_channels SET state = ?2, channel_sat = ?3, opening_fee_msat = ?4, updated_at = ?5
             WHERE scid = ?1 AND state IN (?6, ?7)",
            params![
                scid as i64,
                JIT_OPENING,
                channel_sat as i64,
                opening_fee_msat as i64,
                now_secs() as i64,
                JIT_SOLD,
                JIT_EXPIRED
            ],
        )?;
        Ok(n == 1)
    }

    /// Mark `scid` `failed` if its sale is still unopened (`sold` or `expired`). true: the sale
    /// is dead now (failed by this call, or before: left as it was), so lightning-liquidity
    /// may be told to abandon it; false: it is not (being opened meanwhile, or further along;
    /// or unknown), leave it alone. Read and written under one lock, so `jit_opening` and this
    /// decide which of them wins.
    pub fn jit_fail_unopened(&self, scid: u64) -> Result<bool> {
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE jit_channels SET state = ?2, updated_at = ?3 WHERE scid = ?1 AND state IN (?4, ?5)",
            params![scid as i64, JIT_FAILED, now_secs() as i64, JIT_SOLD, JIT_EXPIRED],
        )?;
        if n == 1 {
            return Ok(true);
        }
        let state: Option<String> = conn
            .query_row("SELECT state FROM jit_channels WHERE scid = ?1", params![scid as i64], |r| r.get(0))
            .optional()?;
        Ok(state.as_deref() == Some(JIT_FAILED))
    }

    /// Move `scid` to `state` when nothing was funded for it (re-armed after a failed open, or
    /// given up before any funding): its `channel_sat` is cleared, so it never counts against
    /// the limits on funded channels (`jit_unpaid`).
    pub fn jit_update_unfunded(&self, scid: u64, state: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE jit_channels SET state = ?2, channel_sat = NULL, updated_at = ?3 WHERE scid = ?1",
            params![scid as i64, state, now_secs() as i64],
        )?;
        Ok(())
    }

    /// A channel of `channel_sat` was funded for the `failed` sale `scid` after all (it was
    /// failed as never funded at start-up, and its channel's close came after): record it, as
    /// of now, so it counts against the limits like any channel that closed unpaid.
    pub fn jit_failed_was_funded(&self, scid: u64, channel_sat: u64) -> Result<()> {
        self.lock().execute(
            "UPDATE jit_channels SET channel_sat = ?2, updated_at = ?3 WHERE scid = ?1 AND state = ?4",
            params![scid as i64, channel_sat as i64, now_secs() as i64, JIT_FAILED],
        )?;
        Ok(())
    }

    /// What `client` and everyone have bought or been funded and not paid for, at `now`
    /// (RFC 3339 in UTC with whole seconds, as `valid_until` is written: the text compares
    /// like the time). Funded channels that closed unpaid count while updated at or after
    /// `closed_since` (Unix seconds).
    pub fn jit_unpaid(&self, client: &str, now: &str, closed_since: u64) -> Result<JitUnpaid> {
        let conn = self.lock();
        let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<u64> {
            conn.query_row(sql, p, |r| r.get::<_, i64>(0)).map(|v| v.max(0) as u64)
        };
        let sold = "SELECT COUNT(*) FROM jit_channels WHERE state = 'sold' AND valid_until >= ?1";
        let since = closed_since as i64;
        let unpaid = "(state IN ('opening', 'ready')
            OR (state = 'failed' AND channel_sat IS NOT NULL AND updated_at >= ?1))";
        Ok(JitUnpaid {
            client_sold: count(&format!("{sold} AND client_node_id = ?2"), &[&now, &client])?,
            total_sold: count(sold, &[&now])?,
            client_channels: count(
                &format!("SELECT COUNT(*) FROM jit_channels WHERE {unpaid} AND client_node_id = ?2"),
                &[&since, &client],
            )?,
            total_channel_sat: count(
                &format!("SELECT COALESCE(SUM(channel_sat), 0) FROM jit_channels WHERE {unpaid}"),
                &[&since],
            )?,
        })
    }

    /// Mark the unpaid sales whose offer is past at `now` (as in `jit_unpaid`) `expired`;
    /// how many.
    pub fn jit_expire_sold(&self, now: &str) -> Result<usize> {
        Ok(self.lock().execute(
            "UPDATE jit_channels SET state = ?1, updated_at = ?2 WHERE state = ?3 AND valid_until < ?4",
            params![JIT_EXPIRED, now_secs() as i64, JIT_SOLD, now],
        )?)
    }

    /// Delete the sales that ended without a channel and were last updated before `before`
    /// (Unix seconds): `expired` offers, and `failed` sales nothing was funded for. A buy costs
    /// a client nothing, so without this the table would grow by one row per buy for ever;
    /// sales that got a channel stay (the operator's record of what was funded). How many.
    pub fn jit_delete_stale(&self, before: u64) -> Result<usize> {
        Ok(self.lock().execute(
            "DELETE FROM jit_channels WHERE updated_at < ?1
                AND (state = ?2 OR (state = ?3 AND channel_sat IS NULL AND channel_id IS NULL))",
            params![before as i64, JIT_EXPIRED, JIT_FAILED],
        )?)
    }

    /// Every JIT channel in `state` (the start-up check reads the `opening` ones: a handful).
    pub fn jit_in_state(&self, state: &str) -> Result<Vec<JitChannelRecord>> {
        let conn = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM jit_channels WHERE state = ?1 ORDER BY scid");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![state], record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
        JitChannelRecord::sold(JitSale {
            scid,
            client_node_id: "02aa",
            user_channel_id,
            payment_size_msat: None,
            min_fee_msat: 2_000_000,
            proportional_ppm: 10_000,
            valid_until: "2030-01-01T00:00:00+00:00",
        })
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

    #[test]
    fn unpaid_sales_and_channels_are_counted_per_client_and_expired_sales_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        let now = "2029-01-01T00:00:00+00:00";
        let mut other = sale(5, 5);
        other.client_node_id = "02bb".into();
        store.record_jit_sale(&other).unwrap();
        store.record_jit_sale(&sale(1, 1)).unwrap();
        let mut old = sale(2, 2);
        old.valid_until = "2028-12-31T23:59:59+00:00".into();
        store.record_jit_sale(&old).unwrap();
        store.record_jit_sale(&sale(3, 3)).unwrap();
        store.record_jit_sale(&sale(4, 4)).unwrap();
        assert!(store.jit_opening(3, 150_000, 2_000_000).unwrap());
        assert!(store.jit_opening(4, 250_000, 2_000_000).unwrap());
        store.jit_update(4, JIT_PAID, None, None).unwrap();
        assert!(store.jit_opening(5, 1_000_000, 2_000_000).unwrap());
        store.jit_update(5, JIT_READY, Some("c5"), None).unwrap();
        let unpaid = store.jit_unpaid("02aa", now, 0).unwrap();
        // The expired sale (2) and the paid channel (4) count nowhere.
        assert_eq!(
            unpaid,
            JitUnpaid { client_sold: 1, total_sold: 1, client_channels: 1, total_channel_sat: 1_150_000 }
        );
        assert_eq!(store.jit_by_scid(3).unwrap().unwrap().state, JIT_OPENING);
        assert_eq!(store.jit_expire_sold(now).unwrap(), 1);
        assert_eq!(store.jit_by_scid(2).unwrap().unwrap().state, JIT_EXPIRED);
        assert_eq!(store.jit_by_scid(1).unwrap().unwrap().state, JIT_SOLD);
        assert_eq!(store.jit_expire_sold(now).unwrap(), 0);
        assert_eq!(store.jit_in_state(JIT_OPENING).unwrap().iter().map(|r| r.scid).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn a_funded_channel_that_closed_unpaid_counts_against_the_limits_for_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        let now = "2029-01-01T00:00:00+00:00";
        for scid in 1..=4 {
            store.record_jit_sale(&sale(scid, u128::from(scid))).unwrap();
            assert!(store.jit_opening(scid, 100_000 * scid, 2_000_000).unwrap());
        }
        // 1 closed unpaid just now, 2 a while ago; 3 was never funded (failed before any funding);
        // 4 was re-armed after a failed open, then given up.
        store.jit_update(1, JIT_FAILED, Some("c1"), None).unwrap();
        store.jit_update(2, JIT_FAILED, Some("c2"), None).unwrap();
        store.lock().execute("UPDATE jit_channels SET updated_at = 1000 WHERE scid = 2", []).unwrap();
        store.jit_update_unfunded(3, JIT_FAILED).unwrap();
        store.jit_update_unfunded(4, JIT_SOLD).unwrap();
        assert!(store.jit_fail_unopened(4).unwrap());
        assert_eq!(store.jit_by_scid(4).unwrap().unwrap().channel_sat, None);
        let since = now_secs() - 86_400;
        let u = store.jit_unpaid("02aa", now, since).unwrap();
        assert_eq!((u.client_channels, u.total_channel_sat), (1, 100_000));
        // With a cut-off before the older close, both funded closes count.
        let u = store.jit_unpaid("02aa", now, 1000).unwrap();
        assert_eq!((u.client_channels, u.total_channel_sat), (2, 300_000));
        assert_eq!(store.jit_unpaid("02bb", now, 1000).unwrap().client_channels, 0);
        // A close that comes after the sale was failed as never funded puts it back in the count.
        store.jit_failed_was_funded(3, 300_000).unwrap();
        let u = store.jit_unpaid("02aa", now, since).unwrap();
        assert_eq!((u.client_channels, u.total_channel_sat), (2, 400_000));
    }

    #[test]
    fn sales_that_ended_without_a_channel_are_deleted_a_day_later_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        for scid in 1..=8 {
            store.record_jit_sale(&sale(scid, u128::from(scid))).unwrap();
        }
        store.jit_update(1, JIT_EXPIRED, None, None).unwrap();
        store.jit_update_unfunded(2, JIT_FAILED).unwrap();
        assert!(store.jit_opening(3, 100_000, 1).unwrap());
        store.jit_update(3, JIT_FAILED, Some("c3"), None).unwrap();
        assert!(store.jit_opening(4, 100_000, 1).unwrap());
        store.jit_update(4, JIT_PAID, Some("c4"), None).unwrap();
        store.jit_update(6, JIT_EXPIRED, None, None).unwrap();
        store.jit_update_unfunded(7, JIT_FAILED).unwrap();
        // 8 was failed unfunded but its channel id is known: kept (it got as far as a channel).
        store.jit_update_unfunded(8, JIT_FAILED).unwrap();
        store.jit_record_channel(8, "c8").unwrap();
        // 1-5 and 8 were last touched long ago; 6 and 7 ended a moment ago.
        store.lock().execute("UPDATE jit_channels SET updated_at = 1000 WHERE scid NOT IN (6, 7)", []).unwrap();
        assert_eq!(store.jit_delete_stale(2000).unwrap(), 2);
        let mut left: Vec<u64> = store.jit_channels(50, 0).unwrap().iter().map(|r| r.scid).collect();
        left.sort();
        assert_eq!(left, vec![3, 4, 5, 6, 7, 8]);
        assert_eq!(store.jit_delete_stale(2000).unwrap(), 0);
    }

    fn forward_over(channel_id: &str) -> crate::io::ForwardRecord {
        crate::io::ForwardRecord {
            id: 0,
            prev_channel_id: Some("payer".into()),
            next_channel_id: Some(channel_id.into()),
            prev_node_id: None,
            next_node_id: None,
            fee_earned_msat: None,
            outbound_amount_msat: None,
            claim_from_onchain_tx: false,
            created_at: 0,
        }
    }

    #[test]
    fn the_fee_is_paid_once_the_skims_of_its_parts_add_up_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        for scid in 1..=2 {
            store.record_jit_sale(&sale(scid, u128::from(scid))).unwrap();
            assert!(store.jit_opening(scid, 150_000, 2_000_000).unwrap());
        }
        store.jit_update(1, JIT_READY, Some("c1"), None).unwrap();
        let skim = |channel: &str, msat: u64| {
            store.push_forward_event("payment_forwarded", "{}", &forward_over(channel), msat).unwrap();
        };
        // One part of an MPP first payment: skimmed, not yet the fee.
        skim("c1", 1_200_000);
        let r = store.jit_by_scid(1).unwrap().unwrap();
        assert_eq!((r.state.as_str(), r.skimmed_msat), (JIT_READY, 1_200_000));
        // A forward over another channel, and one that skimmed nothing, change nothing.
        skim("c9", 5_000_000);
        skim("c1", 0);
        assert_eq!(store.jit_by_scid(1).unwrap().unwrap().skimmed_msat, 1_200_000);
        skim("c1", 800_000);
        let r = store.jit_by_scid(1).unwrap().unwrap();
        assert_eq!((r.state.as_str(), r.skimmed_msat), (JIT_PAID, 2_000_000));
        // The forwards and their events are booked as before.
        assert_eq!(store.forward_totals().unwrap().count, 4);
        // A channel that closed ready (row failed) still earns a claim settled on-chain.
        store.jit_update(2, JIT_FAILED, Some("c2"), None).unwrap();
        skim("c2", 2_500_000);
        assert_eq!(store.jit_by_scid(2).unwrap().unwrap().state, JIT_PAID);
    }

    #[test]
    fn opening_and_abandoning_an_unopened_sale_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        for scid in 1..=3 {
            store.record_jit_sale(&sale(scid, u128::from(scid))).unwrap();
        }
        store.jit_update(2, JIT_EXPIRED, None, None).unwrap();
        // The sweep abandons 1 first: the open that was queued must not fund it.
        assert!(store.jit_fail_unopened(1).unwrap());
        assert!(!store.jit_opening(1, 150_000, 1).unwrap());
        assert_eq!(store.jit_by_scid(1).unwrap().unwrap().state, JIT_FAILED);
        // A payment that came in before the offer expired still opens; then the sweep keeps off
        // (it read the sale `expired` before the open: it must not abandon it now).
        assert!(store.jit_opening(2, 150_000, 1).unwrap());
        assert!(!store.jit_fail_unopened(2).unwrap());
        assert_eq!(store.jit_by_scid(2).unwrap().unwrap().state, JIT_OPENING);
        // A sale failed before is still dead (its queued parts may need abandoning again), and
        // stays as it was; one nobody sold is not.
        assert!(store.jit_fail_unopened(3).unwrap());
        store.lock().execute("UPDATE jit_channels SET updated_at = 7 WHERE scid = 3", []).unwrap();
        assert!(store.jit_fail_unopened(3).unwrap());
        assert_eq!(store.jit_by_scid(3).unwrap().unwrap().updated_at, 7);
        assert!(!store.jit_fail_unopened(99).unwrap());
    }
}
