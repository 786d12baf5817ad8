//! VOLTTRON 9's REST API (the "VUI" API) under `/vui/`, with VOLTTRON's paths and JSON
//! shapes. Every route needs the `vui` capability; changing an agent or its configuration
//! needs `admin`; an RPC call also passes the `rpc-allow-list` and `authz.json`.
//!
//! | route | method | answer |
//! |-------|--------|--------|
//! | `/vui/` | GET | `{"links": {"platforms": "/vui/platforms"}}` |
//! | `/vui/platforms` | GET | `{"links": {"<instance>": "/vui/platforms/<instance>"}}` |
//! | `/vui/platforms/:p` | GET | `{"links": {"agents", "pubsub", "status"}}` |
//! | `/vui/platforms/:p/agents` | GET | `{"links": {"<identity>": ...}}`; `?agent-state=running` (default) or `installed`, `?include-hidden=true` adds peers that are not installed agents |
//! | `/vui/platforms/:p/agents/:id` | GET | `{"links": {"configs", "enabled", "health", "rpc", "running", "status", "tag"}}` (what applies) |
//! | `.../agents/:id/running` | GET, PUT (`?restart=true`), DELETE | `{"running": bool}`; start (400 if running), restart; stop: `204` |
//! | `.../agents/:id/status` | GET | the agent's entry of the platform status |
//! | `.../agents/:id/health` | GET | its entry of `platform.health` (`status`, `context`, `last_heartbeat`, ...) |
//! | `.../agents/:id/enabled` | GET, PUT (`?priority=NN`), DELETE | `{"status": bool, "priority": n}`; enable, disable: `204` |
//! | `.../agents/:id/tag` | GET, PUT (`{"tag": "x"}`), DELETE | `{"tag": "x"}`; set, clear: `204` |
//! | `.../agents/:id/configs` | GET, POST (`?config-name=n`) | `{"links": {"<name>": ...}}`; create (body as `application/json`, `text/csv` or `text/plain`): `201` with `Location`, `409` if it exists |
//! | `.../agents/:id/configs/:name` | GET, PUT, DELETE | the stored text; replace, delete: `204` |
//! | `.../agents/:id/rpc` | GET | `{"links": {"<method>": ...}}` |
//! | `.../agents/:id/rpc/:method` | GET, POST | `<method>.inspect`; the call's result (a JSON object gives keyword arguments, its `"args"` list positional ones; a JSON array positional ones) |
//! | `/vui/platforms/:p/status` | GET | `{"<identity>": {"name","uuid","tag","priority","running","enabled","pid","exit_code"}}` |
//! | `/vui/platforms/:p/pubsub` | GET | `{"<subscription>": ["<peer>", ...]}`: the platform's subscriptions |
//! | `/vui/platforms/:p/pubsub/:topic` | PUT (`{"message", "headers"}`), GET (WebSocket) | `{"number_of_subscribers": n}`; a stream of the messages published under `topic` |
//!
//! Differences from VOLTTRON: an unknown platform, agent or configuration is `404` (VOLTTRON
//! answers 400); `health` is served (inactive in VOLTTRON 9). A config store route's
//! identity that is not a valid identity, a name or data the store refuses, and a tag the
//! control service refuses are `400`.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::core::{Args, Map, RpcError, Value};
use crate::services::control::AgentRecord;
use crate::web::error::WebError;
use crate::web::state::{ADMIN, VUI, WebState};

const CONTROL: &str = crate::services::control::IDENTITY;
const STORE: &str = crate::services::config_store::IDENTITY;
const HEALTH: &str = crate::services::health::IDENTITY;

fn links(base: &str, names: impl IntoIterator<Item = impl AsRef<str>>) -> HttpResponse {
    let base = base.trim_end_matches('/');
    let m: serde_json::Map<String, serde_json::Value> = names
        .into_iter()
        .map(|n| {
            let n = n.as_ref();
            (n.to_owned(), serde_json::Value::from(format!("{base}/{n}")))
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "links": m }))
}

fn json(v: &Value) -> HttpResponse {
    HttpResponse::Ok().json(v)
}

fn platform(state: &WebState, p: &str) -> Result<(), WebError> {
    if p == state.platform.instance_name() {
        Ok(())
    } else {
        Err(WebError::NotFound(format!("Unknown platform: {p}")))
    }
}

