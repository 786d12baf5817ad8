//! Agents' routes: what the web service serves for agents, and how a request reaches them.
//!
//! | how an agent adds it | matched | the agent is asked | removed |
//! |----------------------|---------|--------------------|---------|
//! | `#[route(GET, "/hvac/summary")]` ([`crate::agent::route`]), in-process or bridged | method and exact path; a path ending in `/*` serves every path below it (the exact route wins, then the nearest) | its RPC `web.route GET /hvac/summary` with the [`WebRequest`] | when the agent leaves (the route is one of its exports) |
//! | VOLTTRON's `vip.web.register_endpoint(endpoint, callback, res_type)`: RPC `platform.web.register_endpoint(endpoint, res_type)` | exact path, any method | `route.callback(env, data)`, VOLTTRON's WSGI-style `env` and the body (parsed JSON for `application/json`, else text) | `unregister_all_agent_routes`, or when the agent leaves |
//! | `register_path_route(regex, root_dir)` (`vip.web.register_path`) | the regex on the path | nothing: files under `root_dir` (never outside it) | the same |
//! | `register_websocket(endpoint)` | exact path, WebSocket upgrade | `client.opened`, `client.message`, `client.closed` ([`crate::web::ws`]) | `unregister_websocket`, or when the agent leaves |
//!
//! Requests other than `GET` and `HEAD` need a valid token (any user's) when auth is on; the
//! agent sees the user in the request (`WebRequest::user`, `env["REMOTE_USER"]`). The token
//! and cookies themselves are never passed on. Paths of the service's own routes
//! (`/authenticate`, `/vui`, `/jsonrpc`, `/ws`, `/discovery`, `/openapi.json`, `/login`,
//! `/logout`, `/static`, `/`) cannot be registered.
//!
//! An endpoint's `res_type` decides how the callback's answer becomes a response, as in
//! VOLTTRON: `jsonrpc` (a value is JSON; `[content, headers]` or `[status, content,
//! headers]` set them; an error object with code -32001 is a 401), `raw` (`[status,
//! base64 body, headers]`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use parking_lot::RwLock;

use crate::agent::route::{ROUTE_PREFIX, WebRequest, WebResponse, rpc_name};
use crate::core::{Args, Identity, Map, Value};
use crate::web::error::WebError;
use crate::web::state::WebState;

/// How a registered endpoint's answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResType {
    JsonRpc,
    Raw,
}

impl ResType {
    pub(crate) fn parse(s: Option<&str>) -> Result<ResType, String> {
        match s.unwrap_or("jsonrpc") {
            "jsonrpc" | "endpoint" => Ok(ResType::JsonRpc),
            "raw" => Ok(ResType::Raw),
            other => Err(format!("unknown res_type {other:?}: expected jsonrpc or raw")),
        }
    }
}

struct PathRoute {
    regex: regex_lite::Regex,
    peer: Identity,
    root: PathBuf,
}

/// The routes agents registered (declared routes are read from the routing table).
#[derive(Default)]
pub(crate) struct RouteTable {
    endpoints: RwLock<HashMap<String, (Identity, ResType)>>,
    paths: RwLock<Vec<PathRoute>>,
}

/// Paths the service answers itself.
const RESERVED: &[&str] = &[
    "/authenticate",
    "/vui",
    "/jsonrpc",
    "/ws",
    "/discovery",
    "/openapi.json",
    "/login",
    "/logout",
    "/static",
    "/status.json",
];

pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(format!(
            "{path:?}: a route path starts with `/` and has no spaces"
        ));
    }
    if path == "/"
        || RESERVED
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}/")))
    {
        return Err(format!("{path:?} is one of the web service's own routes"));
    }
    Ok(())
}

impl RouteTable {
    pub(crate) fn register_endpoint(
        &self,
        peer: &Identity,
        endpoint: &str,
        res: ResType,
    ) -> Result<(), String> {
        check_path(endpoint)?;
        let mut endpoints = self.endpoints.write();
        match endpoints.get(endpoint) {
            Some((owner, _)) if owner != peer => Err(format!("{endpoint} is registered by {owner}")),
            _ => {
                endpoints.insert(endpoint.to_owned(), (peer.clone(), res));
                Ok(())
            }
        }
    }

    pub(crate) fn register_path(&self, peer: &Identity, regex: &str, root: &str) -> Result<(), String> {
        let re = regex_lite::Regex::new(regex).map_err(|e| format!("invalid regex {regex:?}: {e}"))?;
        let root = std::fs::canonicalize(root).map_err(|e| format!("{root}: {e}"))?;
        if !root.is_dir() || root == Path::new("/") {
            return Err(format!("{}: not a directory that can be served", root.display()));
        }
        self.paths.write().push(PathRoute {
            regex: re,
            peer: peer.clone(),
            root,
        });
        Ok(())
    }

