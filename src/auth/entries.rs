//! `$VOLTTRON_HOME/auth.json`: the peers approved to connect, each identity bound to its
//! public key, and the peers denied.
//!
//! ```json
//! {
//!   "allow": [
//!     { "identity": "hvac.agent", "public_key": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
//!       "enabled": true, "comments": "approved from pending (tcp://10.0.0.7:40210)" }
//!   ],
//!   "deny": [
//!     { "identity": "rogue", "public_key": "3q2+7w==", "comments": "denied from pending" },
//!     { "identity": "retired.agent" }
//!   ]
//! }
//! ```
//!
//! * An `allow` entry binds `identity` to `public_key` (base64 text; the standard and the
//!   URL-safe alphabets, padded or not, denote the same key). `enabled` defaults to `true`; a
//!   disabled entry is kept but ignored. An identity appears at most once.
//! * A `deny` entry with a `public_key` refuses that key whatever identity it claims; one
//!   with only an `identity` refuses that identity whatever its key. At least one of the two
//!   is required.
//!
//! A missing file is the same as `{}`. Unknown keys are refused (they are usually typos).
//! [`AuthEntries::save`] replaces the file atomically and durably (temporary file, `fsync`,
//! rename, directory `fsync`), so a crash leaves the old or the new list, never a mix.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

use crate::core::Identity;

/// The file's name under `$VOLTTRON_HOME`.
pub const AUTH_FILE: &str = "auth.json";

/// Why `auth.json`, or a change to it, was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntriesError {
    /// The file exists but could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file could not be written; it is unchanged.
    #[error("cannot write {}: {source}", file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is not JSON, or not of the expected shape (serde's message, with line and
    /// column, names the unknown or missing key).
    #[error("{} is not a valid auth file: {source}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// What and where.
        #[source]
        source: serde_json::Error,
    },
    /// A value in the file is not valid.
    #[error("{}: {at}: {reason}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The JSON path of the value, such as `$.allow[1].public_key`.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// An entry given to [`AuthEntries::add`] or [`AuthEntries::deny`] is not valid.
    #[error("invalid auth entry: {0}")]
    BadEntry(String),
}

/// A peer approved to connect: `identity` bound to `public_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthEntry {
    /// The VIP identity.
    pub identity: String,
    /// Its public key, base64 text.
    pub public_key: String,
    /// A disabled entry is kept but ignored.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// A peer refused: by key, by identity, or both (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeniedEntry {
    /// The identity refused (when there is no key), or the identity the key claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The key refused, base64 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

impl DeniedEntry {
    /// Whether this entry refuses `identity` connecting with `public_key`.
    pub fn refuses(&self, identity: &str, public_key: &str) -> bool {
        match (&self.public_key, &self.identity) {
            (Some(key), _) => same_key(key, public_key),
            (None, Some(id)) => id == identity,
            (None, None) => false,
        }
    }

    /// Whether `identity_or_key` names this entry (its identity or its key).
    pub fn is_named_by(&self, identity_or_key: &str) -> bool {
        self.identity.as_deref() == Some(identity_or_key)
            || self
                .public_key
                .as_deref()
                .is_some_and(|k| same_key(k, identity_or_key))
    }
}

impl AuthEntry {
    /// Whether `identity_or_key` names this entry (its identity or its key).
    pub fn is_named_by(&self, identity_or_key: &str) -> bool {
        self.identity == identity_or_key || same_key(&self.public_key, identity_or_key)
    }
}

/// The contents of `auth.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthEntries {
    #[serde(default)]
    allow: Vec<AuthEntry>,
    #[serde(default)]
    deny: Vec<DeniedEntry>,
}

const PADDING_INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_INDIFFERENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_INDIFFERENT);

fn decode_key(key: &str) -> Option<Vec<u8>> {
    STANDARD.decode(key).or_else(|_| URL_SAFE.decode(key)).ok()
}

