//! The schema of node.sqlite, as numbered steps recorded in `PRAGMA user_version`. A file
//! written before versioning (user_version 0, tables present) is adopted as version 1, which
//! is exactly that schema; later steps run once each, in a transaction with their version
//! bump, so a crash leaves the file at one version or the next, never between.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Step `i` (0-based) takes the schema from version `i` to `i + 1`.
const STEPS: &[&str] = &[
    // 1: the schema before versioning. IF NOT EXISTS, so an unversioned file is adopted as-is.
    "CREATE TABLE IF NOT EXISTS ldk_kv (
        primary_ns TEXT NOT NULL, secondary_ns TEXT NOT NULL, key TEXT NOT NULL,
        value BLOB NOT NULL, PRIMARY KEY (primary_ns, secondary_ns, key));
     CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL,
        created_at INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS payments (
        payment_id TEXT PRIMARY KEY, payment_hash TEXT NOT NULL, direction TEXT NOT NULL,
        status TEXT NOT NULL, amount_msat INTEGER, fee_msat INTEGER, preimage TEXT,
        bolt11 TEXT, failure TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS payments_hash ON payments(payment_hash);
     CREATE TABLE IF NOT EXISTS peers (
        node_id TEXT PRIMARY KEY, address TEXT NOT NULL, updated_at INTEGER NOT NULL);",
    // 2: list_payments orders by (created_at, payment_id); without this index every listing
    // sorts the whole table, which grows by one row per payment forever. Nothing looks
    // payments up by hash (payment_id is the key), so that index only cost writes.
    "CREATE INDEX IF NOT EXISTS payments_created ON payments(created_at, payment_id);
     DROP INDEX IF EXISTS payments_hash;",
    // 3: two lanes in the event queue. Onion-message traffic (lane 1) is served after
    // everything else (lane 0: HTLCs, payments, channels), so a flood of messages never stands
    // between the application and an intercepted HTLC; `peer` lets the queue bound one peer.
    "ALTER TABLE events ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE events ADD COLUMN peer TEXT;
     UPDATE events SET lane = 1 WHERE kind IN
        ('onion_message_received', 'onion_message_intercepted', 'onion_message_peer_connected');
     CREATE INDEX IF NOT EXISTS events_lane ON events(lane, id);
     CREATE INDEX IF NOT EXISTS events_peer ON events(peer, kind) WHERE peer IS NOT NULL;",
    // 4: the engine's record of intercepted HTLCs. LDK's HTLCHandlingFailed names neither the
    // payment hash nor the intercept id, and LDK lists no pending intercepts; this table lets
    // the engine say which intercept a failure belongs to and which are still pending.
    "CREATE TABLE IF NOT EXISTS intercepts (
        intercept_id TEXT PRIMARY KEY, scid INTEGER NOT NULL, payment_hash TEXT NOT NULL,
        prev_channel_id TEXT, prev_node_id TEXT, inbound_amount_msat INTEGER NOT NULL,
        expected_outbound_amount_msat INTEGER NOT NULL, inbound_cltv_expiry INTEGER,
        next_channel_id TEXT, state TEXT NOT NULL, created_at INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS intercepts_prev ON intercepts(prev_channel_id, state);",
    // 5: the forwarding history (`forwards.rs`). LDK keeps no record of forwards once their
    // event is handled; the operator's fee income and routing volume live here.
    "CREATE TABLE IF NOT EXISTS forwards (
        id INTEGER PRIMARY KEY AUTOINCREMENT, prev_channel_id TEXT, next_channel_id TEXT,
        prev_node_id TEXT, next_node_id TEXT, fee_earned_msat INTEGER, outbound_amount_msat INTEGER,
        claim_from_onchain_tx INTEGER NOT NULL, created_at INTEGER NOT NULL);",
    // 6: the LSPS2 JIT channels sold (`jit.rs`). lightning-liquidity keeps its own state but
    // does not say which intercept SCIDs are its; this table is how the intercept dispatcher
    // tells a JIT SCID from a LightningRod hold's, and what the operator sees.
    "CREATE TABLE IF NOT EXISTS jit_channels (
        scid INTEGER PRIMARY KEY, client_node_id TEXT NOT NULL, user_channel_id TEXT NOT NULL UNIQUE,
        payment_size_msat INTEGER, min_fee_msat INTEGER NOT NULL, proportional_ppm INTEGER NOT NULL,
        valid_until TEXT NOT NULL, state TEXT NOT NULL, channel_id TEXT, opening_fee_msat INTEGER,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS jit_channels_channel ON jit_channels(channel_id) WHERE channel_id IS NOT NULL;",
    // 7: the LSPS2 limits. The size of each JIT channel funded (the unpaid total is capped),
    // and the indexes the per-client and total counts of unpaid sales and channels read.
    "ALTER TABLE jit_channels ADD COLUMN channel_sat INTEGER;
     CREATE INDEX IF NOT EXISTS jit_channels_client ON jit_channels(client_node_id, state);
     CREATE INDEX IF NOT EXISTS jit_channels_state ON jit_channels(state, valid_until);",
    // 8: what forwards over each JIT channel skimmed so far. An MPP first payment is skimmed
    // part by part, one `PaymentForwarded` each: the fee is earned when the parts add up to it.
    "ALTER TABLE jit_channels ADD COLUMN skimmed_msat INTEGER NOT NULL DEFAULT 0;",
    // 9: the HTLCs handed to lightning-liquidity (`jit_htlcs.rs`): LDK does not hand a handled
    // intercept out again, so without them a restart forgets which HTLCs the MPP timeout ends.
    "CREATE TABLE IF NOT EXISTS jit_htlcs (
        intercept_id TEXT PRIMARY KEY, scid INTEGER NOT NULL, handed_at INTEGER NOT NULL);",
    // 10: static invoices kept for offline async-payment recipients (`static_invoices.rs`).
    // LDK does not persist PersistStaticInvoice: what the server acknowledged must be here.
    "CREATE TABLE IF NOT EXISTS static_invoices (
        recipient_id BLOB NOT NULL, slot INTEGER NOT NULL, invoice BLOB NOT NULL,
        request_path BLOB NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (recipient_id, slot));",
    // 11: the LSPS1 orders (`lsps1.rs`): what each client bought, how it pays (the invoice
    // and its hash, matched when the payment is claimed), the opens tried and the channel
    // opened for it; the payment hashes of deleted unpaid orders, so their invoices stay
    // unpayable (`lsps1_tombstones`).
    "CREATE TABLE IF NOT EXISTS lsps1_orders (
        order_id TEXT PRIMARY KEY, client_node_id TEXT NOT NULL, params TEXT NOT NULL,
        lsp_balance_sat INTEGER NOT NULL, client_balance_sat INTEGER NOT NULL,
        user_channel_id TEXT NOT NULL UNIQUE, state TEXT NOT NULL, payment_state TEXT NOT NULL,
        invoice TEXT NOT NULL, payment_hash TEXT NOT NULL UNIQUE, fee_sat INTEGER NOT NULL,
        total_sat INTEGER NOT NULL, channel_id TEXT, funding_outpoint TEXT, funded_at INTEGER,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        refund_onchain_address TEXT, open_attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        next_attempt_at INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE IF NOT EXISTS lsps1_tombstones (payment_hash TEXT PRIMARY KEY, deleted_at INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS lsps1_orders_client ON lsps1_orders(client_node_id, state, payment_state, expires_at);
     CREATE INDEX IF NOT EXISTS lsps1_orders_state ON lsps1_orders(state, payment_state, expires_at);
     CREATE INDEX IF NOT EXISTS lsps1_orders_created ON lsps1_orders(created_at, order_id);",
    // 12: LSPS1 money guards. `claim_approved_at`: the order's payment was judged claimable and
    // is being claimed (its coins are owed from then, before `PaymentClaimed` marks it paid);
    // `funding_made`: the funding outpoint built for the order's channel, recorded before LDK
    // gets the transaction and cleared when LDK discards it, so a channel lost in a crash
    // after its funding was broadcast is never opened a second time.
    "ALTER TABLE lsps1_orders ADD COLUMN claim_approved_at INTEGER;
     ALTER TABLE lsps1_orders ADD COLUMN funding_made TEXT;
     CREATE INDEX IF NOT EXISTS lsps1_tombstones_deleted ON lsps1_tombstones(deleted_at);",
    // 13: LSPS1 payment on chain (`lsps1_onchain.rs`): the wallet address an order may be paid
    // to, with the confirmations and 0-conf fee rate it was offered on; what confirmed there
    // (satoshis and "txid:vout" outpoints, refunded by hand when not owed to the order); and
    // how the order was paid (`paid_by`: bolt11 or onchain), so a second payment is known as
    // one. Orders paid before this step were paid by invoice.
    "ALTER TABLE lsps1_orders ADD COLUMN onchain_address TEXT;
     ALTER TABLE lsps1_orders ADD COLUMN onchain_confirmations INTEGER;
     ALTER TABLE lsps1_orders ADD COLUMN onchain_min_fee_kwu INTEGER;
     ALTER TABLE lsps1_orders ADD COLUMN onchain_received_sat INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE lsps1_orders ADD COLUMN onchain_outpoints TEXT;
     ALTER TABLE lsps1_orders ADD COLUMN paid_by TEXT;
     UPDATE lsps1_orders SET paid_by = 'bolt11' WHERE payment_state = 'PAID';
     CREATE UNIQUE INDEX IF NOT EXISTS lsps1_orders_address ON lsps1_orders(onchain_address)
        WHERE onchain_address IS NOT NULL;
     CREATE INDEX IF NOT EXISTS lsps1_orders_onchain ON lsps1_orders(created_at) WHERE onchain_address IS NOT NULL;",
    // 14: the wallet's external derivation indexes handed to LSPS1 orders, kept for good (a
    // few bytes each, at most `max_onchain_offers_per_day` a day; orders themselves are
    // deleted). An unused one past the 30-day watch is looked up a slice per wallet sync, not
    // at every sync, and after a wallet rebuilt from the seed all are revealed again. Addresses
    // handed out before this step are not listed: they stay looked up at every sync.
    "CREATE TABLE IF NOT EXISTS wallet_lent_addresses (idx INTEGER PRIMARY KEY, lent_at INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS wallet_lent_addresses_at ON wallet_lent_addresses(lent_at);",
];

