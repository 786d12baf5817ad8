//! The platform's [`Authority`]: the current authorization rules, the approved and denied
//! peers, the pending peers and the failure back-off, shared by the bridge (who may
//! connect), the router (who may call, publish, subscribe) and the auth service (which edits
//! them).
//!
//! Checks read the rules through an `Arc` swapped on every change, so a check never waits
//! for a reload or an edit. Edits are serialized, validated in full before anything is
//! written, persisted atomically, and only then put in force.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use serde_json::Value as Json;

use crate::auth::authz::{AUTHZ_FILE, Authz, AuthzError, PubsubAccess, TopicAccess, Unauthorized};
use crate::auth::entries::{AUTH_FILE, AuthEntries, AuthEntry, DeniedEntry, EntriesError, same_key};
use crate::auth::pending::{FailureTracker, PendingList, PendingPeer};
use crate::core::{Args, Identity, Map, RpcError};

/// The directory under `$VOLTTRON_HOME` holding each agent's credentials,
/// `<identity>.json`, whose `"publickey"` (VOLTTRON 11) or `"public"` field is the agent's
/// public key.
pub(crate) const CREDENTIALS_DIR: &str = "credentials_store";

/// An error from the platform's authority or the auth service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// `authz.json` is not valid, or an edit would make it invalid.
    #[error(transparent)]
    Authz(#[from] AuthzError),
    /// `auth.json` is not valid, could not be written, or an entry is not valid.
    #[error(transparent)]
    Entries(#[from] EntriesError),
    /// `authz.json` could not be written; it is unchanged.
    #[error("cannot write {}: {source}", file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file on disk has an error (an edit by hand that did not load); it is not
    /// overwritten until it is fixed, so the hand edit is not lost.
    #[error("{} has an error and is not overwritten until it is fixed: {message}", file.display())]
    Broken {
        /// The file.
        file: PathBuf,
        /// Its error.
        message: String,
    },
    /// Nothing matches the identity or key given.
    #[error("no {what} matches {name:?}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// The identity or key given.
        name: String,
    },
    /// An argument is not valid.
    #[error("{0}")]
    Invalid(String),
}