    /// Removes every route of `peer`; how many.
    pub(crate) fn forget_peer(&self, peer: &Identity) -> usize {
        let mut n = 0;
        self.endpoints.write().retain(|_, (p, _)| {
            let keep = p != peer;
            n += usize::from(!keep);
            keep
        });
        self.paths.write().retain(|r| {
            let keep = r.peer != *peer;
            n += usize::from(!keep);
            keep
        });
        n
    }

    fn endpoint(&self, path: &str) -> Option<(Identity, ResType)> {
        self.endpoints.read().get(path).cloned()
    }

    fn file(&self, path: &str) -> Option<PathBuf> {
        let paths = self.paths.read();
        let route = paths.iter().find(|r| r.regex.is_match(path))?;
        Some(route.root.join(path.trim_start_matches('/')))
            .and_then(|p| std::fs::canonicalize(p).ok())
            .filter(|p| p.starts_with(&route.root) && p.is_file())
    }

    /// Every route, for `/vui/.../routes` and the status page: `(kind, method, path, peer)`.
    pub(crate) fn list(&self, state: &WebState) -> Vec<(String, String, String, String)> {
        let mut v: Vec<(String, String, String, String)> = state
            .endpoint
            .router
            .exported_methods(|n| n.starts_with(ROUTE_PREFIX))
            .into_iter()
            .filter_map(|(peer, name)| {
                let (m, p) = crate::agent::route::parse_rpc_name(&name)?;
                Some(("route".into(), m.to_owned(), p.to_owned(), peer.to_string()))
            })
            .collect();
        for (path, (peer, _)) in self.endpoints.read().iter() {
            v.push(("endpoint".into(), "*".into(), path.clone(), peer.to_string()));
        }
        for r in self.paths.read().iter() {
            v.push((
                "path".into(),
                "GET".into(),
                r.regex.to_string(),
                r.peer.to_string(),
            ));
        }
        v.sort();
        v
    }
}

/// Whether `req` is a WebSocket upgrade.
fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The request as an agent's route sees it.
fn web_request(req: &HttpRequest, body: &[u8], user: Option<String>) -> WebRequest {
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let name = name.as_str();
        if name == "authorization" || name == "cookie" {
            continue;
        }
        if let Ok(v) = value.to_str() {
            headers.insert(name.to_owned(), Value::from(v));
        }
    }
    WebRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
        user,
    }
}

/// VOLTTRON's `env` for `route.callback`.
fn wsgi_env(req: &HttpRequest, state: &WebState, user: Option<&str>) -> Map {
    let mut env = Map::new();
    let info = req.connection_info();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    env.insert("PATH_INFO".into(), Value::from(req.path()));
    env.insert("QUERY_STRING".into(), Value::from(req.query_string()));
    env.insert("REQUEST_METHOD".into(), Value::from(req.method().as_str()));
    env.insert(
        "SERVER_PROTOCOL".into(),
        Value::from(format!("{:?}", req.version())),
    );
    env.insert(
        "REMOTE_ADDR".into(),
        Value::from(req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()),
    );
    env.insert("CONTENT_TYPE".into(), Value::from(header("content-type")));
    env.insert("HTTP_HOST".into(), Value::from(info.host()));
    env.insert("HTTP_USER_AGENT".into(), Value::from(header("user-agent")));
    env.insert(
        "HTTP_ACCEPT_ENCODING".into(),
        Value::from(header("accept-encoding")),
    );
    env.insert(
        "SERVER_NAME".into(),
        Value::from(state.config.bind.addr.ip().to_string()),
    );
    env.insert("wsgi.url_scheme".into(), Value::from(info.scheme()));
    if let Some(user) = user {
        env.insert("REMOTE_USER".into(), Value::from(user));
    }
    env
}

