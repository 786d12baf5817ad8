//! VOLTTRON's JSON-RPC 2.0, as carried by the VIP `RPC` subsystem (and the web service's `/jsonrpc`): each argument frame holds
//! one JSON document, a single message object or a batch array of them.
//!
//! Reading ([`parse`], [`from_value`], [`element`]) follows the Python client's dispatcher
//! (`volttron/utils/jsonrpc.py`), which looks at `error`, then `result`, then `method`:
//!
//! | element | gives |
//! |---------|-------|
//! | `{"jsonrpc":"2.0","method":m,"params":p,"id":i}` | [`RpcMessage::Request`] with `id: Some(i)` |
//! | the same with no `id`, or `"id": null` | a notification: `Request` with `id: None` (Python treats a null id as none) |
//! | `{"jsonrpc":"2.0","result":r,"id":i}` | [`RpcMessage::Response`] with `Ok(r)` |
//! | `{"jsonrpc":"2.0","error":{"code":c,"message":s,"data":d},"id":i}` | `Response` with `Err(Fault)` (`data` absent → `Null`) |
//! | a response with no `id` (Python sends `null` for some errors) | `Response` with `id: Null` (no caller can match it) |
//! | not an object; no or wrong `jsonrpc`; no `method`, `result` or `error`; a non-string `method` | [`Invalid`], code -32600 |
//! | an `error` member without an integer `code` and a string `message` | [`Invalid`] -32600 with `reply: false` |
//! | `params` not a list, an object or null | [`Invalid`], code -32602 |
//! | `[]` (an empty batch) | no elements (Python sends no reply) |
//! | not JSON at all | `Err(JsonError)` |
//!
//! An element that came as a response (it has `result` or `error`) is never answered
//! ([`Invalid::reply`] is false), so two peers cannot bounce errors at each other.
//!
//! `params` and [`Args`] ([`args_from_params`], [`params_from_args`]):
//!
//! | `params` | [`Args`] |
//! |----------|----------|
//! | absent or `null` | none |
//! | `[a, b]` | positional |
//! | `{"k": v}` | named |
//! | `{"*args": [a], "**kwargs": {"k": v}}` (either key may be absent; no other keys) | both |
//!
//! Writing, [`params_from_args`] uses the list for positional-only, the object for named-only,
//! `{"*args","**kwargs"}` for both (and for named arguments that are themselves called
//! `*args` or `**kwargs`), and `[]` for none.
//!
//! Errors ([`Fault`]; the Python client turns them into exceptions by code):
//!
//! | [`RpcError`] | code | `data` |
//! |--------------|------|--------|
//! | `MethodNotFound` | -32601 | `{"detail": "method 'x' is not implemented"}` |
//! | `InvalidParams` | -32602 | `{"detail": message}` |
//! | `Unauthorized` | -32001 | `{"detail": message}` |
//! | everything else | -32000 | `{"detail": d, "exception.py": {"exc_type": t, "exc_args": [d]}}`, `t` per variant (see [`Fault::from_rpc_error`]) |
//!
//! A -32000 error must carry an object `data` (the client calls `data.get`), so
//! [`response_err`] always writes an object `data`.

use crate::core::json::{self, JsonError};
use crate::core::{Args, Map, RpcError, Value};

/// JSON-RPC: the request was not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the element is not a valid request or response.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method (the client raises `MethodNotFound`).
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the parameters do not fit.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// VOLTTRON: the method raised (the client raises `RemoteError`).
pub(crate) const UNHANDLED_EXCEPTION: i64 = -32000;
/// VOLTTRON: the caller may not call the method.
pub(crate) const UNAUTHORIZED: i64 = -32001;

/// The Python exception type VOLTTRON uses for an unreachable peer (`exc_args` are
/// `[errno, message, peer, subsystem]`, as its `VIPError` takes them).
const UNREACHABLE_TYPE: &str = "volttron.client.vip.agent.errors.Unreachable";

/// One valid JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RpcMessage {
    /// A call; a notification when `id` is `None`.
    Request {
        /// The id to echo in the response, exactly as received (VOLTTRON sends strings
        /// like `"1796586285.8733369081601"`); `None` for a notification.
        id: Option<Value>,
        /// The method name.
        method: String,
        /// The arguments, from `params`.
        args: Args,
    },
    /// A reply to a call.
    Response {
        /// The id of the call answered; `Null` when the response had none.
        id: Value,
        /// The result, or the error object.
        result: Result<Value, Fault>,
    },
}

/// An element that is neither a valid request nor a valid response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    /// Its `id`, if it had a non-null one.
    pub(crate) id: Option<Value>,
    /// The error to answer it with (-32600, or -32602 for bad `params`).
    pub(crate) fault: Fault,
    /// Whether to answer it: false when the element came as a response (it has `result` or
    /// `error`), which is never answered.
    pub(crate) reply: bool,
}