/// What the bridge should do with a peer presenting a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyVerdict {
    /// The key is bound to the identity (credentials store or an enabled `auth.json` entry).
    Allowed,
    /// Unknown: the peer is now on the pending list, awaiting an administrator.
    Pending,
    /// Refused, with the reason (to log; not necessarily to tell the peer).
    Denied(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn log_warnings(authz: &Authz) {
    for warning in authz.warnings() {
        tracing::warn!("{warning}");
    }
}

/// A file's modification time and length; `None` when it does not exist.
fn stamp(path: &Path) -> Option<Stamp> {
    match fs::metadata(path) {
        Ok(meta) => Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        // Unreadable metadata: a stamp that differs from any real one, so a load is tried
        // (and reports the error) once.
        Err(_) => Some(Stamp {
            modified: None,
            len: u64::MAX,
        }),
    }
}

#[derive(Debug, Default)]
struct FileState {
    /// The stamp at the last load attempt.
    stamp: Option<Stamp>,
    /// The error of the last load attempt, if it failed.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Files {
    authz: FileState,
    entries: FileState,
}

/// The platform's authentication and authorization state (see the module docs).
#[derive(Debug)]
pub(crate) struct Authority {
    home: PathBuf,
    authz: RwLock<Arc<Authz>>,
    entries: RwLock<Arc<AuthEntries>>,
    pending: Mutex<PendingList>,
    failures: Mutex<FailureTracker>,
    /// What was last loaded; held by every reload and edit, which it serializes.
    files: Mutex<Files>,
}

impl Authority {
    /// Loads `authz.json` and `auth.json` from `home` (missing files are empty).
    pub(crate) fn open(home: &Path) -> Result<Arc<Authority>, AuthError> {
        let authz_path = home.join(AUTHZ_FILE);
        let auth_path = home.join(AUTH_FILE);
        let mut files = Files::default();
        // Stamped before reading: a change while reading is seen by the next reload.
        files.authz.stamp = stamp(&authz_path);
        let authz = Authz::load(&authz_path)?;
        log_warnings(&authz);
        files.entries.stamp = stamp(&auth_path);
        let entries = AuthEntries::load(&auth_path)?;
        Ok(Arc::new(Authority {
            home: home.to_owned(),
            authz: RwLock::new(Arc::new(authz)),
            entries: RwLock::new(Arc::new(entries)),
            pending: Mutex::new(PendingList::default()),
            failures: Mutex::new(FailureTracker::default()),
            files: Mutex::new(files),
        }))
    }

    fn authz_path(&self) -> PathBuf {
        self.home.join(AUTHZ_FILE)
    }

    fn auth_path(&self) -> PathBuf {
        self.home.join(AUTH_FILE)
    }

    /// The rules in force.
    pub(crate) fn authz(&self) -> Arc<Authz> {
        self.authz.read().clone()
    }

    /// The approved and denied peers in force.
    pub(crate) fn entries(&self) -> Arc<AuthEntries> {
        self.entries.read().clone()
    }

    // --- checks --------------------------------------------------------------------------

    /// See [`Authz::check_call`].
    pub(crate) fn check_call(
        &self,
        caller: &str,
        callee: &str,
        method: &str,
        args: &Args,
        params: &[String],
    ) -> Result<(), RpcError> {
        self.authz().check_call(caller, callee, method, args, params)
    }

    /// See [`Authz::check_publish`].
    pub(crate) fn check_publish(&self, identity: &str, topic: &str) -> Result<(), Unauthorized> {
        self.authz().check_publish(identity, topic)
    }

    /// See [`Authz::check_subscribe`].
    pub(crate) fn check_subscribe(&self, identity: &str, subscription: &str) -> Result<(), Unauthorized> {
        self.authz().check_subscribe(identity, subscription)
    }

    /// The protected methods of `identity` (`platform.auth.get_protected_rpcs`); see
    /// [`Authz::protected_rpcs`].
    #[cfg_attr(not(feature = "vip"), allow(dead_code, reason = "asked by VIP peers"))]
    pub(crate) fn protected_rpcs(&self, identity: &str) -> Vec<String> {
        self.authz().protected_rpcs(identity)
    }

    /// `platform.auth.check_rpc_authorization(identity, method_name, method_args)`; see
    /// [`Authz::check_rpc_authorization`]. VOLTTRON 11 answers `true` or raises: answer
    /// `true` on `Ok`, an error carrying the message on `Err`.
    #[cfg_attr(not(feature = "vip"), allow(dead_code, reason = "asked by VIP peers"))]
    pub(crate) fn check_rpc_authorization(
        &self,
        identity: &str,
        method_name: &str,
        method_args: &Map,
    ) -> Result<(), RpcError> {
        self.authz()
            .check_rpc_authorization(identity, method_name, method_args)
    }

    /// `platform.auth.check_pubsub_authorization(identity, topic_pattern, access)`; see
    /// [`Authz::check_pubsub_authorization`]. VOLTTRON 11 answers a boolean: `is_ok()`.
    #[cfg_attr(not(feature = "vip"), allow(dead_code, reason = "asked by VIP peers"))]
    pub(crate) fn check_pubsub_authorization(
        &self,
        identity: &str,
        topic_pattern: &str,
        access: PubsubAccess,
    ) -> Result<(), Unauthorized> {
        self.authz()
            .check_pubsub_authorization(identity, topic_pattern, access)
    }

    /// Decides on a peer claiming `identity` with `public_key` (base64) from `source`:
    ///
    /// 1. an invalid identity, or a match on the deny list: [`KeyVerdict::Denied`];
    /// 2. the key of `credentials_store/<identity>.json` (its `"publickey"` or `"public"`
    ///    field) or of an enabled `auth.json` entry for `identity`: [`KeyVerdict::Allowed`];
    /// 3. `identity` bound to another key (impersonation), or a credentials file that cannot
    ///    be read: [`KeyVerdict::Denied`];
    /// 4. otherwise the peer joins the pending list: [`KeyVerdict::Pending`].
    ///
    /// Reads the credentials file: call it off latency-sensitive threads.
    pub(crate) fn verify_peer(&self, identity: &str, public_key: &str, source: &str) -> KeyVerdict {
        if let Err(e) = Identity::new(identity) {
            return KeyVerdict::Denied(format!("invalid identity {identity:?}: {e}"));
        }
        let entries = self.entries();
        if let Some(denial) = entries.denial(identity, public_key) {
            return KeyVerdict::Denied(match denial.public_key {
                Some(_) => format!("the key presented by {identity:?} is on the denied list"),
                None => format!("identity {identity:?} is on the denied list"),
            });
        }
        let mut bound = false;
        // A second `vctl` (`control.connection.<pid>`) holds the first one's key.
        let keyed = if crate::services::control::is_control_connection(identity) {
            crate::services::control::CONTROL_CONNECTION
        } else {
            identity
        };
        match self.credentials_key(keyed) {
            Ok(Some(key)) if same_key(&key, public_key) => return KeyVerdict::Allowed,
            Ok(Some(_)) => bound = true,
            Ok(None) => {}
            Err(message) => {
                tracing::warn!(identity, "{message}");
                return KeyVerdict::Denied(message);
            }
        }
        match entries.bound_key(identity) {
            Some(key) if same_key(key, public_key) => return KeyVerdict::Allowed,
            Some(_) => bound = true,
            None => {}
        }
        if bound {
            return KeyVerdict::Denied(format!(
                "identity {identity:?} is bound to a different public key"
            ));
        }
        self.pending
            .lock()
            .record(identity, public_key, source, chrono::Utc::now());
        KeyVerdict::Pending
    }

    /// The public key in `credentials_store/<identity>.json`, if the file exists.
    fn credentials_key(&self, identity: &str) -> Result<Option<String>, String> {
        let path = self.home.join(CREDENTIALS_DIR).join(format!("{identity}.json"));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let json: Json = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
        let field = |name: &str| json.get(name).and_then(Json::as_str);
        match (field("publickey"), field("public")) {
            (Some(a), Some(b)) if !same_key(a, b) => Err(format!(
                "{} has a \"publickey\" and a \"public\" that differ",
                path.display()
            )),
            (Some(key), _) | (None, Some(key)) => Ok(Some(key.to_owned())),
            (None, None) => Err(format!(
                "{} has no \"publickey\" (or \"public\") key text",
                path.display()
            )),
        }
    }

    /// The delay to impose on `source`'s next attempt (see
    /// [`FailureTracker`](crate::auth::pending::FailureTracker)).
    pub(crate) fn failure_delay(&self, source: &str) -> Duration {
        self.failures.lock().delay(source, Instant::now())
    }

    /// Counts a failed attempt from `source`; returns the delay its next attempt earns.
    pub(crate) fn record_failure(&self, source: &str) -> Duration {
        self.failures.lock().record_failure(source, Instant::now())
    }

    /// Forgets `source`'s failures.
    pub(crate) fn record_success(&self, source: &str) {
        self.failures.lock().record_success(source);
    }

    // --- reloading -----------------------------------------------------------------------

    /// Reloads `authz.json` and `auth.json` if either's modification time or length changed
    /// since it was last loaded; true if new rules or entries are now in force. A file that
    /// does not load is logged, the old contents stay in force, and its error is returned
    /// (once per change of the file).
    pub(crate) fn reload_if_changed(&self) -> Result<bool, AuthError> {
        let mut files = self.files.lock();
        self.refresh(&mut files, false)
    }

    /// Reloads both files whether or not they changed.
    #[cfg(test)]
    pub(crate) fn reload(&self) -> Result<bool, AuthError> {
        let mut files = self.files.lock();
        self.refresh(&mut files, true)
    }

    fn refresh(&self, files: &mut Files, force: bool) -> Result<bool, AuthError> {
        let mut changed = false;
        let mut first_error = None;

        let path = self.authz_path();
        let now = stamp(&path);
        if force || now != files.authz.stamp {
            files.authz.stamp = now;
            match Authz::load(&path) {
                Ok(authz) => {
                    log_warnings(&authz);
                    *self.authz.write() = Arc::new(authz);
                    files.authz.error = None;
                    changed = true;
                    tracing::info!(file = %path.display(), "authorization rules reloaded");
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "{e}; the previous rules stay in force");
                    files.authz.error = Some(e.to_string());
                    first_error.get_or_insert(AuthError::Authz(e));
                }
            }
        }

        let path = self.auth_path();
        let now = stamp(&path);
        if force || now != files.entries.stamp {
            files.entries.stamp = now;
            match AuthEntries::load(&path) {
                Ok(entries) => {
                    *self.entries.write() = Arc::new(entries);
                    files.entries.error = None;
                    changed = true;
                    tracing::info!(file = %path.display(), "auth entries reloaded");
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "{e}; the previous entries stay in force");
                    files.entries.error = Some(e.to_string());
                    first_error.get_or_insert(AuthError::Entries(e));
                }
            }
        }

        match first_error {
            Some(e) => Err(e),
            None => Ok(changed),
        }
    }

    // --- editing -------------------------------------------------------------------------

    /// Applies `edit` to the rules in force, writes the result to `authz.json` and puts it
    /// in force. Refused while `authz.json` on disk has an error.
    fn update_authz(&self, edit: impl FnOnce(&Authz) -> Result<Authz, AuthzError>) -> Result<(), AuthError> {
        let mut files = self.files.lock();
        // Pick up hand edits first, so that they are not overwritten; their errors are
        // reported through `files`.
        let _ = self.refresh(&mut files, false);
        let path = self.authz_path();
        if let Some(message) = &files.authz.error {
            return Err(AuthError::Broken {
                file: path,
                message: message.clone(),
            });
        }
        let new = edit(&self.authz())?;
        crate::durable::write(
            &path,
            new.to_json_string().as_bytes(),
            crate::durable::Perms::KeepExisting,
            crate::durable::IfExists::Replace,
        )
        .map(|_| ())
        .map_err(|e| e.source)
        .map_err(|source| AuthError::Write {
            file: path.clone(),
            source,
        })?;
        files.authz.stamp = stamp(&path);
        *self.authz.write() = Arc::new(new);
        Ok(())
    }

    /// Applies `edit` to a copy of the entries in force; if they changed, writes them to
    /// `auth.json` and puts them in force. Refused while `auth.json` on disk has an error.
    fn update_entries<T>(
        &self,
        edit: impl FnOnce(&mut AuthEntries) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let mut files = self.files.lock();
        let _ = self.refresh(&mut files, false);
        let path = self.auth_path();
        if let Some(message) = &files.entries.error {
            return Err(AuthError::Broken {
                file: path,
                message: message.clone(),
            });
        }
        let current = self.entries();
        let mut new = AuthEntries::clone(&current);
        let result = edit(&mut new)?;
        if new != *current {
            new.save(&path)?;
            files.entries.stamp = stamp(&path);
            *self.entries.write() = Arc::new(new);
        }
        Ok(result)
    }

    /// The peers waiting for approval.
    pub(crate) fn pending(&self) -> Vec<PendingPeer> {
        self.pending.lock().peers().to_vec()
    }

    /// The enabled `auth.json` entries.
    pub(crate) fn approved(&self) -> Vec<AuthEntry> {
        self.entries().approved().cloned().collect()
    }

    /// The denied peers.
    pub(crate) fn denied(&self) -> Vec<DeniedEntry> {
        self.entries().denied().to_vec()
    }

    /// Approves the pending peers, and the denied peers, whose identity or key is
    /// `identity_or_key`: each becomes an enabled `auth.json` entry binding its identity to
    /// its key. Refused if two pending peers claim the same identity with different keys
    /// (approve one by its key), or if nothing matches. Returns the new entries.
    pub(crate) fn approve(&self, identity_or_key: &str) -> Result<Vec<AuthEntry>, AuthError> {
        let pending = self.pending.lock().matching(identity_or_key);
        for (i, p) in pending.iter().enumerate() {
            if pending[..i].iter().any(|o| o.identity == p.identity) {
                return Err(AuthError::Invalid(format!(
                    "several pending peers claim identity {:?} with different keys: approve one by its key",
                    p.identity
                )));
            }
        }
        let approved = self.update_entries(|entries| {
            let mut approved = Vec::new();
            for p in &pending {
                approved.push(AuthEntry {
                    identity: p.identity.clone(),
                    public_key: p.public_key.clone(),
                    enabled: true,
                    comments: Some(format!("approved from pending ({})", p.source)),
                });
            }
            let undenied = entries.remove_denied(identity_or_key);
            if pending.is_empty() && undenied.is_empty() {
                return Err(AuthError::NotFound {
                    what: "pending or denied peer",
                    name: identity_or_key.to_owned(),
                });
            }
            for d in undenied {
                if let (Some(identity), Some(public_key)) = (d.identity, d.public_key) {
                    approved.push(AuthEntry {
                        identity,
                        public_key,
                        enabled: true,
                        comments: d.comments,
                    });
                }
            }
            for entry in &approved {
                entries.add(entry.clone())?;
            }
            Ok(approved)
        })?;
        let mut list = self.pending.lock();
        for p in &pending {
            list.remove_exact(&p.identity, &p.public_key);
        }
        Ok(approved)
    }

    /// Denies the pending peers and the approved entries whose identity or key is
    /// `identity_or_key`: each moves to the deny list (identity and key). Refused if nothing
    /// matches.
    pub(crate) fn deny(&self, identity_or_key: &str) -> Result<(), AuthError> {
        let pending = self.pending.lock().matching(identity_or_key);
        self.update_entries(|entries| {
            let mut denied = Vec::new();
            for p in &pending {
                denied.push(DeniedEntry {
                    identity: Some(p.identity.clone()),
                    public_key: Some(p.public_key.clone()),
                    comments: Some(format!("denied from pending ({})", p.source)),
                });
            }
            for e in entries.remove_matching(identity_or_key) {
                denied.push(DeniedEntry {
                    identity: Some(e.identity),
                    public_key: Some(e.public_key),
                    comments: e.comments,
                });
            }
            if denied.is_empty() {
                return Err(AuthError::NotFound {
                    what: "pending or approved peer",
                    name: identity_or_key.to_owned(),
                });
            }
            for d in denied {
                entries.deny(d)?;
            }
            Ok(())
        })?;
        let mut list = self.pending.lock();
        for p in &pending {
            list.remove_exact(&p.identity, &p.public_key);
        }
        Ok(())
    }

    /// Forgets every pending peer, approved entry and denied entry whose identity or key is
    /// `identity_or_key`. Refused if nothing matches.
    pub(crate) fn delete(&self, identity_or_key: &str) -> Result<(), AuthError> {
        let removed = self.update_entries(|entries| {
            Ok(entries.remove_matching(identity_or_key).len() + entries.remove_denied(identity_or_key).len())
        })?;
        let removed = removed + self.pending.lock().remove(identity_or_key).len();
        if removed == 0 {
            return Err(AuthError::NotFound {
                what: "pending, approved or denied peer",
                name: identity_or_key.to_owned(),
            });
        }
        Ok(())
    }

    /// Adds (or replaces) the `auth.json` entry of `identity`; a pending peer with that
    /// identity and key is no longer pending. A deny-list match still refuses the peer.
    pub(crate) fn add_entry(
        &self,
        identity: &str,
        public_key: &str,
        comments: Option<String>,
        enabled: bool,
    ) -> Result<(), AuthError> {
        let entry = AuthEntry {
            identity: identity.to_owned(),
            public_key: public_key.to_owned(),
            enabled,
            comments,
        };
        self.update_entries(|entries| entries.add(entry).map_err(AuthError::from))?;
        self.pending.lock().remove_exact(identity, public_key);
        Ok(())
    }

    /// Removes the `auth.json` entry of `identity`.
    pub(crate) fn remove_entry(&self, identity: &str) -> Result<AuthEntry, AuthError> {
        self.update_entries(|entries| {
            entries.remove(identity).ok_or_else(|| AuthError::NotFound {
                what: "auth entry",
                name: identity.to_owned(),
            })
        })
    }

    /// Defines role `name` with `capabilities`, or (`None`) removes it.
    pub(crate) fn set_role(&self, name: &str, capabilities: Option<Vec<String>>) -> Result<(), AuthError> {
        self.update_authz(|a| a.set_role(name, capabilities.as_deref()))
    }

    /// Defines group `name` with `roles`, or (`None`) removes it.
    pub(crate) fn set_group(&self, name: &str, roles: Option<Vec<String>>) -> Result<(), AuthError> {
        self.update_authz(|a| a.set_group(name, roles.as_deref()))
    }

    /// Sets `identity`'s direct capabilities (a map capability → restrictions or null, or a
    /// list) and, when given, its roles and groups (otherwise they are kept).
    pub(crate) fn set_user_capabilities(
        &self,
        identity: &str,
        capabilities: Json,
        roles: Option<Vec<String>>,
        groups: Option<Vec<String>>,
    ) -> Result<(), AuthError> {
        self.update_authz(|a| {
            let mut user = a
                .users()
                .get(identity)
                .and_then(|u| serde_json::to_value(u).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            if let Json::Object(map) = &mut user {
                map.insert("capabilities".into(), capabilities);
                if let Some(roles) = roles {
                    map.insert("roles".into(), serde_json::json!(roles));
                }
                if let Some(groups) = groups {
                    map.insert("groups".into(), serde_json::json!(groups));
                }
            }
            a.set_user(identity, Some(user))
        })
    }

    /// Removes `identity` from `users`.
    pub(crate) fn remove_user(&self, identity: &str) -> Result<(), AuthError> {
        if !self.authz().users().contains_key(identity) {
            return Err(AuthError::NotFound {
                what: "user",
                name: identity.to_owned(),
            });
        }
        self.update_authz(|a| a.set_user(identity, None))
    }

    /// Sets the capabilities that calling `callee`'s `method` requires (`None` or empty:
    /// none).
    pub(crate) fn set_rpc_authorization(
        &self,
        callee: &str,
        method: &str,
        capabilities: Option<Vec<String>>,
    ) -> Result<(), AuthError> {
        self.update_authz(|a| a.set_rpc_authorization(callee, method, capabilities.as_deref()))
    }

    /// Protects `prefix` for `access` with `capabilities` (`None` or empty: unprotects).
    pub(crate) fn set_protected_topic(
        &self,
        access: TopicAccess,
        prefix: &str,
        capabilities: Option<Vec<String>>,
    ) -> Result<(), AuthError> {
        self.update_authz(|a| a.set_protected_topic(access, prefix, capabilities.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::authz::Grant;

    const KEY_A: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    const KEY_B: &str = "3q2+7w==";

    fn home() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Writes `text` and gives the file a modification time of its own, so a reload sees the
    /// change even when the length stays the same and the clock has not ticked.
    fn write_stamped(path: &Path, text: &str, secs: u64) {
        write(path, text);
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn open_with_an_empty_home_protects_nothing() {
        let h = home();
        let a = Authority::open(h.path()).unwrap();
        assert!(a.authz().is_empty());
        assert!(a.check_publish("x", "anything").is_ok());
        assert!(!a.reload_if_changed().unwrap());
    }

    #[test]
    fn open_refuses_a_broken_file() {
        let h = home();
        write(&h.path().join(AUTHZ_FILE), r#"{"roles": 1}"#);
        let e = Authority::open(h.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("authz.json: $.roles: expected an object, found a number"),
            "{e}"
        );
    }

    #[test]
    fn verify_peer_via_credentials_store() {
        let h = home();
        write(
            &h.path().join(CREDENTIALS_DIR).join("hvac.json"),
            &format!(r#"{{"identity": "hvac", "public": "{KEY_A}", "secret": "..."}}"#),
        );
        let a = Authority::open(h.path()).unwrap();
        assert_eq!(a.verify_peer("hvac", KEY_A, "tcp://1"), KeyVerdict::Allowed);
        let v = a.verify_peer("hvac", KEY_B, "tcp://1");
        assert!(
            matches!(&v, KeyVerdict::Denied(m) if m.contains("bound to a different public key")),
            "{v:?}"
        );
        assert!(a.pending().is_empty(), "an impersonator is not pending");

        write(&h.path().join(CREDENTIALS_DIR).join("broken.json"), "{}");
        let v = a.verify_peer("broken", KEY_A, "tcp://1");
        assert!(
            matches!(&v, KeyVerdict::Denied(m) if m.contains("has no \"publickey\" (or \"public\") key")),
            "{v:?}"
        );
        let v = a.verify_peer("../etc", KEY_A, "tcp://1");
        assert!(
            matches!(&v, KeyVerdict::Denied(m) if m.contains("invalid identity")),
            "{v:?}"
        );
    }

    #[test]
    fn verify_peer_via_a_volttron11_credentials_file() {
        let h = home();
        write(
            &h.path().join(CREDENTIALS_DIR).join("listener.json"),
            &format!(
                r#"{{"identity": "listener", "publickey": "{KEY_A}", "secretkey": "x", "domain": "", "address": ""}}"#
            ),
        );
        write(
            &h.path().join(CREDENTIALS_DIR).join("two.json"),
            &format!(r#"{{"publickey": "{KEY_A}", "public": "{KEY_B}"}}"#),
        );
        let a = Authority::open(h.path()).unwrap();
        assert_eq!(a.verify_peer("listener", KEY_A, "ipc"), KeyVerdict::Allowed);
        assert!(matches!(
            a.verify_peer("listener", KEY_B, "ipc"),
            KeyVerdict::Denied(_)
        ));
        let v = a.verify_peer("two", KEY_A, "ipc");
        assert!(
            matches!(&v, KeyVerdict::Denied(m) if m.contains("differ")),
            "{v:?}"
        );
    }

    #[test]
    fn verify_peer_via_entry_denied_and_pending() {
        let h = home();
        let a = Authority::open(h.path()).unwrap();
        a.add_entry("hvac", KEY_A, None, true).unwrap();
        assert_eq!(a.verify_peer("hvac", KEY_A, "s"), KeyVerdict::Allowed);
        assert_eq!(
            a.verify_peer("hvac", "3q2-7w", "s"),
            KeyVerdict::Denied("identity \"hvac\" is bound to a different public key".into())
        );
        assert_eq!(a.verify_peer("newcomer", KEY_B, "tcp://9"), KeyVerdict::Pending);
        assert_eq!(a.verify_peer("newcomer", KEY_B, "tcp://9"), KeyVerdict::Pending);
        let pending = a.pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].identity.as_str(), pending[0].attempts),
            ("newcomer", 2)
        );

        a.deny("newcomer").unwrap();
        assert!(a.pending().is_empty());
        let v = a.verify_peer("other.name", KEY_B, "s");
        assert!(
            matches!(&v, KeyVerdict::Denied(m) if m.contains("on the denied list")),
            "{v:?}"
        );

        a.add_entry("off", KEY_B, None, false).unwrap();
        assert!(
            matches!(a.verify_peer("off", KEY_B, "s"), KeyVerdict::Denied(_)),
            "denied key wins"
        );
    }

    #[test]
    fn approve_deny_delete_persist() {
        let h = home();
        let a = Authority::open(h.path()).unwrap();
        assert_eq!(a.verify_peer("newcomer", KEY_B, "tcp://9"), KeyVerdict::Pending);
        let approved = a.approve(KEY_B).unwrap();
        assert_eq!(approved.len(), 1);
        assert!(a.pending().is_empty());
        assert_eq!(a.verify_peer("newcomer", KEY_B, "tcp://9"), KeyVerdict::Allowed);
        let on_disk = AuthEntries::load(&h.path().join(AUTH_FILE)).unwrap();
        assert_eq!(on_disk.bound_key("newcomer"), Some(KEY_B));
        assert_eq!(
            on_disk.entry("newcomer").unwrap().comments.as_deref(),
            Some("approved from pending (tcp://9)")
        );

        a.deny("newcomer").unwrap();
        assert!(a.approved().is_empty());
        assert_eq!(a.denied().len(), 1);
        a.approve("newcomer").unwrap();
        assert_eq!(a.approved().len(), 1, "approving a denied peer");
        assert!(a.denied().is_empty());
        a.delete("newcomer").unwrap();
        assert!(a.approved().is_empty());
        assert_eq!(
            AuthEntries::load(&h.path().join(AUTH_FILE)).unwrap(),
            AuthEntries::new()
        );

        assert!(matches!(a.approve("ghost"), Err(AuthError::NotFound { .. })));
        assert!(matches!(a.deny("ghost"), Err(AuthError::NotFound { .. })));
        assert!(matches!(a.delete("ghost"), Err(AuthError::NotFound { .. })));

        a.verify_peer("twin", KEY_A, "s");
        a.verify_peer("twin", KEY_B, "s");
        let e = a.approve("twin").unwrap_err().to_string();
        assert!(e.contains("approve one by its key"), "{e}");
        a.approve(KEY_A).unwrap();
        assert_eq!(a.pending().len(), 1);
        assert!(
            matches!(a.verify_peer("twin", KEY_B, "s"), KeyVerdict::Denied(_)),
            "now bound to KEY_A"
        );
    }

    #[test]
    fn failure_delays() {
        let h = home();
        let a = Authority::open(h.path()).unwrap();
        assert_eq!(a.failure_delay("ip"), Duration::ZERO);
        assert_eq!(a.record_failure("ip"), Duration::from_millis(100));
        assert_eq!(a.record_failure("ip"), Duration::from_millis(200));
        assert_eq!(a.failure_delay("ip"), Duration::from_millis(200));
        a.record_success("ip");
        assert_eq!(a.failure_delay("ip"), Duration::ZERO);
    }

    #[test]
    fn edits_persist_and_apply() {
        let h = home();
        let a = Authority::open(h.path()).unwrap();
        a.set_role("operator", Some(vec!["actuate".into()])).unwrap();
        a.set_group("ops", Some(vec!["operator".into()])).unwrap();
        a.set_user_capabilities(
            "hvac",
            serde_json::json!({"edit": {"identity": "<self>"}}),
            None,
            Some(vec!["ops".into()]),
        )
        .unwrap();
        a.set_rpc_authorization("config.store", "set_config", Some(vec!["edit".into()]))
            .unwrap();
        a.set_protected_topic(
            TopicAccess::Publish,
            "devices/actuators",
            Some(vec!["actuate".into()]),
        )
        .unwrap();

        let authz = a.authz();
        assert_eq!(authz.capabilities("hvac")["actuate"], Grant::Unrestricted);
        assert!(a.check_publish("hvac", "devices/actuators/x").is_ok());
        assert!(a.check_publish("other", "devices/actuators/x").is_err());
        let args = Args::new().kwarg("identity", "hvac");
        assert!(
            a.check_call("hvac", "config.store", "set_config", &args, &[])
                .is_ok()
        );
        assert!(
            a.check_call("other", "config.store", "set_config", &args, &[])
                .is_err()
        );

        let on_disk = Authz::load(&h.path().join(AUTHZ_FILE)).unwrap();
        assert_eq!(on_disk.to_json(), authz.to_json());
        assert!(!a.reload_if_changed().unwrap(), "its own writes are not reloaded");

        // Keeps roles and groups when only capabilities are given.
        a.set_user_capabilities("hvac", serde_json::json!(["x"]), None, None)
            .unwrap();
        assert!(a.authz().has_capability("hvac", "actuate"));
        let e = a.set_role("operator", None).unwrap_err().to_string();
        assert!(e.contains("unknown role \"operator\""), "{e}");
        assert!(
            a.authz().roles().contains_key("operator"),
            "a refused edit changes nothing"
        );
        a.remove_user("hvac").unwrap();
        assert!(matches!(a.remove_user("hvac"), Err(AuthError::NotFound { .. })));
    }

    #[test]
    fn reload_applies_a_changed_file_and_keeps_old_rules_on_a_broken_one() {
        let h = home();
        let path = h.path().join(AUTHZ_FILE);
        write_stamped(&path, r#"{"protected_topics": {"publish": {"a": ["c"]}}}"#, 1000);
        let a = Authority::open(h.path()).unwrap();
        assert!(a.check_publish("x", "a/1").is_err());
        assert!(a.check_publish("x", "b/1").is_ok());

        // Same length, different contents and time.
        write_stamped(&path, r#"{"protected_topics": {"publish": {"b": ["c"]}}}"#, 2000);
        assert!(a.reload_if_changed().unwrap());
        assert!(a.check_publish("x", "a/1").is_ok());
        assert!(a.check_publish("x", "b/1").is_err());
        assert!(!a.reload_if_changed().unwrap(), "unchanged");

        write_stamped(&path, r#"{"protected_topics": {"publish": {"b": "c"}}}"#, 3000);
        let e = a.reload_if_changed().unwrap_err().to_string();
        assert!(
            e.contains(r#"$.protected_topics.publish["b"]: expected a list of names, found a string"#),
            "{e}"
        );
        assert!(a.check_publish("x", "b/1").is_err(), "old rules stay in force");
        assert!(!a.reload_if_changed().unwrap(), "reported once per change");
        let e = a.set_role("r", Some(vec![])).unwrap_err();
        assert!(
            matches!(e, AuthError::Broken { .. }),
            "a broken hand edit is not overwritten: {e}"
        );
        assert!(fs::read_to_string(&path).unwrap().contains(r#""b": "c""#));

        write_stamped(&path, "{}", 4000);
        assert!(a.reload().unwrap());
        assert!(a.check_publish("x", "b/1").is_ok());
        a.set_role("r", Some(vec![])).unwrap();

        // auth.json too.
        let auth = h.path().join(AUTH_FILE);
        write_stamped(
            &auth,
            &format!(r#"{{"allow": [{{"identity": "z", "public_key": "{KEY_A}"}}]}}"#),
            5000,
        );
        assert!(a.reload_if_changed().unwrap());
        assert_eq!(a.verify_peer("z", KEY_A, "s"), KeyVerdict::Allowed);
        write_stamped(&auth, "{\"allow\": 5}", 6000);
        assert!(matches!(a.reload_if_changed(), Err(AuthError::Entries(_))));
        assert_eq!(
            a.verify_peer("z", KEY_A, "s"),
            KeyVerdict::Allowed,
            "old entries in force"
        );

        fs::remove_file(&path).unwrap();
        fs::remove_file(&auth).unwrap();
        assert!(a.reload_if_changed().unwrap());
        assert!(a.authz().is_empty(), "a removed file is the default");
    }
}
