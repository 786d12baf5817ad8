//! The store-and-forward backlog: outgoing federated publications wait here, on disk,
//! while the MQTT broker is unreachable, and are replayed from here on reconnect.
//!
//! A [`Backlog`] is one SQLite file (in WAL mode, `synchronous=FULL`, locked exclusively
//! by the process that opened it). It is synchronous and blocking: every call is a disk
//! transaction, so call it from a thread of its own, never from an arbiter.
//!
//! ```text
//! broker away:   publication ──push──▶ Backlog (file)        ack to the publisher = "backlogged"
//! broker back:   Backlog ──peek(n)──▶ publish QoS 1 ──PUBACK──▶ remove(seqs)
//! ```
//!
//! Every stored [`Entry`] has a `seq`, increasing across pushes and across reopening the
//! file (a seq is never reused, even after its entry is removed). [`Backlog::peek`]
//! returns entries in replay order: **priority descending, then seq ascending**.
//!
//! ## Policies
//!
//! The policy of an entry is the [`PrefixPolicy`] with the longest `prefix` its topic
//! starts with (a VOLTTRON string prefix: `devices/rtu` matches `devices/rtu3/all`), else
//! the config's `default_policy`. The policy gives the entry its priority (stored with it;
//! re-derived from the current config at [`Backlog::open`]) and says what a push does:
//!
//! | [`KeepPolicy`] | below the bound | at the bound (`max_messages` or `max_bytes` would be exceeded) |
//! |---|---|---|
//! | `drop_oldest` | stored | evicts the oldest entries of priority ≤ the new one's, lowest priority first, until it fits; refused if that cannot make room |
//! | `drop_newest` | stored | refused ([`Pushed::Refused`]); nothing stored is touched |
//! | `keep_latest_per_topic` | stored; any stored entry of the same topic is replaced (the new one takes a new seq: it goes to the back) | as `drop_oldest`, after the replacement |
//!
//! The keep policy is the new entry's: any stored entry of priority ≤ the new one's is a
//! candidate for eviction, whatever its own policy (so the priorities, not the keep
//! policies, protect alerts from device data). A refused push changes nothing (a
//! keep-latest replacement is undone too, so the older value stays). A record that alone is larger than `max_bytes` is an error
//! ([`BacklogError::TooLarge`]), never stored. The size of an entry, for `max_bytes`
//! and [`Backlog::bytes`], is its topic's length plus its record's length in bytes.
//!
//! ## Durability
//!
//! | event | what survives |
//! |---|---|
//! | `push`/`push_batch`/`remove` returned `Ok` | the change, through SIGKILL and power loss (the WAL is fsynced at commit) |
//! | crash during a call | all of the call or none of it (SQLite rolls a torn transaction back at the next open) |
//! | the file is not a backlog (other bytes, another SQLite schema, another version) | nothing is changed; `open` fails with an error naming the path |
//! | a second open of the same file (another process, or this one) | it fails with [`BacklogError::InUse`] |
//!
//! The file is created with mode `0600` (its directories `0700`); SQLite gives the `-wal`
//! file the same mode. The file carries an application id (`PRAGMA application_id`) and a
//! schema version (`PRAGMA user_version`), checked at open, and a `quick_check` runs at
//! open so a damaged file is reported there, not half-way through a replay.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

/// `PRAGMA application_id` of a backlog file: "VOLB".
const APPLICATION_ID: i32 = 0x564f_4c42;

/// `PRAGMA user_version` of the schema below.
const SCHEMA_VERSION: i32 = 1;

/// The schema. `AUTOINCREMENT` keeps seqs from being reused after the highest is removed;
/// one index per scan order (replay, eviction) and one for keep-latest's lookup by topic.
const SCHEMA: &str = "
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    record BLOB NOT NULL,
    size INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    enqueued_at_ms INTEGER NOT NULL
);
CREATE INDEX entries_replay ON entries (priority DESC, seq ASC);
CREATE INDEX entries_eviction ON entries (priority ASC, seq ASC);
CREATE INDEX entries_topic ON entries (topic);
";

/// What a backlog keeps and where. See the [module docs](self) for the policies.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogConfig {
    /// The SQLite file (created, with its directories, if absent).
    pub path: PathBuf,
    /// At most this many entries are stored (at least 1).
    pub max_messages: usize,
    /// At most this many bytes (topics plus records) are stored (at least 1).
    pub max_bytes: u64,
    /// Per-prefix policies; an entry takes the one with the longest matching prefix.
    /// Two policies may not share a prefix.
    pub policies: Vec<PrefixPolicy>,
    /// The policy of a topic no prefix matches (its `prefix` is not consulted).
    pub default_policy: PrefixPolicy,
}

/// The policy of the topics under one VOLTTRON prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixPolicy {
    /// A VOLTTRON string prefix of the bus topic (`devices/rtu` matches `devices/rtu3/x`).
    pub prefix: String,
    /// What to keep at the bound (and whether a topic keeps only its latest entry).
    #[serde(default)]
    pub keep: KeepPolicy,
    /// Replay order: higher replays first; at the bound, lower is evicted first.
    #[serde(default)]
    pub priority: u8,
}

