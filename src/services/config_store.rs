//! The configuration store service (`config.store`): one [`AgentStore`] per agent
//! identity under `$VOLTTRON_HOME/configuration_store/`, behind VOLTTRON's RPCs.
//!
//! | RPC | arguments (VOLTTRON's names) | reply |
//! |-----|------------------------------|-------|
//! | `set_config` | `identity`, `config_name`, `raw_contents`, `config_type` ("raw"), `trigger_callback`, `send_update` | null |
//! | `get_config` | `identity`, `config_name`, `raw` (true) | the raw text, or the parsed value with `config://` references resolved |
//! | `list_configs` | `identity` | names, sorted |
//! | `list_stores` | — | identities with a store, sorted |
//! | `delete_config` | `identity`, `config_name`, `trigger_callback`, `send_update` | null |
//! | `delete_store` | `identity` | null |
//! | `get_metadata` | `identity`, `config_name` | `{"name", "type", "modified", "data"}` |
//!
//! Writes (which fsync) run on the blocking pool, not on the services' thread.
//!
//! Agents use it through [`AgentContext::config`](crate::AgentContext::config).
//!
//! Authorization hook: writing another agent's store will need the `edit_config_store`
//! capability (restricted to `identity: <self>` for agents' own stores) once the auth
//! service exists. The check belongs at the top of `set_config`, `delete_config` and
//! `delete_store`, which will then also need the caller's identity; until then any peer may
//! write any store.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::agent::ConfigAction;
use crate::agent::config::UPDATE_METHOD;
use crate::config_store::{
    AgentStore, Change, ConfigEntry, ConfigType, StoreError, format_timestamp, store_path,
};
use crate::core::{Identity, Map, Value};
use crate::prelude::*;

/// The service's identity, as VOLTTRON's.
pub const IDENTITY: &str = "config.store";

/// The configuration store service agent.
pub(crate) struct ConfigStoreService {
    home: PathBuf,
    stores: HashMap<String, AgentStore>,
}

impl ConfigStoreService {
    pub(crate) fn new(home: PathBuf) -> Self {
        ConfigStoreService {
            home,
            stores: HashMap::new(),
        }
    }

    /// The store of `identity`, loaded on first use.
    fn store(&mut self, identity: &str) -> Result<&mut AgentStore, String> {
        let identity = Identity::new(identity).map_err(|e| e.to_string())?;
        if !self.stores.contains_key(identity.as_str()) {
            let store = AgentStore::open(store_path(&self.home, &identity)).map_err(text)?;
            self.stores.insert(identity.to_string(), store);
        }
        Ok(self.stores.get_mut(identity.as_str()).expect("just inserted"))
    }

    /// Runs a write (which fsyncs) on the blocking pool, off the services' thread. The
    /// store is moved out and back: handlers run one at a time, so nothing else can
    /// look for it meanwhile.
    async fn write<T: Send + 'static>(
        &mut self,
        ctx: &AgentContext,
        identity: &str,
        f: impl FnOnce(&mut AgentStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, String> {
        self.store(identity)?;
        let mut store = self.stores.remove(identity).expect("loaded just above");
        let router = ctx.inner.endpoint.router.clone();
        let (store, result) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let result = f(&mut store);
            if result.is_ok() {
                router.config_written(started.elapsed());
            }
            (store, result)
        })
        .await
        .map_err(|e| format!("store write failed: {e}"))?;
        self.stores.insert(identity.to_owned(), store);
        result.map_err(text)
    }
}

fn notify_wanted(trigger_callback: Option<bool>, send_update: Option<bool>) -> bool {
    trigger_callback.unwrap_or(true) && send_update.unwrap_or(true)
}

/// Tells a running agent about a change to `name` and the UPDATE it means for every
/// configuration that references it. An agent that is not running is not waited for
/// (VOLTTRON waits 30 s, issue #2117): it gets everything as NEW at its next start.
fn push(ctx: &AgentContext, store: &AgentStore, identity: &str, action: ConfigAction, name: &str) {
    let contents = match action {
        ConfigAction::Delete => Value::Null,
        _ => store.get(name).unwrap_or(Value::Null),
    };
    if ctx
        .notify(identity, UPDATE_METHOD, (action, name, contents))
        .is_err()
    {
        return;
    }
    for referrer in store.referrers(name) {
        let contents = store.get(&referrer).unwrap_or(Value::Null);
        let _ = ctx.notify(
            identity,
            UPDATE_METHOD,
            (ConfigAction::Update, referrer, contents),
        );
    }
}

fn text(e: StoreError) -> String {
    e.to_string()
}

fn metadata(entry: &ConfigEntry) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(entry.name.as_str()));
    m.insert("type".into(), Value::from(entry.config_type.as_str()));
    m.insert(
        "modified".into(),
        Value::from(entry.modified.as_ref().map(format_timestamp)),
    );
    m.insert("data".into(), Value::from(entry.data.as_str()));
    m
}

