//! `platform.historian`: [`SqliteHistorian`], VOLTTRON's SQLite historian — what the bus
//! carries under `devices/` (and `analysis/`, `record/`, `datalogger/`) stored in VOLTTRON's
//! schema, and its query RPCs with VOLTTRON's names, arguments and answers.
//!
//! | event / RPC | effect / answer |
//! |-------------|-----------------|
//! | configuration `config` NEW/UPDATE ([`config`] has the keys) | the database (re)opened on the writer thread, subscriptions set by the `capture_*` flags |
//! | a refused configuration | [`ConfigError`] logged, health `BAD` with the reason; the previous database, if any, stays in use |
//! | `config` DELETE | back to the configuration given in code, if any; else nothing is stored |
//! | a publication ([`record`] says which rows) | queued to the writer thread: one transaction per batch, the backup cache when the database refuses ([`writer`]) |
//! | every 5 s | health: `GOOD`, or `BAD` with the reason while the database refuses writes |
//! | every 60 s | retention: `history_limit_days`, `storage_limit_gb` |
//! | `query(topic, start, end, agg_type, agg_period, skip, count, order)` | see [`query`]; times as in [`timestamp`] |
//! | `get_topic_list()`, `get_topics_by_pattern(topic_pattern)`, `get_topics_metadata(topics)`, `get_aggregate_topics()` | see [`query`] |
//! | `get_version()` | `"4.0.0"`, the version of VOLTTRON's SQL historian whose behaviour this follows |
//! | `flush()` (not VOLTTRON's) | once everything received before is in the database or the backup cache: `{"written", "cached", "unacknowledged", "dropped"}` |
//! | `status()` (not VOLTTRON's) | `{"database", "written", "cached", "dropped", "expired", "failing", "error"}` |
//!
//! The writer is one thread with one connection (WAL); queries run on a read-only
//! connection on tokio's blocking pool. Neither runs on the agents' threads.
//!
//! ```no_run
//! # async fn f(platform: &volttron::Platform) -> Result<(), Box<dyn std::error::Error>> {
//! use volttron::agents::{SqliteHistorian, historian};
//! platform
//!     .spawn(historian::IDENTITY, SqliteHistorian::new("/var/lib/volttron/historian.sqlite").history_limit_days(30.0))
//!     .await?;
//! # Ok(()) }
//! ```

pub mod cache;
pub mod config;
pub mod query;
pub mod record;
pub mod store;
pub mod timestamp;
pub mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::AgentContext;
use crate::agent::{ConfigAction, ConfigUpdate};
use crate::core::{Map, Publication, Status, Value};
use crate::platform::backpressure::OverflowPolicy;

use crate::config_store::format_timestamp;
pub use config::{Capture, ConfigError, HistorianConfig, TableNames};
pub use query::QueryError;
use query::{QuerySpec, ReadSide, Reader};
use record::{RecordCache, records_of};
use timestamp::parse_query_time;
use writer::{WriterHandle, WriterSettings};

/// The historian's identity.
pub const IDENTITY: &str = super::HISTORIAN_IDENTITY;
/// The configuration (of the historian's identity) VOLTTRON's historians read.
pub const CONFIG: &str = "config";
/// What `get_version` answers.
pub const VERSION: &str = "4.0.0";

/// The SQLite historian agent (module docs).
pub struct SqliteHistorian {
    preset: Option<HistorianConfig>,
    active: Option<Active>,
}

struct Active {
    config: HistorianConfig,
    database: PathBuf,
    writer: WriterHandle,
    read: Arc<Mutex<ReadSide>>,
    subscribed: Vec<&'static str>,
    records: RecordCache,
}