/// Everything no built-in route matched: agents' routes and sockets, files, then 404.
pub(crate) async fn serve(
    state: web::Data<WebState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let path = req.path().to_owned();
    let safe = matches!(req.method().as_str(), "GET" | "HEAD");
    // Who sent it, if anyone did: agents see the user; changes need one.
    let user = match state.claims(&req) {
        Ok(c) => Some(c.sub),
        Err(_) if safe => None,
        Err(e) => {
            if state.auth_on() && is_agent_path(&state, &req, &path) {
                return Err(e);
            }
            None
        }
    };
    if is_upgrade(&req)
        && let Some(peer) = state.hub.owner(&path)
    {
        if state.auth_on() && user.is_none() {
            return Err(WebError::Unauthorized("a token is needed for this socket".into()));
        }
        return crate::web::ws::agent_socket(state, req, payload, path, peer).await;
    }
    // An upgrade's payload is the connection itself, which never ends: no body to read.
    let body = if is_upgrade(&req) {
        web::Bytes::new()
    } else {
        read_body(payload, state.config.max_body).await?
    };
    if let Some((peer, res)) = state.routes.endpoint(&path) {
        let env = wsgi_env(&req, &state, user.as_deref());
        let data = body_data(&req, &body);
        let reply = state
            .call(
                peer.as_str(),
                "route.callback",
                Args::new().arg(Value::Map(env)).arg(data),
            )
            .await?;
        return Ok(match res {
            ResType::JsonRpc => jsonrpc_response(reply),
            ResType::Raw => raw_response(reply)?,
        });
    }
    let method = req.method().as_str().to_owned();
    if let Some((name, peer, params)) = declared_route(&state, &method, &path) {
        let request = web_request(&req, &body, user);
        let args = if params.is_empty() {
            Args::new()
        } else {
            Args::new().arg(crate::core::to_value(&request).map_err(|e| WebError::Internal(e.to_string()))?)
        };
        let reply = state.call(peer.as_str(), &name, args).await?;
        let response = WebResponse::from_value(&reply).unwrap_or_else(|| WebResponse::json(200, &reply));
        return Ok(into_http(response));
    }
    if safe && let Some(file) = state.routes.file(&path) {
        return serve_file(&req, &file);
    }
    if safe
        && let Some(root) = &state.config.web_root
        && let Some(rest) = path.strip_prefix("/static/")
        && let Ok(file) = std::fs::canonicalize(root.join(rest))
        && let Ok(root) = std::fs::canonicalize(root)
        && file.starts_with(&root)
        && file.is_file()
    {
        return serve_file(&req, &file);
    }
    if state
        .endpoint
        .router
        .exported_methods(|n| is_route_for(n, &path))
        .is_empty()
    {
        Err(WebError::NotFound(format!("no route {path}")))
    } else {
        Ok(HttpResponse::MethodNotAllowed()
            .json(serde_json::json!({"error": format!("{method} is not allowed on {path}")})))
    }
}

fn is_route_for(name: &str, path: &str) -> bool {
    crate::agent::route::parse_rpc_name(name).is_some_and(|(_, p)| p == path || wildcard_covers(p, path))
}

/// Whether declared route `route` ending in `/*` covers `path` (one level or more below).
fn wildcard_covers(route: &str, path: &str) -> bool {
    route
        .strip_suffix('*')
        .is_some_and(|base| base.ends_with('/') && path.len() > base.len() && path.starts_with(base))
}

/// The declared route serving `method path`: the exact path, else the nearest
/// `<ancestor>/*` (`/api/v1/simulation/*` serves `/api/v1/simulation/abc` and deeper).
/// Its RPC name, exporter and parameters.
fn declared_route(state: &WebState, method: &str, path: &str) -> Option<(String, Identity, Vec<String>)> {
    let exact = rpc_name(method, path);
    if let Some((peer, params)) = state.endpoint.router.exporters(&exact).into_iter().next() {
        return Some((exact, peer, params));
    }
    let mut base = path.trim_end_matches('/');
    while let Some(i) = base.rfind('/') {
        base = &base[..i];
        let name = rpc_name(method, &format!("{base}/*"));
        if let Some((peer, params)) = state.endpoint.router.exporters(&name).into_iter().next() {
            return Some((name, peer, params));
        }
    }
    None
}

fn is_agent_path(state: &WebState, req: &HttpRequest, path: &str) -> bool {
    state.routes.endpoint(path).is_some()
        || state.hub.owner(path).is_some()
        || declared_route(state, req.method().as_str(), path).is_some()
}