impl PrefixPolicy {
    /// A policy for `prefix`.
    pub fn new(prefix: impl Into<String>, keep: KeepPolicy, priority: u8) -> Self {
        PrefixPolicy {
            prefix: prefix.into(),
            keep,
            priority,
        }
    }
}

/// What a push does at the bound. See the table in the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepPolicy {
    /// Evict the oldest entries (of priority ≤ the new one's) to make room.
    #[default]
    DropOldest,
    /// Refuse the new entry.
    DropNewest,
    /// Keep one entry per topic, the latest (a push replaces the stored one); at the
    /// bound, as `DropOldest`.
    KeepLatestPerTopic,
}

/// A stored publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the backlog: increasing, never reused.
    pub seq: u64,
    /// The bus topic it was pushed with.
    pub topic: String,
    /// The bytes pushed, unchanged.
    pub record: Vec<u8>,
    /// The `now_ms` of its push.
    pub enqueued_at_ms: i64,
}

/// The outcome of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Stored, durably.
    Stored {
        /// The new entry's seq.
        seq: u64,
        /// Entries evicted to make room (counted in [`Backlog::dropped`]).
        evicted: usize,
        /// Entries of the same topic replaced under `keep_latest_per_topic` (counted in
        /// [`Backlog::replaced`]).
        replaced: usize,
    },
    /// Not stored: the bound is reached and the policy (`drop_newest`, or no entry of
    /// lower or equal priority to evict) refuses it. Counted in [`Backlog::dropped`].
    Refused,
}

/// Why a backlog cannot be opened or written. Every variant about the file names it.
#[derive(Debug, thiserror::Error)]
pub enum BacklogError {
    /// The config is unusable.
    #[error("backlog config: {0}")]
    Config(String),
    /// Creating the file or its directories failed.
    #[error("backlog {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The file is not a backlog, or is damaged.
    #[error("{} is not a backlog file or is damaged: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite or the checks found.
        detail: String,
    },
    /// The file is a backlog of another schema version.
    #[error("backlog {} has schema version {found}; this build reads version {expected}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i32,
        /// The version this build reads and writes.
        expected: i32,
    },
    /// Another process has the file open.
    #[error("backlog {} is in use by another process", path.display())]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The disk is full: nothing of the call was stored.
    #[error("backlog {}: the disk is full", path.display())]
    DiskFull {
        /// The file.
        path: PathBuf,
    },
    /// One entry alone is larger than `max_bytes`: nothing of the call was stored.
    #[error(
        "a record on {topic} of {size} bytes (with its topic) exceeds the backlog's bound of {max} bytes"
    )]
    TooLarge {
        /// Its topic.
        topic: String,
        /// Its size: topic plus record, in bytes.
        size: u64,
        /// `max_bytes`.
        max: u64,
    },
    /// Any other SQLite failure.
    #[error("backlog {}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BacklogError {
    fn db(path: &Path, e: rusqlite::Error) -> Self {
        let path = path.to_owned();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => BacklogError::Corrupt {
                path,
                detail: e.to_string(),
            },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => BacklogError::InUse { path },
            Some(ErrorCode::DiskFull) => BacklogError::DiskFull { path },
            _ => BacklogError::Sqlite {
                path,
                source: Box::new(e),
            },
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
        BacklogError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The policies, longest prefix first.
#[derive(Debug)]
struct Policies {
    by_length: Vec<PrefixPolicy>,
    default: PrefixPolicy,
}

impl Policies {
    fn new(mut policies: Vec<PrefixPolicy>, default: PrefixPolicy) -> Result<Self, BacklogError> {
        policies.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()).then(a.prefix.cmp(&b.prefix)));
        if let Some(w) = policies.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(BacklogError::Config(format!(
                "two policies for the prefix {:?}",
                w[0].prefix
            )));
        }
        Ok(Policies {
            by_length: policies,
            default,
        })
    }

    fn of(&self, topic: &str) -> &PrefixPolicy {
        self.by_length
            .iter()
            .find(|p| topic.starts_with(p.prefix.as_str()))
            .unwrap_or(&self.default)
    }
}

/// The counters a transaction changes, applied to the [`Backlog`] once it commits.
#[derive(Debug, Clone, Copy)]
struct Tally {
    len: usize,
    bytes: u64,
    dropped: u64,
    replaced: u64,
}

/// A crash-safe, bounded queue of publications on disk. See the [module docs](self).
#[derive(Debug)]
pub struct Backlog {
    path: PathBuf,
    conn: Connection,
    policies: Policies,
    max_messages: usize,
    max_bytes: u64,
    tally: Tally,
    oldest_enqueued_ms: Option<i64>,
}