impl Invalid {
    /// The error response to send for it, when it is to be answered.
    pub(crate) fn response(&self) -> Option<Value> {
        self.reply
            .then(|| response_err(self.id.as_ref().unwrap_or(&Value::Null), &self.fault))
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    /// The error code.
    pub(crate) code: i64,
    /// The short message (`"unhandled exception"`, ...).
    pub(crate) message: String,
    /// Details; VOLTTRON puts an object with `detail` (and for -32000 `exception.py`) here.
    pub(crate) data: Value,
}

fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The Python name of a JSON value's type, for error details.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::UInt(_) => "int",
        Value::Float(_) => "float",
        Value::String(_) => "str",
        Value::Bytes(_) | Value::List(_) => "list",
        Value::Map(_) => "dict",
    }
}

impl Fault {
    /// A fault whose `data` is `{"detail": detail}`.
    pub(crate) fn new(code: i64, message: impl Into<String>, detail: impl Into<String>) -> Fault {
        Fault {
            code,
            message: message.into(),
            data: obj([("detail", Value::String(detail.into()))]),
        }
    }

    /// -32700, for an `RPC` frame that is not JSON.
    pub(crate) fn parse_error(e: &JsonError) -> Fault {
        Fault::new(PARSE_ERROR, "parse error", e.to_string())
    }

    /// -32600 with `detail`.
    pub(crate) fn invalid_request(message: &str, detail: impl Into<String>) -> Fault {
        Fault::new(INVALID_REQUEST, message, detail)
    }

    /// -32000 as VOLTTRON's dispatcher builds it for an exception: `data` is
    /// `{"detail": detail, "exception.py": {"exc_type": exc_type, "exc_args": exc_args}}`.
    pub(crate) fn exception(exc_type: &str, detail: impl Into<String>, exc_args: Vec<Value>) -> Fault {
        Fault {
            code: UNHANDLED_EXCEPTION,
            message: "unhandled exception".into(),
            data: obj([
                ("detail", Value::String(detail.into())),
                (
                    "exception.py",
                    obj([
                        ("exc_type", Value::from(exc_type)),
                        ("exc_args", Value::List(exc_args)),
                    ]),
                ),
            ]),
        }
    }

    /// `data.detail`, when it is a string.
    pub(crate) fn detail(&self) -> Option<&str> {
        self.data.get("detail").and_then(Value::as_str)
    }

    /// `data["exception.py"].exc_type`, when it is a string.
    pub(crate) fn exc_type(&self) -> Option<&str> {
        self.exception_py()
            .and_then(|e| e.get("exc_type"))
            .and_then(Value::as_str)
    }

    fn exception_py(&self) -> Option<&Value> {
        self.data.get("exception.py")
    }

    /// The fault VOLTTRON would send for `e`:
    ///
    /// | [`RpcError`] | code | `exc_type` (-32000 only) |
    /// |--------------|------|--------------------------|
    /// | `MethodNotFound` | -32601 | — |
    /// | `InvalidParams` | -32602 | — |
    /// | `Unauthorized` | -32001 | — |
    /// | `UnknownPeer` | -32000 | `volttron.client.vip.agent.errors.Unreachable`, `exc_args` `[113, message, peer, "RPC"]` |
    /// | `Remote` | -32000 | `kind` when it is a dotted Python name (it came from Python); else by kind: `error` → `builtins.RuntimeError`, `panic` → `builtins.SystemError`, `bridge` → `builtins.ConnectionError`, other → `builtins.RuntimeError` |
    /// | `Timeout` | -32000 | `builtins.TimeoutError` |
    /// | `PeerStopped`, `NotConnected`, `Unreachable` | -32000 | `builtins.ConnectionError` |
    /// | `InvalidReply` | -32000 | `builtins.ValueError` |
    ///
    /// `detail` is the variant's `message` for `InvalidParams`, `Unauthorized` and `Remote`
    /// (as Python's is `str(exc)`), else the error's display text; -32000 `exc_args` are
    /// `[detail]` unless noted.
    pub(crate) fn from_rpc_error(e: &RpcError) -> Fault {
        let shown = e.to_string();
        match e {
            RpcError::MethodNotFound { .. } => Fault::new(METHOD_NOT_FOUND, "unimplemented method", shown),
            RpcError::InvalidParams { message, .. } => {
                Fault::new(INVALID_PARAMS, "invalid params", message.clone())
            }
            RpcError::Unauthorized { message, .. } => {
                Fault::new(UNAUTHORIZED, "unauthorized", message.clone())
            }
            RpcError::UnknownPeer { peer } => Fault::exception(
                UNREACHABLE_TYPE,
                shown.clone(),
                vec![
                    Value::Int(113),
                    Value::String(shown),
                    Value::String(peer.clone()),
                    Value::from("RPC"),
                ],
            ),
            RpcError::Remote { message, kind, .. } => {
                let exc_type = if kind.contains('.') {
                    kind.as_str()
                } else {
                    match kind.as_str() {
                        "panic" => "builtins.SystemError",
                        "bridge" => "builtins.ConnectionError",
                        _ => "builtins.RuntimeError",
                    }
                };
                Fault::exception(exc_type, message.clone(), vec![Value::String(message.clone())])
            }
            RpcError::Timeout { .. } => {
                Fault::exception("builtins.TimeoutError", shown.clone(), vec![Value::String(shown)])
            }
            RpcError::PeerStopped { .. } | RpcError::NotConnected | RpcError::Unreachable { .. } => {
                Fault::exception(
                    "builtins.ConnectionError",
                    shown.clone(),
                    vec![Value::String(shown)],
                )
            }
            RpcError::InvalidReply { .. } => {
                Fault::exception("builtins.ValueError", shown.clone(), vec![Value::String(shown)])
            }
        }
    }