impl SqliteHistorian {
    /// A historian storing to `database` (absolute, or relative to the agent's data
    /// directory) until its configuration store says otherwise.
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self::with_config(HistorianConfig::new(database))
    }

    /// A historian with this configuration until its configuration store says otherwise.
    pub fn with_config(config: HistorianConfig) -> Self {
        SqliteHistorian {
            preset: Some(config),
            active: None,
        }
    }

    /// A historian that waits for its `config` in the configuration store.
    pub fn from_config_store() -> Self {
        SqliteHistorian {
            preset: None,
            active: None,
        }
    }

    fn preset_mut(&mut self) -> &mut HistorianConfig {
        self.preset
            .get_or_insert_with(|| HistorianConfig::new("historian.sqlite"))
    }

    /// Deletes rows older than this many days.
    pub fn history_limit_days(mut self, days: f64) -> Self {
        self.preset_mut().history_limit_days = Some(days);
        self
    }

    /// Keeps the database under this size.
    pub fn storage_limit_gb(mut self, gb: f64) -> Self {
        self.preset_mut().storage_limit_gb = Some(gb);
        self
    }

    /// Bounds the backup cache.
    pub fn backup_storage_limit_gb(mut self, gb: f64) -> Self {
        self.preset_mut().backup_storage_limit_gb = Some(gb);
        self
    }

    /// How often a database that refused writes is tried again (VOLTTRON: 300 s).
    pub fn retry_period(mut self, period: Duration) -> Self {
        self.preset_mut().retry_period = period.as_secs_f64();
        self
    }

    /// What is captured from the bus.
    pub fn capture(mut self, capture: Capture) -> Self {
        self.preset_mut().capture = capture;
        self
    }

    /// Table names.
    pub fn tables(mut self, tables: TableNames) -> Self {
        self.preset_mut().tables = tables;
        self
    }

    fn apply(&mut self, ctx: &AgentContext, config: HistorianConfig) -> Result<(), ConfigError> {
        let database = config.database_path(ctx.data_dir().as_deref())?;
        let writer = WriterHandle::start(WriterSettings {
            database: database.clone(),
            tables: config.tables.clone(),
            retry_period: Duration::from_secs_f64(config.retry_period.max(0.001)),
            cache_limit_bytes: config.backup_storage_limit_gb.map(gb_to_bytes),
        })
        .map_err(|e| ConfigError::BadValue {
            key: "connection".into(),
            reason: format!("no writer thread: {e}"),
        })?;
        let mut prefixes = Vec::new();
        if !config.readonly {
            let c = config.capture;
            for (on, prefix) in [
                (c.device, "devices/"),
                (c.analysis, "analysis/"),
                (c.record, "record/"),
                (c.log, "datalogger/"),
            ] {
                if on {
                    prefixes.push(prefix);
                }
            }
        }
        let old = self.active.take().map(|a| a.subscribed).unwrap_or_default();
        for prefix in &old {
            ctx.unsubscribe(prefix);
        }
        for prefix in &prefixes {
            if let Err(e) = ctx.subscribe_with("", prefix, OverflowPolicy::DropOldest, Self::on_publication) {
                tracing::error!("historian: cannot subscribe to {prefix}: {e}");
            }
        }
        self.active = Some(Active {
            config,
            read: Arc::new(Mutex::new(ReadSide {
                path: database.clone(),
                reader: None,
            })),
            database,
            writer,
            subscribed: prefixes,
            records: RecordCache::default(),
        });
        ctx.set_health(Status::Good, None);
        Ok(())
    }

    fn on_publication(&mut self, ctx: &AgentContext, p: &Publication) {
        let Some(active) = &mut self.active else { return };
        let mut rows = Vec::new();
        records_of(p, ctx.now(), &mut active.records, &mut rows);
        if !rows.is_empty() && !active.writer.send(rows) {
            tracing::warn!(
                "historian: the writer is gone (the database did not open); a publication on {} is lost",
                p.topic
            );
        }
    }

    /// The read side and the schema, once the writer opened the database.
    async fn reader(&self) -> Result<(Arc<Mutex<ReadSide>>, store::SchemaInfo), QueryError> {
        let active = self
            .active
            .as_ref()
            .ok_or_else(|| QueryError::NoDatabase("not configured".into()))?;
        let mut ready = active.writer.ready.clone();
        let schema = match ready.wait_for(Option::is_some).await {
            Ok(v) => v.clone().expect("waited for Some"),
            Err(_) => return Err(QueryError::NoDatabase("the writer stopped".into())),
        };
        Ok((active.read.clone(), schema.map_err(QueryError::NoDatabase)?))
    }

    /// Runs `f` on the read connection (opened on first use), on tokio's blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let (read, schema) = self.reader().await?;
        tokio::task::spawn_blocking(move || {
            let mut side = read.lock();
            let side = &mut *side;
            let reader = match &mut side.reader {
                Some(r) => r,
                empty => empty.insert(Reader::open(&side.path, schema)?),
            };
            f(reader)
        })
        .await
        .map_err(|e| QueryError::Sql(format!("the query thread failed: {e}")))?
    }
}

