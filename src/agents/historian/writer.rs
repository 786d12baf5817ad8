//! The writer thread: the one connection that writes the database, fed by a channel.
//!
//! | event | effect |
//! |-------|--------|
//! | rows arrive | gathered with whatever else is queued (up to [`MAX_BATCH`]) into one transaction |
//! | the database cannot be opened (at start) | as a failed transaction; it is opened again with each retry, and queries answer an error until then |
//! | the transaction fails (locked, read-only, disk full, ...) | the rows go to the [`BackupCache`]; the database is tried again every `retry_period` |
//! | rows arrive while the cache holds some | they are appended to the cache, behind the older ones |
//! | a retry succeeds | the cache is written to the database chunk by chunk, each chunk deleted after its commit |
//! | the cache cannot be written either | the rows stay in memory (not acknowledged) and are tried again with the cache |
//! | `flush` | answered once everything sent before is in the database or the cache |
//! | retention | `history_limit_days` / `storage_limit_gb` applied (`manage_db_size`) |
//! | the agent drops its [`WriterHandle`] | what is queued is written, then the thread ends |
//!
//! [`WriterStatus`] carries the figures back to the agent (written, cached, dropped, the
//! last error), read for its health and its `status` RPC.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use super::cache::{BackupCache, cache_path};
use super::config::TableNames;
use super::record::Record;
use super::store::{SchemaInfo, Store};

/// The most rows in one transaction.
pub const MAX_BATCH: usize = 50_000;
/// Rows taken from the cache per transaction on a retry.
const CACHE_CHUNK: usize = 10_000;

/// What the writer reports once everything sent before a `flush` is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FlushReport {
    /// Rows committed to the database since the writer started.
    pub written: u64,
    /// Rows waiting in the backup cache.
    pub cached: u64,
    /// Rows neither in the database nor in the cache (the cache failed too).
    pub unacknowledged: u64,
    /// Rows the cache's bound dropped.
    pub dropped: u64,
}

/// Figures the writer keeps for the agent.
#[derive(Debug, Default)]
pub struct WriterStatus {
    /// Rows committed to the database.
    pub written: AtomicU64,
    /// Rows in the backup cache.
    pub cached: AtomicU64,
    /// Rows the cache's bound dropped.
    pub dropped: AtomicU64,
    /// Rows retention deleted.
    pub expired: AtomicU64,
    /// The database refuses writes.
    pub failing: AtomicBool,
    /// The last error, cleared when the database takes writes again.
    pub last_error: Mutex<Option<String>>,
}

enum Message {
    Rows(Vec<Record>),
    Flush(oneshot::Sender<FlushReport>),
    Retention {
        cutoff: Option<String>,
        limit_bytes: Option<u64>,
    },
}

/// What the agent holds: the channel to the thread and its figures.
pub struct WriterHandle {
    tx: Sender<Message>,
    /// The thread's figures.
    pub status: Arc<WriterStatus>,
    /// `Some(Ok)` once the schema is ready, `Some(Err)` if the database could not be opened.
    pub ready: watch::Receiver<Option<Result<SchemaInfo, String>>>,
}

/// How the writer is set up.
pub struct WriterSettings {
    /// The database file.
    pub database: PathBuf,
    /// Its table names.
    pub tables: TableNames,
    /// Retry period of a failing database.
    pub retry_period: Duration,
    /// Bound of the backup cache.
    pub cache_limit_bytes: Option<u64>,
}

impl WriterHandle {
    /// Starts the thread; it opens the database and the cache.
    pub fn start(settings: WriterSettings) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let status = Arc::new(WriterStatus::default());
        let (ready_tx, ready) = watch::channel(None);
        let s = status.clone();
        std::thread::Builder::new()
            .name("historian-writer".into())
            .spawn(move || {
                let figures = s.clone();
                let run = std::panic::AssertUnwindSafe(move || run(settings, rx, s, ready_tx));
                if std::panic::catch_unwind(run).is_err() {
                    figures.failing.store(true, Ordering::Relaxed);
                    *figures.last_error.lock() =
                        Some("the writer thread panicked; nothing more is stored".into());
                }
            })?;
        Ok(WriterHandle { tx, status, ready })
    }

    /// Queues rows; `false` if the thread is gone (it failed to open the database).
    pub fn send(&self, rows: Vec<Record>) -> bool {
        self.tx.send(Message::Rows(rows)).is_ok()
    }

    /// Resolves once everything sent before is in the database or the cache.
    pub fn flush(&self) -> Option<oneshot::Receiver<FlushReport>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Message::Flush(tx)).ok()?;
        Some(rx)
    }

    /// Asks for retention: delete rows before `cutoff`, keep the database under `limit_bytes`.
    pub fn retention(&self, cutoff: Option<String>, limit_bytes: Option<u64>) {
        let _ = self.tx.send(Message::Retention { cutoff, limit_bytes });
    }
}

