//! The backup cache: rows the database refused, kept in their own SQLite file until it
//! takes them again (VOLTTRON's `backup.sqlite` and its `outstanding` table).
//!
//! | property | how |
//! |----------|-----|
//! | durable | `synchronous = FULL`: a row is acknowledged once its append committed, and survives SIGKILL and power loss |
//! | ordered | rows leave in the order they came (`id`); new rows queue behind older ones |
//! | at least once | a chunk is deleted only after the database committed it; a crash in between replays it, which `INSERT OR REPLACE` makes harmless |
//! | bounded | beyond `backup_storage_limit_gb`, the oldest rows are dropped and counted |
//!
//! The table is `outstanding(id INTEGER PRIMARY KEY, ts timestamp NOT NULL, topic TEXT NOT
//! NULL, value_string TEXT NOT NULL, meta_string TEXT NOT NULL)`: VOLTTRON's, with the
//! topic's name and metadata inline instead of its topic id (this cache is never shared
//! with VOLTTRON's own).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::record::Record;

/// The cache file of a database: `<database>.backup.sqlite` beside it.
pub fn cache_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".backup.sqlite");
    PathBuf::from(name)
}

/// The open cache.
pub struct BackupCache {
    conn: Connection,
    limit_bytes: Option<u64>,
    len: u64,
}

impl BackupCache {
    /// Opens (creating if need be) the cache file.
    pub fn open(path: &Path, limit_bytes: Option<u64>) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(super::store::BUSY_TIMEOUT)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA auto_vacuum = 1;
             CREATE TABLE IF NOT EXISTS outstanding (id INTEGER PRIMARY KEY, ts timestamp NOT NULL,
                 topic TEXT NOT NULL, value_string TEXT NOT NULL, meta_string TEXT NOT NULL);",
        )?;
        let len: i64 = conn.query_row("SELECT count(*) FROM outstanding", [], |r| r.get(0))?;
        Ok(BackupCache {
            conn,
            limit_bytes,
            len: len as u64,
        })
    }

    /// Rows waiting.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no row waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the rows durably; returns how many old rows the bound dropped.
    pub fn append(&mut self, records: &[Record]) -> rusqlite::Result<u64> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO outstanding (ts, topic, value_string, meta_string) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in records {
                stmt.execute(params![r.ts, r.topic, r.value, r.meta])?;
            }
        }
        tx.commit()?;
        self.len += records.len() as u64;
        self.enforce_bound()
    }

    fn enforce_bound(&mut self) -> rusqlite::Result<u64> {
        let Some(limit) = self.limit_bytes else {
            return Ok(0);
        };
        let mut dropped = 0;
        loop {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            let size: i64 = self.conn.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get(0),
            )?;
            if (size as u64) < limit || self.len == 0 {
                return Ok(dropped);
            }
            let n = self.conn.execute(
                "DELETE FROM outstanding WHERE id IN (SELECT id FROM outstanding ORDER BY id LIMIT 1000)",
                [],
            )? as u64;
            if n == 0 {
                return Ok(dropped);
            }
            tracing::warn!("historian: the backup cache is full; dropped its {n} oldest rows");
            self.len = self.len.saturating_sub(n);
            dropped += n;
        }
    }

    /// The oldest `n` rows and the id of the last.
    pub fn peek(&self, n: usize) -> rusqlite::Result<(Vec<Record>, i64)> {
        let mut stmt = self.conn.prepare(
            "SELECT id, ts, topic, value_string, meta_string FROM outstanding ORDER BY id LIMIT ?1",
        )?;
        let mut last = 0;
        let rows = stmt
            .query_map([n as i64], |r| {
                last = r.get(0)?;
                Ok(Record {
                    ts: r.get::<_, String>(1)?.into(),
                    topic: r.get::<_, String>(2)?.into(),
                    value: r.get(3)?,
                    meta: r.get::<_, String>(4)?.into(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((rows, last))
    }

    /// Deletes the rows up to `last_id` (they are in the database).
    pub fn remove_through(&mut self, last_id: i64) -> rusqlite::Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM outstanding WHERE id <= ?1", [last_id])?;
        self.len = self.len.saturating_sub(n as u64);
        Ok(())
    }
}
