//! The database as the writer thread sees it: VOLTTRON's sqlite historian schema, batched
//! inserts in one transaction each, and retention.
//!
//! | table | columns |
//! |-------|---------|
//! | `data` | `ts timestamp NOT NULL, topic_id INTEGER NOT NULL, value_string TEXT NOT NULL, UNIQUE(topic_id, ts)`, index `data_idx ON data(ts ASC)` |
//! | `topics` | `topic_id INTEGER PRIMARY KEY, topic_name TEXT NOT NULL, metadata TEXT, UNIQUE(topic_name)` |
//! | `meta` (older databases only) | `topic_id INTEGER PRIMARY KEY, metadata TEXT NOT NULL` |
//!
//! A new database gets `auto_vacuum = 1` (FULL) as VOLTTRON sets it; every database is put
//! in WAL mode (readers do not block the writer) with `synchronous = NORMAL`: a committed
//! batch survives the process being killed. Topics are matched case-insensitively and
//! renamed to the latest spelling, metadata is rewritten when it changes, and a reading
//! for an existing `(topic, ts)` replaces it (`INSERT OR REPLACE`), all as VOLTTRON does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::config::TableNames;
use super::record::Record;

/// How long a write waits for another connection's lock before the batch goes to the cache.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the topics' metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaInfo {
    /// The table names.
    pub tables: TableNames,
    /// `true` for the current schema (`topics.metadata`), `false` for a separate meta table.
    pub meta_in_topics: bool,
}

impl SchemaInfo {
    /// Reads where metadata lives in an existing database (`None`: no data table yet).
    pub fn detect(conn: &Connection, tables: &TableNames) -> rusqlite::Result<Option<Self>> {
        let exists: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type='table' AND name=?1",
                [&tables.data],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", tables.topics))?;
        let columns = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SchemaInfo {
            tables: tables.clone(),
            meta_in_topics: columns.iter().any(|c| c == "metadata"),
        }))
    }
}

/// The topic id of a record's topic: inserted if new, renamed to the latest spelling,
/// its metadata rewritten when it changed (VOLTTRON's `publish_to_historian`).
fn resolve_topic(
    tx: &rusqlite::Transaction<'_>,
    schema: &SchemaInfo,
    map: &mut TopicMap,
    r: &Record,
) -> rusqlite::Result<i64> {
    if let Some(id) = map.unchanged(r) {
        return Ok(id);
    }
    let t = &schema.tables;
    let key = r.topic.to_lowercase();
    map.spelled.insert(r.topic.clone(), key.clone());
    let topics = &mut map.by_key;
    let Some(known) = topics.get_mut(&key) else {
        let id = if schema.meta_in_topics {
            tx.prepare(&format!(
                "INSERT INTO {} (topic_name, metadata) VALUES (?1, ?2)",
                t.topics
            ))?
            .execute(params![r.topic, r.meta])?;
            tx.last_insert_rowid()
        } else {
            tx.prepare(&format!("INSERT INTO {} (topic_name) VALUES (?1)", t.topics))?
                .execute([&r.topic])?;
            let id = tx.last_insert_rowid();
            tx.prepare(&format!("INSERT OR REPLACE INTO {} VALUES (?1, ?2)", t.meta))?
                .execute(params![id, r.meta])?;
            id
        };
        topics.insert(
            key,
            KnownTopic {
                id,
                name: r.topic.clone(),
                meta: Some(r.meta.clone()),
            },
        );
        return Ok(id);
    };
    if *known.name != *r.topic {
        tx.prepare(&format!(
            "UPDATE {} SET topic_name = ?1 WHERE topic_id = ?2",
            t.topics
        ))?
        .execute(params![r.topic, known.id])?;
        known.name = r.topic.clone();
    }
    if known.meta.as_deref() != Some(&*r.meta) {
        let sql = if schema.meta_in_topics {
            format!("UPDATE {} SET metadata = ?1 WHERE topic_id = ?2", t.topics)
        } else {
            format!(
                "INSERT OR REPLACE INTO {} (metadata, topic_id) VALUES (?1, ?2)",
                t.meta
            )
        };
        tx.prepare(&sql)?.execute(params![r.meta, known.id])?;
        known.meta = Some(r.meta.clone());
    }
    Ok(known.id)
}

struct KnownTopic {
    id: i64,
    name: Arc<str>,
    meta: Option<Arc<str>>,
}

/// The topics the database holds, by lower-cased name (VOLTTRON matches topics without
/// case), and the spellings seen, so that a known topic costs no lower-casing.
#[derive(Default)]
struct TopicMap {
    by_key: HashMap<String, KnownTopic>,
    spelled: HashMap<Arc<str>, String>,
}

impl TopicMap {
    /// The id of a record's topic when it is known with this very spelling and metadata.
    fn unchanged(&self, r: &Record) -> Option<i64> {
        let known = self.by_key.get(self.spelled.get(&*r.topic)?)?;
        let same_meta = known
            .meta
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, &r.meta) || **m == *r.meta);
        (*known.name == *r.topic && same_meta).then_some(known.id)
    }

    fn clear(&mut self) {
        self.by_key.clear();
        self.spelled.clear();
    }
}

