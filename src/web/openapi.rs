//! The OpenAPI 3.0 document of every route the service answers itself, at `/openapi.json`:
//! each operation's parameters, request body, and every status it answers with its media
//! type and JSON schema. tests/web_openapi.rs checks that it lists exactly the routes of
//! the application, and runs schemathesis against a live server with it.

use actix_web::{HttpResponse, web};
use serde_json::{Value as Json, json};

use crate::web::state::WebState;

/// What a response's body is.
#[derive(Clone, Copy)]
enum Body {
    /// None (`201`, `204`, `303`, `101`).
    Empty,
    /// `application/json` of this JSON schema (its text).
    Json(&'static str),
    /// `application/json` or `text/plain` (a stored configuration).
    JsonOrText,
    /// `text/html`.
    Html,
}

/// A query parameter: name, JSON schema (its text), whether required, description.
type Query = (&'static str, &'static str, bool, &'static str);

/// One operation: method, path, summary, whether it needs a token, its query parameters,
/// its request body's media types and schema (if any), and its own answers (status,
/// description, body). [`document`] adds the answers every operation of its kind can give:
/// `401` and `403` when secured, `404` with path parameters, `400` with parameters or a
/// body, `413` with a body, `500` and `504` when it calls an agent.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    secured: bool,
    query: &'static [Query],
    body: Option<(&'static [&'static str], &'static str)>,
    /// Whether it calls an agent or a platform service over RPC (`500`: its error, `504`:
    /// no answer in time).
    rpc: bool,
    /// Its `200` answer: description, body.
    ok: Option<(&'static str, Body)>,
    answers: &'static [(&'static str, &'static str, Body)],
}

const ANY: &str = "{}";
const OBJECT: &str = r#"{"type": "object"}"#;
const LINKS: &str = r#"{"type": "object", "required": ["links"], "properties": {"links": {"type": "object", "additionalProperties": {"type": "string"}}}}"#;
const ERROR: &str =
    r#"{"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}"#;
const JSONRPC_ERROR: &str = r#"{"type": "object", "required": ["jsonrpc", "error", "id"], "properties": {"jsonrpc": {"enum": ["2.0"]}, "error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}}}"#;
const JSON: &[&str] = &["application/json"];
const CONFIG_TYPES: &[&str] = &["application/json", "text/plain", "text/csv"];

/// A `GET` of a JSON resource of `schema`.
const fn get(path: &'static str, summary: &'static str, schema: &'static str, rpc: bool) -> Op {
    Op {
        method: "get",
        path,
        summary,
        secured: true,
        query: &[],
        body: None,
        rpc,
        ok: Some(("the resource", Body::Json(schema))),
        answers: &[],
    }
}

/// A change answered `204`.
const fn change(method: &'static str, path: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        path,
        summary,
        secured: true,
        query: &[],
        body: None,
        rpc: true,
        ok: None,
        answers: &[("204", "done", Body::Empty)],
    }
}

impl Op {
    const fn query(mut self, query: &'static [Query]) -> Op {
        self.query = query;
        self
    }
}

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/",
        summary: "The status page (HTML); without a token, the login form",
        secured: false,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[("200", "the page, or the login form", Body::Html)],
    },
    Op {
        method: "post",
        path: "/login",
        summary: "The status page's login form: sets the HttpOnly `Bearer` cookie",
        secured: false,
        query: &[],
        body: Some((
            &["application/x-www-form-urlencoded"],
            r#"{"type": "object", "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}"#,
        )),
        rpc: false,
        ok: None,
        answers: &[
            ("303", "logged in: to `/`, with the cookie", Body::Empty),
            ("401", "wrong user or password: the form again", Body::Html),
        ],
    },
    Op {
        method: "post",
        path: "/logout",
        summary: "The status page's logout: ends the cookie's login and clears it",
        secured: false,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[("303", "to `/`, the cookie cleared", Body::Empty)],
    },
    Op {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        secured: false,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[("200", "the OpenAPI document", Body::Json(OBJECT))],
    },
    Op {
        method: "get",
        path: "/discovery/",
        summary: "The platform's serverkey, VIP address and instance name",
        secured: false,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[(
            "200",
            "discovery information",
            Body::Json(
                r#"{"type": "object", "required": ["serverkey", "instance-name"], "properties": {"serverkey": {"type": "string"}, "instance-name": {"type": "string"}, "vip-address": {"type": "string"}}}"#,
            ),
        )],
    },
    Op {
        method: "post",
        path: "/authenticate",
        summary: "Log in: an access and a refresh token",
        secured: false,
        query: &[],
        body: Some((
            &["application/json", "application/x-www-form-urlencoded"],
            r#"{"type": "object", "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}"#,
        )),
        rpc: false,
        ok: None,
        answers: &[
            (
                "200",
                "the tokens",
                Body::Json(
                    r#"{"type": "object", "required": ["access_token", "refresh_token"], "properties": {"access_token": {"type": "string"}, "refresh_token": {"type": "string"}}}"#,
                ),
            ),
            ("401", "wrong user or password", Body::Json(ERROR)),
        ],
    },
    Op {
        method: "put",
        path: "/authenticate",
        summary: "A new access token for the refresh token in Authorization",
        secured: true,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[
            (
                "200",
                "the access token",
                Body::Json(
                    r#"{"type": "object", "required": ["access_token"], "properties": {"access_token": {"type": "string"}}}"#,
                ),
            ),
            ("401", "no valid refresh token", Body::Json(ERROR)),
        ],
    },
    Op {
        method: "delete",
        path: "/authenticate",
        summary: "Log out: end the login of the token in Authorization",
        secured: true,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[
            ("204", "logged out", Body::Empty),
            ("401", "no valid token", Body::Json(ERROR)),
        ],
    },
    Op {
        method: "post",
        path: "/jsonrpc",
        summary: "JSON-RPC 2.0 calls to agents (`<identity>.<method>`), batches included",
        secured: true,
        query: &[],
        body: Some((JSON, r#"{"oneOf": [{"type": "object"}, {"type": "array"}]}"#)),
        rpc: false,
        ok: None,
        answers: &[
            ("200", "the response or responses", Body::Json(ANY)),
            ("204", "only notifications", Body::Empty),
            (
                "400",
                "not JSON, or not a JSON-RPC request: a JSON-RPC error response",
                Body::Json(JSONRPC_ERROR),
            ),
        ],
    },
    Op {
        method: "get",
        path: "/ws",
        summary: "WebSocket pub/sub: subscribe, unsubscribe, publish (JSON text messages)",
        secured: true,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[
            ("101", "the WebSocket", Body::Empty),
            ("400", "not a WebSocket upgrade", Body::Json(ERROR)),
        ],
    },
    get(
        "/status.json",
        "Every agent's status, health, heartbeat, restarts and resources",
        OBJECT,
        true,
    ),
    get("/vui", "The API's root links", LINKS, false),
    get("/vui/", "The API's root links", LINKS, false),
    get("/vui/platforms", "The platforms", LINKS, false),
    get("/vui/platforms/{platform}", "A platform's links", LINKS, false),
    get(
        "/vui/platforms/{platform}/status",
        "Every agent's status",
        OBJECT,
        true,
    ),
    get("/vui/platforms/{platform}/agents", "The agents", LINKS, true).query(&[
        (
            "agent-state",
            r#"{"type": "string", "enum": ["running", "installed"]}"#,
            false,
            "running (the default) or installed agents",
        ),
        (
            "include-hidden",
            r#"{"type": "string"}"#,
            false,
            "true: also the peers that are not installed agents",
        ),
    ]),
    get(
        "/vui/platforms/{platform}/agents/{identity}",
        "An agent's links",
        LINKS,
        true,
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/running",
        "Whether the agent runs",
        OBJECT,
        true,
    ),
    change(
        "put",
        "/vui/platforms/{platform}/agents/{identity}/running",
        "Start (or, with restart=true, restart) the agent",
    )
    .query(&[(
        "restart",
        r#"{"type": "string"}"#,
        false,
        "true: restart it (else it must not be running)",
    )]),
    change(
        "delete",
        "/vui/platforms/{platform}/agents/{identity}/running",
        "Stop the agent",
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/status",
        "The agent's status",
        OBJECT,
        true,
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/health",
        "The agent's health (null before its first heartbeat)",
        ANY,
        true,
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/enabled",
        "Whether the agent starts with the platform",
        OBJECT,
        true,
    ),
    change(
        "put",
        "/vui/platforms/{platform}/agents/{identity}/enabled",
        "Enable the agent",
    )
    .query(&[(
        "priority",
        r#"{"type": "integer", "minimum": 0, "maximum": 99}"#,
        false,
        "its start priority (default 50)",
    )]),
    change(
        "delete",
        "/vui/platforms/{platform}/agents/{identity}/enabled",
        "Disable the agent",
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/tag",
        "The agent's tag",
        OBJECT,
        true,
    ),
    Op {
        body: Some((
            JSON,
            r#"{"type": "object", "required": ["tag"], "properties": {"tag": {"type": "string"}}}"#,
        )),
        ..change(
            "put",
            "/vui/platforms/{platform}/agents/{identity}/tag",
            "Set the agent's tag",
        )
    },
    change(
        "delete",
        "/vui/platforms/{platform}/agents/{identity}/tag",
        "Clear the agent's tag",
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/configs",
        "The agent's configuration names (identity `-`: every store, a list)",
        ANY,
        true,
    ),
    Op {
        method: "post",
        path: "/vui/platforms/{platform}/agents/{identity}/configs",
        summary: "Create a configuration (its type by the body's content type)",
        secured: true,
        query: &[(
            "config-name",
            r#"{"type": "string", "minLength": 1}"#,
            true,
            "the configuration's name",
        )],
        body: Some((CONFIG_TYPES, ANY)),
        rpc: true,
        ok: None,
        answers: &[
            ("201", "created (Location: the configuration)", Body::Empty),
            ("409", "it exists", Body::Json(ERROR)),
        ],
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/configs/{name}",
        summary: "A configuration's text",
        secured: true,
        query: &[],
        body: None,
        rpc: true,
        ok: None,
        answers: &[("200", "the stored text", Body::JsonOrText)],
    },
    Op {
        body: Some((CONFIG_TYPES, ANY)),
        ..change(
            "put",
            "/vui/platforms/{platform}/agents/{identity}/configs/{name}",
            "Replace a configuration (its type by the body's content type)",
        )
    },
    change(
        "delete",
        "/vui/platforms/{platform}/agents/{identity}/configs/{name}",
        "Delete a configuration",
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/rpc",
        "The methods the user may call",
        LINKS,
        true,
    ),
    get(
        "/vui/platforms/{platform}/agents/{identity}/rpc/{method}",
        "A method's parameters and documentation",
        OBJECT,
        true,
    ),
    Op {
        method: "post",
        path: "/vui/platforms/{platform}/agents/{identity}/rpc/{method}",
        summary: "Call a method (an object: keyword arguments, its args list positional ones; an array: positional)",
        secured: true,
        query: &[],
        body: Some((JSON, r#"{"oneOf": [{"type": "object"}, {"type": "array"}]}"#)),
        rpc: true,
        ok: None,
        answers: &[("200", "the result", Body::Json(ANY))],
    },
    get(
        "/vui/platforms/{platform}/pubsub",
        "The platform's subscriptions",
        r#"{"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}"#,
        false,
    ),
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/pubsub/{topic}",
        summary: "A WebSocket of the messages published under the topic",
        secured: true,
        query: &[],
        body: None,
        rpc: false,
        ok: None,
        answers: &[
            ("101", "the WebSocket", Body::Empty),
            ("400", "not a WebSocket upgrade", Body::Json(ERROR)),
        ],
    },
    Op {
        method: "put",
        path: "/vui/platforms/{platform}/pubsub/{topic}",
        summary: "Publish {\"message\", \"headers\"} to a topic",
        secured: true,
        query: &[],
        body: Some((
            JSON,
            r#"{"type": "object", "properties": {"message": {}, "headers": {"type": "object"}}}"#,
        )),
        rpc: false,
        ok: None,
        answers: &[(
            "200",
            "the number of subscribers reached",
            Body::Json(
                r#"{"type": "object", "required": ["number_of_subscribers"], "properties": {"number_of_subscribers": {"type": "integer", "minimum": 0}}}"#,
            ),
        )],
    },
];

/// The JSON of a schema's text in [`OPS`].
fn schema(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("a schema in OPS is not JSON: {e}: {text}"))
}

fn response(description: &str, body: Body) -> Json {
    let content = match body {
        Body::Empty => return json!({"description": description}),
        Body::Json(s) => json!({"application/json": {"schema": schema(s)}}),
        Body::JsonOrText => {
            json!({"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}})
        }
        Body::Html => json!({"text/html": {"schema": {"type": "string"}}}),
    };
    json!({"description": description, "content": content})
}

/// Every `(method, path)` the document describes, as in [`document`]'s `paths`.
pub fn operations() -> Vec<(&'static str, &'static str)> {
    OPS.iter().map(|op| (op.method, op.path)).collect()
}

/// The document.
pub fn document(instance: &str) -> Json {
    let mut paths = serde_json::Map::new();
    for op in OPS {
        let mut params = Vec::new();
        let path_params: Vec<&str> = op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for name in &path_params {
            params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}));
        }
        for (name, s, required, description) in op.query {
            params.push(json!({"name": name, "in": "query", "required": required, "description": description, "schema": schema(s)}));
        }
        let mut responses = serde_json::Map::new();
        if let Some((description, body)) = op.ok {
            responses.insert("200".into(), response(description, body));
        }
        for (code, description, body) in op.answers {
            responses.insert((*code).into(), response(description, *body));
        }
        let mut add = |code: &str, description: &str| {
            responses
                .entry(code.to_owned())
                .or_insert_with(|| response(description, Body::Json(ERROR)));
        };
        if !path_params.is_empty() || !op.query.is_empty() || op.body.is_some() {
            add("400", "the request is not valid");
        }
        if op.secured {
            add("401", "no valid token");
            add("403", "the token lacks the capability");
        }
        if !path_params.is_empty() {
            add("404", "no such platform, agent or resource");
        }
        if op.body.is_some() {
            add("413", "the body is too large");
        }
        if op.rpc {
            add("500", "the agent's or service's own error");
            add("504", "the agent or service did not answer in time");
        }
        let mut operation = json!({
            "summary": op.summary,
            "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "responses": responses,
        });
        if op.secured {
            operation["security"] = json!([{"bearer": []}]);
        }
        if let Some((media, s)) = op.body {
            let content: serde_json::Map<String, Json> = media
                .iter()
                .map(|m| ((*m).to_owned(), json!({"schema": schema(s)})))
                .collect();
            operation["requestBody"] = json!({"required": false, "content": content});
        }
        paths
            .entry(op.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(op.method.to_owned(), operation));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": format!("VOLTTRON platform {instance}"), "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    })
}

/// `GET /openapi.json`.
pub(crate) async fn serve(state: web::Data<WebState>) -> HttpResponse {
    let mut doc = document(state.platform.instance_name());
    // The host's plugged endpoints (`WebService::endpoint`), where no route of ours is.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for e in &state.endpoints {
            paths.entry(e.path.clone()).or_insert_with(|| {
                json!({"get": {
                    "summary": e.summary,
                    "operationId": format!("get{}", e.path.replace(['/', '.'], "_")),
                    "responses": {"200": {"description": e.summary,
                        "content": {"*/*": {"schema": {"type": "string"}}}}},
                }})
            });
        }
    }
    HttpResponse::Ok().json(doc)
}
