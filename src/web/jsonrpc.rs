//! JSON-RPC 2.0 over HTTP: `POST /jsonrpc`, one call or a batch, to any agent's RPC
//! methods, with the envelope the VIP listener speaks (`core::jsonrpc`).
//!
//! The method names the agent and its method as `<identity>.<method>`, the identity being
//! the longest connected peer that prefixes it (`platform.health.get_status` is
//! `platform.health`'s `get_status`). `web.peers` lists the connected peers;
//! `web.publish(topic, message[, headers])` publishes.
//!
//! | request | answer |
//! |---------|--------|
//! | one call | `200`, its response object |
//! | a batch | `200`, the array of responses of its calls, in order; notifications get none |
//! | only notifications | `204` |
//! | not JSON | `400` with a `-32700` error response |
//! | no token | `401`; a token without `vui`: `403` (JSON bodies) |
//! | a method outside the `rpc-allow-list` | the call's response is error `-32001` |

use actix_web::{HttpRequest, HttpResponse, web};
use futures::future::join_all;

use crate::auth::authz::TopicAccess;
use crate::core::jsonrpc::{self, Fault, RpcMessage, UNAUTHORIZED};
use crate::core::{Args, Topic, Value};
use crate::web::error::WebError;
use crate::web::state::{VUI, WebState};
use crate::web::token::Claims;

/// `POST /jsonrpc`.
pub(crate) async fn handle(
    state: web::Data<WebState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let claims = state.require(&req, VUI)?;
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let fault = Fault::new(
                jsonrpc::PARSE_ERROR,
                "parse error",
                format!("the body is not JSON: {e}"),
            );
            return Ok(HttpResponse::BadRequest().json(to_json(&jsonrpc::response_err(&Value::Null, &fault))));
        }
    };
    let (elements, batch) = jsonrpc::from_value(parsed);
    if batch && elements.is_empty() {
        let fault = Fault::invalid_request("empty batch", "a batch needs at least one call");
        return Ok(HttpResponse::BadRequest().json(to_json(&jsonrpc::response_err(&Value::Null, &fault))));
    }
    let trace = crate::web::state::http_trace(&req);
    let answers = join_all(
        elements
            .into_iter()
            .map(|e| answer(&state, &claims, e, trace.clone())),
    )
    .await;
    // `Value` serializes as the JSON it stands for: no copy into `serde_json::Value`.
    let answers: Vec<Value> = answers.into_iter().flatten().collect();
    Ok(match (batch, answers.len()) {
        (_, 0) => HttpResponse::NoContent().finish(),
        (false, _) => HttpResponse::Ok().json(&answers[0]),
        (true, _) => HttpResponse::Ok().json(answers),
    })
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The response to one element (`None` for a notification or a response).
async fn answer(
    state: &WebState,
    claims: &Claims,
    element: Result<RpcMessage, jsonrpc::Invalid>,
    trace: Option<crate::core::TraceContext>,
) -> Option<Value> {
    let (id, method, args) = match element {
        Err(invalid) => return invalid.response(),
        Ok(RpcMessage::Response { .. }) => return None,
        Ok(RpcMessage::Request { id, method, args }) => (id, method, args),
    };
    let result = call(state, claims, &method, args, trace).await;
    let id = id?;
    Some(match result {
        Ok(v) => jsonrpc::response_ok(&id, v),
        Err(fault) => jsonrpc::response_err(&id, &fault),
    })
}

async fn call(
    state: &WebState,
    claims: &Claims,
    method: &str,
    args: Args,
    trace: Option<crate::core::TraceContext>,
) -> Result<Value, Fault> {
    let refused = |e: WebError| Fault::new(UNAUTHORIZED, "unauthorized", e.to_string());
    match method {
        "web.peers" => {
            return Ok(Value::List(
                state
                    .platform
                    .peers()
                    .into_iter()
                    .map(|p| Value::from(p.as_str()))
                    .collect(),
            ));
        }
        "web.publish" => return publish(state, claims, args).await,
        _ => {}
    }
    // The longest connected identity before a `.`: no list of peers is built per call.
    let router = &state.endpoint.router;
    let split = method
        .char_indices()
        .rev()
        .filter(|(_, c)| *c == '.')
        .map(|(i, _)| i)
        .find(|&i| i > 0 && i + 1 < method.len() && router.is_connected(&method[..i]));
    let Some(at) = split else {
        return Err(Fault::new(
            jsonrpc::METHOD_NOT_FOUND,
            "method not found",
            format!("'{method}' names no connected agent: use '<identity>.<method>'"),
        ));
    };
    let (peer, name) = (&method[..at], &method[at + 1..]);
    state.check_call(claims, peer, name).map_err(refused)?;
    state
        .call_traced(peer, name, args, trace)
        .await
        .map_err(|e| Fault::from_rpc_error(&e))
}

async fn publish(state: &WebState, claims: &Claims, args: Args) -> Result<Value, Fault> {
    let bad = |m: String| Fault::new(jsonrpc::INVALID_PARAMS, "invalid params", m);
    let mut positional = args.positional.into_iter();
    let mut named = args.named;
    let topic = positional
        .next()
        .or_else(|| named.remove("topic"))
        .and_then(|t| t.as_str().map(str::to_owned))
        .ok_or_else(|| bad("web.publish(topic, message[, headers]): topic must be a string".into()))?;
    let message = positional
        .next()
        .or_else(|| named.remove("message"))
        .unwrap_or(Value::Null);
    let headers = match positional.next().or_else(|| named.remove("headers")) {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Map(m)) => m,
        Some(_) => return Err(bad("headers must be an object".into())),
    };
    let topic = Topic::new(&topic).map_err(|e| bad(e.to_string()))?;
    state
        .check_topic(claims, TopicAccess::Publish, topic.as_str())
        .map_err(|e| Fault::new(UNAUTHORIZED, "unauthorized", e.to_string()))?;
    let n = state
        .endpoint
        .publish("", topic, headers, message)
        .map_err(|e| Fault::new(jsonrpc::UNHANDLED_EXCEPTION, "unhandled exception", e.to_string()))?;
    Ok(Value::from(n as i64))
}