struct Writer {
    /// `None` until the database opens (it is tried again with every retry).
    store: Option<Store>,
    database: PathBuf,
    tables: TableNames,
    ready: watch::Sender<Option<Result<SchemaInfo, String>>>,
    cache: Option<BackupCache>,
    cache_file: PathBuf,
    cache_limit: Option<u64>,
    /// Rows neither the database nor the cache took.
    held: Vec<Record>,
    status: Arc<WriterStatus>,
    retry_period: Duration,
    next_retry: Option<Instant>,
}

fn run(
    settings: WriterSettings,
    rx: Receiver<Message>,
    status: Arc<WriterStatus>,
    ready: watch::Sender<Option<Result<SchemaInfo, String>>>,
) {
    let cache_file = cache_path(&settings.database);
    let mut w = Writer {
        store: None,
        database: settings.database,
        tables: settings.tables,
        ready,
        cache: None,
        cache_file,
        cache_limit: settings.cache_limit_bytes,
        held: Vec::new(),
        status,
        retry_period: settings.retry_period,
        next_retry: None,
    };
    if !w.ensure_store() {
        w.next_retry = Some(Instant::now() + w.retry_period);
    }
    // What an earlier run left in the cache goes first.
    if w.cache_file.exists() {
        w.open_cache();
        if w.cache.as_ref().is_some_and(|c| !c.is_empty()) {
            w.retry();
        }
    }
    let mut queue: Vec<Message> = Vec::new();
    loop {
        let first = match w.next_retry {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
        };
        if w.next_retry.is_some_and(|at| Instant::now() >= at) {
            w.retry();
        }
        let Some(first) = first else { continue };
        queue.push(first);
        let mut rows = 0;
        while rows < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => {
                    if let Message::Rows(r) = &m {
                        rows += r.len();
                    }
                    queue.push(m);
                }
                Err(_) => break,
            }
        }
        w.handle(&mut queue);
    }
    let mut rest: Vec<Message> = rx.try_iter().collect();
    w.handle(&mut rest);
}

impl Writer {
    /// Handles the queued messages in order, rows between two others as one batch.
    fn handle(&mut self, queue: &mut Vec<Message>) {
        let mut batch: Vec<Record> = Vec::new();
        for m in queue.drain(..) {
            match m {
                Message::Rows(mut r) => {
                    if batch.is_empty() {
                        batch = r;
                    } else {
                        batch.append(&mut r);
                    }
                }
                other => {
                    self.store_rows(std::mem::take(&mut batch));
                    match other {
                        Message::Flush(reply) => {
                            let _ = reply.send(self.report());
                        }
                        Message::Retention { cutoff, limit_bytes } => {
                            self.retention(cutoff.as_deref(), limit_bytes)
                        }
                        Message::Rows(_) => {}
                    }
                }
            }
        }
        self.store_rows(batch);
    }

    fn report(&self) -> FlushReport {
        FlushReport {
            written: self.status.written.load(Ordering::Relaxed),
            cached: self.cache.as_ref().map_or(0, BackupCache::len),
            unacknowledged: self.held.len() as u64,
            dropped: self.status.dropped.load(Ordering::Relaxed),
        }
    }

    fn backlogged(&self) -> bool {
        !self.held.is_empty() || self.cache.as_ref().is_some_and(|c| !c.is_empty())
    }

    fn store_rows(&mut self, rows: Vec<Record>) {
        if rows.is_empty() {
            return;
        }
        if !self.backlogged() && self.ensure_store() {
            match self.store.as_mut().expect("ensured").write(&rows) {
                Ok(()) => {
                    self.status
                        .written
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    return;
                }
                Err(e) => self.failed(format!("the database refused {} rows: {e}", rows.len())),
            }
        }
        self.append_to_cache(rows);
    }

