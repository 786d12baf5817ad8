//! What every request handler shares: the platform, the tokens, the users file, the agents'
//! routes; and how a request proves who sent it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix_web::HttpRequest;
use parking_lot::Mutex;

use crate::auth::Authority;
use crate::auth::authz::TopicAccess;
use crate::auth::pending::FailureTracker;
use crate::core::{Args, RpcError, Value};
use crate::platform::Platform;
use crate::platform::endpoint::Endpoint;
use crate::web::config::{RpcAllowList, WebConfig};
use crate::web::error::WebError;
use crate::web::routes::RouteTable;
use crate::web::token::{ACCESS, Claims, Tokens};
use crate::web::users::WebUsers;
use crate::web::ws::WsHub;

/// The identity the web service has on the bus, as VOLTTRON 11's.
pub const IDENTITY: &str = "platform.web";

/// The capability that opens VOLTTRON's REST API (`/vui/`), JSON-RPC and WebSockets.
pub const VUI: &str = "vui";
/// The capability that adds agent control and configuration writes (and holds every other).
pub const ADMIN: &str = "admin";

/// Shared by the handlers.
pub(crate) struct WebState {
    pub(crate) platform: Platform,
    /// Sends as `platform.web`; not re-checked against `authz.json` (the handlers check the
    /// user's capabilities first).
    pub(crate) endpoint: Endpoint,
    pub(crate) authority: Option<Arc<Authority>>,
    pub(crate) config: WebConfig,
    pub(crate) users_file: Option<PathBuf>,
    pub(crate) tokens: Tokens,
    pub(crate) failures: Mutex<FailureTracker>,
    pub(crate) routes: RouteTable,
    pub(crate) hub: WsHub,
    /// `/discovery/`'s answer.
    pub(crate) discovery: Value,
    /// The address served, with the port bound.
    pub(crate) address: String,
    /// What the host plugged in ([`WebService::endpoint`](super::WebService::endpoint)).
    pub(crate) endpoints: Vec<super::endpoint::PluggedEndpoint>,
}

/// Where a request's token came from.
enum Source {
    Header,
    Cookie,
    Query,
}

impl WebState {
    /// Whether requests must carry a token (the platform's `auth`).
    pub(crate) fn auth_on(&self) -> bool {
        self.authority.is_some()
    }

    /// The users file, read now.
    pub(crate) fn users(&self) -> Result<WebUsers, WebError> {
        match &self.users_file {
            Some(path) => WebUsers::load(path).map_err(|e| WebError::Internal(e.to_string())),
            None => {
                WebUsers::load("/nonexistent/web-users.json").map_err(|e| WebError::Internal(e.to_string()))
            }
        }
    }

    /// The access token's claims of `req`: from `Authorization: Bearer`, or (for `GET`s,
    /// which change nothing, and WebSocket upgrades) VOLTTRON's `Bearer` cookie or an
    /// `access_token` query parameter. With auth off, an anonymous administrator.
    pub(crate) fn claims(&self, req: &HttpRequest) -> Result<Claims, WebError> {
        if !self.auth_on() {
            return Ok(Claims {
                sub: "anonymous".into(),
                groups: vec![ADMIN.into(), VUI.into()],
                iat: 0,
                nbf: 0,
                exp: u64::MAX,
                grant_type: ACCESS.into(),
                sid: String::new(),
            });
        }
        let (token, _source) = bearer(req).ok_or_else(|| {
            WebError::Unauthorized("no access token (send `Authorization: Bearer <token>`)".into())
        })?;
        self.tokens
            .check(&token, ACCESS)
            .map_err(|e| WebError::Unauthorized(e.to_string()))
    }

    /// [`claims`](Self::claims) holding `capability`, else 403.
    pub(crate) fn require(&self, req: &HttpRequest, capability: &str) -> Result<Claims, WebError> {
        let claims = self.claims(req)?;
        if claims.has(capability) {
            Ok(claims)
        } else {
            Err(WebError::needs(capability))
        }
    }

