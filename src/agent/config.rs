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
                (self.me(), name, raw, config_type.as_str()),
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
            .call(CONFIG_STORE, "delete_config", (self.me(), name))
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