fn gb_to_bytes(gb: f64) -> u64 {
    (gb * 1024f64.powi(3)) as u64
}

/// `topic` of `query`: a string, or a list of strings.
fn topic_list(topic: &Value) -> Result<(Vec<String>, bool), QueryError> {
    match topic {
        Value::String(s) => Ok((vec![s.clone()], false)),
        Value::List(l) => {
            let topics = l
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    QueryError::BadArgument("topic: a list of topics must hold strings only".into())
                })?;
            let multi = topics.len() > 1;
            Ok((topics, multi))
        }
        Value::Null => Err(QueryError::BadArgument("\"Topic\" required".into())),
        other => Err(QueryError::BadArgument(format!(
            "topic must be a topic or a list of topics, not {}",
            other.to_json_string()
        ))),
    }
}

fn time_arg(name: &str, v: Option<Value>, ctx: &AgentContext) -> Result<Option<String>, QueryError> {
    let bad = |e: String| QueryError::BadArgument(format!("{name}: {e}"));
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_query_time(&s, ctx.now())
            .map(|t| Some(format_timestamp(&t)))
            .map_err(|e| bad(e.to_string())),
        Some(v @ (Value::Int(_) | Value::UInt(_) | Value::Float(_))) => {
            let s = v.to_json_string();
            parse_query_time(&s, ctx.now())
                .map(|t| Some(format_timestamp(&t)))
                .map_err(|e| bad(e.to_string()))
        }
        Some(other) => Err(bad(format!("not a time: {}", other.to_json_string()))),
    }
}