/// Reads the body, refusing more than `max` bytes.
async fn read_body(mut payload: web::Payload, max: usize) -> Result<web::Bytes, WebError> {
    use futures::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| WebError::BadRequest(e.to_string()))?;
        if body.len() + chunk.len() > max {
            return Err(WebError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn body_data(req: &HttpRequest, body: &[u8]) -> Value {
    let json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if json && let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v;
    }
    Value::from(String::from_utf8_lossy(body).into_owned())
}

fn serve_file(req: &HttpRequest, file: &Path) -> Result<HttpResponse, WebError> {
    let named = actix_files::NamedFile::open(file).map_err(|e| WebError::NotFound(e.to_string()))?;
    Ok(named.into_response(req))
}

pub(crate) fn into_http(r: WebResponse) -> HttpResponse {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (k, v) in &r.headers {
        out.append_header((k.as_str(), v.as_str()));
    }
    out.body(r.body)
}

fn status_of(v: &Value) -> Option<u16> {
    match v {
        Value::Int(i) => u16::try_from(*i).ok(),
        Value::String(s) => s.split_whitespace().next()?.parse().ok(),
        _ => None,
    }
}

fn headers_of(v: &Value) -> Vec<(String, String)> {
    v.as_list()
        .map(|l| {
            l.iter()
                .filter_map(|h| {
                    let pair = h.as_list()?;
                    Some((
                        pair.first()?.as_str()?.to_owned(),
                        pair.get(1)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn content_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Bytes(b) => b.clone(),
        other => serde_json::to_vec(other).unwrap_or_default(),
    }
}

/// VOLTTRON's `create_response` for `jsonrpc` endpoints.
fn jsonrpc_response(reply: Value) -> HttpResponse {
    if let Value::Map(m) = &reply
        && let Some(error) = m.get("error").and_then(Value::as_map)
        && error.get("code").and_then(Value::as_i64) == Some(crate::core::jsonrpc::UNAUTHORIZED)
    {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Unauthorized");
        return HttpResponse::Unauthorized().json(serde_json::json!({"error": message}));
    }
    if let Value::List(items) = &reply {
        match items.as_slice() {
            [content, headers] => {
                return into_http(WebResponse {
                    status: 200,
                    headers: headers_of(headers),
                    body: content_bytes(content),
                });
            }
            [status, content, headers] if status_of(status).is_some() => {
                return into_http(WebResponse {
                    status: status_of(status).unwrap_or(200),
                    headers: headers_of(headers),
                    body: content_bytes(content),
                });
            }
            _ => {}
        }
    }
    into_http(WebResponse::json(200, &reply))
}

/// VOLTTRON's `create_raw_response`: `[status, base64 body, headers]`.
fn raw_response(reply: Value) -> Result<HttpResponse, WebError> {
    let bad = || WebError::Internal("the agent's raw response is not [status, base64 body, headers]".into());
    let items = reply.as_list().ok_or_else(bad)?;
    let status = items.first().and_then(status_of).ok_or_else(bad)?;
    let body = match items.get(1) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| bad())?,
        Some(Value::Bytes(b)) => b.clone(),
        Some(_) => return Err(bad()),
    };
    Ok(into_http(WebResponse {
        status,
        headers: items.get(2).map(headers_of).unwrap_or_default(),
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_paths_cannot_be_registered() {
        assert!(check_path("/hvac").is_ok());
        assert!(check_path("/vui/x").is_err());
        assert!(check_path("/vuix").is_ok());
        assert!(check_path("/").is_err());
        assert!(check_path("nope").is_err());
        assert!(check_path("/authenticate").is_err());
    }

    #[test]
    fn endpoints_belong_to_one_peer_and_leave_with_it() {
        let t = RouteTable::default();
        let a = Identity::new("a").unwrap();
        let b = Identity::new("b").unwrap();
        t.register_endpoint(&a, "/x", ResType::JsonRpc).unwrap();
        assert!(t.register_endpoint(&b, "/x", ResType::Raw).is_err());
        assert_eq!(t.endpoint("/x").unwrap().0, a);
        assert_eq!(t.forget_peer(&a), 1);
        assert!(t.endpoint("/x").is_none());
    }

    #[test]
    fn volttron_responses_convert() {
        let r = jsonrpc_response(Value::from(3));
        assert_eq!(r.status(), 200);
        let r = jsonrpc_response(Value::List(vec![
            Value::from("201 Created"),
            Value::from("made"),
            Value::List(vec![Value::List(vec![
                Value::from("Content-Type"),
                Value::from("text/plain"),
            ])]),
        ]));
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers().get("content-type").unwrap(), "text/plain");
        let mut err = Map::new();
        let mut e = Map::new();
        e.insert("code".into(), Value::from(-32001));
        e.insert("message".into(), Value::from("no"));
        err.insert("error".into(), Value::Map(e));
        assert_eq!(jsonrpc_response(Value::Map(err)).status(), 401);
        let raw = raw_response(Value::List(vec![
            Value::from(202),
            Value::from("aGk="),
            Value::List(vec![]),
        ]))
        .unwrap();
        assert_eq!(raw.status(), 202);
        assert!(raw_response(Value::from(1)).is_err());
    }
}
