//! Reads: the historian's RPCs answered from a read-only connection, on a blocking thread.
//!
//! | RPC | answer (VOLTTRON's shapes) |
//! |-----|------------------------------|
//! | `query(topic)` | `{"values": [[ts, v], ...], "metadata": {...}}`; `{}` when nothing matched |
//! | `query([t1, t2])` | `{"values": {"t1": [...], "t2": [...]}, "metadata": {}}` (a list of one topic answers as a single topic) |
//! | `get_topic_list()` | `["campus/b1/ahu/zat", ...]` |
//! | `get_topics_by_pattern(p)` | `{"name": topic_id}` for names matching the regular expression `p` (case-insensitive search) |
//! | `get_topics_metadata(t or [t])` | `{"t": metadata}` for the known ones |
//! | `get_aggregate_topics()` | `[[name, agg_type, agg_period, configured_topics]]` |
//!
//! Topic names match case-insensitively. `start` is inclusive, `end` exclusive, `start ==
//! end` selects that instant; `count` applies to each topic; `skip` rows are skipped first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};

use crate::core::{Map, Value};

use super::store::{BUSY_TIMEOUT, SchemaInfo};
use crate::agents::time::parse_timestamp;
use crate::config_store::format_timestamp;

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Arguments VOLTTRON refuses too.
    #[error("{0}")]
    BadArgument(String),
    /// The database is not open (its configuration was refused, or it could not be opened).
    #[error("the historian has no database: {0}")]
    NoDatabase(String),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sql(String),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Sql(e.to_string())
    }
}

/// A `query` after its arguments were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    /// The topics, as the caller spelled them.
    pub topics: Vec<String>,
    /// Whether the answer has the multi-topic shape.
    pub multi: bool,
    /// Inclusive start (formatted).
    pub start: Option<String>,
    /// Exclusive end (formatted).
    pub end: Option<String>,
    /// `(agg_type, agg_period)` of an aggregate query.
    pub aggregate: Option<(String, String)>,
    /// Rows to skip per topic.
    pub skip: i64,
    /// Rows per topic; `-1`: all.
    pub count: i64,
    /// `LAST_TO_FIRST`.
    pub descending: bool,
}

/// The read connection.
pub struct Reader {
    conn: Connection,
    schema: SchemaInfo,
}