    /// The [`RpcError`] a call to `method` failed with: -32601 → `MethodNotFound`, -32602 →
    /// `InvalidParams`, -32001 → `Unauthorized`, a -32000 `Unreachable` with a peer in its
    /// `exc_args` → `UnknownPeer`, anything else → `Remote` with `kind` the `exc_type` (or
    /// `"error"`). Messages are `data.detail`, else `message`.
    pub(crate) fn to_rpc_error(&self, method: &str) -> RpcError {
        let message = self.detail().unwrap_or(&self.message).to_string();
        match self.code {
            METHOD_NOT_FOUND => RpcError::MethodNotFound {
                method: method.to_string(),
            },
            INVALID_PARAMS => RpcError::InvalidParams {
                method: method.to_string(),
                message,
            },
            UNAUTHORIZED => RpcError::Unauthorized {
                method: method.to_string(),
                message,
            },
            code => {
                let exc_type = if code == UNHANDLED_EXCEPTION {
                    self.exc_type()
                } else {
                    None
                };
                if exc_type == Some(UNREACHABLE_TYPE) {
                    let peer = self
                        .exception_py()
                        .and_then(|e| e.get("exc_args"))
                        .and_then(Value::as_list)
                        .and_then(|a| a.get(2))
                        .and_then(Value::as_str);
                    if let Some(peer) = peer {
                        return RpcError::UnknownPeer {
                            peer: peer.to_string(),
                        };
                    }
                }
                RpcError::Remote {
                    method: method.to_string(),
                    message,
                    kind: exc_type.unwrap_or("error").to_string(),
                }
            }
        }
    }

    /// The error object as sent: `data` is always an object (a non-object `data` is wrapped
    /// as `{"detail": message, "data": data}`, a null one as `{"detail": message}`).
    fn to_value(&self) -> Value {
        let data = match &self.data {
            Value::Map(_) => self.data.clone(),
            Value::Null => obj([("detail", Value::from(self.message.as_str()))]),
            other => obj([
                ("detail", Value::from(self.message.as_str())),
                ("data", other.clone()),
            ]),
        };
        obj([
            ("code", Value::Int(self.code)),
            ("message", Value::from(self.message.as_str())),
            ("data", data),
        ])
    }

    /// An `error` member as received, if it has an integer `code` and a string `message`.
    fn from_value(v: &Value) -> Option<Fault> {
        let m = v.as_map()?;
        Some(Fault {
            code: m.get("code")?.as_i64()?,
            message: m.get("message")?.as_str()?.to_string(),
            data: m.get("data").cloned().unwrap_or(Value::Null),
        })
    }
}

/// The elements of one `RPC` frame, and whether it held a batch (an array). Only bytes
/// that are not JSON are an error; see the module docs for what each element gives.
pub(crate) fn parse(bytes: &[u8]) -> Result<(Vec<Result<RpcMessage, Invalid>>, bool), JsonError> {
    json::parse(bytes).map(from_value)
}

/// [`parse`] for a frame already decoded (as by [`json::decode_frame`]).
pub(crate) fn from_value(v: Value) -> (Vec<Result<RpcMessage, Invalid>>, bool) {
    match v {
        Value::List(items) => (items.into_iter().map(element).collect(), true),
        Value::Map(_) => (vec![element(v)], false),
        other => (
            vec![Err(Invalid {
                id: None,
                fault: Fault::invalid_request(
                    "invalid object type",
                    format!(
                        "expected a list or dictionary (object); got a {:?} instead",
                        py_type(&other)
                    ),
                ),
                reply: true,
            })],
            false,
        ),
    }
}

