//! Web routes an agent answers: `#[route(GET, "/hvac/summary")]`.
//!
//! An agent declares a route on a handler; the platform's web service (the `web` cargo
//! feature of the platform, which need not be the agent's own build) serves it while the
//! agent runs, and forgets it when the agent stops. The route is an RPC export with a
//! reserved name ([`rpc_name`]), so a route works for an agent in the platform's process and
//! for one attached through the bridge alike.
//!
//! ```
//! use volttron::prelude::*;
//! use volttron::agent::route::{WebRequest, WebResponse};
//!
//! #[derive(Default)]
//! struct Hvac {
//!     zones: u32,
//! }
//!
//! #[volttron::agent]
//! impl Hvac {
//!     /// A serde value answers `200 OK` with a JSON body.
//!     #[route(GET, "/hvac/summary")]
//!     fn summary(&mut self) -> serde_json::Value {
//!         serde_json::json!({"zones": self.zones})
//!     }
//!
//!     /// The request gives the method, path, query, headers and body.
//!     #[route(POST, "/hvac/zones")]
//!     fn add_zone(&mut self, request: WebRequest) -> WebResponse {
//!         match request.json::<u32>() {
//!             Ok(n) => {
//!                 self.zones += n;
//!                 WebResponse::json(201, &self.zones)
//!             }
//!             Err(e) => WebResponse::text(400, format!("expected a number: {e}")),
//!         }
//!     }
//! }
//! ```
//!
//! | handler returns | response |
//! |-----------------|----------|
//! | any `Serialize` value `v` | `200`, `application/json`, `v` |
//! | [`WebResponse`] | its status, headers and body |
//! | `Result<R, E>` | `R` as above; `Err(e)` gives `500` with `e` as the text of a JSON error |
//!
//! A path ending in `/*` (`#[route(GET, "/api/v1/simulation/*")]`) answers every path
//! below it that no exact route takes; the handler reads the rest from `request.path`.
//!
//! A route handler takes at most one argument besides the context: the [`WebRequest`] (or
//! any type that deserializes from it).

use serde::{Deserialize, Serialize};

use crate::agent::dispatch::{HandlerError, Outcome};
use crate::core::{Map, Value, to_value};

/// The prefix of the RPC names that carry routes: `web.route GET /hvac/summary`.
pub const ROUTE_PREFIX: &str = "web.route ";

/// The RPC name of the route `method path`.
pub fn rpc_name(method: &str, path: &str) -> String {
    format!("{ROUTE_PREFIX}{method} {path}")
}

/// The `(method, path)` of a route's RPC name, if it is one.
pub fn parse_rpc_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(ROUTE_PREFIX)?;
    let (method, path) = rest.split_once(' ')?;
    path.starts_with('/').then_some((method, path))
}

/// An HTTP request for an agent's route, as the web service forwards it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, percent-decoded (`/hvac/summary`).
    pub path: String,
    /// The query string, as sent (without `?`).
    #[serde(default)]
    pub query: String,
    /// Request headers, names in lower case (`authorization` and `cookie` are never passed on).
    #[serde(default)]
    pub headers: Map,
    /// The body as text (UTF-8, lossily).
    #[serde(default)]
    pub body: String,
    /// The authenticated web user, if any.
    #[serde(default)]
    pub user: Option<String>,
}

impl WebRequest {
    /// The body parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// The value of query parameter `name` (the first, percent-decoded), if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k) == name).then(|| decode(v))
        })
    }
}

fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP response from an agent's route.
#[derive(Debug, Clone, PartialEq)]
pub struct WebResponse {
    /// The status code.
    pub status: u16,
    /// Extra headers (`content-type` among them).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl WebResponse {
    /// `status` with `value` as a JSON body.
    pub fn json(status: u16, value: &impl Serialize) -> WebResponse {
        let body = serde_json::to_vec(value)
            .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()).into_bytes());
        WebResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, text: impl Into<String>) -> WebResponse {
        WebResponse {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: text.into().into_bytes(),
        }
    }

    /// `status` with an HTML body.
    pub fn html(status: u16, html: impl Into<String>) -> WebResponse {
        WebResponse {
            status,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: html.into().into_bytes(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> WebResponse {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The response as the route's RPC reply: `{"status", "headers", "body"}` (body as bytes).
    pub fn into_value(self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), Value::from(i64::from(self.status)));
        m.insert(
            "headers".into(),
            Value::List(
                self.headers
                    .into_iter()
                    .map(|(k, v)| Value::List(vec![Value::String(k), Value::String(v)]))
                    .collect(),
            ),
        );
        m.insert("body".into(), Value::Bytes(self.body));
        Value::Map(m)
    }

    /// Reads a route's RPC reply back (see [`into_value`](Self::into_value)); `None` if
    /// `v` is not one.
    pub fn from_value(v: &Value) -> Option<WebResponse> {
        let m = v.as_map()?;
        if m.len() != 3 {
            return None;
        }
        let status = u16::try_from(m.get("status")?.as_i64()?).ok()?;
        let mut headers = Vec::new();
        for h in m.get("headers")?.as_list()? {
            let pair = h.as_list()?;
            let [k, v] = pair else { return None };
            headers.push((k.as_str()?.to_owned(), v.as_str()?.to_owned()));
        }
        let body = match m.get("body")? {
            Value::Bytes(b) => b.clone(),
            Value::String(s) => s.clone().into_bytes(),
            Value::List(items) => items
                .iter()
                .map(|b| b.as_i64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()?,
            _ => return None,
        };
        Some(WebResponse {
            status,
            headers,
            body,
        })
    }
}

/// What a route handler may return (see the module docs).
#[diagnostic::on_unimplemented(
    message = "a route handler cannot return `{Self}`",
    note = "return a `Serialize` value, a `volttron::agent::route::WebResponse`, or a `Result` of either"
)]
pub trait IntoWebResponse {
    /// The response.
    fn into_web_response(self) -> WebResponse;
}

impl IntoWebResponse for WebResponse {
    fn into_web_response(self) -> WebResponse {
        self
    }
}

impl<T: Serialize> IntoWebResponse for T {
    fn into_web_response(self) -> WebResponse {
        match to_value(&self) {
            Ok(v) => WebResponse::json(200, &v),
            Err(e) => WebResponse::json(500, &serde_json::json!({"error": e.to_string()})),
        }
    }
}

/// Converts route handlers' returns (used by `#[volttron::agent]`).
#[doc(hidden)]
pub struct RouteReturn;

impl RouteReturn {
    /// A plain return.
    pub fn value<R: IntoWebResponse>(r: R) -> Outcome {
        Ok(r.into_web_response().into_value())
    }

    /// A `Result` return.
    pub fn result<R: IntoWebResponse, E: std::fmt::Display>(r: Result<R, E>) -> Outcome {
        match r {
            Ok(r) => Self::value(r),
            Err(e) => Err(HandlerError::Failed(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_round_trip() {
        let n = rpc_name("GET", "/hvac/summary");
        assert_eq!(n, "web.route GET /hvac/summary");
        assert_eq!(parse_rpc_name(&n), Some(("GET", "/hvac/summary")));
        assert_eq!(parse_rpc_name("set_point"), None);
        assert_eq!(parse_rpc_name("web.route GET nopath"), None);
    }

    #[test]
    fn responses_round_trip_through_values() {
        let r = WebResponse::json(201, &serde_json::json!({"a": 1})).header("x-k", "v");
        assert_eq!(WebResponse::from_value(&r.clone().into_value()), Some(r));
        assert_eq!(WebResponse::from_value(&Value::from(3)), None);
        let plain = 7u32.into_web_response();
        assert_eq!(plain.status, 200);
        assert_eq!(plain.body, b"7");
    }

    #[test]
    fn query_parameters_are_decoded() {
        let r = WebRequest {
            query: "a=1&name=hq%2Fzone+1&flag".into(),
            ..WebRequest::default()
        };
        assert_eq!(r.query_param("name").as_deref(), Some("hq/zone 1"));
        assert_eq!(r.query_param("flag").as_deref(), Some(""));
        assert_eq!(r.query_param("b"), None);
    }
}
