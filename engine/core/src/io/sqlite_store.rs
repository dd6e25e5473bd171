//! SQLite storage: LDK's key-value namespaces, the engine's event queue and payment records.
//! The schema is in `migrations`.
//!
//! One file, WAL journal, synchronous=FULL: a write returns only once it is on disk, which is
//! what LDK requires of a monitor persister before it sends the next commitment update.

use lightning::io;
use std::path::Path;
use std::sync::Mutex;

use lightning::util::persist::KVStoreSync;
use rusqlite::{params, Connection, OptionalExtension};

use super::forwards::{check_page, insert_forward, ForwardRecord};
use super::jit::add_skim;
use super::migrations::migrate;
use super::now_secs;
use crate::error::{Error, Result};

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// A payment as the engine records it; direction is "inbound" or "outbound".
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub payment_hash: String,
    pub direction: String,
    pub status: String,
    pub amount_msat: Option<u64>,
    pub fee_msat: Option<u64>,
    pub preimage: Option<String>,
    pub bolt11: Option<String>,
    pub failure: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_SUCCEEDED: &str = "succeeded";
pub const STATUS_FAILED: &str = "failed";

fn io_err(e: rusqlite::Error) -> io::Error {
    io::Error::new(io::ErrorKind::Other, e.to_string())
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn =
            Connection::open(path).map_err(|e| Error::Storage(format!("cannot open {}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate(&mut conn, path)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A poisoned lock means a thread panicked mid-statement; SQLite itself kept the file
        // consistent, so carrying on with the connection is safe.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- event queue -------------------------------------------------------------------

    /// Append an event; with `payment` the payment row is updated in the same transaction so
    /// the event and the state it describes become durable together.
    pub fn push_event(&self, kind: &str, body: &str, payment: Option<&PaymentRecord>) -> Result<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if let Some(p) = payment {
            upsert_payment(&tx, p)?;
            if p.direction == "inbound" && p.status == STATUS_SUCCEEDED {
                // An LSPS1 order's invoice: the order is paid with the payment's own event.
                super::lsps1::mark_paid(&tx, &p.payment_hash)?;
            }
        }
        let id = insert_event(&tx, kind, body)?;
        tx.commit()?;
        Ok(id)
    }

    /// Append a `payment_forwarded` event and book the forward in the same transaction, so the
    /// forwarding history holds exactly the forwards whose events were queued; with it what the
    /// forward skimmed, added to its JIT channel's total (`jit::add_skim`).
    pub fn push_forward_event(
        &self, kind: &str, body: &str, forward: &ForwardRecord, skimmed_msat: u64,
    ) -> Result<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        insert_forward(&tx, forward)?;
        if let Some(next) = &forward.next_channel_id {
            add_skim(&tx, next, skimmed_msat)?;
        }
        let id = insert_event(&tx, kind, body)?;
        tx.commit()?;
        Ok(id)
    }

    /// Append an onion-message event (lane 1) unless a bound says no: `Ok(None)` means it was
    /// refused and nothing was written. Bounds: `max_total` message events in all, and with
    /// `per_peer`, at most that many events of this kind naming `peer`. The counts and the
    /// insert share one transaction, so concurrent writers cannot overshoot.
    pub fn push_message_event(
        &self, kind: &str, body: &str, peer: Option<&str>, max_total: u64, per_peer: Option<u64>,
    ) -> Result<Option<i64>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row("SELECT COUNT(*) FROM events WHERE lane = 1", [], |r| r.get(0))?;
        if total as u64 >= max_total {
            return Ok(None);
        }
        if let (Some(p), Some(cap)) = (peer, per_peer) {
            let n: i64 =
                tx.query_row("SELECT COUNT(*) FROM events WHERE peer = ?1 AND kind = ?2", params![p, kind], |r| {
                    r.get(0)
                })?;
            if n as u64 >= cap {
                return Ok(None);
            }
        }
        tx.execute(
            "INSERT INTO events (kind, body, created_at, lane, peer) VALUES (?1, ?2, ?3, 1, ?4)",
            params![kind, body, now_secs() as i64, peer],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Some(id))
    }

    /// Events waiting per lane: (lane 0, lane 1).
    pub fn queue_depth(&self) -> Result<(u64, u64)> {
        let conn = self.lock();
        let count = |lane: i64| -> Result<u64> {
            Ok(conn.query_row("SELECT COUNT(*) FROM events WHERE lane = ?1", params![lane], |r| r.get::<_, i64>(0))?
                as u64)
        };
        Ok((count(0)?, count(1)?))
    }

    /// The event to deliver next: the oldest of lane 0, else the oldest of lane 1.
    pub fn first_event(&self) -> Result<Option<(i64, String, String)>> {
        Ok(self
            .lock()
            .query_row("SELECT id, kind, body FROM events ORDER BY lane, id LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?)
    }

    /// Acknowledge an event: it will not be delivered again. Returns false for an unknown id.
    pub fn remove_event(&self, id: i64) -> Result<bool> {
        Ok(self.lock().execute("DELETE FROM events WHERE id = ?1", params![id])? > 0)
    }

    pub fn pending_event_count(&self) -> Result<u64> {
        Ok(self.lock().query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
    }

    // ---- payments ------------------------------------------------------------------------

    pub fn upsert_payment(&self, p: &PaymentRecord) -> Result<()> {
        let conn = self.lock();
        upsert_payment(&conn, p)
    }

    pub fn payment(&self, payment_id: &str) -> Result<Option<PaymentRecord>> {
        let conn = self.lock();
        Ok(conn
            .query_row(&format!("{PAYMENT_SELECT} WHERE payment_id = ?1"), params![payment_id], payment_from_row)
            .optional()?)
    }

    pub fn payments(&self) -> Result<Vec<PaymentRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("{PAYMENT_SELECT} ORDER BY created_at, payment_id"))?;
        let rows = stmt.query_map([], payment_from_row)?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// One page of payments, newest first, optionally only one `direction` and/or `status`;
    /// `invoices_only`: inbound payments of invoices this node created (they carry the bolt11).
    pub fn payments_page(
        &self, direction: Option<&str>, status: Option<&str>, invoices_only: bool, limit: u32, offset: u64,
    ) -> Result<Vec<PaymentRecord>> {
        check_page(limit)?;
        // Fixed SQL with optional parameters (NULL matches everything): no query text is built
        // from the caller's values. Newest first: created_at has whole seconds, so ties go by
        // rowid, the order the payments were first recorded (an upsert keeps its row's rowid).
        let sql = format!(
            "{PAYMENT_SELECT} WHERE (?1 IS NULL OR direction = ?1) AND (?2 IS NULL OR status = ?2)
               AND (?3 = 0 OR (direction = 'inbound' AND bolt11 IS NOT NULL))
             ORDER BY created_at DESC, rowid DESC LIMIT ?4 OFFSET ?5"
        );
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![direction, status, invoices_only, limit, offset as i64], payment_from_row)?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// How many payments there are of each (direction, status), sorted: what /metrics exports,
    /// counted in SQL so a scrape never reads the records (preimages included) over the FFI.
    pub fn payment_counts(&self) -> Result<Vec<(String, String, u64)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT direction, status, COUNT(*) FROM payments GROUP BY direction, status ORDER BY direction, status",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    // ---- peers ---------------------------------------------------------------------------

    pub fn save_peer(&self, node_id: &str, address: &str) -> Result<()> {
        self.lock().execute(
            "INSERT INTO peers (node_id, address, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(node_id) DO UPDATE SET address = excluded.address, updated_at = excluded.updated_at",
            params![node_id, address, now_secs() as i64],
        )?;
        Ok(())
    }

    pub fn peers(&self) -> Result<Vec<(String, String)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT node_id, address FROM peers")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    pub fn forget_peer(&self, node_id: &str) -> Result<()> {
        self.lock().execute("DELETE FROM peers WHERE node_id = ?1", params![node_id])?;
        Ok(())
    }
}

const PAYMENT_SELECT: &str = "SELECT payment_id, payment_hash, direction, status, amount_msat, fee_msat, preimage, bolt11, failure, created_at, updated_at FROM payments";

fn payment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PaymentRecord> {
    Ok(PaymentRecord {
        payment_id: r.get(0)?,
        payment_hash: r.get(1)?,
        direction: r.get(2)?,
        status: r.get(3)?,
        amount_msat: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        fee_msat: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
        preimage: r.get(6)?,
        bolt11: r.get(7)?,
        failure: r.get(8)?,
        created_at: r.get::<_, i64>(9)? as u64,
        updated_at: r.get::<_, i64>(10)? as u64,
    })
}

/// Append a lane-0 event (HTLCs, payments, channels) inside the caller's transaction; its id.
fn insert_event(conn: &Connection, kind: &str, body: &str) -> Result<i64> {
    conn.execute(
        "INSERT INTO events (kind, body, created_at) VALUES (?1, ?2, ?3)",
        params![kind, body, now_secs() as i64],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn upsert_payment(conn: &Connection, p: &PaymentRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO payments (payment_id, payment_hash, direction, status, amount_msat, fee_msat,
            preimage, bolt11, failure, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT(payment_id) DO UPDATE SET status = excluded.status,
            amount_msat = COALESCE(excluded.amount_msat, payments.amount_msat),
            fee_msat = COALESCE(excluded.fee_msat, payments.fee_msat),
            preimage = COALESCE(excluded.preimage, payments.preimage),
            bolt11 = COALESCE(excluded.bolt11, payments.bolt11),
            failure = excluded.failure, updated_at = excluded.updated_at",
        params![
            p.payment_id,
            p.payment_hash,
            p.direction,
            p.status,
            p.amount_msat.map(|v| v as i64),
            p.fee_msat.map(|v| v as i64),
            p.preimage,
            p.bolt11,
            p.failure,
            p.created_at as i64,
            p.updated_at as i64
        ],
    )?;
    Ok(())
}

impl KVStoreSync for SqliteStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        self.lock()
            .query_row(
                "SELECT value FROM ldk_kv WHERE primary_ns = ?1 AND secondary_ns = ?2 AND key = ?3",
                params![primary, secondary, key],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()
            .map_err(io_err)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{primary}/{secondary}/{key} not found")))
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        self.lock()
            .execute(
                "INSERT INTO ldk_kv (primary_ns, secondary_ns, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(primary_ns, secondary_ns, key) DO UPDATE SET value = excluded.value",
                params![primary, secondary, key, buf],
            )
            .map(|_| ())
            .map_err(io_err)
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, _lazy: bool) -> io::Result<()> {
        self.lock()
            .execute(
                "DELETE FROM ldk_kv WHERE primary_ns = ?1 AND secondary_ns = ?2 AND key = ?3",
                params![primary, secondary, key],
            )
            .map(|_| ())
            .map_err(io_err)
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT key FROM ldk_kv WHERE primary_ns = ?1 AND secondary_ns = ?2").map_err(io_err)?;
        let rows = stmt.query_map(params![primary, secondary], |r| r.get::<_, String>(0)).map_err(io_err)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_roundtrip_and_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        assert_eq!(store.read("a", "", "k").unwrap_err().kind(), io::ErrorKind::NotFound);
        store.write("a", "", "k", vec![1, 2]).unwrap();
        store.write("a", "", "k", vec![3]).unwrap();
        store.write("a", "b", "j", vec![4]).unwrap();
        assert_eq!(store.read("a", "", "k").unwrap(), vec![3]);
        assert_eq!(store.list("a", "").unwrap(), vec!["k".to_string()]);
        store.remove("a", "", "k", false).unwrap();
        assert!(store.list("a", "").unwrap().is_empty());
        assert_eq!(store.list("a", "b").unwrap(), vec!["j".to_string()]);
    }

    #[test]
    fn events_survive_reopen_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.push_event("a", "{}", None).unwrap();
            store.push_event("b", "{}", None).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let (id, kind, _) = store.first_event().unwrap().unwrap();
        assert_eq!(kind, "a");
        assert!(store.remove_event(id).unwrap());
        assert!(!store.remove_event(id).unwrap());
        assert_eq!(store.first_event().unwrap().unwrap().1, "b");
    }

    fn payment(id: &str, direction: &str, status: &str, bolt11: Option<&str>, at: u64) -> PaymentRecord {
        PaymentRecord {
            payment_id: id.into(),
            payment_hash: id.into(),
            direction: direction.into(),
            status: status.into(),
            amount_msat: Some(1000),
            fee_msat: None,
            preimage: Some("secret".into()),
            bolt11: bolt11.map(String::from),
            failure: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn payments_are_paged_newest_first_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        store.upsert_payment(&payment("a", "outbound", STATUS_SUCCEEDED, Some("lnbcrt1a"), 1)).unwrap();
        store.upsert_payment(&payment("b", "inbound", STATUS_PENDING, Some("lnbcrt1b"), 2)).unwrap();
        store.upsert_payment(&payment("c", "inbound", STATUS_SUCCEEDED, None, 3)).unwrap(); // keysend
        store.upsert_payment(&payment("d", "outbound", STATUS_FAILED, None, 4)).unwrap();
        store.upsert_payment(&payment("e", "inbound", STATUS_SUCCEEDED, Some("lnbcrt1e"), 5)).unwrap();
        let ids = |v: Vec<PaymentRecord>| v.into_iter().map(|p| p.payment_id).collect::<Vec<_>>();
        assert_eq!(ids(store.payments_page(None, None, false, 500, 0).unwrap()), ["e", "d", "c", "b", "a"]);
        assert_eq!(ids(store.payments_page(None, None, false, 2, 1).unwrap()), ["d", "c"]);
        assert_eq!(ids(store.payments_page(Some("inbound"), None, false, 10, 0).unwrap()), ["e", "c", "b"]);
        assert_eq!(ids(store.payments_page(None, Some(STATUS_SUCCEEDED), false, 10, 0).unwrap()), ["e", "c", "a"]);
        assert_eq!(ids(store.payments_page(Some("outbound"), Some("failed"), false, 10, 0).unwrap()), ["d"]);
        // Invoices: inbound with the bolt11 this node created; a keysend or a paid invoice is not one.
        assert_eq!(ids(store.payments_page(None, None, true, 10, 0).unwrap()), ["e", "b"]);
        assert!(store.payments_page(Some("sideways"), None, false, 10, 0).unwrap().is_empty());
        assert!(store.payments_page(None, None, false, 10, 5).unwrap().is_empty());
        assert!(store.payments_page(None, None, false, 0, 0).is_err());
        assert!(store.payments_page(None, None, false, 501, 0).is_err());
    }

    #[test]
    fn payments_in_one_second_are_listed_newest_recorded_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        // Ids chosen so that their text order is the opposite of the order they were recorded in.
        for id in ["z", "m", "a"] {
            store.upsert_payment(&payment(id, "outbound", STATUS_PENDING, None, 7)).unwrap();
        }
        // An update (the payment succeeding) keeps its place.
        store.upsert_payment(&payment("z", "outbound", STATUS_SUCCEEDED, None, 7)).unwrap();
        let ids = |v: Vec<PaymentRecord>| v.into_iter().map(|p| p.payment_id).collect::<Vec<_>>();
        assert_eq!(ids(store.payments_page(None, None, false, 10, 0).unwrap()), ["a", "m", "z"]);
    }

    #[test]
    fn payments_are_counted_by_direction_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let store = SqliteStore::open(&path).unwrap();
            assert!(store.payment_counts().unwrap().is_empty());
            store.upsert_payment(&payment("a", "outbound", STATUS_SUCCEEDED, None, 1)).unwrap();
            store.upsert_payment(&payment("b", "inbound", STATUS_PENDING, Some("lnbcrt1b"), 2)).unwrap();
            store.upsert_payment(&payment("c", "inbound", STATUS_SUCCEEDED, None, 3)).unwrap();
            store.upsert_payment(&payment("d", "outbound", STATUS_SUCCEEDED, None, 4)).unwrap();
            store.upsert_payment(&payment("e", "inbound", STATUS_SUCCEEDED, None, 5)).unwrap();
            // An update moves a payment between counts; it is not counted twice.
            store.upsert_payment(&payment("b", "inbound", STATUS_FAILED, Some("lnbcrt1b"), 6)).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let counts = store.payment_counts().unwrap();
        let want = [("inbound", "failed", 1), ("inbound", "succeeded", 2), ("outbound", "succeeded", 2)];
        assert_eq!(counts, want.iter().map(|&(d, s, n)| (d.to_string(), s.to_string(), n)).collect::<Vec<_>>());
    }

    #[test]
    fn message_lane_waits_behind_other_events_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        let kind = "onion_message_intercepted";
        for _ in 0..3 {
            assert!(store.push_message_event(kind, "{}", Some("02aa"), 10, Some(3)).unwrap().is_some());
        }
        // The fourth for the same offline node is refused; another node still fits.
        assert!(store.push_message_event(kind, "{}", Some("02aa"), 10, Some(3)).unwrap().is_none());
        assert!(store.push_message_event(kind, "{}", Some("02bb"), 10, Some(3)).unwrap().is_some());
        // An HTLC event queued after the messages is delivered before them.
        let htlc = store.push_event("htlc_intercepted", "{}", None).unwrap();
        assert_eq!(store.first_event().unwrap().unwrap().0, htlc);
        assert_eq!(store.queue_depth().unwrap(), (1, 4));
        // The total bound counts every message event, whatever its peer.
        for i in 0..6 {
            let peer = format!("03{i:02}");
            assert!(store.push_message_event(kind, "{}", Some(&peer), 10, Some(3)).unwrap().is_some());
        }
        assert!(store.push_message_event("onion_message_received", "{}", None, 10, None).unwrap().is_none());
        store.remove_event(htlc).unwrap();
        assert_eq!(store.first_event().unwrap().unwrap().1, kind);
    }
}