impl Backlog {
    /// Opens the backlog at `config.path`, creating it (and its directories) if absent.
    /// A file left by a crash is recovered: a transaction torn by the crash is rolled back
    /// and every acknowledged entry is there. Stored entries take their priority from
    /// this config.
    pub fn open(config: BacklogConfig) -> Result<Backlog, BacklogError> {
        if config.max_messages == 0 {
            return Err(BacklogError::Config("max_messages must be at least 1".into()));
        }
        if config.max_bytes == 0 {
            return Err(BacklogError::Config("max_bytes must be at least 1".into()));
        }
        let policies = Policies::new(config.policies, config.default_policy)?;
        let path = config.path;
        create_file(&path)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| BacklogError::db(&path, e))?;
        // A file locked by another process is refused at once, not waited for.
        conn.busy_timeout(std::time::Duration::ZERO)
            .map_err(|e| BacklogError::db(&path, e))?;
        let mut backlog = Backlog {
            path,
            conn,
            policies,
            max_messages: config.max_messages,
            max_bytes: config.max_bytes,
            tally: Tally {
                len: 0,
                bytes: 0,
                dropped: 0,
                replaced: 0,
            },
            oldest_enqueued_ms: None,
        };
        backlog.prepare()?;
        backlog.rederive_priorities().map_err(|e| backlog.err(e))?;
        let (len, bytes) = backlog
            .conn
            .query_row("SELECT count(*), coalesce(sum(size), 0) FROM entries", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| backlog.err(e))?;
        backlog.tally.len = usize::try_from(len).unwrap_or(usize::MAX);
        backlog.tally.bytes = u64::try_from(bytes).unwrap_or(0);
        backlog.oldest_enqueued_ms = oldest(&backlog.conn).map_err(|e| backlog.err(e))?;
        Ok(backlog)
    }

    /// Stores one publication; once `Ok` returns, a stored entry survives a crash.
    /// See the [module docs](self) for what the policies do at the bound.
    pub fn push(&mut self, topic: &str, record: &[u8], now_ms: i64) -> Result<Pushed, BacklogError> {
        let mut pushed = self.push_batch(&[(topic, record)], now_ms)?;
        Ok(pushed.pop().unwrap_or(Pushed::Refused))
    }

    /// Stores publications in order, in one transaction (one fsync): once `Ok` returns,
    /// every stored one survives a crash; after a crash during the call, none is stored.
    /// Each item is pushed as by [`push`](Self::push), seeing the items before it. Every
    /// item's size is checked first: one [`TooLarge`](BacklogError::TooLarge) item fails
    /// the call and nothing is stored.
    pub fn push_batch(&mut self, items: &[(&str, &[u8])], now_ms: i64) -> Result<Vec<Pushed>, BacklogError> {
        for (topic, record) in items {
            let size = entry_size(topic, record);
            if size > self.max_bytes {
                return Err(BacklogError::TooLarge {
                    topic: (*topic).to_owned(),
                    size,
                    max: self.max_bytes,
                });
            }
        }
        let mut tally = self.tally;
        let mut tx = self
            .conn
            .transaction()
            .map_err(|e| BacklogError::db(&self.path, e))?;
        let mut out = Vec::with_capacity(items.len());
        for (topic, record) in items {
            let policy = self.policies.of(topic);
            let pushed = push_one(
                &mut tx,
                &mut tally,
                Limits {
                    max_messages: self.max_messages,
                    max_bytes: self.max_bytes,
                },
                policy,
                topic,
                record,
                now_ms,
            )
            .map_err(|e| BacklogError::db(&self.path, e))?;
            out.push(pushed);
        }
        let oldest = oldest(&tx).map_err(|e| BacklogError::db(&self.path, e))?;
        tx.commit().map_err(|e| BacklogError::db(&self.path, e))?;
        self.tally = tally;
        self.oldest_enqueued_ms = oldest;
        Ok(out)
    }

    /// Up to `max` entries in replay order (priority descending, then seq ascending),
    /// without removing them.
    pub fn peek(&self, max: usize) -> Result<Vec<Entry>, BacklogError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let read = || -> rusqlite::Result<Vec<Entry>> {
            let mut stmt = self.conn.prepare(
                "SELECT seq, topic, record, enqueued_at_ms FROM entries
                 ORDER BY priority DESC, seq ASC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(Entry {
                    seq: seq_of(r.get(0)?),
                    topic: r.get(1)?,
                    record: r.get(2)?,
                    enqueued_at_ms: r.get(3)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| self.err(e))
    }

    /// Removes the entries with these seqs (after the broker acknowledged them), in one
    /// durable transaction. A seq not stored (already evicted, replaced or removed) is
    /// ignored.
    pub fn remove(&mut self, seqs: &[u64]) -> Result<(), BacklogError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tally = self.tally;
        let run = |tx: &Transaction<'_>, tally: &mut Tally| -> rusqlite::Result<Option<i64>> {
            let mut stmt = tx.prepare("DELETE FROM entries WHERE seq = ?1 RETURNING size")?;
            for &seq in seqs {
                let Ok(seq) = i64::try_from(seq) else { continue };
                if let Some(size) = stmt.query_row([seq], |r| r.get::<_, i64>(0)).optional()? {
                    tally.len = tally.len.saturating_sub(1);
                    tally.bytes = tally.bytes.saturating_sub(size_of(size));
                }
            }
            oldest(tx)
        };
        let tx = self
            .conn
            .transaction()
            .map_err(|e| BacklogError::db(&self.path, e))?;
        let oldest = run(&tx, &mut tally).map_err(|e| BacklogError::db(&self.path, e))?;
        tx.commit().map_err(|e| BacklogError::db(&self.path, e))?;
        self.tally = tally;
        self.oldest_enqueued_ms = oldest;
        Ok(())
    }

    /// The number of stored entries.
    pub fn len(&self) -> usize {
        self.tally.len
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.tally.len == 0
    }

    /// The stored bytes: topics plus records (not the file's size).
    pub fn bytes(&self) -> u64 {
        self.tally.bytes
    }

    /// The `now_ms` at which the entry stored longest (the lowest seq) was pushed; `None`
    /// when empty. The backlog's age is now minus this.
    pub fn oldest_enqueued_ms(&self) -> Option<i64> {
        self.oldest_enqueued_ms
    }

    /// Entries lost to the bound since open: evicted to make room, or refused.
    pub fn dropped(&self) -> u64 {
        self.tally.dropped
    }

    /// Entries replaced by a newer one of their topic (`keep_latest_per_topic`) since open.
    pub fn replaced(&self) -> u64 {
        self.tally.replaced
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> BacklogError {
        BacklogError::db(&self.path, e)
    }

    /// Identifies the file (its first read, so a file of another application is never
    /// changed), then sets WAL and `synchronous=FULL`, then creates the schema in a new
    /// file or checks the pages of an existing one.
    fn prepare(&mut self) -> Result<(), BacklogError> {
        // Exclusive before the first read and before WAL: no shared-memory file, and a
        // second process is refused.
        self.conn
            .pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let fresh = self.identify()?;
        let settings = || -> rusqlite::Result<String> {
            let mode: String = self
                .conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            self.conn.pragma_update(None, "synchronous", "FULL")?;
            self.conn.pragma_update(None, "trusted_schema", "OFF")?;
            Ok(mode)
        };
        let mode = settings().map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(BacklogError::Corrupt {
                path: self.path.clone(),
                detail: format!("SQLite keeps it in journal mode {mode:?}, not WAL"),
            });
        }
        if fresh {
            let tx = self
                .conn
                .transaction()
                .map_err(|e| BacklogError::db(&self.path, e))?;
            let init = || -> rusqlite::Result<()> {
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "application_id", APPLICATION_ID)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            };
            init().map_err(|e| BacklogError::db(&self.path, e))?;
            return tx.commit().map_err(|e| BacklogError::db(&self.path, e));
        }
        let verdict: String = self
            .conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if verdict != "ok" {
            return Err(BacklogError::Corrupt {
                path: self.path.clone(),
                detail: verdict,
            });
        }
        Ok(())
    }

    /// Whether the file is new (empty); an error unless it is new or a backlog of this
    /// version.
    fn identify(&self) -> Result<bool, BacklogError> {
        let read_i32 = |name: &str| {
            self.conn
                .pragma_query_value(None, name, |r| r.get::<_, i32>(0))
                .map_err(|e| self.err(e))
        };
        let app = read_i32("application_id")?;
        let version = read_i32("user_version")?;
        if app == 0 && version == 0 {
            let objects: i64 = self
                .conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            if objects != 0 {
                return Err(BacklogError::Corrupt {
                    path: self.path.clone(),
                    detail: "an SQLite database of another application".into(),
                });
            }
            return Ok(true);
        }
        if app != APPLICATION_ID {
            return Err(BacklogError::Corrupt {
                path: self.path.clone(),
                detail: format!("an SQLite database of another application (application_id {app:#x})"),
            });
        }
        if version != SCHEMA_VERSION {
            return Err(BacklogError::Version {
                path: self.path.clone(),
                found: version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(false)
    }

    /// Gives stored entries the priority of the current config.
    fn rederive_priorities(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let stale: Vec<(String, u8)> = {
            let mut stmt = tx.prepare("SELECT DISTINCT topic, priority FROM entries")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut stale = Vec::new();
            for row in rows {
                let (topic, stored) = row?;
                let priority = self.policies.of(&topic).priority;
                if i64::from(priority) != stored {
                    stale.push((topic, priority));
                }
            }
            stale
        };
        for (topic, priority) in &stale {
            tx.execute(
                "UPDATE entries SET priority = ?1 WHERE topic = ?2",
                params![priority, topic],
            )?;
        }
        tx.commit()
    }
}

/// The bounds, for [`push_one`].
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_messages: usize,
    max_bytes: u64,
}

/// One item of a push, inside the caller's transaction; `tally` follows what it did.
fn push_one(
    tx: &mut Transaction<'_>,
    tally: &mut Tally,
    limits: Limits,
    policy: &PrefixPolicy,
    topic: &str,
    record: &[u8],
    now_ms: i64,
) -> rusqlite::Result<Pushed> {
    let size = entry_size(topic, record);
    let sp = tx.savepoint()?;
    let mut t = *tally;
    let mut replaced = 0;
    if policy.keep == KeepPolicy::KeepLatestPerTopic {
        let mut stmt = sp.prepare("DELETE FROM entries WHERE topic = ?1 RETURNING size")?;
        let sizes = stmt.query_map([topic], |r| r.get::<_, i64>(0))?;
        for gone in sizes {
            t.len = t.len.saturating_sub(1);
            t.bytes = t.bytes.saturating_sub(size_of(gone?));
            replaced += 1;
        }
    }
    let fits = |t: &Tally| t.len < limits.max_messages && t.bytes.saturating_add(size) <= limits.max_bytes;
    let mut evicted = 0;
    if !fits(&t) {
        if policy.keep == KeepPolicy::DropNewest {
            sp.finish()?;
            tally.dropped += 1;
            return Ok(Pushed::Refused);
        }
        // The oldest of the lowest priority first, down to the new entry's priority.
        let mut victims = Vec::new();
        {
            let mut stmt = sp.prepare(
                "SELECT seq, size FROM entries WHERE priority <= ?1
                 ORDER BY priority ASC, seq ASC",
            )?;
            let mut rows = stmt.query([policy.priority])?;
            let mut freed = t;
            while !fits(&freed) {
                let Some(row) = rows.next()? else { break };
                victims.push(row.get::<_, i64>(0)?);
                freed.len = freed.len.saturating_sub(1);
                freed.bytes = freed.bytes.saturating_sub(size_of(row.get(1)?));
            }
            if !fits(&freed) {
                drop(rows);
                drop(stmt);
                sp.finish()?; // rolls back a keep-latest replacement too
                tally.dropped += 1;
                return Ok(Pushed::Refused);
            }
            t = freed;
        }
        let mut stmt = sp.prepare("DELETE FROM entries WHERE seq = ?1")?;
        for seq in &victims {
            stmt.execute([seq])?;
        }
        evicted = victims.len();
        t.dropped += evicted as u64;
    }
    sp.execute(
        "INSERT INTO entries (topic, record, size, priority, enqueued_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![topic, record, size_as_i64(size), policy.priority, now_ms],
    )?;
    let seq = seq_of(sp.last_insert_rowid());
    sp.commit()?;
    t.len += 1;
    t.bytes += size;
    t.replaced += replaced as u64;
    *tally = t;
    Ok(Pushed::Stored {
        seq,
        evicted,
        replaced,
    })
}

/// The enqueue time of the lowest seq.
fn oldest(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT enqueued_at_ms FROM entries ORDER BY seq ASC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
}

/// Creates the file (mode 0600) and its directories (0700) if absent, durably.
fn create_file(path: &Path) -> Result<(), BacklogError> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| BacklogError::io(dir, e))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            file.sync_all().map_err(|e| BacklogError::io(path, e))?;
            let dir = parent.unwrap_or(Path::new("."));
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| BacklogError::io(dir, e))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::metadata(path)
                .map_err(|e| BacklogError::io(path, e))?
                .is_dir()
            {
                return Err(BacklogError::Corrupt {
                    path: path.to_owned(),
                    detail: "a directory".into(),
                });
            }
            Ok(())
        }
        Err(e) => Err(BacklogError::io(path, e)),
    }
}