impl Reader {
    /// Opens the database read-only.
    pub fn open(path: &Path, schema: SchemaInfo) -> Result<Self, QueryError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Reader { conn, schema })
    }

    fn topics(&self) -> Result<Vec<(i64, String, Option<String>)>, QueryError> {
        let t = &self.schema.tables;
        let sql = if self.schema.meta_in_topics {
            format!(
                "SELECT topic_id, topic_name, metadata FROM {} ORDER BY topic_id",
                t.topics
            )
        } else {
            format!(
                "SELECT t.topic_id, t.topic_name, m.metadata FROM {} t LEFT JOIN {} m ON t.topic_id = m.topic_id ORDER BY t.topic_id",
                t.topics, t.meta
            )
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn table_exists(&self, name: &str) -> Result<bool, QueryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1",
                [name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// `get_topic_list`.
    pub fn topic_list(&self) -> Result<Value, QueryError> {
        Ok(Value::List(
            self.topics()?
                .into_iter()
                .map(|(_, n, _)| Value::from(n))
                .collect(),
        ))
    }

    /// `get_topics_by_pattern`.
    pub fn topics_by_pattern(&self, pattern: &str) -> Result<Value, QueryError> {
        let re = regex_lite::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .build()
            .map_err(|e| QueryError::BadArgument(format!("invalid topic pattern {pattern:?}: {e}")))?;
        let mut m = Map::new();
        for (id, name, _) in self.topics()? {
            if re.is_match(&name) {
                m.insert(name, Value::from(id));
            }
        }
        Ok(Value::Map(m))
    }

    /// `get_topics_metadata`.
    pub fn topics_metadata(&self, topics: &[String]) -> Result<Value, QueryError> {
        let known: HashMap<String, Option<String>> = self
            .topics()?
            .into_iter()
            .map(|(_, n, m)| (n.to_lowercase(), m))
            .collect();
        let mut out = Map::new();
        for t in topics {
            if let Some(meta) = known.get(&t.to_lowercase()) {
                out.insert(t.clone(), meta.as_deref().map_or(Value::Null, json_or_string));
            }
        }
        Ok(Value::Map(out))
    }

    /// `get_aggregate_topics`.
    pub fn aggregate_topics(&self) -> Result<Value, QueryError> {
        let t = &self.schema.tables;
        if !self.table_exists(&t.agg_topics)? || !self.table_exists(&t.agg_meta)? {
            return Ok(Value::List(Vec::new()));
        }
        let sql = format!(
            "SELECT agg_topic_name, agg_type, agg_time_period, metadata FROM {} AS t, {} AS m WHERE t.agg_topic_id = m.agg_topic_id",
            t.agg_topics, t.agg_meta
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, kind, period, meta) = row?;
            let configured = python_literal(&meta)
                .get("configured_topics")
                .cloned()
                .unwrap_or(Value::Null);
            out.push(Value::List(vec![
                name.into(),
                kind.into(),
                period.into(),
                configured,
            ]));
        }
        Ok(Value::List(out))
    }

    fn aggregate_ids(&self, agg_type: &str, agg_period: &str) -> Result<HashMap<String, i64>, QueryError> {
        let t = &self.schema.tables;
        if !self.table_exists(&t.agg_topics)? {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT agg_topic_id, agg_topic_name FROM {} WHERE lower(agg_type) = lower(?1) AND agg_time_period = ?2",
            t.agg_topics
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([agg_type, agg_period], |r| {
                Ok((r.get::<_, String>(1)?.to_lowercase(), r.get(0)?))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(rows)
    }

    /// `query`.
    pub fn query(&self, q: &QuerySpec) -> Result<Value, QueryError> {
        let topics = self.topics()?;
        let by_name: HashMap<String, (i64, Option<&str>)> = topics
            .iter()
            .map(|(id, n, m)| (n.to_lowercase(), (*id, m.as_deref())))
            .collect();
        let (table, value_col, ids) = match &q.aggregate {
            Some((kind, period)) => {
                let table = format!("{kind}_{period}");
                if !self.table_exists(&table)? {
                    return Ok(Value::Map(Map::new()));
                }
                (table, "agg_value", Some(self.aggregate_ids(kind, period)?))
            }
            None => (self.schema.tables.data.clone(), "value_string", None),
        };
        let mut selected: Vec<(i64, &str)> = Vec::new();
        for t in &q.topics {
            let key = t.to_lowercase();
            let id = match &ids {
                Some(agg) => agg.get(&key).copied(),
                None => by_name.get(&key).map(|(id, _)| *id),
            };
            match id {
                Some(id) => selected.push((id, t)),
                None => tracing::debug!("historian: no such topic {t}"),
            }
        }
        if selected.is_empty() {
            return Ok(Value::Map(Map::new()));
        }
        let mut sql = format!("SELECT ts, {value_col} FROM {table} WHERE topic_id = ?");
        let mut bounds: Vec<String> = Vec::new();
        match (&q.start, &q.end) {
            (Some(s), Some(e)) if s == e => {
                sql.push_str(" AND ts = ?");
                bounds.push(s.clone());
            }
            (s, e) => {
                if let Some(s) = s {
                    sql.push_str(" AND ts >= ?");
                    bounds.push(s.clone());
                }
                if let Some(e) = e {
                    sql.push_str(" AND ts < ?");
                    bounds.push(e.clone());
                }
            }
        }
        sql.push_str(if q.descending {
            " ORDER BY ts DESC"
        } else {
            " ORDER BY ts ASC"
        });
        sql.push_str(" LIMIT ? OFFSET ?");
        let mut stmt = self.conn.prepare(&sql)?;
        let aggregate = q.aggregate.is_some();
        let mut per_topic: Vec<(&str, Vec<Value>)> = Vec::new();
        for (id, name) in &selected {
            let mut args: Vec<rusqlite::types::Value> = vec![(*id).into()];
            args.extend(bounds.iter().map(|b| b.clone().into()));
            args.push(q.count.into());
            args.push(q.skip.max(0).into());
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut values = Vec::new();
            while let Some(r) = rows.next()? {
                let ts: String = r.get(0)?;
                let v = if aggregate {
                    Value::from(r.get::<_, f64>(1)?)
                } else {
                    let s: String = r.get(1)?;
                    Value::from_json_str(&s).unwrap_or(Value::String(s))
                };
                values.push(Value::List(vec![Value::String(volttron_ts(ts)), v]));
            }
            per_topic.push((name, values));
        }
        let mut out = Map::new();
        if q.multi {
            let mut values = Map::new();
            for (name, v) in per_topic {
                values.insert(name.to_owned(), Value::List(v));
            }
            out.insert("values".into(), Value::Map(values));
            out.insert("metadata".into(), Value::Map(Map::new()));
        } else {
            let (name, values) = per_topic.pop().expect("one topic selected");
            if values.is_empty() {
                return Ok(Value::Map(Map::new()));
            }
            let meta = by_name
                .get(&name.to_lowercase())
                .and_then(|(_, m)| *m)
                .map(json_or_string)
                .filter(|m| !matches!(m, Value::Null))
                .unwrap_or_else(|| Value::Map(Map::new()));
            out.insert("values".into(), Value::List(values));
            out.insert("metadata".into(), meta);
        }
        Ok(Value::Map(out))
    }
}

/// A stored timestamp as VOLTTRON returns it (`format_timestamp` of the parsed value).
fn volttron_ts(stored: String) -> String {
    if stored.len() == 32 && stored.ends_with("+00:00") {
        return stored;
    }
    match parse_timestamp(&stored) {
        // A naive stored time comes back naive, as Python's converter gives it.
        Some(t) if stored.len() == 26 => t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        Some(t) => format_timestamp(&t),
        None => stored,
    }
}

fn json_or_string(s: &str) -> Value {
    Value::from_json_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

/// The aggregate metadata VOLTTRON writes (`str(dict)`, read back with `ast.literal_eval`),
/// or JSON.
fn python_literal(s: &str) -> Value {
    if let Ok(v) = Value::from_json_str(s) {
        return v;
    }
    let j = s
        .replace('\'', "\"")
        .replace("True", "true")
        .replace("False", "false")
        .replace("None", "null");
    Value::from_json_str(&j).unwrap_or(Value::Null)
}

/// The reader of one database, opened on first use.
pub struct ReadSide {
    /// The database file.
    pub path: PathBuf,
    /// The open connection.
    pub reader: Option<Reader>,
}