/// `GET /vui/`.
pub(crate) async fn root(state: web::Data<WebState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    Ok(links("/vui", ["platforms"]))
}

/// `GET /vui/platforms`.
pub(crate) async fn platforms(
    state: web::Data<WebState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    Ok(links("/vui/platforms", [state.platform.instance_name()]))
}

/// `GET /vui/platforms/:p`.
pub(crate) async fn platform_links(
    state: web::Data<WebState>,
    req: HttpRequest,
    p: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    platform(&state, &p)?;
    Ok(links(
        &format!("/vui/platforms/{p}"),
        ["agents", "pubsub", "status"],
    ))
}

/// The installed agents (empty without a control service).
async fn installed(state: &WebState) -> Result<Vec<AgentRecord>, WebError> {
    if !state.endpoint.router.is_connected(CONTROL) {
        return Ok(Vec::new());
    }
    let v = state.call(CONTROL, "status_agents", Args::new()).await?;
    crate::core::from_value(v).map_err(|e| WebError::Internal(e.to_string()))
}

#[derive(Deserialize)]
pub(crate) struct AgentsQuery {
    #[serde(rename = "agent-state")]
    agent_state: Option<String>,
    #[serde(rename = "include-hidden")]
    include_hidden: Option<String>,
}

/// `GET /vui/platforms/:p/agents`.
pub(crate) async fn agents(
    state: web::Data<WebState>,
    req: HttpRequest,
    p: web::Path<String>,
    q: web::Query<AgentsQuery>,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    platform(&state, &p)?;
    let records = installed(&state).await?;
    let peers = state.platform.peers();
    let hidden = q
        .include_hidden
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case("true"))
        || !state.endpoint.router.is_connected(CONTROL);
    let mut names: Vec<String> = match q.agent_state.as_deref().unwrap_or("running") {
        "running" => records
            .iter()
            .filter(|r| peers.iter().any(|p| p.as_str() == r.identity))
            .map(|r| r.identity.clone())
            .collect(),
        "installed" => records.iter().map(|r| r.identity.clone()).collect(),
        other => {
            return Err(WebError::BadRequest(format!(
                "agent-state must be running or installed, not {other:?}"
            )));
        }
    };
    if hidden {
        for peer in &peers {
            if !names.iter().any(|n| n == peer.as_str()) {
                names.push(peer.to_string());
            }
        }
    }
    names.sort();
    Ok(links(&format!("/vui/platforms/{p}/agents"), names))
}

/// What is known of one agent: its install record, and whether it is connected.
async fn agent(state: &WebState, id: &str) -> Result<(Option<AgentRecord>, bool), WebError> {
    let record = installed(state).await?.into_iter().find(|r| r.identity == id);
    let connected = state.endpoint.router.is_connected(id);
    if record.is_none() && !connected {
        return Err(WebError::NotFound(format!("Agent \"{id}\" not found.")));
    }
    Ok((record, connected))
}

/// `GET /vui/platforms/:p/agents/:id`.
pub(crate) async fn agent_links(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    let (p, id) = path.into_inner();
    platform(&state, &p)?;
    let (record, connected) = agent(&state, &id).await?;
    let mut names = vec!["configs", "health", "status"];
    if connected {
        names.push("rpc");
    }
    if record.is_some() {
        names.extend(["enabled", "running", "tag"]);
    }
    names.sort_unstable();
    Ok(links(&format!("/vui/platforms/{p}/agents/{id}"), names))
}

#[derive(Deserialize)]
pub(crate) struct RunningQuery {
    restart: Option<String>,
}

/// `/vui/platforms/:p/agents/:id/running`.
pub(crate) async fn running(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<RunningQuery>,
) -> Result<HttpResponse, WebError> {
    let (p, id) = path.into_inner();
    let method = req.method().clone();
    if method == actix_web::http::Method::GET {
        state.require(&req, VUI)?;
    } else {
        state.require(&req, ADMIN)?;
    }
    platform(&state, &p)?;
    let (record, connected) = agent(&state, &id).await?;
    match method.as_str() {
        "GET" => Ok(HttpResponse::Ok().json(serde_json::json!({"running": connected}))),
        _ if record.is_none() => Err(WebError::BadRequest(format!(
            "Agent \"{id}\" is not an installed agent: it cannot be started or stopped here"
        ))),
        "PUT" => {
            if q.restart
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("true"))
            {
                state
                    .call(CONTROL, "restart_agent", Args::new().arg(id.as_str()))
                    .await?;
            } else if record.as_ref().is_some_and(|r| r.pid.is_some()) {
                return Err(WebError::BadRequest(format!("Agent: {id} is already running.")));
            } else {
                state
                    .call(CONTROL, "start_agent", Args::new().arg(id.as_str()))
                    .await?;
            }
            Ok(HttpResponse::NoContent().finish())
        }
        "DELETE" => {
            state
                .call(CONTROL, "stop_agent", Args::new().arg(id.as_str()))
                .await?;
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Ok(HttpResponse::MethodNotAllowed().finish()),
    }
}

