//! The historian's configuration: VOLTTRON's sqlite historian keys, read from the `config`
//! entry of its configuration store (or built in code with [`SqliteHistorian`](super::SqliteHistorian)'s builder).
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `connection` | — (required) | `{"type": "sqlite", "params": {"database": PATH}}`; a relative `PATH` is under the agent's data directory |
//! | `tables_def` | `{"table_prefix": "", "data_table": "data", "topics_table": "topics", "meta_table": "meta"}` | table names; a prefix `p` makes them `p_data`, ...; the aggregate tables are `[p_]aggregate_<topics_table>` and `[p_]aggregate_<meta_table>` |
//! | `history_limit_days` | none | rows older than this many days are deleted |
//! | `storage_limit_gb` | none | oldest rows are deleted while the database is larger |
//! | `capture_device_data`, `capture_analysis_data`, `capture_record_data`, `capture_log_data` | `true` | subscribe to `devices/`, `analysis/`, `record/`, `datalogger/` |
//! | `backup_storage_limit_gb` | none | bound of the backup cache; beyond it the oldest cached rows are dropped (and counted) |
//! | `retry_period` | `300` s | while the database refuses writes, how often to try again |
//! | `submit_size_limit` | `1000` | VOLTTRON's batch size; here the least number of rows per transaction the writer gathers when more are waiting |
//! | `readonly` | `false` | answer queries only, subscribe to nothing |

use std::path::{Path, PathBuf};

use crate::core::{Map, Value};

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The configuration is not a JSON object.
    #[error("the historian's configuration must be an object, not {0}")]
    NotAnObject(String),
    /// No `connection`, or one without `params.database`.
    #[error("`connection.params.database` is missing")]
    MissingDatabase,
    /// `connection.type` is something else than `sqlite`.
    #[error("`connection.type` is {0:?}; this historian stores only to \"sqlite\"")]
    UnsupportedType(String),
    /// A key has a value of the wrong type or range.
    #[error("`{key}`: {reason}")]
    BadValue {
        /// The key, dotted (`tables_def.data_table`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A relative database path, and no data directory to put it in.
    #[error("the database path {0:?} is relative and this agent has no data directory")]
    NoDataDir(PathBuf),
}

/// The names of the tables, after VOLTTRON's `parse_table_def`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// The readings: `data`.
    pub data: String,
    /// The topics (and, in the current schema, their metadata): `topics`.
    pub topics: String,
    /// The metadata table of older databases: `meta`.
    pub meta: String,
    /// The aggregate topics: `aggregate_topics`.
    pub agg_topics: String,
    /// The aggregate topics' metadata: `aggregate_meta`.
    pub agg_meta: String,
}

impl Default for TableNames {
    fn default() -> Self {
        Self::with("", "data", "topics", "meta")
    }
}

impl TableNames {
    /// The names for a prefix and the three base names, as VOLTTRON forms them.
    pub fn with(prefix: &str, data: &str, topics: &str, meta: &str) -> Self {
        let p = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}_")
        };
        TableNames {
            data: format!("{p}{data}"),
            topics: format!("{p}{topics}"),
            meta: format!("{p}{meta}"),
            agg_topics: format!("{p}aggregate_{topics}"),
            agg_meta: format!("{p}aggregate_{meta}"),
        }
    }
}

/// What is captured from the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// `devices/.../all`.
    pub device: bool,
    /// `analysis/`.
    pub analysis: bool,
    /// `record/`.
    pub record: bool,
    /// `datalogger/`.
    pub log: bool,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            device: true,
            analysis: true,
            record: true,
            log: true,
        }
    }
}

/// A historian configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorianConfig {
    /// The database file (absolute, or relative to the agent's data directory).
    pub database: PathBuf,
    /// Table names.
    pub tables: TableNames,
    /// Rows older than this many days are deleted.
    pub history_limit_days: Option<f64>,
    /// The database is kept under this size.
    pub storage_limit_gb: Option<f64>,
    /// The backup cache is kept under this size.
    pub backup_storage_limit_gb: Option<f64>,
    /// How often to retry a database that refused writes, in seconds.
    pub retry_period: f64,
    /// Rows per transaction the writer aims at.
    pub submit_size_limit: usize,
    /// What is captured.
    pub capture: Capture,
    /// Queries only.
    pub readonly: bool,
}

impl HistorianConfig {
    /// The defaults for a database path.
    pub fn new(database: impl Into<PathBuf>) -> Self {
        HistorianConfig {
            database: database.into(),
            tables: TableNames::default(),
            history_limit_days: None,
            storage_limit_gb: None,
            backup_storage_limit_gb: None,
            retry_period: 300.0,
            submit_size_limit: 1000,
            capture: Capture::default(),
            readonly: false,
        }
    }

