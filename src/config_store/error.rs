//! [`StoreError`]: everything that can go wrong in the configuration store.

use std::io;
use std::path::PathBuf;

use super::parse::{ConfigType, ParseError};

/// An error from the configuration store. Whenever one is returned, the store (in memory and on
/// disk) is as it was before the call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A configuration name that is empty once surrounding whitespace and slashes are removed.
    #[error("invalid configuration name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Configuration data that does not parse as its declared type.
    #[error("configuration {name:?} is not valid {config_type}: {source}")]
    Parse {
        /// The (trimmed) configuration name.
        name: String,
        /// The declared type.
        config_type: ConfigType,
        /// What is wrong, with a position where one is known.
        #[source]
        source: ParseError,
    },
    /// A `set` whose `config://` references would form a cycle; also returned by `get` for a
    /// cycle found in a store loaded from disk.
    #[error("recursive configuration references: {}", path.join(" -> "))]
    Cycle {
        /// The cycle, first name repeated last (`["a", "b", "a"]`; `["a", "a"]` for a
        /// self-reference).
        path: Vec<String>,
    },
    /// No configuration with this name (compared case-insensitively).
    #[error("no configuration named {0:?}")]
    NotFound(String),
    /// Reading or writing the store file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The store file exists but is not a valid store; it is left untouched.
    #[error("corrupt configuration store {}: {message}", path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<crate::durable::DurableError> for StoreError {
    fn from(e: crate::durable::DurableError) -> Self {
        StoreError::io(e.path, e.source)
    }
}
