//! The auth service (`platform.auth`): VOLTTRON's RPCs over the platform's authority —
//! the peers pending approval, `auth.json` (approved and denied peers) and `authz.json`
//! (roles, groups, users' capabilities, RPC method authorizations, protected topics).
//!
//! | RPC | arguments | reply |
//! |-----|-----------|-------|
//! | `get_authorization_pending` | — | `[{identity, public_key, source, first_seen, last_seen, attempts}]` |
//! | `get_authorization_approved` | — | enabled entries `[{identity, public_key, enabled, comments}]` |
//! | `get_authorization_denied` | — | `[{identity, public_key, comments}]` |
//! | `approve_authorization` | `identity_or_key` | the new entries; a pending or denied peer becomes an approved entry |
//! | `deny_authorization` | `identity_or_key` | null; a pending peer or an approved entry moves to the deny list |
//! | `delete_authorization` | `identity_or_key` | null; forgotten from pending, approved and denied |
//! | `get_auth_entries` | — | every entry, enabled or not |
//! | `add_auth_entry` | `identity`, `public_key`, `comments` (null), `enabled` (true) | null; replaces the identity's entry |
//! | `remove_auth_entry` | `identity` | the removed entry |
//! | `get_roles` / `set_role` | — / `name`, `capabilities` (null removes) | `{role: [capability]}` / null |
//! | `get_groups` / `set_group` | — / `name`, `roles` (null removes) | `{group: [role]}` / null |
//! | `get_users` | — | the `users` section |
//! | `get_user_capabilities` | `identity` | effective capabilities `{capability: restrictions or null}` |
//! | `set_user_capabilities` | `identity`, `capabilities` (map or list), `roles` (kept if null), `groups` (kept if null) | null |
//! | `remove_user` | `identity` | null |
//! | `get_rpc_authorizations` | `identity` | `{method: [capability]}` of that callee |
//! | `set_rpc_authorizations` | `identity`, `method`, `capabilities` (null or empty removes) | null |
//! | `get_protected_topics` | — | `{"publish": {prefix: [capability]}, "subscribe": {...}}` |
//! | `set_protected_topic` | `kind` (`"publish"` or `"subscribe"`), `prefix`, `capabilities` | null |
//! | `remove_protected_topic` | `kind`, `prefix` | null |
//!
//! The file formats, the capability rules and the topic rules are in
//! [`auth::authz`](crate::auth::authz) and [`auth::entries`](crate::auth::entries). Every edit
//! is validated in full, written atomically and put in force at once; writes (which fsync)
//! run on the blocking pool, off the services' thread. An edit is refused while the file on
//! disk has an error, so a broken hand edit is not silently overwritten.
//!
//! Every second the service reloads `authz.json` and `auth.json` if they changed on disk, so
//! edits by hand apply without a restart; a file that does not load is logged and the
//! previous rules stay in force.
//!
//! On a platform with auth on, every one of these RPCs requires the capability
//! `allow_auth_modifications` (as in VOLTTRON) unless `rpc_method_authorizations["platform.auth"]`
//! lists the method otherwise (see [`auth::authz`](crate::auth::authz#the-auth-services-own-methods));
//! the platform's own identities are not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::auth::authz::{Grant, TopicAccess, User};
use crate::auth::entries::{AuthEntry, DeniedEntry};
use crate::auth::pending::PendingPeer;
use crate::auth::{AuthError, Authority};
use crate::core::{Map, Value};

/// The service's identity, as VOLTTRON's.
pub const IDENTITY: &str = crate::auth::authz::AUTH_SERVICE;

/// The auth service agent (started by the platform when auth is on).
#[derive(Debug)]
pub(crate) struct AuthService {
    authority: Arc<Authority>,
}

impl AuthService {
    /// A service over the platform's authority.
    pub(crate) fn new(authority: Arc<Authority>) -> Self {
        AuthService { authority }
    }

    /// Runs an edit (which fsyncs) on the blocking pool.
    async fn edit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Authority) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, String> {
        let authority = self.authority.clone();
        tokio::task::spawn_blocking(move || f(&authority))
            .await
            .map_err(|e| format!("auth edit failed: {e}"))?
            .map_err(|e| e.to_string())
    }
}