    /// Whether `claims` may call `peer`'s `method` over HTTP: the fixed deny list, the
    /// `rpc-allow-list` (without one, only `admin`s call), then `authz.json`'s method rules
    /// against the user's capabilities (which an `admin` holds all of).
    pub(crate) fn check_call(&self, claims: &Claims, peer: &str, method: &str) -> Result<(), WebError> {
        if RpcAllowList::denied(peer, method) {
            return Err(WebError::Forbidden(format!(
                "{peer}.{method} is not permitted over HTTP"
            )));
        }
        let allowed = match &self.config.rpc_allow_list {
            Some(list) => list.allows(self.platform.instance_name(), peer, method) || claims.has(ADMIN),
            None => claims.has(ADMIN),
        };
        if !allowed {
            return Err(WebError::Forbidden(format!(
                "{peer}.{method} is not in the web service's rpc-allow-list"
            )));
        }
        // `admin` holds every capability (see [`ADMIN`]).
        if let Some(authority) = &self.authority
            && !claims.has(ADMIN)
        {
            authority
                .authz()
                .check_call_with_capabilities(&claims.sub, &claims.groups, peer, method)
                .map_err(|e| WebError::Forbidden(e.to_string()))?;
        }
        Ok(())
    }

    /// Whether `claims` may publish to `topic` (or subscribe to it: `access`), by
    /// `authz.json`'s protected topics against the user's capabilities (an `admin` holds all).
    pub(crate) fn check_topic(
        &self,
        claims: &Claims,
        access: TopicAccess,
        topic: &str,
    ) -> Result<(), WebError> {
        if let Some(authority) = &self.authority
            && !claims.has(ADMIN)
        {
            authority
                .authz()
                .check_topic_with_capabilities(&claims.sub, &claims.groups, access, topic)
                .map_err(|e| WebError::Forbidden(e.to_string()))?;
        }
        Ok(())
    }

    /// Calls `peer`'s `method` as `platform.web`, with the platform's RPC deadline.
    pub(crate) async fn call(&self, peer: &str, method: &str, args: Args) -> Result<Value, RpcError> {
        self.endpoint.call(peer, method, args).await
    }

    /// [`call`](Self::call) as part of the HTTP request's trace (W3C `traceparent` and
    /// `tracestate` headers), if it carried a valid one.
    pub(crate) async fn call_traced(
        &self,
        peer: &str,
        method: &str,
        args: Args,
        trace: Option<crate::core::TraceContext>,
    ) -> Result<Value, RpcError> {
        self.endpoint.call(peer, method, args).trace(trace).await
    }

    /// The delay a login from `source` must wait before it is answered (failures count up).
    pub(crate) fn login_delay(&self, source: &str) -> std::time::Duration {
        self.failures.lock().delay(source, Instant::now())
    }

    pub(crate) fn login_failed(&self, source: &str) {
        self.failures.lock().record_failure(source, Instant::now());
    }

    pub(crate) fn login_succeeded(&self, source: &str) {
        self.failures.lock().record_success(source);
    }
}

/// The request's bearer token and where it was found.
fn bearer(req: &HttpRequest) -> Option<(String, Source)> {
    if let Some(value) = req.headers().get("authorization").and_then(|v| v.to_str().ok()) {
        let (kind, token) = value.trim().split_once(' ')?;
        return kind
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_owned(), Source::Header));
    }
    // Cookies and query parameters are sent by browsers without the page asking: accept
    // them only for requests that change nothing.
    if req.method() != actix_web::http::Method::GET {
        return None;
    }
    if let Some(cookie) = req.cookie("Bearer") {
        return Some((cookie.value().to_owned(), Source::Cookie));
    }
    crate::agent::route::WebRequest {
        query: req.query_string().to_owned(),
        ..Default::default()
    }
    .query_param("access_token")
    .map(|t| (t, Source::Query))
}

/// The token of `req` in its `Authorization` header (the refresh token of `PUT` and
/// `DELETE /authenticate`).
pub(crate) fn header_token(req: &HttpRequest) -> Option<String> {
    match bearer(req) {
        Some((t, Source::Header)) => Some(t),
        _ => None,
    }
}

/// The W3C trace context of an HTTP request's `traceparent` / `tracestate` headers; an
/// invalid one is ignored (a new trace, as W3C says), an invalid `tracestate` dropped.
pub(crate) fn http_trace(req: &actix_web::HttpRequest) -> Option<crate::core::TraceContext> {
    use crate::core::TraceContext;
    use crate::core::trace::{TRACEPARENT, TRACESTATE};
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let parent = header(TRACEPARENT)?;
    TraceContext::received(parent, header(TRACESTATE))
}