#[crate::agent]
impl SqliteHistorian {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        if self.active.is_none()
            && let Some(preset) = self.preset.clone()
            && let Err(e) = self.apply(ctx, preset)
        {
            tracing::error!("historian: {e}");
            ctx.set_health(Status::Bad, Some(&e.to_string()));
        }
    }

    #[on_config("config")]
    fn configure(&mut self, ctx: &AgentContext, update: &ConfigUpdate) {
        let config = match update.action {
            ConfigAction::Delete => match self.preset.clone() {
                Some(p) => Ok(p),
                None => {
                    if let Some(a) = self.active.take() {
                        for p in &a.subscribed {
                            ctx.unsubscribe(p);
                        }
                    }
                    ctx.set_health(Status::Bad, Some("no configuration"));
                    return;
                }
            },
            _ => HistorianConfig::from_value(&update.contents),
        };
        if let Err(e) = config.and_then(|c| {
            if self.active.as_ref().is_some_and(|a| a.config == c) {
                return Ok(());
            }
            self.apply(ctx, c)
        }) {
            tracing::error!("historian: configuration refused: {e}");
            ctx.set_health(Status::Bad, Some(&format!("configuration refused: {e}")));
        }
    }

    /// Health from the writer's figures.
    #[periodic(secs = 5)]
    fn watch(&mut self, ctx: &AgentContext) {
        let Some(a) = &self.active else { return };
        let error = a.writer.status.last_error.lock().clone();
        match error {
            Some(e) => ctx.set_health(Status::Bad, Some(&e)),
            None if ctx.health().status == Status::Bad => ctx.set_health(Status::Good, None),
            None => {}
        }
    }

    /// `history_limit_days` and `storage_limit_gb` (VOLTTRON's `manage_db_size`).
    #[periodic(secs = 60)]
    fn retention(&mut self, ctx: &AgentContext) {
        let Some(a) = &self.active else { return };
        let cutoff = a.config.history_limit_days.map(|d| {
            format_timestamp(&(ctx.now() - chrono::Duration::milliseconds((d * 86_400_000.0) as i64)))
        });
        let limit = a.config.storage_limit_gb.map(gb_to_bytes);
        if cutoff.is_some() || limit.is_some() {
            a.writer.retention(cutoff, limit);
        }
    }

    /// Time series of one topic or several (module docs).
    #[rpc]
    #[allow(clippy::too_many_arguments)]
    async fn query(
        &mut self,
        ctx: &AgentContext,
        topic: Option<Value>,
        start: Option<Value>,
        end: Option<Value>,
        agg_type: Option<String>,
        agg_period: Option<String>,
        skip: Option<i64>,
        count: Option<i64>,
        order: Option<String>,
    ) -> Result<Value, QueryError> {
        let (topics, multi) = topic_list(&topic.unwrap_or(Value::Null))?;
        let aggregate = match (agg_type, agg_period) {
            (None, None) => None,
            (Some(t), Some(p)) => {
                let ident =
                    |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ident(&t) || !ident(&p) {
                    return Err(QueryError::BadArgument(format!(
                        "invalid aggregation {t:?} / {p:?}"
                    )));
                }
                Some((t.to_lowercase(), p))
            }
            _ => {
                return Err(QueryError::BadArgument(
                    "You should provide both aggregation type(agg_type) and aggregation time period(agg_period) to query aggregate data".into(),
                ));
            }
        };
        let descending = match order.as_deref() {
            None | Some("FIRST_TO_LAST") => false,
            Some("LAST_TO_FIRST") => true,
            Some(o) => {
                return Err(QueryError::BadArgument(format!(
                    "order must be FIRST_TO_LAST or LAST_TO_FIRST, not {o:?}"
                )));
            }
        };
        let spec = QuerySpec {
            topics,
            multi,
            start: time_arg("start", start, ctx)?,
            end: time_arg("end", end, ctx)?,
            aggregate,
            skip: skip.unwrap_or(0),
            count: count.filter(|c| *c >= 0).unwrap_or(-1),
            descending,
        };
        self.read(move |r| r.query(&spec)).await
    }

    /// Every topic stored.
    #[rpc]
    async fn get_topic_list(&mut self) -> Result<Value, QueryError> {
        self.read(|r| r.topic_list()).await
    }

    /// `{name: topic_id}` of the topics matching a regular expression.
    #[rpc]
    async fn get_topics_by_pattern(&mut self, topic_pattern: String) -> Result<Value, QueryError> {
        self.read(move |r| r.topics_by_pattern(&topic_pattern)).await
    }

    /// `{topic: metadata}` of one topic or several.
    #[rpc]
    async fn get_topics_metadata(&mut self, topics: Value) -> Result<Value, QueryError> {
        let topics = match topics {
            Value::String(s) => vec![s],
            Value::List(l) => l
                .into_iter()
                .map(|t| match t {
                    Value::String(s) => Ok(s),
                    other => Err(other),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|t| {
                    QueryError::BadArgument(format!(
                        "Please provide a valid topic name string or a list of topic names. Invalid input {}",
                        t.to_json_string()
                    ))
                })?,
            other => {
                return Err(QueryError::BadArgument(format!(
                    "Please provide a valid topic name string or a list of topic names. Invalid input {}",
                    other.to_json_string()
                )));
            }
        };
        self.read(move |r| r.topics_metadata(&topics)).await
    }

    /// `[[name, agg_type, agg_period, configured_topics]]`.
    #[rpc]
    async fn get_aggregate_topics(&mut self) -> Result<Value, QueryError> {
        self.read(|r| r.aggregate_topics()).await
    }

    /// The version of VOLTTRON's SQL historian this follows.
    #[rpc]
    fn get_version(&mut self) -> &'static str {
        VERSION
    }

    /// Waits until everything received before is in the database or the backup cache.
    #[rpc]
    async fn flush(&mut self) -> Result<writer::FlushReport, QueryError> {
        let active = self
            .active
            .as_ref()
            .ok_or_else(|| QueryError::NoDatabase("not configured".into()))?;
        let rx = active
            .writer
            .flush()
            .ok_or_else(|| QueryError::NoDatabase("the writer stopped".into()))?;
        rx.await
            .map_err(|_| QueryError::NoDatabase("the writer stopped".into()))
    }

    /// The writer's figures.
    #[rpc]
    fn status(&mut self) -> Value {
        let mut m = Map::new();
        if let Some(a) = &self.active {
            use std::sync::atomic::Ordering::Relaxed;
            let s = &a.writer.status;
            m.insert("database".into(), Value::from(a.database.display().to_string()));
            m.insert("written".into(), Value::from(s.written.load(Relaxed) as i64));
            m.insert("cached".into(), Value::from(s.cached.load(Relaxed) as i64));
            m.insert("dropped".into(), Value::from(s.dropped.load(Relaxed) as i64));
            m.insert("expired".into(), Value::from(s.expired.load(Relaxed) as i64));
            m.insert("failing".into(), Value::from(s.failing.load(Relaxed)));
            m.insert("error".into(), Value::from(s.last_error.lock().clone()));
        }
        Value::Map(m)
    }
}