fn access(kind: &str) -> Result<TopicAccess, String> {
    kind.parse()
        .map_err(|e: crate::auth::authz::UnknownTopicAccess| e.to_string())
}

#[crate::agent]
impl AuthService {
    #[periodic(secs = 1)]
    fn reload(&mut self) {
        // Errors are logged by the authority, once per change of the file.
        let _ = self.authority.reload_if_changed();
    }

    /// The peers that tried to connect with an unknown key.
    #[rpc]
    fn get_authorization_pending(&mut self) -> Vec<PendingPeer> {
        self.authority.pending()
    }

    /// The enabled `auth.json` entries.
    #[rpc]
    fn get_authorization_approved(&mut self) -> Vec<AuthEntry> {
        self.authority.approved()
    }

    /// The deny list.
    #[rpc]
    fn get_authorization_denied(&mut self) -> Vec<DeniedEntry> {
        self.authority.denied()
    }

    /// Approves the pending or denied peers named by identity or key.
    #[rpc]
    async fn approve_authorization(&mut self, identity_or_key: String) -> Result<Vec<AuthEntry>, String> {
        self.edit(move |a| a.approve(&identity_or_key)).await
    }

    /// Denies the pending peers or approved entries named by identity or key.
    #[rpc]
    async fn deny_authorization(&mut self, identity_or_key: String) -> Result<(), String> {
        self.edit(move |a| a.deny(&identity_or_key)).await
    }

    /// Forgets the pending, approved and denied peers named by identity or key.
    #[rpc]
    async fn delete_authorization(&mut self, identity_or_key: String) -> Result<(), String> {
        self.edit(move |a| a.delete(&identity_or_key)).await
    }

    /// Every `auth.json` entry, enabled or not.
    #[rpc]
    fn get_auth_entries(&mut self) -> Vec<AuthEntry> {
        self.authority.entries().entries().to_vec()
    }

    /// Binds `identity` to `public_key` (base64), replacing its entry.
    #[rpc]
    async fn add_auth_entry(
        &mut self,
        identity: String,
        public_key: String,
        comments: Option<String>,
        enabled: Option<bool>,
    ) -> Result<(), String> {
        self.edit(move |a| a.add_entry(&identity, &public_key, comments, enabled.unwrap_or(true)))
            .await
    }

    /// Removes `identity`'s entry.
    #[rpc]
    async fn remove_auth_entry(&mut self, identity: String) -> Result<AuthEntry, String> {
        self.edit(move |a| a.remove_entry(&identity)).await
    }

    /// Roles and their capabilities.
    #[rpc]
    fn get_roles(&mut self) -> BTreeMap<String, BTreeSet<String>> {
        self.authority.authz().roles().clone()
    }

    /// Defines role `name`; null `capabilities` removes it.
    #[rpc]
    async fn set_role(&mut self, name: String, capabilities: Option<Vec<String>>) -> Result<(), String> {
        self.edit(move |a| a.set_role(&name, capabilities)).await
    }

    /// Groups and their roles.
    #[rpc]
    fn get_groups(&mut self) -> BTreeMap<String, BTreeSet<String>> {
        self.authority.authz().groups().clone()
    }

    /// Defines group `name`; null `roles` removes it.
    #[rpc]
    async fn set_group(&mut self, name: String, roles: Option<Vec<String>>) -> Result<(), String> {
        self.edit(move |a| a.set_group(&name, roles)).await
    }

    /// The `users` section as written.
    #[rpc]
    fn get_users(&mut self) -> BTreeMap<String, User> {
        self.authority.authz().users().clone()
    }

    /// `identity`'s effective capabilities: direct, through roles and through groups.
    #[rpc]
    fn get_user_capabilities(&mut self, identity: String) -> BTreeMap<String, Grant> {
        self.authority.authz().capabilities(&identity).clone()
    }

    /// Sets `identity`'s direct capabilities and, when given, its roles and groups.
    #[rpc]
    async fn set_user_capabilities(
        &mut self,
        identity: String,
        capabilities: Value,
        roles: Option<Vec<String>>,
        groups: Option<Vec<String>>,
    ) -> Result<(), String> {
        let capabilities = serde_json::Value::from(capabilities);
        self.edit(move |a| a.set_user_capabilities(&identity, capabilities, roles, groups))
            .await
    }

