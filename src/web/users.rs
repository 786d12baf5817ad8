//! The web users file, `$VOLTTRON_HOME/web-users.json`, as VOLTTRON 9's web service keeps
//! it: each user's argon2 password hash and groups.
//!
//! ```json
//! {"admin": {"hashed_password": "$argon2id$v=19$m=19456,t=2,p=1$...", "groups": ["admin", "vui"]}}
//! ```
//!
//! A user's groups are its capabilities, in the same model as `authz.json`: the tokens it
//! gets carry them, `vui` opens VOLTTRON's REST API (`/vui/`), `admin` adds agent control
//! and configuration writes, and any other capability counts against `authz.json`'s
//! protected topics and RPC methods. Passwords are hashed with argon2id (PHC strings, which
//! VOLTTRON's passlib reads too); a plain password is never stored. `vctl web user add`
//! writes the file (owner-only, atomically); the web service reads it at each login.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use serde::{Deserialize, Serialize};

use crate::durable::{self, IfExists, Perms};

/// The file's name in the home.
pub const FILE: &str = "web-users.json";

/// Why the users file could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum WebUserError {
    /// The file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is not a users file.
    #[error("{path}: not a web users file: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A user name that cannot be used.
    #[error("invalid web user name {0:?}: 1 to 64 characters, letters, digits and `._-@` only")]
    BadName(String),
    /// An empty password.
    #[error("the password is empty")]
    EmptyPassword,
    /// The user exists (and overwriting was not asked for).
    #[error("web user '{0}' exists (use --overwrite to replace it)")]
    Exists(String),
    /// No such user.
    #[error("no web user '{0}'")]
    Unknown(String),
}

/// One user's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebUser {
    /// The argon2 hash (PHC string).
    pub hashed_password: String,
    /// The groups (capabilities).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The users file (see the module docs).
#[derive(Debug, Clone)]
pub struct WebUsers {
    path: PathBuf,
    users: BTreeMap<String, WebUser>,
}

impl WebUsers {
    /// The file of the home `home`.
    pub fn path_in(home: &Path) -> PathBuf {
        home.join(FILE)
    }

    /// Reads `path`; a missing file has no users.
    pub fn load(path: impl Into<PathBuf>) -> Result<WebUsers, WebUserError> {
        let path = path.into();
        let users = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => BTreeMap::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| WebUserError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(WebUserError::Io {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Ok(WebUsers { path, users })
    }

    /// The user names with their groups, sorted by name.
    pub fn list(&self) -> Vec<(String, Vec<String>)> {
        self.users
            .iter()
            .map(|(n, u)| (n.clone(), u.groups.clone()))
            .collect()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// One user's groups.
    pub fn groups(&self, name: &str) -> Option<&[String]> {
        self.users.get(name).map(|u| u.groups.as_slice())
    }

    /// Adds (or, with `overwrite`, replaces) `name` with `password` and `groups`, and saves.
    /// Hashing takes tens of milliseconds on purpose: call it off latency-sensitive threads.
    pub fn add(
        &mut self,
        name: &str,
        password: &str,
        groups: &[String],
        overwrite: bool,
    ) -> Result<(), WebUserError> {
        check_name(name)?;
        if password.is_empty() {
            return Err(WebUserError::EmptyPassword);
        }
        if !overwrite && self.users.contains_key(name) {
            return Err(WebUserError::Exists(name.to_owned()));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hashed_password = argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| WebUserError::Io {
                path: self.path.clone(),
                message: format!("hashing failed: {e}"),
            })?
            .to_string();
        let mut groups = groups.to_vec();
        groups.sort();
        groups.dedup();
        self.users.insert(
            name.to_owned(),
            WebUser {
                hashed_password,
                groups,
            },
        );
        self.save()
    }

    /// Removes `name` and saves.
    pub fn remove(&mut self, name: &str) -> Result<(), WebUserError> {
        if self.users.remove(name).is_none() {
            return Err(WebUserError::Unknown(name.to_owned()));
        }
        self.save()
    }

    /// `name`'s groups if `password` is its password. Takes as long as hashing (on purpose).
    pub fn verify(&self, name: &str, password: &str) -> Option<Vec<String>> {
        let Some(user) = self.users.get(name) else {
            // As long as a real check, so that timing does not tell which names exist.
            let _ = argon2::Argon2::default()
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng));
            return None;
        };
        let hash = PasswordHash::new(&user.hashed_password).ok()?;
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .ok()
            .map(|()| user.groups.clone())
    }

    fn save(&self) -> Result<(), WebUserError> {
        let mut text = serde_json::to_string_pretty(&self.users).map_err(|e| WebUserError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        text.push('\n');
        durable::write(&self.path, text.as_bytes(), Perms::OwnerOnly, IfExists::Replace).map_err(|e| {
            WebUserError::Io {
                path: e.path,
                message: e.source.to_string(),
            }
        })?;
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), WebUserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(WebUserError::BadName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_added_verified_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = WebUsers::path_in(dir.path());
        let mut users = WebUsers::load(&path).unwrap();
        assert!(users.is_empty());
        users
            .add("admin", "s3cret", &["vui".into(), "admin".into()], false)
            .unwrap();
        assert!(matches!(
            users.add("admin", "x", &[], false),
            Err(WebUserError::Exists(_))
        ));
        assert!(matches!(
            users.add("a b", "x", &[], false),
            Err(WebUserError::BadName(_))
        ));
        assert!(matches!(
            users.add("b", "", &[], false),
            Err(WebUserError::EmptyPassword)
        ));

        let again = WebUsers::load(&path).unwrap();
        assert_eq!(
            again.verify("admin", "s3cret"),
            Some(vec!["admin".into(), "vui".into()])
        );
        assert_eq!(again.verify("admin", "wrong"), None);
        assert_eq!(again.verify("nobody", "s3cret"), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("$argon2id$"), "{text}");
        assert!(!text.contains("s3cret"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let mut users = again;
        users.remove("admin").unwrap();
        assert!(matches!(users.remove("admin"), Err(WebUserError::Unknown(_))));
        assert!(WebUsers::load(&path).unwrap().is_empty());
    }

    #[test]
    fn a_broken_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = WebUsers::path_in(dir.path());
        std::fs::write(&path, "[1, 2").unwrap();
        assert!(matches!(WebUsers::load(&path), Err(WebUserError::Invalid { .. })));
    }
}
