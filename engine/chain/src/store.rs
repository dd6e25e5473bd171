//! SQLite persistence: blocks by height, the mempool in acceptance order, and a key/value meta table.

use std::path::Path;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{Block, Transaction, Txid};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::ChainError;

pub(crate) struct Store {
    conn: Connection,
}

impl Store {
    pub(crate) fn open(path: &Path) -> Result<Self, ChainError> {
        let conn = Connection::open(path)
            .map_err(|e| ChainError::Storage(format!("cannot open chain database {}: {e}", path.display())))?;
        // journal_mode returns a row, so read it with query_row.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("chain database {} is in journal mode {mode}, not WAL", path.display());
        }
        conn.execute_batch(
            "PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, raw BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS mempool (seq INTEGER PRIMARY KEY AUTOINCREMENT, txid TEXT NOT NULL UNIQUE, raw BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        Ok(Store { conn })
    }

    pub(crate) fn get_meta(&self, key: &str) -> Result<Option<String>, ChainError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
    }

    pub(crate) fn set_meta(&self, key: &str, value: &str) -> Result<(), ChainError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub(crate) fn load_blocks(&self) -> Result<Vec<Block>, ChainError> {
        let mut stmt = self.conn.prepare("SELECT height, hash, raw FROM blocks ORDER BY height ASC")?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (height, hash, raw) = row?;
            if height != out.len() as i64 {
                return Err(ChainError::Storage(format!(
                    "chain database has a gap: expected block at height {}, found {height}",
                    out.len()
                )));
            }
            let block: Block = deserialize(&raw)
                .map_err(|e| ChainError::Storage(format!("block at height {height} cannot be decoded: {e}")))?;
            if block.block_hash().to_string() != hash {
                return Err(ChainError::Storage(format!(
                    "block at height {height} has hash {} but the database says {hash}",
                    block.block_hash()
                )));
            }
            out.push(block);
        }
        Ok(out)
    }

    pub(crate) fn load_mempool(&self) -> Result<Vec<Transaction>, ChainError> {
        let mut stmt = self.conn.prepare("SELECT raw FROM mempool ORDER BY seq ASC")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for raw in rows {
            let raw = raw?;
            match deserialize::<Transaction>(&raw) {
                Ok(tx) => out.push(tx),
                Err(e) => log::warn!("dropping undecodable mempool transaction from database: {e}"),
            }
        }
        Ok(out)
    }

    pub(crate) fn clear_mempool(&self) -> Result<(), ChainError> {
        self.conn.execute("DELETE FROM mempool", [])?;
        Ok(())
    }

    /// Store a newly mined block and drop its transactions from the stored mempool, atomically.
    pub(crate) fn insert_block(&mut self, height: u32, block: &Block) -> Result<(), ChainError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO blocks (height, hash, raw) VALUES (?1, ?2, ?3)",
            params![height as i64, block.block_hash().to_string(), serialize(block)],
        )?;
        for t in block.txdata.iter().skip(1) {
            tx.execute("DELETE FROM mempool WHERE txid = ?1", params![t.compute_txid().to_string()])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Add a transaction to the stored mempool and remove the ones it replaces, atomically.
    pub(crate) fn mempool_add(&mut self, t: &Transaction, evicted: &[Txid]) -> Result<(), ChainError> {
        let tx = self.conn.transaction()?;
        for txid in evicted {
            tx.execute("DELETE FROM mempool WHERE txid = ?1", params![txid.to_string()])?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO mempool (txid, raw) VALUES (?1, ?2)",
            params![t.compute_txid().to_string(), serialize(t)],
        )?;
        tx.commit()?;
        Ok(())
    }
}