fn status_entry(r: &AgentRecord, connected: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(r.name.as_str()));
    m.insert("uuid".into(), Value::from(r.uuid.as_str()));
    m.insert("tag".into(), Value::from(r.tag.clone()));
    m.insert("priority".into(), Value::from(r.priority.map(|p| p.to_string())));
    m.insert("running".into(), Value::from(r.pid.is_some() || connected));
    m.insert("enabled".into(), Value::from(r.autostart));
    m.insert("pid".into(), Value::from(r.pid.map(i64::from)));
    m.insert("exit_code".into(), Value::from(r.last_exit.clone()));
    m.insert("status".into(), Value::from(r.status_text()));
    Value::Map(m)
}

fn peer_entry(connected: bool) -> Value {
    let mut m = Map::new();
    for k in ["name", "uuid", "tag", "priority", "pid", "exit_code"] {
        m.insert(k.into(), Value::Null);
    }
    m.insert("running".into(), Value::from(connected));
    m.insert("enabled".into(), Value::from(false));
    m.insert("status".into(), Value::from("connected"));
    Value::Map(m)
}

/// `GET /vui/platforms/:p/status`.
pub(crate) async fn platform_status(
    state: web::Data<WebState>,
    req: HttpRequest,
    p: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    platform(&state, &p)?;
    let mut m = Map::new();
    for r in installed(&state).await? {
        let connected = state.endpoint.router.is_connected(&r.identity);
        m.insert(r.identity.clone(), status_entry(&r, connected));
    }
    for peer in state.platform.peers() {
        m.entry(peer.to_string()).or_insert_with(|| peer_entry(true));
    }
    Ok(json(&Value::Map(m)))
}

/// `GET /vui/platforms/:p/agents/:id/status`.
pub(crate) async fn agent_status(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    let (p, id) = path.into_inner();
    platform(&state, &p)?;
    let (record, connected) = agent(&state, &id).await?;
    Ok(json(&match record {
        Some(r) => status_entry(&r, connected),
        None => peer_entry(connected),
    }))
}

/// `GET /vui/platforms/:p/agents/:id/health`.
pub(crate) async fn agent_health(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    let (p, id) = path.into_inner();
    platform(&state, &p)?;
    agent(&state, &id).await?;
    let all = state.call(HEALTH, "get_platform_health", Args::new()).await?;
    Ok(json(all.get(&id).unwrap_or(&Value::Null)))
}

/// `vui` to read (`GET`), `admin` to change.
fn require_for_method(state: &WebState, req: &HttpRequest) -> Result<(), WebError> {
    let get = req.method() == actix_web::http::Method::GET;
    state.require(req, if get { VUI } else { ADMIN }).map(drop)
}

/// The prologue of an installed agent's route: the capability for the method, the
/// platform, and the agent's install record (`404` if it is not installed).
async fn installed_agent(
    state: &WebState,
    req: &HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<(String, AgentRecord), WebError> {
    let (p, id) = path.into_inner();
    require_for_method(state, req)?;
    platform(state, &p)?;
    let (record, _) = agent(state, &id).await?;
    let record = record.ok_or_else(|| WebError::NotFound(format!("Agent \"{id}\" is not installed.")))?;
    Ok((id, record))
}

#[derive(Deserialize)]
pub(crate) struct PriorityQuery {
    priority: Option<String>,
}

/// `/vui/platforms/:p/agents/:id/enabled`.
pub(crate) async fn enabled(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<PriorityQuery>,
) -> Result<HttpResponse, WebError> {
    let (id, record) = installed_agent(&state, &req, path).await?;
    match req.method().as_str() {
        "GET" => Ok(HttpResponse::Ok()
            .json(serde_json::json!({"status": record.autostart, "priority": record.priority}))),
        "PUT" => {
            let text = q.priority.clone().unwrap_or_else(|| "50".into());
            let priority: u32 = text.parse().ok().filter(|p| *p <= 99).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "Priority must be an integer from 0 - 99. Received: {text}"
                ))
            })?;
            state
                .call(
                    CONTROL,
                    "enable_agent",
                    Args::new().arg(id.as_str()).arg(priority),
                )
                .await?;
            Ok(HttpResponse::NoContent().finish())
        }
        "DELETE" => {
            state
                .call(CONTROL, "disable_agent", Args::new().arg(id.as_str()))
                .await?;
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Ok(HttpResponse::MethodNotAllowed().finish()),
    }
}