/// One element of a message or batch.
pub(crate) fn element(v: Value) -> Result<RpcMessage, Invalid> {
    let Value::Map(mut m) = v else {
        return Err(Invalid {
            id: None,
            fault: Fault::invalid_request(
                "invalid object type",
                format!("expected a dictionary (object); got a {:?} instead", py_type(&v)),
            ),
            reply: true,
        });
    };
    let id = m.remove("id").filter(|id| !id.is_null());
    let is_response = m.contains_key("error") || m.contains_key("result");
    let invalid = |id: Option<Value>, fault: Fault| Invalid {
        id,
        fault,
        reply: !is_response,
    };
    match m.get("jsonrpc") {
        None => {
            return Err(invalid(
                id,
                Fault::invalid_request("missing required member", "missing required 'jsonrpc' member"),
            ));
        }
        Some(Value::String(s)) if s == "2.0" => {}
        Some(other) => {
            return Err(invalid(
                id,
                Fault::invalid_request(
                    "unsupported version",
                    format!(
                        "version 2.0 supported, but received version {}",
                        String::from_utf8_lossy(&json::to_vec(other))
                    ),
                ),
            ));
        }
    }
    if let Some(error) = m.get("error") {
        return match Fault::from_value(error) {
            Some(fault) => Ok(RpcMessage::Response {
                id: id.unwrap_or(Value::Null),
                result: Err(fault),
            }),
            None => Err(invalid(
                id,
                Fault::invalid_request(
                    "invalid error member",
                    "'error' must be an object with an integer 'code' and a string 'message'",
                ),
            )),
        };
    }
    if let Some(result) = m.remove("result") {
        return Ok(RpcMessage::Response {
            id: id.unwrap_or(Value::Null),
            result: Ok(result),
        });
    }
    let method = match m.remove("method") {
        Some(Value::String(method)) => method,
        Some(other) => {
            return Err(invalid(
                id,
                Fault::invalid_request(
                    "invalid method",
                    format!("'method' must be a string, got a {:?}", py_type(&other)),
                ),
            ));
        }
        None => {
            return Err(invalid(
                id,
                Fault::invalid_request(
                    "missing required member",
                    "expected a 'method', 'result' or 'error' member",
                ),
            ));
        }
    };
    match args_from_params(m.remove("params").unwrap_or(Value::Null)) {
        Ok(args) => Ok(RpcMessage::Request { id, method, args }),
        Err(fault) => Err(invalid(id, fault)),
    }
}

/// `params` as [`Args`] (see the module docs); a -32602 fault when it has no such reading.
pub(crate) fn args_from_params(params: Value) -> Result<Args, Fault> {
    let bad = |detail: String| Fault::new(INVALID_PARAMS, "invalid params", detail);
    match params {
        Value::Null => Ok(Args::new()),
        Value::List(positional) => Ok(Args {
            positional,
            named: Map::new(),
        }),
        Value::Map(mut named) => {
            if !named.contains_key("*args") && !named.contains_key("**kwargs") {
                return Ok(Args {
                    positional: Vec::new(),
                    named,
                });
            }
            let positional = match named.remove("*args") {
                None => Vec::new(),
                Some(Value::List(l)) => l,
                Some(other) => {
                    return Err(bad(format!(
                        "'*args' must be a list, got a {:?}",
                        py_type(&other)
                    )));
                }
            };
            let kwargs = match named.remove("**kwargs") {
                None => Map::new(),
                Some(Value::Map(m)) => m,
                Some(other) => {
                    return Err(bad(format!(
                        "'**kwargs' must be an object, got a {:?}",
                        py_type(&other)
                    )));
                }
            };
            if let Some(extra) = named.keys().next() {
                return Err(bad(format!(
                    "unexpected member {extra:?} beside '*args'/'**kwargs'"
                )));
            }
            Ok(Args {
                positional,
                named: kwargs,
            })
        }
        other => Err(bad(format!(
            "expected a list or dictionary (object); got a {:?} instead",
            py_type(&other)
        ))),
    }
}

/// [`Args`] as `params` for a request we send (see the module docs).
pub(crate) fn params_from_args(args: &Args) -> Value {
    let reserved = args.named.contains_key("*args") || args.named.contains_key("**kwargs");
    match (args.positional.is_empty(), args.named.is_empty()) {
        (_, true) => Value::List(args.positional.clone()),
        (true, false) if !reserved => Value::Map(args.named.clone()),
        _ => obj([
            ("*args", Value::List(args.positional.clone())),
            ("**kwargs", Value::Map(args.named.clone())),
        ]),
    }
}

/// A request: `{"jsonrpc": "2.0", "method", "params", "id"}`.
pub(crate) fn request(id: &Value, method: &str, args: &Args) -> Value {
    obj([
        ("jsonrpc", Value::from("2.0")),
        ("method", Value::from(method)),
        ("params", params_from_args(args)),
        ("id", id.clone()),
    ])
}

