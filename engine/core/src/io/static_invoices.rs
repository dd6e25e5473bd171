//! Static invoices the node serves for its offline async-payment recipients (BOLT async
//! payments, server side). LDK hands each one over in `PersistStaticInvoice` and forgets it;
//! the server must have it durably before it acknowledges (`static_invoice_persisted`), since
//! the recipient then hands out an offer that only this row can answer.
//!
//! Only a recipient this node gave blinded paths to can store here (the paths' context is
//! authenticated by the node's keys), but it picks the slot numbers and sizes: both are bounded.

use rusqlite::{params, OptionalExtension};

use super::{now_secs, SqliteStore};
use crate::error::{Error, Result};

/// Slots one recipient may fill. LDK's recipients keep a handful of offers (its cache targets
/// fewer than 10); more is a recipient misbehaving.
pub const MAX_SLOTS_PER_RECIPIENT: u16 = 16;
/// The largest invoice (plus its request path) kept. Both arrived in one onion message, whose
/// payload is at most 32 KiB; the bound keeps a row's size explicit.
pub const MAX_INVOICE_BYTES: usize = 32 * 1024;

/// One kept invoice, as the operator lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticInvoiceRecord {
    pub recipient_id: Vec<u8>,
    pub slot: u16,
    pub invoice_bytes: u64,
    pub updated_at: u64,
}

impl SqliteStore {
    /// Keep (or replace) the invoice of `recipient_id` in `slot`, with the blinded path the
    /// payer's invoice request is forwarded along. Refused past the bounds above.
    pub fn put_static_invoice(
        &self, recipient_id: &[u8], slot: u16, invoice: &[u8], request_path: &[u8],
    ) -> Result<()> {
        if slot >= MAX_SLOTS_PER_RECIPIENT {
            return Err(Error::InvalidArgument(format!(
                "static invoice slot {slot} is past the {MAX_SLOTS_PER_RECIPIENT} slots a recipient may use"
            )));
        }
        if invoice.len() + request_path.len() > MAX_INVOICE_BYTES {
            return Err(Error::InvalidArgument(format!(
                "static invoice of {} bytes is larger than {MAX_INVOICE_BYTES}",
                invoice.len() + request_path.len()
            )));
        }
        self.lock().execute(
            "INSERT INTO static_invoices (recipient_id, slot, invoice, request_path, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (recipient_id, slot) DO UPDATE SET
                invoice = excluded.invoice, request_path = excluded.request_path, updated_at = excluded.updated_at",
            params![recipient_id, slot, invoice, request_path, now_secs() as i64],
        )?;
        Ok(())
    }

    /// The invoice and request path kept for `recipient_id` in `slot`.
    pub fn static_invoice(&self, recipient_id: &[u8], slot: u16) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT invoice, request_path FROM static_invoices WHERE recipient_id = ?1 AND slot = ?2",
                params![recipient_id, slot],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Every kept invoice, newest first (bounded: recipients are the operator's clients, each
    /// at most MAX_SLOTS_PER_RECIPIENT rows).
    pub fn static_invoices(&self) -> Result<Vec<StaticInvoiceRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT recipient_id, slot, length(invoice), updated_at FROM static_invoices
             ORDER BY updated_at DESC, recipient_id, slot",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StaticInvoiceRecord {
                recipient_id: r.get(0)?,
                slot: r.get(1)?,
                invoice_bytes: r.get::<_, i64>(2)? as u64,
                updated_at: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_is_kept_durably_replaced_in_its_slot_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.static_invoice(b"r1", 0).unwrap(), None);
            store.put_static_invoice(b"r1", 0, b"inv-a", b"path-a").unwrap();
            store.put_static_invoice(b"r1", 1, b"inv-b", b"path-b").unwrap();
            store.put_static_invoice(b"r1", 0, b"inv-c", b"path-c").unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.static_invoice(b"r1", 0).unwrap(), Some((b"inv-c".to_vec(), b"path-c".to_vec())));
        assert_eq!(store.static_invoice(b"r2", 0).unwrap(), None);
        let listed = store.static_invoices().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|r| r.recipient_id == b"r1" && r.invoice_bytes == 5));

        let past = store.put_static_invoice(b"r1", MAX_SLOTS_PER_RECIPIENT, b"i", b"p").unwrap_err();
        assert!(past.to_string().contains("slot 16"), "{past}");
        let big = vec![0u8; MAX_INVOICE_BYTES];
        assert!(store.put_static_invoice(b"r1", 2, &big, b"p").is_err());
        assert_eq!(store.static_invoices().unwrap().len(), 2);
    }
}