/// `/vui/platforms/:p/agents/:id/tag`.
pub(crate) async fn tag(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (id, record) = installed_agent(&state, &req, path).await?;
    match req.method().as_str() {
        "GET" => Ok(HttpResponse::Ok().json(serde_json::json!({"tag": record.tag}))),
        "PUT" => {
            let v = json_body(&body)?;
            let tag = v
                .get("tag")
                .and_then(|t| t.as_str())
                .ok_or_else(|| WebError::BadRequest("expected {\"tag\": \"...\"}".into()))?
                .to_owned();
            state
                .call(CONTROL, "tag_agent", Args::new().arg(id.as_str()).arg(tag))
                .await
                .map_err(|e| match e {
                    // The control service's refusal of the tag (a control character, too long).
                    RpcError::Remote { ref message, .. } if message.contains("invalid tag") => {
                        WebError::BadRequest(message.clone())
                    }
                    e => WebError::Rpc(e),
                })?;
            Ok(HttpResponse::NoContent().finish())
        }
        "DELETE" => {
            state
                .call(
                    CONTROL,
                    "tag_agent",
                    Args::new().arg(id.as_str()).arg(Value::Null),
                )
                .await?;
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Ok(HttpResponse::MethodNotAllowed().finish()),
    }
}

/// A JSON body, or 400.
pub(crate) fn json_body(body: &[u8]) -> Result<serde_json::Value, WebError> {
    serde_json::from_slice(body).map_err(|e| WebError::BadRequest(format!("malformed JSON: {e}")))
}

/// The configuration type of a body, by its content type.
fn config_type(req: &HttpRequest) -> Result<&'static str, WebError> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        Ok("json")
    } else if ct.starts_with("text/csv") {
        Ok("csv")
    } else if ct.starts_with("text/plain") {
        Ok("raw")
    } else {
        Err(WebError::BadRequest(
            "The configuration type can only be 'JSON', 'CSV' and 'RAW.' (send application/json, text/csv or text/plain)".into(),
        ))
    }
}

fn config_text(kind: &str, body: &[u8]) -> Result<String, WebError> {
    let text = std::str::from_utf8(body).map_err(|_| WebError::BadRequest("the body is not UTF-8".into()))?;
    if kind == "json" {
        json_body(body)?;
    }
    Ok(text.to_owned())
}

/// The config store's refusal as an answer: no such configuration `404`; a request it
/// rejects (an invalid name, data that does not parse as its type, a reference cycle)
/// `400`; anything else (its I/O) as any RPC error.
fn store_error(e: RpcError, id: &str, name: &str) -> WebError {
    let text = e.to_string();
    if text.contains("not found") || text.contains("No such") || text.contains("no configuration") {
        WebError::NotFound(format!("No configuration \"{name}\" for agent \"{id}\""))
    } else if text.contains("invalid configuration name")
        || text.contains("is not valid")
        || text.contains("recursive configuration references")
    {
        WebError::BadRequest(text)
    } else {
        WebError::Rpc(e)
    }
}

/// Stores `text` as `name` of `id`'s configuration store, of type `kind`.
async fn store_config(
    state: &WebState,
    id: &str,
    name: &str,
    text: String,
    kind: &str,
) -> Result<(), WebError> {
    state
        .call(
            STORE,
            "set_config",
            Args::new().arg(id).arg(name).arg(text).arg(kind),
        )
        .await
        .map(drop)
        .map_err(|e| store_error(e, id, name))
}

