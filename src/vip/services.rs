//! VOLTTRON 11's service identities as VIP peers see them, answered from this platform's
//! own services.
//!
//! | identity | methods | answered by |
//! |----------|---------|-------------|
//! | `platform.config_store` | `initialize_configs` | the listener: reads the store from `config.store`, pushes it with `config.initial_update`, then replies `null` (VOLTTRON 11's protocol) |
//! | `platform.config_store` | every other (`get_config`, `set_config`, `list_configs`, `delete_config`, ...) | `config.store` |
//! | `platform.auth` | `get_protected_rpcs`, `check_pubsub_authorization`, `check_rpc_authorization` | the listener, from the same `authz.json` rules as every peer (`[]` / `true` with auth off) |
//! | `platform.auth` | every other | the `platform.auth` service |
//! | `platform.control` | all | `control` |
//! | `platform.health` | all | `platform.health` |
//!
//! `platform.auth` is left out of `peerlist` listings unless `authz.json` protects topics:
//! a client that sees it asks it about every publish and subscription (a round trip
//! each), and the platform checks them anyway.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Future;

use crate::auth::authz::PubsubAccess;
use crate::core::jsonrpc;
use crate::core::{Args, Identity, Map, RpcError, Value};
use crate::platform::endpoint::Endpoint;
use crate::vip::Context;

pub use crate::services::{V11_CONFIG_STORE as CONFIG_STORE, V11_CONTROL as CONTROL};
/// VOLTTRON 11's auth identity (the same here).
pub const AUTH: &str = crate::services::auth::IDENTITY;
/// VOLTTRON 11's health identity (the same here).
pub const HEALTH: &str = crate::services::health::IDENTITY;

/// How long the store waits for an agent to take its configuration (VOLTTRON 11: 30 s).
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The service a VOLTTRON 11 identity stands for here.
fn target(recipient: &str) -> &str {
    match recipient {
        CONFIG_STORE => crate::services::config_store::IDENTITY,
        CONTROL => crate::services::control::IDENTITY,
        other => other,
    }
}

/// Whether a VIP peer can reach `recipient`.
pub(crate) fn reachable(ctx: &Context, recipient: &str) -> bool {
    recipient == AUTH || ctx.endpoint.router.is_connected(target(recipient))
}

/// The peers a `peerlist list` names.
pub(crate) fn listing(ctx: &Context) -> Vec<String> {
    let router = &ctx.endpoint.router;
    let show_auth = ctx
        .authority
        .as_ref()
        .is_some_and(|a| a.authz().protects_topics());
    let mut peers: Vec<String> = router
        .peers()
        .into_iter()
        .map(|p| p.to_string())
        .filter(|p| show_auth || p != AUTH)
        .collect();
    for (alias, service) in [
        (CONFIG_STORE, crate::services::config_store::IDENTITY),
        (CONTROL, crate::services::control::IDENTITY),
    ] {
        if router.is_connected(service) {
            peers.push(alias.to_owned());
        }
    }
    if show_auth && !peers.iter().any(|p| p == AUTH) {
        peers.push(AUTH.to_owned());
    }
    peers.sort();
    peers
}

/// A router `query`.
pub(crate) fn query(ctx: &Context, name: &str) -> Option<Value> {
    match name {
        "serverkey" => Some(Value::from(ctx.serverkey.as_str())),
        "message-bus" => Some(Value::from("zmq")),
        "addresses" => Some(Value::List(
            ctx.addresses.iter().map(|a| Value::from(a.as_str())).collect(),
        )),
        "local_address" => ctx.addresses.first().map(|a| Value::from(a.as_str())),
        _ => ctx.endpoint.query(name),
    }
}

/// The reply to one request (`None` for a notification).
pub(crate) type Reply = Pin<Box<dyn Future<Output = Option<Value>> + Send>>;

