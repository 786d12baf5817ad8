//! The persistence and parsing core of VOLTTRON's configuration store, with no actor code.
//!
//! VOLTTRON keeps one store per agent identity in `$VOLTTRON_HOME/configuration_store/<identity>.store`
//! ([`store_path`]): a JSON object mapping each configuration name to
//! `{"type": "json"|"csv"|"raw", "modified": "<ISO-8601>", "data": "<raw text>"}`. The raw text is
//! kept exactly as given; its parsed form ([`parse`]) is what agents receive.
//!
//! * [`AgentStore`] is one agent's store: case-insensitive names (the case of the last writer is
//!   kept), `config://name` references resolved on [`AgentStore::get`], cycles rejected on
//!   [`AgentStore::set`], and [`AgentStore::referrers`] for UPDATE notifications.
//! * Every write is atomic and durable (temporary file in the same directory, `fsync`, rename,
//!   `fsync` of the directory). A failed write leaves the file and the in-memory store as they
//!   were. A store that becomes empty has its file removed, as VOLTTRON's `PersistentDict` does.
//! * Files written by VOLTTRON load unchanged and files written here load in VOLTTRON.
//!
//! ```
//! use volttron::config_store::{AgentStore, ConfigType, Change};
//! use volttron::core::Value;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = AgentStore::open(dir.path().join("agent.store")).unwrap();
//! let now = chrono::Utc::now();
//! store.set("points", "name,unit\nzat,degF\n", ConfigType::Csv, now).unwrap();
//! let change = store
//!     .set("config", r#"{"interval": 5, /* seconds */ "points": "config://points"}"#, ConfigType::Json, now)
//!     .unwrap();
//! assert_eq!(change, Change::New);
//! let config = store.get("CONFIG").unwrap();
//! assert_eq!(config["points"][0]["unit"], Value::from("degF"));
//! assert_eq!(store.referrers("points"), vec!["config".to_string()]);
//! ```

mod comments;
mod error;
mod format;
mod names;
mod parse;
mod refs;
mod store;
#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use format::{STORE_DIR, STORE_EXT, format_timestamp, list_stores, store_path};
pub use names::normalize_name;
pub use parse::{ConfigType, ParseError, UnknownConfigType, parse};
pub use refs::LINK_PREFIX;
pub use store::{AgentStore, Change, ConfigEntry};