/// The identity of a config store route: `400` unless it is a valid identity (the store
/// would refuse it).
fn store_identity(id: &str) -> Result<(), WebError> {
    crate::core::Identity::new(id)
        .map(drop)
        .map_err(|e| WebError::BadRequest(e.to_string()))
}

/// `text` percent-encoded as one path segment (a header value must be visible ASCII).
fn segment(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

#[derive(Deserialize)]
pub(crate) struct ConfigQuery {
    #[serde(rename = "config-name")]
    config_name: Option<String>,
}

/// `/vui/platforms/:p/agents/:id/configs`.
pub(crate) async fn configs(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<ConfigQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (p, id) = path.into_inner();
    require_for_method(&state, &req)?;
    platform(&state, &p)?;
    store_identity(&id)?;
    if req.method() == actix_web::http::Method::GET {
        let names: Vec<String> = if id == "-" {
            let v = state.call(STORE, "list_stores", Args::new()).await?;
            return Ok(json(&v));
        } else {
            crate::core::from_value(
                state
                    .call(STORE, "list_configs", Args::new().arg(id.as_str()))
                    .await?,
            )
            .map_err(|e| WebError::Internal(e.to_string()))?
        };
        return Ok(links(&format!("/vui/platforms/{p}/agents/{id}/configs"), names));
    }
    if req.method() != actix_web::http::Method::POST {
        return Ok(HttpResponse::MethodNotAllowed().finish());
    }
    let name = q
        .config_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| WebError::BadRequest("POST needs ?config-name=<name>".into()))?;
    let kind = config_type(&req)?;
    let text = config_text(kind, &body)?;
    let existing: Vec<String> = crate::core::from_value(
        state
            .call(STORE, "list_configs", Args::new().arg(id.as_str()))
            .await?,
    )
    .unwrap_or_default();
    if existing.contains(&name) {
        return Err(WebError::Conflict(format!(
            "Configuration: \"{name}\" already exists for agent: \"{id}\""
        )));
    }
    store_config(&state, &id, &name, text, kind).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!(
                "/vui/platforms/{}/agents/{id}/configs/{}",
                segment(&p),
                segment(&name)
            ),
        ))
        .finish())
}

