//! `platform.web` on the bus: the RPC methods through which agents register routes (the
//! names VOLTTRON's `vip.web` subsystem calls), and the cleanup when an agent leaves.
//!
//! | method | does |
//! |--------|------|
//! | `register_endpoint(endpoint, res_type="jsonrpc")` | serves `endpoint` by the caller's `route.callback` |
//! | `register_path_route(regex, root_dir)` | serves files under `root_dir` for paths matching `regex` |
//! | `register_websocket(endpoint)`, `unregister_websocket(endpoint)` | a socket the caller answers |
//! | `websocket_send(endpoint, message)` | sends text to every client of the caller's socket; how many |
//! | `unregister_all_agent_routes()` | removes the caller's routes and sockets |
//! | `get_user_claims(bearer)` | an access token's claims, or `{}` |
//! | `get_bind_web_address()`, `get_serverkey()` | where the service listens, the platform's key |
//! | `list_routes()` | every agent route: `[kind, method, path, peer]` |

use std::sync::Arc;

use crate::core::{Caller, Value};
use crate::platform::PeerEvent;
use crate::web::routes::ResType;
use crate::web::state::WebState;
use crate::web::token::ACCESS;

/// The agent `platform.web`.
pub(crate) struct WebAgent {
    pub(crate) state: Arc<actix_web::web::Data<WebState>>,
}

#[volttron::agent]
impl WebAgent {
    /// Serves `endpoint` (an exact path) by the caller's `route.callback(env, data)`.
    #[rpc]
    fn register_endpoint(
        &mut self,
        caller: Caller,
        endpoint: String,
        res_type: Option<String>,
    ) -> Result<(), String> {
        let res = ResType::parse(res_type.as_deref())?;
        self.state
            .routes
            .register_endpoint(caller.identity(), &endpoint, res)
    }

    /// Serves the files under `root_dir` for request paths matching `regex`.
    #[rpc]
    fn register_path_route(&mut self, caller: Caller, regex: String, root_dir: String) -> Result<(), String> {
        self.state
            .routes
            .register_path(caller.identity(), &regex, &root_dir)
    }

    /// A WebSocket endpoint answered by the caller's `client.*` methods.
    #[rpc]
    fn register_websocket(&mut self, caller: Caller, endpoint: String) -> Result<(), String> {
        crate::web::routes::check_path(&endpoint)?;
        if self.state.hub.register(&endpoint, caller.identity()) {
            Ok(())
        } else {
            Err(format!("{endpoint} is registered by another agent"))
        }
    }

    /// Removes the caller's socket `endpoint`.
    #[rpc]
    fn unregister_websocket(&mut self, caller: Caller, endpoint: String) -> bool {
        self.state.hub.unregister(&endpoint, caller.identity())
    }

    /// Sends `message` (text; other values as JSON) to every client of `endpoint`.
    #[rpc]
    fn websocket_send(&mut self, caller: Caller, endpoint: String, message: Value) -> Result<usize, String> {
        if self.state.hub.owner(&endpoint).as_ref() != Some(caller.identity()) {
            return Err(format!("{endpoint} is not a socket of {}", caller.identity()));
        }
        let text = match message {
            Value::String(s) => s,
            other => serde_json::to_string(&other).map_err(|e| e.to_string())?,
        };
        Ok(self.state.hub.send(&endpoint, &text))
    }

    /// Removes every route and socket of the caller.
    #[rpc]
    fn unregister_all_agent_routes(&mut self, caller: Caller) -> usize {
        self.state.hub.forget_peer(caller.identity());
        self.state.routes.forget_peer(caller.identity())
    }

    /// The claims of an access token (`{}` if it is not a live one).
    #[rpc]
    fn get_user_claims(&mut self, bearer: String) -> Value {
        self.state
            .tokens
            .check(&bearer, ACCESS)
            .ok()
            .and_then(|c| crate::core::to_value(&c).ok())
            .unwrap_or_else(|| Value::Map(Default::default()))
    }

    /// Where the web service listens.
    #[rpc]
    fn get_bind_web_address(&mut self) -> String {
        self.state.address.clone()
    }

    /// The platform's public key.
    #[rpc]
    fn get_serverkey(&mut self) -> Value {
        self.state.discovery["serverkey"].clone()
    }

    /// Every agent route: `[kind, method, path, peer]`.
    #[rpc]
    fn list_routes(&mut self) -> Vec<(String, String, String, String)> {
        self.state.routes.list(&self.state)
    }

    #[on_peerlist]
    fn peer_changed(&mut self, event: &PeerEvent) {
        if let PeerEvent::Dropped(peer) = event {
            self.state.hub.forget_peer(peer);
            let n = self.state.routes.forget_peer(peer);
            if n > 0 {
                tracing::info!(
                    peer = peer.as_str(),
                    routes = n,
                    "web: routes of a departed agent removed"
                );
            }
        }
    }
}