    /// Opens the database if it is not open; `false` if it still cannot be.
    fn ensure_store(&mut self) -> bool {
        if self.store.is_some() {
            return true;
        }
        match Store::open(&self.database, &self.tables) {
            Ok(s) => {
                self.ready.send_replace(Some(Ok(s.schema().clone())));
                self.store = Some(s);
                true
            }
            Err(e) => {
                let e = format!("cannot open {}: {e}", self.database.display());
                if self.ready.borrow().is_none() {
                    tracing::error!("historian: {e}");
                }
                self.ready.send_replace(Some(Err(e.clone())));
                self.failed(e);
                false
            }
        }
    }

    fn failed(&mut self, e: String) {
        if !self.status.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!("historian: {e}; caching until it takes writes again");
        }
        *self.status.last_error.lock() = Some(e);
        self.next_retry = Some(Instant::now() + self.retry_period);
    }

    fn open_cache(&mut self) -> bool {
        if self.cache.is_none() {
            match BackupCache::open(&self.cache_file, self.cache_limit) {
                Ok(c) => {
                    self.cache = Some(c);
                    self.status
                        .cached
                        .store(self.cache.as_ref().map_or(0, BackupCache::len), Ordering::Relaxed);
                }
                Err(e) => {
                    let e = format!("cannot open the backup cache {}: {e}", self.cache_file.display());
                    tracing::error!("historian: {e}");
                    *self.status.last_error.lock() = Some(e);
                }
            }
        }
        self.cache.is_some()
    }

    fn append_to_cache(&mut self, mut rows: Vec<Record>) {
        if self.next_retry.is_none() {
            self.next_retry = Some(Instant::now() + self.retry_period);
        }
        if !self.open_cache() {
            self.held.append(&mut rows);
            return;
        }
        let cache = self.cache.as_mut().expect("opened above");
        if !self.held.is_empty() {
            let mut held = std::mem::take(&mut self.held);
            held.append(&mut rows);
            rows = held;
        }
        match cache.append(&rows) {
            Ok(dropped) => {
                self.status.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
            Err(e) => {
                let e = format!("the backup cache refused {} rows: {e}", rows.len());
                tracing::error!("historian: {e}");
                *self.status.last_error.lock() = Some(e);
                self.held = rows;
            }
        }
        self.status.cached.store(cache.len(), Ordering::Relaxed);
    }

    /// Tries the database again: what is held in memory, then the cache, oldest first.
    fn retry(&mut self) {
        self.next_retry = None;
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            // Through the cache, to keep the order.
            self.append_to_cache(held);
            if !self.held.is_empty() {
                self.next_retry = Some(Instant::now() + self.retry_period);
                return;
            }
        }
        if !self.ensure_store() {
            return;
        }
        let store = self.store.as_mut().expect("ensured");
        let Some(cache) = self.cache.as_mut() else { return };
        loop {
            let (rows, last) = match cache.peek(CACHE_CHUNK) {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("historian: cannot read the backup cache: {e}");
                    self.next_retry = Some(Instant::now() + self.retry_period);
                    return;
                }
            };
            if rows.is_empty() {
                break;
            }
            if let Err(e) = store.write(&rows) {
                let e = format!("the database still refuses writes: {e}");
                *self.status.last_error.lock() = Some(e);
                self.next_retry = Some(Instant::now() + self.retry_period);
                return;
            }
            self.status
                .written
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            if let Err(e) = cache.remove_through(last) {
                // They will be written again (harmless: INSERT OR REPLACE).
                tracing::error!("historian: cannot delete written rows from the backup cache: {e}");
                self.next_retry = Some(Instant::now() + self.retry_period);
                return;
            }
            self.status.cached.store(cache.len(), Ordering::Relaxed);
        }
        self.status.cached.store(0, Ordering::Relaxed);
        if self.status.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("historian: the database takes writes again; the backup cache is empty");
        }
        *self.status.last_error.lock() = None;
    }

    fn retention(&mut self, cutoff: Option<&str>, limit_bytes: Option<u64>) {
        let Some(store) = self.store.as_mut() else { return };
        match store.enforce_limits(cutoff, limit_bytes) {
            Ok(n) => {
                self.status.expired.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!("historian: retention (manage_db_size) failed: {e}"),
        }
    }
}