/// Carries out one JSON-RPC request from `caller` to `recipient`.
pub(crate) fn call(
    ctx: &Arc<Context>,
    caller: &Endpoint,
    recipient: &str,
    id: Option<Value>,
    method: String,
    args: Args,
) -> Reply {
    let answer = |id: Option<Value>, result: Result<Value, RpcError>| {
        id.map(|id| match result {
            Ok(v) => jsonrpc::response_ok(&id, v),
            Err(e) => jsonrpc::response_err(&id, &jsonrpc::Fault::from_rpc_error(&e)),
        })
    };
    if recipient == AUTH
        && let Some(result) = auth_answer(ctx, &method, &args)
    {
        return Box::pin(futures::future::ready(answer(id, result)));
    }
    if recipient == CONFIG_STORE && method == "initialize_configs" {
        let ctx = ctx.clone();
        let identity = args
            .positional
            .first()
            .or_else(|| args.named.get("identity"))
            .map(|v| v.as_str().map_or_else(|| v.to_json_string(), str::to_owned))
            .unwrap_or_else(|| caller.identity.to_string());
        return Box::pin(async move { answer(id, initialize_configs(&ctx, &identity).await) });
    }
    let target = target(recipient).to_owned();
    match id {
        None => {
            if let Err(e) = caller.notify(&target, &method, args) {
                tracing::debug!(peer = target.as_str(), "vip: notification not delivered: {e}");
            }
            Box::pin(futures::future::ready(None))
        }
        Some(id) => {
            let call = std::future::IntoFuture::into_future(caller.call(&target, &method, args));
            Box::pin(async move { answer(Some(id), call.await) })
        }
    }
}

/// `platform.auth`'s methods that VOLTTRON 11 agents call on their own; `None` for the
/// others (the auth service's).
fn auth_answer(ctx: &Context, method: &str, args: &Args) -> Option<Result<Value, RpcError>> {
    let arg = |i: usize, name: &str| -> Option<Value> {
        args.named.get(name).or_else(|| args.positional.get(i)).cloned()
    };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let authority = ctx.authority.as_ref();
    Some(Ok(match method {
        // The methods of `identity` that need a capability: the agent asks, then checks
        // each call to them with `check_rpc_authorization`.
        "get_protected_rpcs" => {
            let identity = text(arg(0, "identity"));
            let methods = authority.map(|a| a.protected_rpcs(&identity)).unwrap_or_default();
            Value::List(methods.into_iter().map(Value::from).collect())
        }
        "check_pubsub_authorization" => {
            let identity = text(arg(0, "identity"));
            let topic = text(arg(1, "topic_pattern"));
            let access: PubsubAccess = match text(arg(2, "access")).parse() {
                Ok(access) => access,
                Err(e) => {
                    return Some(Err(RpcError::InvalidParams {
                        method: method.to_owned(),
                        message: format!("{e}"),
                    }));
                }
            };
            Value::from(
                authority.is_none_or(|a| a.check_pubsub_authorization(&identity, &topic, access).is_ok()),
            )
        }
        // Asked by the callee about a call it received (`method_name` is
        // `<callee>.<method>`): VOLTTRON 11 answers true or raises.
        "check_rpc_authorization" => {
            let identity = text(arg(0, "identity"));
            let method_name = text(arg(1, "method_name"));
            let named = match arg(2, "method_args") {
                Some(Value::Map(m)) => m,
                _ => Map::new(),
            };
            if let Some(a) = authority
                && let Err(e) = a.check_rpc_authorization(&identity, &method_name, &named)
            {
                return Some(Err(e));
            }
            Value::from(true)
        }
        _ => return None,
    }))
}

/// VOLTTRON 11's `initialize_configs`: the agent's whole store goes to it with
/// `config.initial_update` (even an empty one: it marks the agent initialized), and the
/// answer comes once the agent has taken it.
async fn initialize_configs(ctx: &Context, identity: &str) -> Result<Value, RpcError> {
    let store = Endpoint {
        identity: Identity::new(CONFIG_STORE).expect("valid identity"),
        ..ctx.endpoint.clone()
    };
    let configs: Vec<(String, Value)> = if store.router.is_connected(crate::services::config_store::IDENTITY)
    {
        store
            .call(
                crate::services::config_store::IDENTITY,
                "initialize_configs",
                (identity,),
            )
            .returning()
            .await?
    } else {
        Vec::new()
    };
    let all: Map = configs.into_iter().collect();
    if let Err(e) = store
        .call(identity, "config.initial_update", (Value::Map(all),))
        .timeout(PUSH_TIMEOUT)
        .await
    {
        tracing::warn!(
            agent = identity,
            "vip: the agent did not take its configuration: {e}"
        );
    }
    Ok(Value::Null)
}