fn entry_size(topic: &str, record: &[u8]) -> u64 {
    (topic.len() as u64).saturating_add(record.len() as u64)
}

/// A size read back from the file (never negative: written from a `u64` that fits).
fn size_of(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

fn size_as_i64(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// A seq read back from the file (rowids of `AUTOINCREMENT` are positive).
fn seq_of(rowid: i64) -> u64 {
    u64::try_from(rowid).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_messages: usize, max_bytes: u64, policies: Vec<PrefixPolicy>) -> BacklogConfig {
        BacklogConfig {
            path: dir.join("federation/backlog.sqlite"),
            max_messages,
            max_bytes,
            policies,
            default_policy: PrefixPolicy::new("", KeepPolicy::DropOldest, 0),
        }
    }

    fn open(dir: &Path, max_messages: usize, max_bytes: u64, policies: Vec<PrefixPolicy>) -> Backlog {
        Backlog::open(config(dir, max_messages, max_bytes, policies)).expect("open the backlog")
    }

    fn stored(p: Pushed) -> u64 {
        match p {
            Pushed::Stored { seq, .. } => seq,
            Pushed::Refused => panic!("refused"),
        }
    }

    fn topics(b: &Backlog) -> Vec<String> {
        b.peek(usize::MAX).unwrap().into_iter().map(|e| e.topic).collect()
    }

    #[test]
    fn replays_by_priority_then_seq_with_the_longest_prefix_deciding() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(
            dir.path(),
            100,
            1 << 20,
            vec![
                PrefixPolicy::new("devices", KeepPolicy::DropOldest, 1),
                PrefixPolicy::new("devices/rtu", KeepPolicy::DropOldest, 5),
                PrefixPolicy::new("alerts/", KeepPolicy::DropOldest, 9),
            ],
        );
        for t in [
            "devices/ahu/1",
            "other/a",
            "devices/rtu3/x",
            "alerts/fire",
            "devices/ahu/2",
            "other/b",
            "alerts/smoke",
            "devices/rtu/y",
        ] {
            stored(b.push(t, t.as_bytes(), 1).unwrap());
        }
        assert_eq!(
            topics(&b),
            [
                "alerts/fire",
                "alerts/smoke",
                "devices/rtu3/x",
                "devices/rtu/y",
                "devices/ahu/1",
                "devices/ahu/2",
                "other/a",
                "other/b"
            ]
        );
        let first = b.peek(2).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].record, b"alerts/fire");
        assert!(first[0].seq < first[1].seq);
    }

    #[test]
    fn drop_oldest_at_the_message_bound_evicts_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(dir.path(), 3, 1 << 20, vec![]);
        let seqs: Vec<u64> = (0..3)
            .map(|i| stored(b.push(&format!("t/{i}"), b"x", i).unwrap()))
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        let got = b.push("t/3", b"x", 3).unwrap();
        assert!(
            matches!(got, Pushed::Stored { evicted: 1, replaced: 0, seq } if seq > seqs[2]),
            "{got:?}"
        );
        assert_eq!(topics(&b), ["t/1", "t/2", "t/3"]);
        assert_eq!((b.len(), b.dropped(), b.oldest_enqueued_ms()), (3, 1, Some(1)));
    }

    #[test]
    fn eviction_takes_the_lowest_priority_first_and_never_a_higher_one() {
        let dir = tempfile::tempdir().unwrap();
        let policies = vec![
            PrefixPolicy::new("alerts/", KeepPolicy::DropOldest, 9),
            PrefixPolicy::new("devices/", KeepPolicy::DropOldest, 1),
        ];
        let mut b = open(dir.path(), 4, 1 << 20, policies);
        for t in ["alerts/a", "devices/a", "other/a", "devices/b"] {
            stored(b.push(t, b"x", 0).unwrap());
        }
        // An alert evicts the default-priority entry first, then the oldest device entry.
        assert!(matches!(
            b.push("alerts/b", b"x", 0).unwrap(),
            Pushed::Stored { evicted: 1, .. }
        ));
        assert_eq!(topics(&b), ["alerts/a", "alerts/b", "devices/a", "devices/b"]);
        assert!(matches!(
            b.push("alerts/c", b"x", 0).unwrap(),
            Pushed::Stored { evicted: 1, .. }
        ));
        assert_eq!(topics(&b), ["alerts/a", "alerts/b", "alerts/c", "devices/b"]);
        // A default-priority entry may not evict anything of higher priority.
        assert_eq!(b.push("other/b", b"x", 0).unwrap(), Pushed::Refused);
        assert_eq!(topics(&b), ["alerts/a", "alerts/b", "alerts/c", "devices/b"]);
        assert_eq!(b.dropped(), 3);
    }

    #[test]
    fn drop_newest_at_the_bound_refuses_and_keeps_what_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(
            dir.path(),
            2,
            1 << 20,
            vec![PrefixPolicy::new("devices/", KeepPolicy::DropNewest, 0)],
        );
        stored(b.push("devices/a", b"1", 0).unwrap());
        stored(b.push("devices/b", b"2", 0).unwrap());
        assert_eq!(b.push("devices/c", b"3", 0).unwrap(), Pushed::Refused);
        assert_eq!(topics(&b), ["devices/a", "devices/b"]);
        assert_eq!((b.len(), b.dropped()), (2, 1));
        // After a removal there is room again.
        let first = b.peek(1).unwrap()[0].seq;
        b.remove(&[first]).unwrap();
        stored(b.push("devices/c", b"3", 0).unwrap());
        assert_eq!(topics(&b), ["devices/b", "devices/c"]);
    }

    #[test]
    fn keep_latest_replaces_the_stored_entry_of_a_topic_and_moves_it_to_the_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(
            dir.path(),
            100,
            1 << 20,
            vec![PrefixPolicy::new("devices/", KeepPolicy::KeepLatestPerTopic, 0)],
        );
        let first = stored(b.push("devices/a", b"old", 1).unwrap());
        stored(b.push("devices/b", b"b", 2).unwrap());
        stored(b.push("other/x", b"x1", 3).unwrap());
        stored(b.push("other/x", b"x2", 4).unwrap());
        let got = b.push("devices/a", b"new", 5).unwrap();
        let Pushed::Stored {
            seq,
            evicted: 0,
            replaced: 1,
        } = got
        else {
            panic!("{got:?}")
        };
        assert!(seq > first);
        let all = b.peek(usize::MAX).unwrap();
        let shown: Vec<(&str, &[u8])> = all
            .iter()
            .map(|e| (e.topic.as_str(), e.record.as_slice()))
            .collect();
        assert_eq!(
            shown,
            [
                ("devices/b", &b"b"[..]),
                ("other/x", b"x1"),
                ("other/x", b"x2"),
                ("devices/a", b"new")
            ]
        );
        assert_eq!(
            (b.len(), b.replaced(), b.dropped(), b.oldest_enqueued_ms()),
            (4, 1, 0, Some(2))
        );
        assert_eq!(
            b.bytes(),
            all.iter()
                .map(|e| (e.topic.len() + e.record.len()) as u64)
                .sum::<u64>()
        );
    }

    #[test]
    fn keep_latest_at_the_bound_evicts_and_a_refusal_keeps_the_older_value() {
        let dir = tempfile::tempdir().unwrap();
        let policies = vec![
            PrefixPolicy::new("alerts/", KeepPolicy::DropOldest, 9),
            PrefixPolicy::new("devices/", KeepPolicy::KeepLatestPerTopic, 1),
        ];
        // Sizes: "devices/a" + 1 byte = 10, "alerts/a" + 2 = 10.
        let mut b = open(dir.path(), 100, 30, policies);
        stored(b.push("devices/a", b"1", 0).unwrap());
        stored(b.push("devices/b", b"1", 0).unwrap());
        stored(b.push("alerts/a", b"!!", 0).unwrap());
        // At the byte bound: a new topic evicts the oldest device entry.
        assert!(matches!(
            b.push("devices/c", b"1", 0).unwrap(),
            Pushed::Stored {
                evicted: 1,
                replaced: 0,
                ..
            }
        ));
        assert_eq!(topics(&b), ["alerts/a", "devices/b", "devices/c"]);
        // A replacement of the same size needs no eviction.
        assert!(matches!(
            b.push("devices/b", b"2", 0).unwrap(),
            Pushed::Stored {
                evicted: 0,
                replaced: 1,
                ..
            }
        ));
        // One that cannot fit (only the alert is left and it has a higher priority): refused,
        // and the older value of the topic stays.
        stored(b.push("devices/c", b"1", 0).unwrap());
        assert_eq!(b.push("devices/b", &[b'x'; 21], 0).unwrap(), Pushed::Refused);
        let all = b.peek(usize::MAX).unwrap();
        assert_eq!(
            all.iter().map(|e| e.topic.as_str()).collect::<Vec<_>>(),
            ["alerts/a", "devices/b", "devices/c"]
        );
        assert_eq!(all[1].record, b"2");
        assert_eq!((b.len(), b.bytes()), (3, 30));
    }

    #[test]
    fn the_byte_bound_counts_topics_and_records_and_a_too_large_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(dir.path(), 100, 100, vec![]);
        for i in 0..3 {
            stored(b.push(&format!("t/{i}"), &[0u8; 27], 0).unwrap()); // 30 bytes each
        }
        assert_eq!(b.bytes(), 90);
        assert!(matches!(
            b.push("t/3", &[0u8; 27], 0).unwrap(),
            Pushed::Stored { evicted: 1, .. }
        ));
        assert_eq!((b.len(), b.bytes()), (3, 90));
        assert!(matches!(
            b.push("t/4", &[0u8; 67], 0).unwrap(),
            Pushed::Stored { evicted: 2, .. }
        ));
        assert_eq!((b.len(), b.bytes()), (2, 100));
        let err = b.push("t/5", &[0u8; 98], 0).unwrap_err();
        assert!(
            matches!(
                err,
                BacklogError::TooLarge {
                    size: 101,
                    max: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("t/5"), "{err}");
        assert_eq!((b.len(), b.bytes()), (2, 100));
    }

    #[test]
    fn a_batch_is_pushed_item_by_item_and_a_too_large_item_stores_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(
            dir.path(),
            3,
            1000,
            vec![PrefixPolicy::new("devices/", KeepPolicy::KeepLatestPerTopic, 0)],
        );
        let got = b
            .push_batch(
                &[
                    ("devices/a", b"1"),
                    ("devices/a", b"2"),
                    ("x/1", b"1"),
                    ("x/2", b"1"),
                    ("x/3", b"1"),
                ],
                7,
            )
            .unwrap();
        assert!(matches!(got[1], Pushed::Stored { replaced: 1, .. }));
        assert!(matches!(got[4], Pushed::Stored { evicted: 1, .. }));
        assert_eq!(topics(&b), ["x/1", "x/2", "x/3"]);
        let big = [0u8; 1000];
        let err = b.push_batch(&[("y/1", b"1"), ("y/2", &big)], 8).unwrap_err();
        assert!(matches!(err, BacklogError::TooLarge { .. }), "{err}");
        assert_eq!(topics(&b), ["x/1", "x/2", "x/3"]);
        assert!(b.push_batch(&[], 9).unwrap().is_empty());
    }

    #[test]
    fn reopening_keeps_entries_counters_and_a_monotonic_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(dir.path(), 100, 1 << 20, vec![]);
        let a = stored(b.push("t/a", b"a", 10).unwrap());
        let c = stored(b.push("t/c", b"cc", 11).unwrap());
        b.remove(&[c, 12345]).unwrap();
        drop(b);
        let mut b = open(dir.path(), 100, 1 << 20, vec![]);
        assert_eq!((b.len(), b.bytes(), b.oldest_enqueued_ms()), (1, 4, Some(10)));
        // The highest seq was removed; it is not handed out again.
        let d = stored(b.push("t/d", b"d", 12).unwrap());
        assert!(d > c && c > a, "{a} {c} {d}");
        b.remove(&[a, d]).unwrap();
        assert_eq!((b.len(), b.bytes(), b.oldest_enqueued_ms()), (0, 0, None));
        assert!(b.is_empty());
        drop(b);
        let mut b = open(dir.path(), 100, 1 << 20, vec![]);
        assert!(stored(b.push("t/e", b"e", 13).unwrap()) > d);
    }

    #[test]
    fn priorities_follow_the_config_of_the_latest_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(dir.path(), 100, 1 << 20, vec![]);
        for t in ["devices/a", "alerts/a"] {
            stored(b.push(t, b"x", 0).unwrap());
        }
        drop(b);
        let b = open(
            dir.path(),
            100,
            1 << 20,
            vec![PrefixPolicy::new("alerts/", KeepPolicy::DropOldest, 3)],
        );
        assert_eq!(topics(&b), ["alerts/a", "devices/a"]);
    }

    #[test]
    fn a_file_that_is_not_a_backlog_is_a_typed_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 10, 1000, vec![]);
        fs::create_dir_all(cfg.path.parent().unwrap()).unwrap();

        fs::write(&cfg.path, vec![0x5au8; 8192]).unwrap();
        let err = Backlog::open(cfg.clone()).unwrap_err();
        assert!(matches!(err, BacklogError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains(&*cfg.path.to_string_lossy()), "{err}");
        assert_eq!(fs::read(&cfg.path).unwrap(), vec![0x5au8; 8192], "left untouched");

        fs::remove_file(&cfg.path).unwrap();
        Connection::open(&cfg.path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let before = fs::read(&cfg.path).unwrap();
        let err = Backlog::open(cfg.clone()).unwrap_err();
        assert!(matches!(err, BacklogError::Corrupt { .. }), "{err:?}");
        assert_eq!(
            fs::read(&cfg.path).unwrap(),
            before,
            "another application's file is left untouched"
        );

        fs::remove_file(&cfg.path).unwrap();
        drop(Backlog::open(cfg.clone()).unwrap());
        Connection::open(&cfg.path)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let err = Backlog::open(cfg.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                BacklogError::Version {
                    found: 7,
                    expected: 1,
                    ..
                }
            ),
            "{err:?}"
        );

        let mut damaged_file = cfg.clone();
        damaged_file.path = dir.path().join("damaged_file.sqlite");
        let mut b = Backlog::open(damaged_file.clone()).unwrap();
        for i in 0..200 {
            stored(b.push(&format!("t/{i}"), &[7u8; 100], 0).unwrap());
        }
        drop(b); // checkpoints the WAL into the file
        let bytes = fs::read(&damaged_file.path).unwrap();
        assert!(bytes.len() > 8192);
        let mut damaged = bytes.clone();
        damaged[4096..8192].fill(0xff);
        fs::write(&damaged_file.path, &damaged).unwrap();
        let err = Backlog::open(damaged_file.clone()).unwrap_err();
        assert!(matches!(err, BacklogError::Corrupt { .. }), "{err:?}");

        let mut d = cfg.clone();
        d.path = dir.path().to_owned();
        assert!(matches!(
            Backlog::open(d).unwrap_err(),
            BacklogError::Corrupt { .. }
        ));
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _b = open(dir.path(), 10, 1000, vec![]);
        let err = Backlog::open(config(dir.path(), 10, 1000, vec![])).unwrap_err();
        assert!(matches!(err, BacklogError::InUse { .. }), "{err:?}");
    }

    #[test]
    fn unusable_configs_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        for cfg in [
            config(dir.path(), 0, 10, vec![]),
            config(dir.path(), 10, 0, vec![]),
            config(
                dir.path(),
                10,
                10,
                vec![
                    PrefixPolicy::new("a/", KeepPolicy::DropOldest, 1),
                    PrefixPolicy::new("a/", KeepPolicy::DropNewest, 2),
                ],
            ),
        ] {
            assert!(matches!(Backlog::open(cfg).unwrap_err(), BacklogError::Config(_)));
        }
    }

    #[test]
    fn the_file_and_its_directory_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let b = open(dir.path(), 10, 1000, vec![]);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(b.path()), 0o600);
        assert_eq!(mode(b.path().parent().unwrap()), 0o700);
    }

    #[test]
    fn policies_read_from_a_config_file() {
        let p: Vec<PrefixPolicy> = serde_json::from_str(
            r#"[{"prefix": "alerts/", "keep": "drop_newest", "priority": 9},
                {"prefix": "devices/", "keep": "keep_latest_per_topic"},
                {"prefix": "x"}]"#,
        )
        .unwrap();
        assert_eq!(
            p,
            [
                PrefixPolicy::new("alerts/", KeepPolicy::DropNewest, 9),
                PrefixPolicy::new("devices/", KeepPolicy::KeepLatestPerTopic, 0),
                PrefixPolicy::new("x", KeepPolicy::DropOldest, 0),
            ]
        );
        assert!(serde_json::from_str::<KeepPolicy>(r#""drop_everything""#).is_err());
        assert!(serde_json::from_str::<PrefixPolicy>(r#"{"prefix": "a", "kep": "drop_oldest"}"#).is_err());
    }
}