    /// Removes `identity` from `users`.
    #[rpc]
    async fn remove_user(&mut self, identity: String) -> Result<(), String> {
        self.edit(move |a| a.remove_user(&identity)).await
    }

    /// The methods of `identity` that require capabilities, and which.
    #[rpc]
    fn get_rpc_authorizations(&mut self, identity: String) -> BTreeMap<String, BTreeSet<String>> {
        self.authority
            .authz()
            .rpc_method_authorizations()
            .get(&identity)
            .cloned()
            .unwrap_or_default()
    }

    /// Sets the capabilities that calling `identity`'s `method` requires; null or empty
    /// removes the requirement.
    #[rpc]
    async fn set_rpc_authorizations(
        &mut self,
        identity: String,
        method: String,
        capabilities: Option<Vec<String>>,
    ) -> Result<(), String> {
        self.edit(move |a| a.set_rpc_authorization(&identity, &method, capabilities))
            .await
    }

    /// The protected prefixes, for publishing and for subscribing.
    #[rpc]
    fn get_protected_topics(&mut self) -> Map {
        let authz = self.authority.authz();
        [TopicAccess::Publish, TopicAccess::Subscribe]
            .into_iter()
            .map(|access| {
                let prefixes: Map = authz
                    .protected_topics(access)
                    .iter()
                    .map(|(prefix, caps)| {
                        let caps = caps.iter().map(|c| Value::from(c.as_str())).collect();
                        (prefix.clone(), Value::List(caps))
                    })
                    .collect();
                (access.as_str().to_owned(), Value::Map(prefixes))
            })
            .collect()
    }

    /// Protects `prefix` for `kind` ("publish" or "subscribe") with `capabilities`.
    #[rpc]
    async fn set_protected_topic(
        &mut self,
        kind: String,
        prefix: String,
        capabilities: Vec<String>,
    ) -> Result<(), String> {
        let access = access(&kind)?;
        self.edit(move |a| a.set_protected_topic(access, &prefix, Some(capabilities)))
            .await
    }

    /// Unprotects `prefix` for `kind`.
    #[rpc]
    async fn remove_protected_topic(&mut self, kind: String, prefix: String) -> Result<(), String> {
        let access = access(&kind)?;
        self.edit(move |a| a.set_protected_topic(access, &prefix, None))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyVerdict;
    use crate::testing::TestPlatform;

    const KEY: &str = "3q2+7w==";

    #[crate::test]
    async fn approving_a_pending_peer_over_rpc() {
        let tp = TestPlatform::start().await;
        let authority = Authority::open(tp.home_dir()).unwrap();
        tp.spawn(IDENTITY, AuthService::new(authority.clone()))
            .await
            .unwrap();
        assert_eq!(
            authority.verify_peer("newcomer", KEY, "tcp://10.0.0.7:4000"),
            KeyVerdict::Pending
        );

        let pending = tp.call(IDENTITY, "get_authorization_pending", ()).await.unwrap();
        assert_eq!(pending[0]["identity"], Value::from("newcomer"));
        assert_eq!(pending[0]["source"], Value::from("tcp://10.0.0.7:4000"));
        assert_eq!(pending[0]["attempts"], Value::from(1));

        let approved = tp
            .call(IDENTITY, "approve_authorization", ("newcomer",))
            .await
            .unwrap();
        assert_eq!(approved[0]["public_key"], Value::from(KEY));
        assert_eq!(
            authority.verify_peer("newcomer", KEY, "tcp://10.0.0.7:4000"),
            KeyVerdict::Allowed
        );
        let pending = tp.call(IDENTITY, "get_authorization_pending", ()).await.unwrap();
        assert_eq!(pending, Value::List(vec![]));
        let on_disk = std::fs::read_to_string(tp.home_dir().join("auth.json")).unwrap();
        assert!(on_disk.contains("\"newcomer\""), "{on_disk}");
        tp.shutdown().await;
    }
}
