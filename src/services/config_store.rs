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
//! Agents use it through [`AgentContext::config`](crate::AgentContext::config). Writing
//! another agent's store will need the `edit_config_store` capability once the auth service
//! exists; until then any peer may.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::config_store::{AgentStore, ConfigEntry, ConfigType, StoreError, format_timestamp, store_path};
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
    /// Stores `raw_contents` as `config_name` of `identity`'s store.
    #[rpc]
    #[allow(clippy::too_many_arguments)]
    fn set_config(
        &mut self,
        ctx: &AgentContext,
        identity: String,
        config_name: String,
        raw_contents: String,
        config_type: Option<String>,
        trigger_callback: Option<bool>,
        send_update: Option<bool>,
    ) -> Result<(), String> {
        let _ = (trigger_callback, send_update);
        let config_type: ConfigType = config_type
            .as_deref()
            .unwrap_or("raw")
            .parse()
            .map_err(|e: crate::config_store::UnknownConfigType| e.to_string())?;
        let now = ctx.now();
        self.store(&identity)?
            .set(&config_name, &raw_contents, config_type, now)
            .map(|_| ())
            .map_err(text)
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
    fn delete_config(
        &mut self,
        identity: String,
        config_name: String,
        trigger_callback: Option<bool>,
        send_update: Option<bool>,
    ) -> Result<(), String> {
        let _ = (trigger_callback, send_update);
        self.store(&identity)?
            .delete(&config_name)
            .map(|_| ())
            .map_err(text)
    }

    /// Deletes `identity`'s whole store.
    #[rpc]
    fn delete_store(&mut self, identity: String) -> Result<(), String> {
        self.store(&identity)?.delete_all().map_err(text)
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