/// `/vui/platforms/:p/agents/:id/configs/:name`.
pub(crate) async fn config(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (p, id, name) = path.into_inner();
    require_for_method(&state, &req)?;
    platform(&state, &p)?;
    store_identity(&id)?;
    match req.method().as_str() {
        "GET" => {
            let v = state
                .call(
                    STORE,
                    "get_config",
                    Args::new().arg(id.as_str()).arg(name.as_str()),
                )
                .await
                .map_err(|e| store_error(e, &id, &name))?;
            let text = v.as_str().unwrap_or_default().to_owned();
            let json = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            Ok(HttpResponse::Ok()
                .content_type(if json {
                    ContentType::json()
                } else {
                    ContentType::plaintext()
                })
                .body(text))
        }
        "PUT" => {
            let kind = config_type(&req)?;
            let text = config_text(kind, &body)?;
            store_config(&state, &id, &name, text, kind).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        "DELETE" => {
            state
                .call(
                    STORE,
                    "delete_config",
                    Args::new().arg(id.as_str()).arg(name.as_str()),
                )
                .await
                .map_err(|e| store_error(e, &id, &name))?;
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Ok(HttpResponse::MethodNotAllowed().finish()),
    }
}

/// `GET /vui/platforms/:p/agents/:id/rpc`: the methods the user may call.
pub(crate) async fn rpc_methods(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let claims = state.require(&req, VUI)?;
    let (p, id) = path.into_inner();
    platform(&state, &p)?;
    let v = state.call(&id, "inspect", Args::new()).await?;
    let names: Vec<String> = v
        .get("methods")
        .and_then(Value::as_list)
        .map(|l| {
            l.iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .filter(|m| state.check_call(&claims, &id, m).is_ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(links(&format!("/vui/platforms/{p}/agents/{id}/rpc"), names))
}

/// `/vui/platforms/:p/agents/:id/rpc/:method`: `GET` inspects, `POST` calls.
pub(crate) async fn rpc_call(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let claims = state.require(&req, VUI)?;
    let (p, id, method) = path.into_inner();
    platform(&state, &p)?;
    state.check_call(&claims, &id, &method)?;
    if req.method() == actix_web::http::Method::GET {
        let v = state.call(&id, &format!("{method}.inspect"), Args::new()).await?;
        return Ok(json(&v));
    }
    let args = if body.iter().all(u8::is_ascii_whitespace) {
        Args::new()
    } else {
        args_of(json_body(&body)?)?
    };
    let v = state.call(&id, &method, args).await?;
    Ok(json(&v))
}

/// VOLTTRON's rule: an object is keyword arguments (its `"args"` list positional ones), an
/// array positional arguments.
fn args_of(v: serde_json::Value) -> Result<Args, WebError> {
    let value = |j: serde_json::Value| -> Result<Value, WebError> {
        serde_json::from_value(j).map_err(|e| WebError::BadRequest(e.to_string()))
    };
    match v {
        serde_json::Value::Array(items) => {
            let mut a = Args::new();
            for i in items {
                a = a.arg(value(i)?);
            }
            Ok(a)
        }
        serde_json::Value::Object(mut m) => {
            let mut a = Args::new();
            match m.remove("args") {
                None => {}
                Some(serde_json::Value::Array(items)) => {
                    for i in items {
                        a = a.arg(value(i)?);
                    }
                }
                Some(_) => return Err(WebError::BadRequest("\"args\" must be a list".into())),
            }
            for (k, v) in m {
                a = a.kwarg(k, value(v)?);
            }
            Ok(a)
        }
        _ => Err(WebError::BadRequest(
            "the arguments must be a JSON object (keyword arguments) or array (positional)".into(),
        )),
    }
}

/// `GET /vui/platforms/:p/pubsub`.
pub(crate) async fn pubsub(
    state: web::Data<WebState>,
    req: HttpRequest,
    p: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    state.require(&req, VUI)?;
    platform(&state, &p)?;
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for s in state.platform.subscriptions("") {
        m.entry(s.subscription).or_default().push(s.peer.to_string());
    }
    Ok(HttpResponse::Ok().json(m))
}

/// `/vui/platforms/:p/pubsub/:topic`: `PUT` publishes; `GET` opens a WebSocket.
pub(crate) async fn pubsub_topic(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let claims = state.require(&req, VUI)?;
    let (p, topic) = path.into_inner();
    platform(&state, &p)?;
    match req.method().as_str() {
        "GET" => {
            if req.headers().get("upgrade").is_none() {
                return Err(WebError::BadRequest(
                    "GET on a topic opens a WebSocket: send `Upgrade: websocket`".into(),
                ));
            }
            crate::web::ws::topic_stream(state, req, payload, claims, topic).await
        }
        "PUT" => {
            let body = payload
                .to_bytes_limited(state.config.max_body)
                .await
                .map_err(|_| WebError::TooLarge(state.config.max_body))?
                .map_err(|e| WebError::BadRequest(e.to_string()))?;
            let v = json_body(&body)?;
            if !v.is_object() {
                return Err(WebError::BadRequest(
                    "expected {\"message\": ..., \"headers\": {...}}".into(),
                ));
            }
            let message: Value = serde_json::from_value(v.get("message").cloned().unwrap_or_default())
                .map_err(|e| WebError::BadRequest(e.to_string()))?;
            let headers = match v.get("headers") {
                None | Some(serde_json::Value::Null) => Map::new(),
                Some(h @ serde_json::Value::Object(_)) => {
                    serde_json::from_value(h.clone()).map_err(|e| WebError::BadRequest(e.to_string()))?
                }
                Some(_) => return Err(WebError::BadRequest("headers must be an object".into())),
            };
            let n = crate::web::ws::publish(&state, &claims, &topic, headers, message)?;
            Ok(HttpResponse::Ok().json(serde_json::json!({"number_of_subscribers": n})))
        }
        _ => Ok(HttpResponse::MethodNotAllowed().finish()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_bodies_follow_volttron() {
        let a = args_of(serde_json::json!({"args": [1, 2], "k": 3})).unwrap();
        assert_eq!(a.positional, vec![Value::from(1), Value::from(2)]);
        assert_eq!(a.named["k"], Value::from(3));
        let b = args_of(serde_json::json!([true])).unwrap();
        assert_eq!(b.positional, vec![Value::from(true)]);
        assert!(args_of(serde_json::json!(3)).is_err());
        assert!(args_of(serde_json::json!({"args": 1})).is_err());
    }
}