/// The version this build writes.
pub const SCHEMA_VERSION: u32 = STEPS.len() as u32;

fn user_version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))?)
}

/// Bring the schema to `SCHEMA_VERSION`, or refuse a file from a newer build: it may hold
/// data this build would misread or drop.
pub(crate) fn migrate(conn: &mut Connection, path: &std::path::Path) -> Result<()> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "{} has schema version {found}, newer than this build understands ({SCHEMA_VERSION}); \
             run the newer lsp_node release that wrote it",
            path.display()
        )));
    }
    for (i, step) in STEPS.iter().enumerate().skip(found as usize) {
        let to = i + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(step)
            .map_err(|e| Error::Storage(format!("migrating {} to schema version {to}: {e}", path.display())))?;
        tx.pragma_update(None, "user_version", to as u32)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lightning::util::persist::KVStoreSync;
    use rusqlite::params;

    use super::*;
    use crate::io::SqliteStore;

    /// node.sqlite exactly as the code before schema versioning created it.
    const UNVERSIONED_DDL: &str = "CREATE TABLE IF NOT EXISTS ldk_kv (
            primary_ns TEXT NOT NULL, secondary_ns TEXT NOT NULL, key TEXT NOT NULL,
            value BLOB NOT NULL, PRIMARY KEY (primary_ns, secondary_ns, key));
         CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL,
            created_at INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS payments (
            payment_id TEXT PRIMARY KEY, payment_hash TEXT NOT NULL, direction TEXT NOT NULL,
            status TEXT NOT NULL, amount_msat INTEGER, fee_msat INTEGER, preimage TEXT,
            bolt11 TEXT, failure TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS payments_hash ON payments(payment_hash);
         CREATE TABLE IF NOT EXISTS peers (
            node_id TEXT PRIMARY KEY, address TEXT NOT NULL, updated_at INTEGER NOT NULL);";

    fn indexes(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'payments' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn unversioned_file_is_adopted_and_migrated_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch(UNVERSIONED_DDL).unwrap();
            conn.execute(
                "INSERT INTO ldk_kv VALUES ('monitors', '', 'chan1', ?1)",
                params![vec![0xde_u8, 0xad, 0xbe, 0xef]],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO events (kind, body, created_at) VALUES ('channel_ready', ?1, 5)",
                params![
                    r#"{"kind":"channel_ready","channel_id":"aa","user_channel_id":"1","counterparty_node_id":"02"}"#
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO payments VALUES ('h1', 'h1', 'outbound', 'succeeded', 1000, 3, 'p1', 'lnbcrt1', NULL, 10, 11)",
                [],
            )
            .unwrap();
            conn.execute("INSERT INTO peers VALUES ('02ab', '127.0.0.1:9735', 12)", []).unwrap();
            assert_eq!(user_version(&conn).unwrap(), 0);
        }

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.read("monitors", "", "chan1").unwrap(), vec![0xde, 0xad, 0xbe, 0xef]);
        let (id, kind, body) = store.first_event().unwrap().unwrap();
        assert_eq!((id, kind.as_str()), (1, "channel_ready"));
        assert!(body.contains(r#""channel_id":"aa""#));
        let p = store.payment("h1").unwrap().unwrap();
        assert_eq!((p.status.as_str(), p.amount_msat, p.fee_msat), ("succeeded", Some(1000), Some(3)));
        assert_eq!((p.preimage.as_deref(), p.bolt11.as_deref()), (Some("p1"), Some("lnbcrt1")));
        assert_eq!((p.created_at, p.updated_at), (10, 11));
        assert_eq!(store.peers().unwrap(), vec![("02ab".to_string(), "127.0.0.1:9735".to_string())]);
        // Step 5 added an empty forwarding history.
        assert_eq!(store.forward_totals().unwrap().count, 0);
        // New events continue the old ids rather than reusing them.
        assert_eq!(store.push_event("payment_sent", "{}", None).unwrap(), 2);
        drop(store);

        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(indexes(&conn), vec!["payments_created".to_string()]);
    }

    #[test]
    fn fresh_file_gets_the_current_version_and_reopens_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(indexes(&conn), vec!["payments_created".to_string()]);
    }

    #[test]
    fn file_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let err = SqliteStore::open(&path).err().expect("a newer schema must be refused").to_string();
        assert!(err.contains(&format!("schema version {}", SCHEMA_VERSION + 1)), "{err}");
        assert!(err.contains("newer than this build"), "{err}");
    }

    #[test]
    fn lsps1_orders_paid_before_step_13_read_as_paid_by_invoice_and_offered_no_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for step in &STEPS[..12] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", 12).unwrap();
            for (id, payment_state) in [("paid", "PAID"), ("unpaid", "EXPECT_PAYMENT")] {
                conn.execute(
                    "INSERT INTO lsps1_orders (order_id, client_node_id, params, lsp_balance_sat, client_balance_sat,
                        user_channel_id, state, payment_state, invoice, payment_hash, fee_sat, total_sat,
                        created_at, expires_at, updated_at)
                     VALUES (?1, '02a', '{}', 100000, 0, ?1, 'CREATED', ?2, 'lnbcrt1', ?1, 1000, 1000, 1, 2, 1)",
                    params![id, payment_state],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        let paid = store.lsps1_order("paid").unwrap().unwrap();
        assert_eq!(
            (paid.paid_by.as_deref(), paid.onchain.is_none(), paid.onchain_received_sat),
            (Some("bolt11"), true, 0)
        );
        assert_eq!(store.lsps1_order("unpaid").unwrap().unwrap().paid_by, None);
        drop(store);
        assert_eq!(user_version(&Connection::open(&path).unwrap()).unwrap(), SCHEMA_VERSION);
    }
}
