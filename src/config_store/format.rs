//! The on-disk format: `<home>/configuration_store/<identity>.store`, a JSON object
//! `{"Name": {"type": "json"|"csv"|"raw", "modified": "<timestamp>", "data": "<raw text>"}}`.
//!
//! Details matching VOLTTRON (`PersistentDict` with `format="json"`, `format_timestamp`):
//! * `modified` is written as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (UTC, microseconds). On load any
//!   RFC 3339 timestamp, a naive `YYYY-MM-DDTHH:MM:SS[.f]` (taken as UTC), `null` or a missing
//!   field (stores that predate the field) are accepted.
//! * Entries are written compactly, in case-insensitive name order; unknown fields of an entry
//!   are ignored on load.
//! * An empty file (or whitespace only) loads as an empty store, as `PersistentDict` does.
//! * Two entries whose names differ only in case (VOLTTRON can leave both behind after a
//!   rename by case) load as one: the one modified last, the later in the file on a tie.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::StoreError;
use super::parse::ConfigType;
use super::store::ConfigEntry;

/// The directory under the VOLTTRON home that holds the stores.
pub const STORE_DIR: &str = "configuration_store";

/// The extension of a store file.
pub const STORE_EXT: &str = ".store";

/// The store file of `identity` under the VOLTTRON home `home`:
/// `<home>/configuration_store/<identity>.store`. `identity` must be a valid VIP identity
/// (no path separators); see [`crate::core::Identity`].
pub fn store_path(home: &Path, identity: &str) -> PathBuf {
    home.join(STORE_DIR).join(format!("{identity}{STORE_EXT}"))
}

/// The identities that have a store in `dir` (a `configuration_store` directory): the stems of
/// its `*.store` files, sorted. A missing directory has none.
///
/// # Errors
///
/// [`StoreError::Io`] if the directory exists but cannot be read.
pub fn list_stores(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut identities = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let is_file = entry
            .file_type()
            .map_err(|e| StoreError::io(entry.path(), e))?
            .is_file();
        if let Some(name) = entry.file_name().to_str()
            && let Some(identity) = name.strip_suffix(STORE_EXT)
            && is_file
            && !identity.is_empty()
        {
            identities.push(identity.to_owned());
        }
    }
    identities.sort();
    Ok(identities)
}

/// VOLTTRON's `format_timestamp` of a UTC time: `2024-01-01T00:00:00.000000+00:00`.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

#[derive(Serialize)]
struct EntryOut<'a> {
    #[serde(rename = "type")]
    config_type: ConfigType,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<String>,
    data: &'a str,
}

struct StoreOut<'a>(&'a [&'a ConfigEntry]);

impl Serialize for StoreOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for entry in self.0 {
            let out = EntryOut {
                config_type: entry.config_type,
                modified: entry.modified.as_ref().map(format_timestamp),
                data: &entry.data,
            };
            map.serialize_entry(&entry.name, &out)?;
        }
        map.end()
    }
}

/// The file contents for `entries` (in the order given).
pub(crate) fn encode(entries: &[&ConfigEntry]) -> Vec<u8> {
    // Serializing strings and plain structs to JSON cannot fail.
    serde_json::to_vec(&StoreOut(entries)).unwrap_or_else(|_| b"{}".to_vec())
}

#[derive(Deserialize)]
struct EntryIn {
    #[serde(rename = "type")]
    config_type: String,
    #[serde(default)]
    modified: Option<String>,
    data: String,
}

/// The entries of a store object, in file order.
struct StoreIn(Vec<(String, EntryIn)>);

impl<'de> Deserialize<'de> for StoreIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StoreIn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of configuration entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StoreIn, A::Error> {
                let mut entries = Vec::new();
                while let Some(pair) = map.next_entry::<String, EntryIn>()? {
                    entries.push(pair);
                }
                Ok(StoreIn(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// Decodes a store file into its entries, in file order (duplicates by case not yet merged).
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<ConfigEntry>, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        path: path.to_owned(),
        message,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let StoreIn(raw) = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    raw.into_iter()
        .map(|(name, e)| {
            let config_type = e
                .config_type
                .parse()
                .map_err(|err| corrupt(format!("configuration {name:?}: {err}")))?;
            let modified = match e.modified.as_deref() {
                None => None,
                Some(s) => Some(
                    parse_timestamp(s)
                        .ok_or_else(|| corrupt(format!("configuration {name:?}: bad modified time {s:?}")))?,
                ),
            };
            Ok(ConfigEntry {
                name,
                config_type,
                modified,
                data: e.data,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_use_volttrons_format() {
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(678);
        assert_eq!(format_timestamp(&t), "2024-01-02T03:04:05.000678+00:00");
        assert_eq!(parse_timestamp("2024-01-02T03:04:05.000678+00:00"), Some(t));
        assert_eq!(parse_timestamp("2024-01-02T05:04:05.000678+02:00"), Some(t));
        assert_eq!(parse_timestamp("2024-01-02T03:04:05.000678"), Some(t));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn decode_accepts_missing_and_null_modified_and_rejects_garbage() {
        let p = Path::new("x.store");
        let entries = decode(
            p,
            br#"{"a":{"type":"raw","data":"1"},"b":{"type":"json","modified":null,"data":"[]","extra":1}}"#,
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.modified.is_none()));
        assert!(decode(p, b"").unwrap().is_empty());
        assert!(decode(p, b" \n").unwrap().is_empty());
        for bad in [
            &b"["[..],
            b"[]",
            b"{\"a\": 1}",
            b"{\"a\":{\"type\":\"yaml\",\"data\":\"\"}}",
            b"{\"a\":{\"type\":\"raw\"}}",
            b"{\"a\":{\"type\":\"raw\",\"data\":\"\",\"modified\":\"soon\"}}",
            b"{\"a\":{\"type\":\"raw\",\"data\":\"\"}",
        ] {
            assert!(
                matches!(decode(p, bad), Err(StoreError::Corrupt { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn list_stores_lists_store_files_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_stores(&dir.path().join("missing")).unwrap().is_empty());
        for f in ["b.store", "a.store", "c.store.tmp", ".a.store.x.tmp", "notes.txt"] {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.store")).unwrap();
        assert_eq!(list_stores(dir.path()).unwrap(), vec!["a", "b"]);
        assert_eq!(
            store_path(Path::new("/home/v"), "platform.driver"),
            PathBuf::from("/home/v/configuration_store/platform.driver.store")
        );
    }
}
