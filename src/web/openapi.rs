//! The OpenAPI 3.0 document of every route the service answers itself, at `/openapi.json`.

use actix_web::{HttpResponse, web};
use serde_json::{Value as Json, json};

use crate::web::state::WebState;

/// One operation: method, path, summary, whether it needs a token, its request body's media
/// type (if any), and its documented answers (status, description).
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    secured: bool,
    body: Option<&'static str>,
    answers: &'static [(&'static str, &'static str)],
}

const OK_JSON: &[(&str, &str)] = &[
    ("200", "the resource"),
    ("401", "no valid token"),
    ("403", "the token lacks the capability"),
    ("404", "no such platform, agent or resource"),
];
const CHANGE: &[(&str, &str)] = &[
    ("204", "done"),
    ("400", "the request is not valid"),
    ("401", "no valid token"),
    ("403", "the token lacks the capability (admin)"),
    ("404", "no such platform or agent"),
];

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/discovery/",
        summary: "The platform's serverkey, VIP address and instance name",
        secured: false,
        body: None,
        answers: &[("200", "discovery information")],
    },
    Op {
        method: "post",
        path: "/authenticate",
        summary: "Log in: an access and a refresh token",
        secured: false,
        body: Some("application/json"),
        answers: &[
            ("200", "the tokens"),
            ("400", "malformed JSON"),
            ("401", "wrong user or password"),
        ],
    },
    Op {
        method: "put",
        path: "/authenticate",
        summary: "A new access token for the refresh token in Authorization",
        secured: true,
        body: None,
        answers: &[("200", "the access token"), ("401", "no valid refresh token")],
    },
    Op {
        method: "delete",
        path: "/authenticate",
        summary: "Log out: end the login of the token in Authorization",
        secured: true,
        body: None,
        answers: &[("204", "logged out"), ("401", "no valid token")],
    },
    Op {
        method: "post",
        path: "/jsonrpc",
        summary: "JSON-RPC 2.0 calls to agents (`<identity>.<method>`), batches included",
        secured: true,
        body: Some("application/json"),
        answers: &[
            ("200", "the response or responses"),
            ("204", "only notifications"),
            ("400", "not JSON"),
            ("401", "no valid token"),
            ("403", "no vui capability"),
        ],
    },
    Op {
        method: "get",
        path: "/status.json",
        summary: "Every agent's status, health, heartbeat, restarts and resources",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui",
        summary: "The API's root links",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms",
        summary: "The platforms",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}",
        summary: "A platform's links",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/status",
        summary: "Every agent's status",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents",
        summary: "The agents (agent-state=running|installed, include-hidden=true)",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}",
        summary: "An agent's links",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/running",
        summary: "Whether the agent runs",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "put",
        path: "/vui/platforms/{platform}/agents/{identity}/running",
        summary: "Start (or, with restart=true, restart) the agent",
        secured: true,
        body: None,
        answers: CHANGE,
    },
    Op {
        method: "delete",
        path: "/vui/platforms/{platform}/agents/{identity}/running",
        summary: "Stop the agent",
        secured: true,
        body: None,
        answers: CHANGE,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/status",
        summary: "The agent's status",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/health",
        summary: "The agent's health",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/enabled",
        summary: "Whether the agent starts with the platform",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "put",
        path: "/vui/platforms/{platform}/agents/{identity}/enabled",
        summary: "Enable the agent (priority=0..99)",
        secured: true,
        body: None,
        answers: CHANGE,
    },
    Op {
        method: "delete",
        path: "/vui/platforms/{platform}/agents/{identity}/enabled",
        summary: "Disable the agent",
        secured: true,
        body: None,
        answers: CHANGE,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/tag",
        summary: "The agent's tag",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "put",
        path: "/vui/platforms/{platform}/agents/{identity}/tag",
        summary: "Set the agent's tag ({\"tag\": \"x\"})",
        secured: true,
        body: Some("application/json"),
        answers: CHANGE,
    },
    Op {
        method: "delete",
        path: "/vui/platforms/{platform}/agents/{identity}/tag",
        summary: "Clear the agent's tag",
        secured: true,
        body: None,
        answers: CHANGE,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/configs",
        summary: "The agent's configuration names",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "post",
        path: "/vui/platforms/{platform}/agents/{identity}/configs",
        summary: "Create a configuration (config-name=...)",
        secured: true,
        body: Some("application/json"),
        answers: &[
            ("201", "created"),
            ("400", "not valid"),
            ("401", "no valid token"),
            ("403", "no admin capability"),
            ("409", "it exists"),
        ],
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/configs/{name}",
        summary: "A configuration's text",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "put",
        path: "/vui/platforms/{platform}/agents/{identity}/configs/{name}",
        summary: "Replace a configuration",
        secured: true,
        body: Some("application/json"),
        answers: CHANGE,
    },
    Op {
        method: "delete",
        path: "/vui/platforms/{platform}/agents/{identity}/configs/{name}",
        summary: "Delete a configuration",
        secured: true,
        body: None,
        answers: CHANGE,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/rpc",
        summary: "The methods the user may call",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/agents/{identity}/rpc/{method}",
        summary: "A method's parameters and documentation",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "post",
        path: "/vui/platforms/{platform}/agents/{identity}/rpc/{method}",
        summary: "Call a method (an object: keyword arguments, its args list positional ones; an array: positional)",
        secured: true,
        body: Some("application/json"),
        answers: &[
            ("200", "the result"),
            ("400", "bad arguments or unknown method"),
            ("401", "no valid token"),
            ("403", "not allowed"),
            ("404", "no such agent"),
            ("500", "the agent's error"),
            ("504", "timed out"),
        ],
    },
    Op {
        method: "get",
        path: "/vui/platforms/{platform}/pubsub",
        summary: "The platform's subscriptions",
        secured: true,
        body: None,
        answers: OK_JSON,
    },
    Op {
        method: "put",
        path: "/vui/platforms/{platform}/pubsub/{topic}",
        summary: "Publish {\"message\", \"headers\"} to a topic",
        secured: true,
        body: Some("application/json"),
        answers: &[
            ("200", "the number of subscribers reached"),
            ("400", "not valid"),
            ("401", "no valid token"),
            ("403", "a protected topic"),
        ],
    },
];

/// The document.
pub fn document(instance: &str) -> Json {
    let mut paths = serde_json::Map::new();
    for op in OPS {
        let mut params = Vec::new();
        for name in op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        let mut responses = serde_json::Map::new();
        for (code, description) in op.answers {
            responses.insert((*code).into(), json!({"description": description}));
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
        if let Some(media) = op.body {
            operation["requestBody"] = json!({"required": false, "content": {media: {"schema": {}}}});
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
    HttpResponse::Ok().json(document(state.platform.instance_name()))
}