/// A notification: a request without `id`, which gets no response.
pub(crate) fn notification(method: &str, args: &Args) -> Value {
    obj([
        ("jsonrpc", Value::from("2.0")),
        ("method", Value::from(method)),
        ("params", params_from_args(args)),
    ])
}

/// A successful response: `{"jsonrpc": "2.0", "id", "result"}`.
pub(crate) fn response_ok(id: &Value, result: Value) -> Value {
    obj([
        ("jsonrpc", Value::from("2.0")),
        ("id", id.clone()),
        ("result", result),
    ])
}

/// An error response: `{"jsonrpc": "2.0", "id", "error": {"code", "message", "data"}}`, with
/// an object `data` always (see [`Fault`]'s docs).
pub(crate) fn response_err(id: &Value, fault: &Fault) -> Value {
    obj([
        ("jsonrpc", Value::from("2.0")),
        ("id", id.clone()),
        ("error", fault.to_value()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn j(s: &str) -> Value {
        json::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn one(s: &str) -> Result<RpcMessage, Invalid> {
        let (mut items, batch) = parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert!(!batch);
        assert_eq!(items.len(), 1);
        items.remove(0)
    }

    fn req(s: &str) -> (Option<Value>, String, Args) {
        match one(s) {
            Ok(RpcMessage::Request { id, method, args }) => (id, method, args),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn invalid(s: &str) -> Invalid {
        match one(s) {
            Err(i) => i,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn request_with_string_id_kept_exactly() {
        let (id, method, args) = req(
            r#"{"jsonrpc":"2.0","method":"get_point","params":["a/b","P"],"id":"1796586285.8733369081601"}"#,
        );
        assert_eq!(id, Some(Value::from("1796586285.8733369081601")));
        assert_eq!(method, "get_point");
        assert_eq!(args, Args::new().arg("a/b").arg("P"));
        let (id, ..) = req(r#"{"jsonrpc":"2.0","method":"m","id":7}"#);
        assert_eq!(id, Some(Value::Int(7)));
        let (id, ..) = req(r#"{"jsonrpc":"2.0","method":"m","id":0}"#);
        assert_eq!(id, Some(Value::Int(0)), "a falsy id is still an id");
    }

    #[test]
    fn notifications() {
        let (id, method, args) = req(r#"{"jsonrpc":"2.0","method":"tick"}"#);
        assert_eq!((id, method.as_str(), args), (None, "tick", Args::new()));
        let (id, ..) = req(r#"{"jsonrpc":"2.0","method":"tick","id":null}"#);
        assert_eq!(id, None, "null id is a notification, as in Python");
    }

    #[test]
    fn param_shapes() {
        let args = |p: &str| {
            req(&format!(
                r#"{{"jsonrpc":"2.0","method":"m","id":"1","params":{p}}}"#
            ))
            .2
        };
        assert_eq!(args("null"), Args::new());
        assert_eq!(args("[]"), Args::new());
        assert_eq!(args("{}"), Args::new());
        assert_eq!(args("[1,\"x\"]"), Args::new().arg(1).arg("x"));
        assert_eq!(
            args(r#"{"a":1,"b":null}"#),
            Args::new().kwarg("a", 1).kwarg("b", ())
        );
        assert_eq!(
            args(r#"{"*args":["NEW","config"],"**kwargs":{"contents":{},"trigger_callback":true}}"#),
            Args::new()
                .arg("NEW")
                .arg("config")
                .kwarg("contents", Value::Map(Map::new()))
                .kwarg("trigger_callback", true)
        );
        assert_eq!(args(r#"{"*args":[1]}"#), Args::new().arg(1));
        assert_eq!(args(r#"{"**kwargs":{"k":2}}"#), Args::new().kwarg("k", 2));
        assert_eq!(
            args(r#"{"*args":["DELETE_ALL",null],"**kwargs":{"trigger_callback":true}}"#),
            Args::new()
                .arg("DELETE_ALL")
                .arg(())
                .kwarg("trigger_callback", true)
        );
    }

    #[test]
    fn bad_params() {
        for p in [
            "5",
            "\"x\"",
            "true",
            r#"{"*args":5}"#,
            r#"{"**kwargs":[]}"#,
            r#"{"*args":[],"x":1}"#,
        ] {
            let i = invalid(&format!(
                r#"{{"jsonrpc":"2.0","method":"m","id":"9","params":{p}}}"#
            ));
            assert_eq!(i.fault.code, INVALID_PARAMS, "{p}");
            assert_eq!(i.id, Some(Value::from("9")), "{p}: the id is echoed");
            assert!(i.reply);
        }
        assert_eq!(
            args_from_params(Value::from("x")).unwrap_err().detail(),
            Some(r#"expected a list or dictionary (object); got a "str" instead"#)
        );
    }

    #[test]
    fn responses() {
        match one(r#"{"jsonrpc":"2.0","id":"1.2","result":[1,2]}"#) {
            Ok(RpcMessage::Response { id, result }) => {
                assert_eq!(id, Value::from("1.2"));
                assert_eq!(result, Ok(j("[1,2]")));
            }
            other => panic!("{other:?}"),
        }
        match one(r#"{"jsonrpc":"2.0","id":"1","result":null}"#) {
            Ok(RpcMessage::Response { result, .. }) => assert_eq!(result, Ok(Value::Null)),
            other => panic!("{other:?}"),
        }
        match one(r#"{"jsonrpc":"2.0","id":"1","error":{"code":-32601,"message":"unimplemented method"}}"#) {
            Ok(RpcMessage::Response { result: Err(f), .. }) => {
                assert_eq!(f.code, METHOD_NOT_FOUND);
                assert_eq!(f.data, Value::Null);
            }
            other => panic!("{other:?}"),
        }
        // Python's own -32602 answers carry a null id.
        match one(
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"invalid object type","data":{"detail":"d"}}}"#,
        ) {
            Ok(RpcMessage::Response { id, result: Err(f) }) => {
                assert_eq!(id, Value::Null);
                assert_eq!(f.detail(), Some("d"));
            }
            other => panic!("{other:?}"),
        }
        // `error` wins over `result`, as in Python.
        assert!(matches!(
            one(r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#),
            Ok(RpcMessage::Response { result: Err(_), .. })
        ));
    }

    #[test]
    fn invalid_elements() {
        let i = invalid(r#"{"method":"m","id":"3"}"#);
        assert_eq!(
            (i.fault.code, i.id.clone(), i.reply),
            (INVALID_REQUEST, Some(Value::from("3")), true)
        );
        assert_eq!(i.fault.detail(), Some("missing required 'jsonrpc' member"));
        let i = invalid(r#"{"jsonrpc":"1.0","method":"m","id":"3"}"#);
        assert_eq!(
            i.fault.detail(),
            Some(r#"version 2.0 supported, but received version "1.0""#)
        );
        let i = invalid(r#"{"jsonrpc":2.0,"method":"m"}"#);
        assert_eq!(i.fault.code, INVALID_REQUEST);
        assert_eq!(invalid(r#"{"jsonrpc":"2.0","id":1}"#).fault.code, INVALID_REQUEST);
        assert_eq!(
            invalid(r#"{"jsonrpc":"2.0","method":5,"id":1}"#).fault.code,
            INVALID_REQUEST
        );
        let i = invalid("5");
        assert_eq!(
            (i.id.clone(), i.fault.code, i.reply),
            (None, INVALID_REQUEST, true)
        );
        assert!(invalid("\"str\"").response().is_some());
        // Broken responses are not answered.
        for s in [
            r#"{"jsonrpc":"2.0","id":1,"error":"bad"}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1}}"#,
            r#"{"id":1,"result":2}"#,
        ] {
            let i = invalid(s);
            assert!(!i.reply, "{s}");
            assert_eq!(i.response(), None);
        }
        let i = invalid(r#"{"jsonrpc":"2.0","id":"q"}"#);
        assert_eq!(
            i.response(),
            Some(j(
                r#"{"jsonrpc":"2.0","id":"q","error":{"code":-32600,"message":"missing required member",
                    "data":{"detail":"expected a 'method', 'result' or 'error' member"}}}"#
            ))
        );
    }

    #[test]
    fn batches() {
        let (items, batch) = parse(
            br#"[{"jsonrpc":"2.0","method":"a","id":"1"},{"jsonrpc":"2.0","method":"b"},7,{"jsonrpc":"2.0","id":"2","result":3}]"#,
        )
        .expect("JSON");
        assert!(batch);
        assert_eq!(items.len(), 4);
        assert!(matches!(&items[0], Ok(RpcMessage::Request { id: Some(_), method, .. }) if method == "a"));
        assert!(matches!(&items[1], Ok(RpcMessage::Request { id: None, .. })));
        assert!(matches!(
            &items[2],
            Err(Invalid {
                id: None,
                reply: true,
                ..
            })
        ));
        assert!(matches!(&items[3], Ok(RpcMessage::Response { .. })));
        assert_eq!(parse(b"[]").expect("JSON"), (vec![], true));
        assert!(parse(b"not json").is_err());
        assert!(parse(b"").is_err());
        let e = parse(b"{").unwrap_err();
        assert_eq!(Fault::parse_error(&e).code, PARSE_ERROR);
    }

    #[test]
    fn writes_requests() {
        let id = Value::from("5.1");
        assert_eq!(
            json::to_vec(&request(&id, "m", &Args::new())),
            br#"{"id":"5.1","jsonrpc":"2.0","method":"m","params":[]}"#
        );
        assert_eq!(
            request(&id, "m", &Args::new().arg(1)),
            j(r#"{"jsonrpc":"2.0","method":"m","params":[1],"id":"5.1"}"#)
        );
        assert_eq!(
            request(&id, "m", &Args::new().kwarg("k", 1)),
            j(r#"{"jsonrpc":"2.0","method":"m","params":{"k":1},"id":"5.1"}"#)
        );
        assert_eq!(
            request(&id, "m", &Args::new().arg(1).kwarg("k", 1)),
            j(r#"{"jsonrpc":"2.0","method":"m","params":{"*args":[1],"**kwargs":{"k":1}},"id":"5.1"}"#)
        );
        assert_eq!(
            params_from_args(&Args::new().kwarg("*args", 1)),
            j(r#"{"*args":[],"**kwargs":{"*args":1}}"#),
            "a named argument called *args survives"
        );
        assert_eq!(
            notification("m", &Args::new().arg(true)),
            j(r#"{"jsonrpc":"2.0","method":"m","params":[true]}"#)
        );
        assert_eq!(
            response_ok(&id, Value::Int(3)),
            j(r#"{"jsonrpc":"2.0","id":"5.1","result":3}"#)
        );
    }

    #[test]
    fn writes_errors_with_object_data() {
        let f = Fault {
            code: -32000,
            message: "boom".into(),
            data: Value::Null,
        };
        assert_eq!(
            response_err(&Value::from("1"), &f),
            j(
                r#"{"jsonrpc":"2.0","id":"1","error":{"code":-32000,"message":"boom","data":{"detail":"boom"}}}"#
            )
        );
        let f = Fault {
            data: Value::Int(3),
            ..f
        };
        assert_eq!(
            response_err(&Value::Null, &f)
                .get("error")
                .and_then(|e| e.get("data"))
                .cloned(),
            Some(j(r#"{"detail":"boom","data":3}"#))
        );
    }

    #[test]
    fn faults_follow_volttron() {
        let f = Fault::from_rpc_error(&RpcError::MethodNotFound { method: "x".into() });
        assert_eq!(
            f,
            Fault {
                code: -32601,
                message: "unimplemented method".into(),
                data: j(r#"{"detail":"method 'x' is not implemented"}"#),
            }
        );
        let f = Fault::from_rpc_error(&RpcError::Remote {
            method: "get_config".into(),
            message: "no such config".into(),
            kind: "error".into(),
        });
        assert_eq!(f.code, -32000);
        assert_eq!(f.message, "unhandled exception");
        assert_eq!(
            f.data,
            j(
                r#"{"detail":"no such config","exception.py":{"exc_type":"builtins.RuntimeError","exc_args":["no such config"]}}"#
            )
        );
        let kind = |k: &str| {
            Fault::from_rpc_error(&RpcError::Remote {
                method: "m".into(),
                message: "x".into(),
                kind: k.into(),
            })
            .exc_type()
            .map(str::to_string)
        };
        assert_eq!(kind("panic").as_deref(), Some("builtins.SystemError"));
        assert_eq!(kind("bridge").as_deref(), Some("builtins.ConnectionError"));
        assert_eq!(kind("builtins.KeyError").as_deref(), Some("builtins.KeyError"));
        assert_eq!(kind("other").as_deref(), Some("builtins.RuntimeError"));
        let t = |e: RpcError| Fault::from_rpc_error(&e).exc_type().map(str::to_string);
        assert_eq!(
            t(RpcError::Timeout {
                peer: "p".into(),
                method: "m".into(),
                timeout: Duration::from_secs(1)
            })
            .as_deref(),
            Some("builtins.TimeoutError")
        );
        assert_eq!(
            t(RpcError::NotConnected).as_deref(),
            Some("builtins.ConnectionError")
        );
        assert_eq!(
            t(RpcError::PeerStopped { peer: "p".into() }).as_deref(),
            Some("builtins.ConnectionError")
        );
        assert_eq!(
            t(RpcError::InvalidReply { message: "m".into() }).as_deref(),
            Some("builtins.ValueError")
        );
        let f = Fault::from_rpc_error(&RpcError::UnknownPeer {
            peer: "nobody".into(),
        });
        assert_eq!(
            f.data
                .get("exception.py")
                .and_then(|e| e.get("exc_args"))
                .cloned(),
            Some(j(r#"[113,"peer 'nobody' is not connected","nobody","RPC"]"#))
        );
        let f = Fault::from_rpc_error(&RpcError::Unauthorized {
            method: "m".into(),
            message: "needs cap".into(),
        });
        assert_eq!((f.code, f.detail()), (-32001, Some("needs cap")));
        let f = Fault::from_rpc_error(&RpcError::InvalidParams {
            method: "m".into(),
            message: "bad".into(),
        });
        assert_eq!((f.code, f.detail()), (-32602, Some("bad")));
        // Every -32000 fault has an object data with a detail, as the client needs.
        for e in [RpcError::NotConnected, RpcError::PeerStopped { peer: "p".into() }] {
            assert!(Fault::from_rpc_error(&e).detail().is_some());
        }
    }

    #[test]
    fn faults_round_trip_through_the_wire() {
        let errors = [
            RpcError::MethodNotFound { method: "m".into() },
            RpcError::InvalidParams {
                method: "m".into(),
                message: "bad".into(),
            },
            RpcError::Unauthorized {
                method: "m".into(),
                message: "no".into(),
            },
            RpcError::Remote {
                method: "m".into(),
                message: "KeyError: 'x'".into(),
                kind: "builtins.KeyError".into(),
            },
            RpcError::UnknownPeer { peer: "p".into() },
        ];
        for e in errors {
            let wire = json::to_vec(&response_err(&Value::from("7"), &Fault::from_rpc_error(&e)));
            let Ok((items, false)) = parse(&wire) else {
                panic!("reparse {e:?}");
            };
            match &items[..] {
                [Ok(RpcMessage::Response { id, result: Err(f) })] => {
                    assert_eq!(id, &Value::from("7"));
                    assert_eq!(f.to_rpc_error("m"), e);
                }
                other => panic!("{other:?}"),
            }
        }
        // A Rust kind comes back as the Python type it was sent as.
        let e = RpcError::Remote {
            method: "m".into(),
            message: "x".into(),
            kind: "error".into(),
        };
        assert_eq!(
            Fault::from_rpc_error(&e).to_rpc_error("m"),
            RpcError::Remote {
                method: "m".into(),
                message: "x".into(),
                kind: "builtins.RuntimeError".into()
            }
        );
    }

    #[test]
    fn faults_from_python() {
        // What VOLTTRON's dispatcher sends for a KeyError.
        let f = Fault::from_value(&j(
            r#"{"code":-32000,"message":"unhandled exception","data":{"detail":"'x'","exception.py":{"exc_type":"builtins.KeyError","exc_args":["x"],"exc_tb":"..."}}}"#,
        ))
        .expect("fault");
        assert_eq!(
            f.to_rpc_error("get"),
            RpcError::Remote {
                method: "get".into(),
                message: "'x'".into(),
                kind: "builtins.KeyError".into()
            }
        );
        // No data: message; other codes: kind "error".
        let f = Fault {
            code: -32603,
            message: "internal".into(),
            data: Value::Null,
        };
        assert_eq!(
            f.to_rpc_error("m"),
            RpcError::Remote {
                method: "m".into(),
                message: "internal".into(),
                kind: "error".into()
            }
        );
        let f = Fault::from_value(&j(
            r#"{"code":-32601,"message":"unimplemented method","data":{"detail":"method 'q' is not implemented"}}"#,
        ))
        .expect("fault");
        assert_eq!(
            f.to_rpc_error("q"),
            RpcError::MethodNotFound { method: "q".into() }
        );
    }

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            "[a-z0-9.*]{0,8}".prop_map(Value::String),
        ]
    }

    fn arb_args() -> impl Strategy<Value = Args> {
        (
            proptest::collection::vec(arb_scalar(), 0..4),
            proptest::collection::btree_map("[a-z*]{0,8}", arb_scalar(), 0..4),
        )
            .prop_map(|(positional, named)| Args { positional, named })
    }

    proptest! {
        #[test]
        fn prop_requests_round_trip(
            id in prop_oneof![Just(None), "[0-9.]{1,24}".prop_map(|s| Some(Value::String(s))), any::<i64>().prop_map(|i| Some(Value::Int(i)))],
            method in "[a-z._]{1,16}",
            args in arb_args(),
        ) {
            let v = match &id {
                Some(id) => request(id, &method, &args),
                None => notification(&method, &args),
            };
            let (items, batch) = parse(&json::to_vec(&v)).expect("JSON");
            prop_assert!(!batch);
            prop_assert_eq!(items, vec![Ok(RpcMessage::Request { id, method, args })]);
        }

        #[test]
        fn prop_params_round_trip(args in arb_args()) {
            prop_assert_eq!(args_from_params(params_from_args(&args)), Ok(args));
        }

        #[test]
        fn prop_arbitrary_input_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&b);
        }

        #[test]
        fn prop_arbitrary_objects_never_panic(
            keys in proptest::collection::vec(prop_oneof![
                Just("jsonrpc"), Just("method"), Just("params"), Just("id"), Just("result"), Just("error"),
            ], 0..6),
            vals in proptest::collection::vec(prop_oneof![
                arb_scalar(),
                Just(Value::from("2.0")),
                Just(Value::List(vec![])),
                Just(Value::Map(Map::new())),
            ], 6),
        ) {
            let m: Map = keys.iter().zip(vals).map(|(k, v)| ((*k).to_string(), v)).collect();
            if let Err(i) = element(Value::Map(m)) {
                let _ = i.response();
            }
        }
    }
}