/// The writer's connection and its topic map.
pub struct Store {
    conn: Connection,
    schema: SchemaInfo,
    topics: TopicMap,
}

impl Store {
    /// Opens (creating if need be) the database and its tables.
    pub fn open(path: &Path, tables: &TableNames) -> rusqlite::Result<Self> {
        if let Some(dir) = path.parent() {
            // A failure shows as the open's error just below.
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if auto_vacuum != 1 {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.execute_batch("PRAGMA auto_vacuum = 1")?;
            if pages > 0 {
                tracing::info!(
                    "historian: VACUUM of {} to turn on auto_vacuum (as VOLTTRON)",
                    path.display()
                );
                conn.execute_batch("VACUUM")?;
            }
        }
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        let schema = match SchemaInfo::detect(&conn, tables)? {
            Some(s) => s,
            None => {
                let t = tables;
                conn.execute_batch(&format!(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS {data} (ts timestamp NOT NULL, topic_id INTEGER NOT NULL,
                         value_string TEXT NOT NULL, UNIQUE(topic_id, ts));
                     CREATE INDEX IF NOT EXISTS data_idx ON {data} (ts ASC);
                     CREATE TABLE IF NOT EXISTS {topics} (topic_id INTEGER PRIMARY KEY,
                         topic_name TEXT NOT NULL, metadata TEXT, UNIQUE(topic_name));
                     COMMIT;",
                    data = t.data,
                    topics = t.topics
                ))?;
                SchemaInfo {
                    tables: tables.clone(),
                    meta_in_topics: true,
                }
            }
        };
        if !schema.meta_in_topics {
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} (topic_id INTEGER NOT NULL PRIMARY KEY, metadata TEXT NOT NULL)",
                schema.tables.meta
            ))?;
        }
        let mut store = Store {
            conn,
            schema,
            topics: TopicMap::default(),
        };
        store.load_topics()?;
        Ok(store)
    }

    /// Where metadata lives.
    pub fn schema(&self) -> &SchemaInfo {
        &self.schema
    }

    /// Reloads the topic map (after a failed batch, whose new topics were rolled back).
    pub fn load_topics(&mut self) -> rusqlite::Result<()> {
        let t = &self.schema.tables;
        let sql = if self.schema.meta_in_topics {
            format!("SELECT topic_id, topic_name, metadata FROM {}", t.topics)
        } else {
            format!(
                "SELECT t.topic_id, t.topic_name, m.metadata FROM {} t LEFT JOIN {} m ON t.topic_id = m.topic_id",
                t.topics, t.meta
            )
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(KnownTopic {
                id: r.get(0)?,
                name: r.get::<_, String>(1)?.into(),
                meta: r.get::<_, Option<String>>(2)?.map(Into::into),
            })
        })?;
        self.topics.clear();
        for row in rows {
            let row = row?;
            self.topics.by_key.insert(row.name.to_lowercase(), row);
        }
        Ok(())
    }

    /// Writes the records in one transaction; on an error nothing of them is stored.
    pub fn write(&mut self, records: &[Record]) -> rusqlite::Result<()> {
        let result = self.write_in_transaction(records);
        if result.is_err() {
            // New topics of the rolled-back batch are not in the database.
            if let Err(e) = self.load_topics() {
                tracing::warn!("historian: cannot reload the topic map: {e}");
            }
        }
        result
    }

    fn write_in_transaction(&mut self, records: &[Record]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(records.len());
        for r in records {
            ids.push(resolve_topic(&tx, &self.schema, &mut self.topics, r)?);
        }
        {
            let mut insert = tx.prepare(&format!(
                "INSERT OR REPLACE INTO {} VALUES (?1, ?2, ?3)",
                self.schema.tables.data
            ))?;
            for (r, id) in records.iter().zip(ids) {
                insert.execute(params![r.ts, id, r.value])?;
            }
        }
        tx.commit()
    }

    /// Deletes readings older than `cutoff` (a formatted timestamp), then the oldest ones
    /// while the database is larger than `limit_bytes`; returns how many were deleted.
    pub fn enforce_limits(
        &mut self,
        cutoff: Option<&str>,
        limit_bytes: Option<u64>,
    ) -> rusqlite::Result<u64> {
        let data = self.schema.tables.data.clone();
        let mut deleted = 0u64;
        if let Some(cutoff) = cutoff {
            deleted +=
                self.conn
                    .execute(&format!("DELETE FROM {data} WHERE ts < ?1"), [cutoff])? as u64;
        }
        if let Some(limit) = limit_bytes {
            loop {
                // Checkpoint so that freed pages leave the main file (auto_vacuum truncates it).
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                let size: i64 = self.conn.query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |r| r.get(0),
                )?;
                if (size as u64) < limit {
                    break;
                }
                let n = self.conn.execute(
                    &format!("DELETE FROM {data} WHERE rowid IN (SELECT rowid FROM {data} ORDER BY ts ASC LIMIT 1000)"),
                    [],
                )?;
                if n == 0 {
                    break;
                }
                deleted += n as u64;
            }
        }
        Ok(deleted)
    }
}