    /// Reads VOLTTRON's configuration (see the module docs).
    pub fn from_value(config: &Value) -> Result<Self, ConfigError> {
        let map = config
            .as_map()
            .ok_or_else(|| ConfigError::NotAnObject(config.to_json_string()))?;
        let connection = map
            .get("connection")
            .and_then(Value::as_map)
            .ok_or(ConfigError::MissingDatabase)?;
        if let Some(kind) = connection.get("type") {
            let kind = kind
                .as_str()
                .ok_or_else(|| bad("connection.type", "must be a string"))?;
            if kind != "sqlite" {
                return Err(ConfigError::UnsupportedType(kind.to_owned()));
            }
        }
        let database = connection
            .get("params")
            .and_then(|p| p.get("database"))
            .ok_or(ConfigError::MissingDatabase)?;
        let database = database
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("connection.params.database", "must be a non-empty string"))?;
        let mut c = HistorianConfig::new(database);
        if let Some(t) = map.get("tables_def").filter(|v| !matches!(v, Value::Null)) {
            let t = t.as_map().ok_or_else(|| bad("tables_def", "must be an object"))?;
            let name = |key: &str, default: &'static str| -> Result<String, ConfigError> {
                match t.get(key) {
                    None | Some(Value::Null) => Ok(default.to_owned()),
                    Some(v) => identifier(&format!("tables_def.{key}"), v, key == "table_prefix"),
                }
            };
            c.tables = TableNames::with(
                &name("table_prefix", "")?,
                &name("data_table", "data")?,
                &name("topics_table", "topics")?,
                &name("meta_table", "meta")?,
            );
        }
        c.history_limit_days = positive(map, "history_limit_days")?;
        c.storage_limit_gb = positive(map, "storage_limit_gb")?;
        c.backup_storage_limit_gb = positive(map, "backup_storage_limit_gb")?;
        if let Some(r) = positive(map, "retry_period")? {
            c.retry_period = r;
        }
        if let Some(n) = positive(map, "submit_size_limit")? {
            c.submit_size_limit = n.max(1.0) as usize;
        }
        c.capture = Capture {
            device: flag(map, "capture_device_data")?,
            analysis: flag(map, "capture_analysis_data")?,
            record: flag(map, "capture_record_data")?,
            log: flag(map, "capture_log_data")?,
        };
        c.readonly = match map.get("readonly") {
            None | Some(Value::Null) => false,
            Some(_) => flag(map, "readonly")?,
        };
        Ok(c)
    }

    /// The database path, a relative one under `data_dir`.
    pub fn database_path(&self, data_dir: Option<&Path>) -> Result<PathBuf, ConfigError> {
        if self.database.is_absolute() {
            return Ok(self.database.clone());
        }
        match data_dir {
            Some(d) => Ok(d.join(&self.database)),
            None => Err(ConfigError::NoDataDir(self.database.clone())),
        }
    }
}

fn bad(key: &str, reason: &str) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A table name: letters, digits and `_` only (it is spliced into SQL, as VOLTTRON does).
fn identifier(key: &str, v: &Value, may_be_empty: bool) -> Result<String, ConfigError> {
    let s = v.as_str().ok_or_else(|| bad(key, "must be a string"))?;
    let ok = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (may_be_empty || !s.is_empty())
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(bad(
            key,
            "must be letters, digits and '_', not starting with a digit",
        ))
    }
}

fn positive(map: &Map, key: &str) -> Result<Option<f64>, ConfigError> {
    let v = match map.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let n = match v {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        v => v.as_f64(),
    }
    .ok_or_else(|| bad(key, "must be a number"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad(key, "must be a number ≥ 0"));
    }
    // VOLTTRON treats 0 as "not set".
    Ok(if n == 0.0 { None } else { Some(n) })
}

/// A boolean key, `true` when absent (VOLTTRON's `capture_*` default).
fn flag(map: &Map, key: &str) -> Result<bool, ConfigError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Int(i)) => Ok(*i != 0),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(bad(key, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<HistorianConfig, ConfigError> {
        HistorianConfig::from_value(&Value::from_json_str(json).unwrap())
    }

    #[test]
    fn volttron_keys() {
        let c = parse(
            r#"{"connection": {"type": "sqlite", "params": {"database": "h.sqlite"}},
                "tables_def": {"table_prefix": "p", "data_table": "d", "topics_table": "t", "meta_table": "m"},
                "history_limit_days": 3, "storage_limit_gb": "0.5", "capture_log_data": false}"#,
        )
        .unwrap();
        assert_eq!(c.database, PathBuf::from("h.sqlite"));
        assert_eq!(c.tables, TableNames::with("p", "d", "t", "m"));
        assert_eq!(c.tables.agg_topics, "p_aggregate_t");
        assert_eq!(c.history_limit_days, Some(3.0));
        assert_eq!(c.storage_limit_gb, Some(0.5));
        assert!(!c.capture.log && c.capture.device);
        assert!(!c.readonly);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("[]").unwrap_err(), ConfigError::NotAnObject("[]".into()));
        assert_eq!(parse("{}").unwrap_err(), ConfigError::MissingDatabase);
        assert_eq!(
            parse(r#"{"connection": {"type": "mysql", "params": {"database": "x"}}}"#).unwrap_err(),
            ConfigError::UnsupportedType("mysql".into())
        );
        let e = parse(
            r#"{"connection": {"params": {"database": "x"}}, "tables_def": {"data_table": "d; drop"}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(e, ConfigError::BadValue { ref key, .. } if key == "tables_def.data_table"),
            "{e}"
        );
        let e = parse(r#"{"connection": {"params": {"database": "x"}}, "history_limit_days": "soon"}"#)
            .unwrap_err();
        assert!(
            matches!(e, ConfigError::BadValue { ref key, .. } if key == "history_limit_days"),
            "{e}"
        );
    }
}
