//! An agent's own configuration store, through the `config.store` service.

use crate::agent::AgentContext;
use crate::config_store::ConfigType;
use crate::core::{RpcError, Value};
use crate::services::config_store::IDENTITY as CONFIG_STORE;

/// Reads and writes this agent's configuration store; from [`AgentContext::config`].
///
/// Needs the platform's services (and a home directory); without them every call fails
/// with [`RpcError::UnknownPeer`] for `config.store`.
#[derive(Debug)]
pub struct ConfigClient<'a> {
    ctx: &'a AgentContext,
}

impl ConfigClient<'_> {
    fn me(&self) -> String {
        self.ctx.identity().to_string()
    }

    /// Configuration `name`, parsed, with `config://` references resolved.
    pub async fn get(&self, name: &str) -> Result<Value, RpcError> {
        self.ctx
            .call(CONFIG_STORE, "get_config", (self.me(), name, false))
            .await
    }

    /// Configuration `name` as stored (raw text).
    pub async fn get_raw(&self, name: &str) -> Result<String, RpcError> {
        self.ctx
            .call(CONFIG_STORE, "get_config", (self.me(), name, true))
            .returning()
            .await
    }

    /// Stores `value` as JSON configuration `name`.
    pub async fn set(&self, name: &str, value: &Value) -> Result<(), RpcError> {
        self.set_raw(name, &value.to_json_string(), ConfigType::Json)
            .await
    }

    /// Stores raw text of the given type as configuration `name`.
    pub async fn set_raw(&self, name: &str, raw: &str, config_type: ConfigType) -> Result<(), RpcError> {
        self.ctx
            .call(
                CONFIG_STORE,
                "set_config",
                // Its own writes do not call its own handlers (VOLTTRON's
                // `trigger_callback=False`): no loops from a handler that writes.
                (self.me(), name, raw, config_type.as_str(), false),
            )
            .await
            .map(|_| ())
    }

    /// The names in this agent's store.
    pub async fn list(&self) -> Result<Vec<String>, RpcError> {
        self.ctx
            .call(CONFIG_STORE, "list_configs", (self.me(),))
            .returning()
            .await
    }

    /// Deletes configuration `name`.
    pub async fn delete(&self, name: &str) -> Result<(), RpcError> {
        self.ctx
            .call(CONFIG_STORE, "delete_config", (self.me(), name, false))
            .await
            .map(|_| ())
    }
}

impl AgentContext {
    /// This agent's configuration store.
    pub fn config(&self) -> ConfigClient<'_> {
        ConfigClient { ctx: self }
    }
}

/// What happened to a configuration, as VOLTTRON's config callbacks' `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConfigAction {
    /// First seen: at start for every configuration, or newly stored.
    New,
    /// Changed (or one it references changed, or its stored entry was deleted and a
    /// default remains).
    Update,
    /// Deleted.
    Delete,
}

impl ConfigAction {
    /// The bit in [`ConfigSpec::actions`](crate::agent::ConfigSpec::actions).
    pub(crate) fn bit(self) -> u8 {
        match self {
            ConfigAction::New => 1,
            ConfigAction::Update => 2,
            ConfigAction::Delete => 4,
        }
    }
}

/// A change to one of this agent's configurations, handed to `#[on_config]` handlers.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigUpdate {
    /// What happened.
    pub action: ConfigAction,
    /// The configuration's name.
    pub name: String,
    /// Its parsed contents, `config://` references resolved (`Null` on delete).
    pub contents: Value,
}

/// The built-in method through which the store pushes changes to an agent.
pub(crate) const UPDATE_METHOD: &str = "config.update";

impl ConfigClient<'_> {
    /// Sets a default for configuration `name`, used when the store has no entry of that
    /// name: at start (NEW) and after the stored entry is deleted (UPDATE with the
    /// default). Call it before the agent starts (in `#[on_setup]`), as VOLTTRON requires.
    pub fn set_default(&self, name: &str, contents: impl Into<Value>) {
        self.ctx.inner.config_defaults.lock().insert(
            name.trim().to_lowercase(),
            (name.trim().to_owned(), contents.into()),
        );
    }
}

impl AgentContext {
    /// The default for configuration `name`, if one was set.
    pub(crate) fn config_default(&self, name: &str) -> Option<Value> {
        self.inner
            .config_defaults
            .lock()
            .get(&name.trim().to_lowercase())
            .map(|(_, v)| v.clone())
    }

    /// Starts the initial round of NEW notifications: every stored configuration
    /// ("config" first) plus the defaults the store does not override. They arrive in the
    /// mailbox as `config.update` notifications, so they run in order with everything else.
    pub(crate) fn begin_initial_configs(&self) {
        let ctx = self.clone();
        let activity = self.inner.endpoint.router.activity.clone();
        if let Some(a) = &activity {
            a.begin();
        }
        actix::spawn(async move {
            let stored: Vec<(String, Value)> = ctx
                .call(CONFIG_STORE, "initialize_configs", (ctx.identity().as_str(),))
                .returning()
                .await
                .unwrap_or_default();
            let mut all = stored;
            let defaults: Vec<(String, Value)> = ctx.inner.config_defaults.lock().values().cloned().collect();
            for (name, value) in defaults {
                if !all.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    all.push((name, value));
                }
            }
            all.sort_by_key(|(n, _)| (!n.eq_ignore_ascii_case("config"), n.to_lowercase()));
            let me = ctx.identity().as_str().to_owned();
            for (name, contents) in all {
                let _ = ctx.notify(&me, UPDATE_METHOD, (ConfigAction::New, name, contents, true));
            }
            if let Some(a) = &activity {
                a.end();
            }
        });
    }
}

/// fnmatch-style matching (`*`, `?`, `[abc]`, `[!abc]`), case-insensitive, as VOLTTRON's
/// config subscriptions.
pub(crate) fn fnmatch(pattern: &str, name: &str) -> bool {
    let syntax = crate::core::glob::Syntax {
        classes: true,
        escapes: false,
    };
    crate::core::glob::Glob::new(&pattern.to_lowercase(), syntax).matches(&name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn fnmatch_like_python() {
        assert!(fnmatch("*", "config"));
        assert!(fnmatch("devices/*", "devices/rtu1"));
        assert!(fnmatch("DEVICES/rtu?", "devices/rtu1"));
        assert!(!fnmatch("devices/rtu?", "devices/rtu12"));
        assert!(fnmatch("rtu[0-9]", "rtu7"));
        assert!(!fnmatch("rtu[!0-9]", "rtu7"));
        assert!(fnmatch("config", "Config"));
        assert!(!fnmatch("config", "config2"));
    }
}