/// Checks that `key` is non-empty base64 text (standard or URL-safe alphabet, padded or not).
pub fn validate_public_key(key: &str) -> Result<(), String> {
    match decode_key(key) {
        Some(bytes) if !bytes.is_empty() => Ok(()),
        Some(_) => Err("the public key is empty".to_owned()),
        None => Err(format!("the public key {key:?} is not base64 text")),
    }
}

/// Whether two public keys are the same key: equal bytes once decoded (so the alphabet and
/// the padding do not matter), or equal text if either does not decode.
pub fn same_key(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (decode_key(a), decode_key(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn check_identity(identity: &str) -> Result<(), String> {
    Identity::new(identity)
        .map(drop)
        .map_err(|e| format!("invalid identity {identity:?}: {e}"))
}

impl AuthEntries {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `path`; a missing file gives no entries.
    pub fn load(path: &Path) -> Result<AuthEntries, EntriesError> {
        match fs::read(path) {
            Ok(bytes) => Self::parse_bytes(&bytes, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(EntriesError::Read {
                file: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses the text of an `auth.json`; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<AuthEntries, EntriesError> {
        Self::parse_bytes(text.as_bytes(), file)
    }

    fn parse_bytes(bytes: &[u8], file: &Path) -> Result<AuthEntries, EntriesError> {
        let entries: AuthEntries = serde_json::from_slice(bytes).map_err(|source| EntriesError::Syntax {
            file: file.to_owned(),
            source,
        })?;
        let invalid = |at: String, reason: String| EntriesError::Invalid {
            file: file.to_owned(),
            at,
            reason,
        };
        for (i, e) in entries.allow.iter().enumerate() {
            check_identity(&e.identity).map_err(|r| invalid(format!("$.allow[{i}].identity"), r))?;
            validate_public_key(&e.public_key).map_err(|r| invalid(format!("$.allow[{i}].public_key"), r))?;
            if let Some(first) = entries.allow[..i].iter().position(|o| o.identity == e.identity) {
                return Err(invalid(
                    format!("$.allow[{i}].identity"),
                    format!("identity {:?} is already bound at $.allow[{first}]", e.identity),
                ));
            }
        }
        for (i, d) in entries.deny.iter().enumerate() {
            Self::check_denied(d).map_err(|r| invalid(format!("$.deny[{i}]"), r))?;
        }
        Ok(entries)
    }

    fn check_denied(d: &DeniedEntry) -> Result<(), String> {
        if d.identity.is_none() && d.public_key.is_none() {
            return Err("a deny entry needs an identity, a public_key, or both".to_owned());
        }
        if let Some(id) = &d.identity {
            check_identity(id)?;
        }
        if let Some(key) = &d.public_key {
            validate_public_key(key)?;
        }
        Ok(())
    }

    /// The file's text: pretty JSON ending with a newline.
    pub fn to_json_string(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Replaces `path` atomically and durably with these entries.
    pub fn save(&self, path: &Path) -> Result<(), EntriesError> {
        crate::durable::write(
            path,
            self.to_json_string().as_bytes(),
            crate::durable::Perms::KeepExisting,
            crate::durable::IfExists::Replace,
        )
        .map(|_| ())
        .map_err(|e| EntriesError::Write {
            file: path.to_owned(),
            source: e.source,
        })
    }

    /// Every `allow` entry, enabled or not, in file order.
    pub fn entries(&self) -> &[AuthEntry] {
        &self.allow
    }

    /// The enabled `allow` entries.
    pub fn approved(&self) -> impl Iterator<Item = &AuthEntry> {
        self.allow.iter().filter(|e| e.enabled)
    }

    /// Every `deny` entry.
    pub fn denied(&self) -> &[DeniedEntry] {
        &self.deny
    }

    /// The `allow` entry of `identity`, enabled or not.
    pub fn entry(&self, identity: &str) -> Option<&AuthEntry> {
        self.allow.iter().find(|e| e.identity == identity)
    }

    /// The key an enabled entry binds `identity` to.
    pub fn bound_key(&self, identity: &str) -> Option<&str> {
        self.entry(identity)
            .filter(|e| e.enabled)
            .map(|e| e.public_key.as_str())
    }

    /// The `deny` entry that refuses `identity` with `public_key`, if any.
    pub fn denial(&self, identity: &str, public_key: &str) -> Option<&DeniedEntry> {
        self.deny.iter().find(|d| d.refuses(identity, public_key))
    }

    /// Adds `entry`, replacing (and returning) the entry of the same identity.
    pub fn add(&mut self, entry: AuthEntry) -> Result<Option<AuthEntry>, EntriesError> {
        check_identity(&entry.identity).map_err(EntriesError::BadEntry)?;
        validate_public_key(&entry.public_key).map_err(EntriesError::BadEntry)?;
        match self.allow.iter_mut().find(|e| e.identity == entry.identity) {
            Some(slot) => Ok(Some(std::mem::replace(slot, entry))),
            None => {
                self.allow.push(entry);
                Ok(None)
            }
        }
    }

    /// Removes and returns the entry of `identity`.
    pub fn remove(&mut self, identity: &str) -> Option<AuthEntry> {
        let i = self.allow.iter().position(|e| e.identity == identity)?;
        Some(self.allow.remove(i))
    }

    /// Removes and returns every `allow` entry whose identity or key is `identity_or_key`.
    pub fn remove_matching(&mut self, identity_or_key: &str) -> Vec<AuthEntry> {
        let (gone, kept) = std::mem::take(&mut self.allow)
            .into_iter()
            .partition(|e| e.is_named_by(identity_or_key));
        self.allow = kept;
        gone
    }

    /// Adds a `deny` entry; one with the same identity and key is replaced.
    pub fn deny(&mut self, entry: DeniedEntry) -> Result<(), EntriesError> {
        Self::check_denied(&entry).map_err(EntriesError::BadEntry)?;
        let same = |d: &DeniedEntry| {
            d.identity == entry.identity
                && match (&d.public_key, &entry.public_key) {
                    (Some(a), Some(b)) => same_key(a, b),
                    (None, None) => true,
                    _ => false,
                }
        };
        match self.deny.iter_mut().find(|d| same(d)) {
            Some(slot) => *slot = entry,
            None => self.deny.push(entry),
        }
        Ok(())
    }

    /// Removes and returns every `deny` entry whose identity or key is `identity_or_key`.
    pub fn remove_denied(&mut self, identity_or_key: &str) -> Vec<DeniedEntry> {
        let (gone, kept) = std::mem::take(&mut self.deny)
            .into_iter()
            .partition(|d| d.is_named_by(identity_or_key));
        self.deny = kept;
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    const KEY_B: &str = "3q2+7w==";

    fn entry(identity: &str, key: &str) -> AuthEntry {
        AuthEntry {
            identity: identity.into(),
            public_key: key.into(),
            enabled: true,
            comments: None,
        }
    }

    #[test]
    fn parses_the_documented_example_and_round_trips() {
        let doc = crate::auth::doc_json_example(include_str!("entries.rs"));
        let e = AuthEntries::parse(&doc, Path::new("auth.json")).unwrap();
        assert_eq!(e.entries().len(), 1);
        assert_eq!(e.bound_key("hvac.agent"), Some(KEY_A));
        assert_eq!(e.denied().len(), 2);
        let again = AuthEntries::parse(&e.to_json_string(), Path::new("x")).unwrap();
        assert_eq!(again, e);
    }

    #[test]
    fn invalid_files_are_refused_with_a_path() {
        let cases: &[(&str, &str)] = &[
            ("{", "/h/auth.json is not a valid auth file: EOF while parsing"),
            (
                r#"{"alow": []}"#,
                "/h/auth.json is not a valid auth file: unknown field `alow`",
            ),
            (
                r#"{"allow": [{"identity": "a"}]}"#,
                "/h/auth.json is not a valid auth file: missing field `public_key`",
            ),
            (
                r#"{"allow": [{"identity": "a b", "public_key": "3q2+7w=="}]}"#,
                r#"/h/auth.json: $.allow[0].identity: invalid identity "a b""#,
            ),
            (
                r#"{"allow": [{"identity": "a", "public_key": "not base64!"}]}"#,
                r#"/h/auth.json: $.allow[0].public_key: the public key "not base64!" is not base64 text"#,
            ),
            (
                r#"{"allow": [{"identity": "a", "public_key": "3q2+7w=="}, {"identity": "a", "public_key": "3q2+7w=="}]}"#,
                r#"/h/auth.json: $.allow[1].identity: identity "a" is already bound at $.allow[0]"#,
            ),
            (
                r#"{"deny": [{"comments": "who?"}]}"#,
                "/h/auth.json: $.deny[0]: a deny entry needs an identity, a public_key, or both",
            ),
        ];
        for (text, expected) in cases {
            let message = AuthEntries::parse(text, Path::new("/h/auth.json"))
                .unwrap_err()
                .to_string();
            assert!(
                message.starts_with(expected),
                "{text}\n got: {message}\nwant: {expected}"
            );
        }
    }

    #[test]
    fn add_remove_deny_and_match() {
        let mut e = AuthEntries::new();
        assert_eq!(e.add(entry("a", KEY_A)).unwrap(), None);
        assert_eq!(
            e.add(entry("a", KEY_B)).unwrap().unwrap().public_key,
            KEY_A,
            "replaced"
        );
        assert!(matches!(
            e.add(entry("a/b", KEY_A)),
            Err(EntriesError::BadEntry(_))
        ));
        assert!(matches!(e.add(entry("c", "%%")), Err(EntriesError::BadEntry(_))));
        e.add(entry("b", KEY_A)).unwrap();
        assert_eq!(e.remove_matching(KEY_A).len(), 1, "by key");
        assert_eq!(e.remove("a").unwrap().identity, "a");
        assert!(e.remove("a").is_none());

        e.deny(DeniedEntry {
            public_key: Some(KEY_A.into()),
            ..Default::default()
        })
        .unwrap();
        e.deny(DeniedEntry {
            identity: Some("bad".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(
            e.denial("anyone", KEY_A).is_some(),
            "a key is refused under any identity"
        );
        assert!(
            e.denial("bad", KEY_B).is_some(),
            "an identity-only entry refuses every key"
        );
        assert!(e.denial("good", KEY_B).is_none());
        assert!(e.deny(DeniedEntry::default()).is_err());
        assert_eq!(e.remove_denied("bad").len(), 1);
        assert!(e.denial("bad", KEY_B).is_none());

        let mut disabled = entry("off", KEY_B);
        disabled.enabled = false;
        e.add(disabled).unwrap();
        assert_eq!(e.bound_key("off"), None);
        assert_eq!(e.approved().count(), 0);
    }

    #[test]
    fn keys_compare_by_bytes() {
        assert!(same_key("3q2+7w==", "3q2-7w"), "URL-safe, unpadded");
        assert!(!same_key("3q2+7w==", "3q2+7A=="));
        assert!(validate_public_key("").is_err());
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        assert_eq!(
            AuthEntries::load(&path).unwrap(),
            AuthEntries::new(),
            "missing = empty"
        );
        let mut e = AuthEntries::new();
        e.add(entry("a", KEY_A)).unwrap();
        e.save(&path).unwrap();
        assert_eq!(AuthEntries::load(&path).unwrap(), e);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["auth.json"], "no temporary file left behind");
        assert!(matches!(
            AuthEntries::load(dir.path()),
            Err(EntriesError::Read { .. })
        ));
    }
}
