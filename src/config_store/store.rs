//! [`AgentStore`]: one agent's configurations, in memory and in its store file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound, Utc};

use super::error::StoreError;
use super::parse::{ConfigType, parse};
use super::{format, names, refs};
use crate::core::value::Value;
use crate::durable::{self, IfExists, Perms};

/// One configuration as stored: VOLTTRON's `{"type", "modified", "data"}` under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The name, trimmed, in the case of its last writer.
    pub name: String,
    /// The declared type of `data`.
    pub config_type: ConfigType,
    /// When it was last set (microsecond precision). `None` for entries written by VOLTTRON
    /// versions that predate the field (or with `"modified": null`).
    pub modified: Option<DateTime<Utc>>,
    /// The raw text exactly as it was set.
    pub data: String,
}

/// What a successful [`AgentStore::set`] did, as the action of the update notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// No configuration of that name (compared case-insensitively) existed.
    New,
    /// An existing configuration was replaced.
    Update,
}

impl Change {
    /// `"NEW"` or `"UPDATE"`, VOLTTRON's action names.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "NEW",
            Change::Update => "UPDATE",
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
struct Stored {
    entry: ConfigEntry,
    /// `entry.data` parsed, references not resolved.
    parsed: Value,
    /// The keys `parsed` refers to directly.
    links: BTreeSet<String>,
}

impl Stored {
    fn new(entry: ConfigEntry) -> Result<Self, StoreError> {
        let parsed = parse(entry.config_type, &entry.data).map_err(|source| StoreError::Parse {
            name: entry.name.clone(),
            config_type: entry.config_type,
            source,
        })?;
        let links = refs::links(&parsed);
        Ok(Stored { entry, parsed, links })
    }
}

/// One agent's configuration store, backed by its store file.
///
/// Names are trimmed ([`normalize_name`](super::normalize_name)) and compared case-insensitively;
/// a configuration keeps the case of its last writer. Every mutation rewrites the file
/// atomically and durably before it changes the store in memory, so on error neither has
/// changed. One `AgentStore` must own a file: two stores writing the same file would overwrite
/// each other's changes.
#[derive(Debug)]
pub struct AgentStore {
    path: PathBuf,
    /// By lowercase name.
    entries: BTreeMap<String, Stored>,
}

impl AgentStore {
    /// Opens the store file at `path` (see [`store_path`](super::store_path)); a missing file
    /// is an empty store (the file is created by the first `set`). The file is never written by
    /// `open`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if the file cannot be read; [`StoreError::Corrupt`] if it is not a
    /// store or one of its configurations does not parse as its type.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StoreError::io(path, e)),
        };
        let mut entries: BTreeMap<String, Stored> = BTreeMap::new();
        for entry in format::decode(&path, &bytes)? {
            let stored = Stored::new(entry).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let key = names::key(&stored.entry.name);
            match entries.get(&key) {
                // A duplicate by case: the last modified wins, the later one on a tie.
                Some(old) if old.entry.modified > stored.entry.modified => {}
                _ => {
                    entries.insert(key, stored);
                }
            }
        }
        Ok(AgentStore { path, entries })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets configuration `name` to `data` of type `config_type`, modified at `now` (kept to the
    /// microsecond). The name is trimmed; an existing configuration with the same name in any
    /// case is replaced and the new case kept.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidName`], [`StoreError::Parse`] (data not of its type, or `json` that is
    /// not a list or an object), [`StoreError::Cycle`] (its references would lead back to it),
    /// [`StoreError::Io`]. On error nothing has changed.
    pub fn set(
        &mut self,
        name: &str,
        data: &str,
        config_type: ConfigType,
        now: DateTime<Utc>,
    ) -> Result<Change, StoreError> {
        let name = names::normalize_name(name)?;
        let key = names::key(name);
        let stored = Stored::new(ConfigEntry {
            name: name.to_owned(),
            config_type,
            modified: Some(now.trunc_subsecs(6)),
            data: data.to_owned(),
        })?;
        let links_of = |k: &str| self.entries.get(k).map(|s| &s.links);
        if let Some(path) = refs::find_cycle(&key, &stored.links, &links_of) {
            return Err(StoreError::Cycle {
                path: path.iter().map(|k| self.display_name(k, &key, name)).collect(),
            });
        }
        let mut all: Vec<&ConfigEntry> = self
            .entries
            .iter()
            .filter(|(k, _)| **k != key)
            .map(|(_, s)| &s.entry)
            .collect();
        all.push(&stored.entry);
        all.sort_by_cached_key(|e| names::key(&e.name));
        durable::write(
            &self.path,
            &format::encode(&all),
            Perms::KeepExisting,
            IfExists::Replace,
        )?;
        Ok(match self.entries.insert(key, stored) {
            Some(_) => Change::Update,
            None => Change::New,
        })
    }

    /// Deletes configuration `name` (compared case-insensitively) and returns it. Deleting the
    /// last configuration removes the store file, as VOLTTRON does.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidName`], [`StoreError::NotFound`], [`StoreError::Io`]. On error
    /// nothing has changed.
    pub fn delete(&mut self, name: &str) -> Result<ConfigEntry, StoreError> {
        let name = names::normalize_name(name)?;
        let key = names::key(name);
        if !self.entries.contains_key(&key) {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        let rest: Vec<&ConfigEntry> = self
            .entries
            .iter()
            .filter(|(k, _)| **k != key)
            .map(|(_, s)| &s.entry)
            .collect();
        if rest.is_empty() {
            durable::remove(&self.path)?;
        } else {
            durable::write(
                &self.path,
                &format::encode(&rest),
                Perms::KeepExisting,
                IfExists::Replace,
            )?;
        }
        let removed = self.entries.remove(&key).map(|s| s.entry);
        removed.ok_or_else(|| StoreError::NotFound(name.to_owned()))
    }

    /// Deletes every configuration and removes the store file.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`]; nothing has changed then.
    pub fn delete_all(&mut self) -> Result<(), StoreError> {
        durable::remove(&self.path)?;
        self.entries.clear();
        Ok(())
    }

    /// The stored entry (raw data and metadata) of `name`, compared case-insensitively.
    pub fn entry(&self, name: &str) -> Option<&ConfigEntry> {
        self.entries
            .get(&names::key(names::strip(name)))
            .map(|s| &s.entry)
    }

    /// Iterates over the entries in case-insensitive name order.
    pub fn entries(&self) -> impl Iterator<Item = &ConfigEntry> {
        self.entries.values().map(|s| &s.entry)
    }

    /// The parsed contents of `name` with every `config://` reference to an existing
    /// configuration replaced, recursively, by that configuration's contents. A reference to a
    /// missing configuration stays a string.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Cycle`] only for a cycle in a store loaded from a
    /// file (`set` never creates one).
    pub fn get(&self, name: &str) -> Result<Value, StoreError> {
        let stripped = names::strip(name);
        let key = names::key(stripped);
        if !self.entries.contains_key(&key) {
            return Err(StoreError::NotFound(stripped.to_owned()));
        }
        self.resolve(&key, &mut HashMap::new(), &mut Vec::new())
    }

    fn resolve(
        &self,
        key: &str,
        done: &mut HashMap<String, Value>,
        stack: &mut Vec<String>,
    ) -> Result<Value, StoreError> {
        if let Some(v) = done.get(key) {
            return Ok(v.clone());
        }
        let Some(stored) = self.entries.get(key) else {
            return Err(StoreError::NotFound(key.to_owned()));
        };
        if let Some(start) = stack.iter().position(|k| k == key) {
            let mut path: Vec<String> = stack[start..].iter().map(|k| self.stored_name(k)).collect();
            path.push(stored.entry.name.clone());
            return Err(StoreError::Cycle { path });
        }
        let mut value = stored.parsed.clone();
        if !stored.links.is_empty() {
            stack.push(key.to_owned());
            refs::substitute(&mut value, &mut |k: &str| {
                if self.entries.contains_key(k) {
                    self.resolve(k, done, stack).map(Some)
                } else {
                    Ok(None)
                }
            })?;
            stack.pop();
        }
        done.insert(key.to_owned(), value.clone());
        Ok(value)
    }

    /// The configuration names, as stored, in case-insensitive order.
    pub fn names(&self) -> Vec<String> {
        self.entries.values().map(|s| s.entry.name.clone()).collect()
    }

    /// Every configuration that refers to `name` directly or through other configurations
    /// (those to notify with UPDATE when `name` changes), names as stored, in case-insensitive
    /// order. `name` need not exist.
    pub fn referrers(&self, name: &str) -> Vec<String> {
        let target = names::key(names::strip(name));
        refs::referrers(&target, self.entries.iter().map(|(k, s)| (k.as_str(), &s.links)))
            .iter()
            .map(|k| self.stored_name(k))
            .collect()
    }

    /// The number of configurations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no configurations.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn stored_name(&self, key: &str) -> String {
        self.entries
            .get(key)
            .map_or_else(|| key.to_owned(), |s| s.entry.name.clone())
    }

    /// A key of a cycle found by `set`: the new name for the key being set.
    fn display_name(&self, key: &str, new_key: &str, new_name: &str) -> String {
        if key == new_key {
            new_name.to_owned()
        } else {
            self.stored_name(key)
        }
    }
}