#[crate::agent]
impl ConfigStoreService {
    /// Stores `raw_contents` as `config_name` of `identity`'s store; the agent's
    /// `#[on_config]` handlers hear of it (NEW or UPDATE, and UPDATE for every config that
    /// references it) unless `trigger_callback` or `send_update` is false.
    #[rpc]
    #[allow(clippy::too_many_arguments)]
    async fn set_config(
        &mut self,
        ctx: &AgentContext,
        identity: String,
        config_name: String,
        raw_contents: String,
        config_type: Option<String>,
        trigger_callback: Option<bool>,
        send_update: Option<bool>,
    ) -> Result<(), String> {
        let config_type: ConfigType = config_type
            .as_deref()
            .unwrap_or("raw")
            .parse()
            .map_err(|e: crate::config_store::UnknownConfigType| e.to_string())?;
        let now = ctx.now();
        let name = config_name.trim().to_owned();
        let change = self
            .write(ctx, &identity, move |s| {
                s.set(&config_name, &raw_contents, config_type, now)
            })
            .await?;
        if notify_wanted(trigger_callback, send_update) {
            let action = match change {
                Change::New => ConfigAction::New,
                Change::Update => ConfigAction::Update,
            };
            push(ctx, self.store(&identity)?, &identity, action, &name);
        }
        Ok(())
    }

    /// Every configuration of `identity`, parsed and resolved, "config" first: the
    /// initial NEW round an agent receives when it starts.
    #[rpc]
    fn initialize_configs(&mut self, identity: String) -> Result<Vec<(String, Value)>, String> {
        let store = self.store(&identity)?;
        let mut all: Vec<(String, Value)> = store
            .names()
            .into_iter()
            .filter_map(|n| store.get(&n).ok().map(|v| (n, v)))
            .collect();
        all.sort_by_key(|(n, _)| (!n.eq_ignore_ascii_case("config"), n.to_lowercase()));
        Ok(all)
    }

    /// `config_name` of `identity`'s store: its raw text, or (`raw` false) its parsed value.
    #[rpc]
    fn get_config(
        &mut self,
        identity: String,
        config_name: String,
        raw: Option<bool>,
    ) -> Result<Value, String> {
        let store = self.store(&identity)?;
        if raw.unwrap_or(true) {
            store
                .entry(&config_name)
                .map(|e| Value::from(e.data.as_str()))
                .ok_or_else(|| text(StoreError::NotFound(config_name)))
        } else {
            store.get(&config_name).map_err(text)
        }
    }

    /// The names in `identity`'s store.
    #[rpc]
    fn list_configs(&mut self, identity: String) -> Result<Vec<String>, String> {
        Ok(self.store(&identity)?.names())
    }

    /// The identities that have a store.
    #[rpc]
    fn list_stores(&mut self) -> Result<Vec<String>, String> {
        let dir = self.home.join(crate::config_store::STORE_DIR);
        let mut ids = crate::config_store::list_stores(&dir).map_err(text)?;
        for (id, store) in &self.stores {
            if !store.is_empty() && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.retain(|id| self.stores.get(id).is_none_or(|s| !s.is_empty()));
        ids.sort();
        Ok(ids)
    }

    /// Deletes `config_name` from `identity`'s store.
    #[rpc]
    async fn delete_config(
        &mut self,
        ctx: &AgentContext,
        identity: String,
        config_name: String,
        trigger_callback: Option<bool>,
        send_update: Option<bool>,
    ) -> Result<(), String> {
        let gone = self
            .write(ctx, &identity, move |s| s.delete(&config_name))
            .await?;
        if notify_wanted(trigger_callback, send_update) {
            push(
                ctx,
                self.store(&identity)?,
                &identity,
                ConfigAction::Delete,
                &gone.name,
            );
        }
        Ok(())
    }

    /// Deletes `identity`'s whole store.
    #[rpc]
    async fn delete_store(&mut self, ctx: &AgentContext, identity: String) -> Result<(), String> {
        let names = self.store(&identity)?.names();
        self.write(ctx, &identity, AgentStore::delete_all).await?;
        for name in names {
            let _ = ctx.notify(
                &identity,
                UPDATE_METHOD,
                (ConfigAction::Delete, name, Value::Null),
            );
        }
        Ok(())
    }

    /// Name, type, modification time and raw data of `config_name`.
    #[rpc]
    fn get_metadata(&mut self, identity: String, config_name: String) -> Result<Map, String> {
        self.store(&identity)?
            .entry(&config_name)
            .map(metadata)
            .ok_or_else(|| text(StoreError::NotFound(config_name)))
    }
}
