//! What the federation's MQTT messages carry: JSON payloads (VOLTTRON's message shapes)
//! and MQTT 5 user properties.
//!
//! | message | payload | user properties |
//! |---------|---------|-----------------|
//! | publication | `{"sender","headers","message"}` | `volttron-origin`, `volttron-boot`, `volttron-seq` (dedup), `traceparent`/`tracestate` when traced |
//! | call | `{"sender","peer","method","args":{"positional","named"},"timeout_ms"}` | `traceparent`/`tracestate`; response topic and correlation data (MQTT 5) |
//! | reply | `{"result": ...}` or `{"error": <RpcError as JSON>}` | correlation data echoed |
//! | status | `{"instance-name","state":"online"|"offline","boot","version","exports"}` | — |
//!
//! Anything that does not parse is refused with a [`WireError`]; the link logs and drops it.

use crate::core::{Args, Headers, Map, RpcError, TraceContext, Value, json};

/// Why a received payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("payload is not JSON: {0}")]
    Json(String),
    #[error("payload has no valid `{0}`")]
    Field(&'static str),
    #[error("payload of {len} bytes is above the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("origin {claimed:?} in the message does not match its topic's platform {topic:?}")]
    SpoofedOrigin { claimed: String, topic: String },
}

pub(crate) const ORIGIN: &str = "volttron-origin";
pub(crate) const BOOT: &str = "volttron-boot";
pub(crate) const SEQ: &str = "volttron-seq";

fn parse_map(payload: &[u8], max: usize) -> Result<Map, WireError> {
    if payload.len() > max {
        return Err(WireError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    match json::parse(payload) {
        Ok(Value::Map(m)) => Ok(m),
        Ok(_) => Err(WireError::Json("not an object".into())),
        Err(e) => Err(WireError::Json(e.to_string())),
    }
}

fn string(m: &Map, key: &'static str) -> Result<String, WireError> {
    m.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(WireError::Field(key))
}

/// User property `name`, if present.
pub(crate) fn property<'a>(props: &'a [(String, String)], name: &str) -> Option<&'a str> {
    props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn trace_properties(trace: Option<&TraceContext>, props: &mut Vec<(String, String)>) {
    if let Some(t) = trace {
        let mut h = Headers::new();
        t.write_headers(&mut h);
        for (k, v) in h {
            if let Some(v) = v.as_str() {
                props.push((k, v.to_owned()));
            }
        }
    }
}

/// The trace context in user properties, if valid.
pub(crate) fn trace_of(props: &[(String, String)]) -> Option<TraceContext> {
    let mut h = Headers::new();
    for (k, v) in props {
        if k == "traceparent" || k == "tracestate" {
            h.insert(k.clone(), Value::from(v.as_str()));
        }
    }
    TraceContext::from_headers(&h)
}

/// A publication leaving this platform.
pub(crate) struct OutgoingPublication {
    pub(crate) payload: Vec<u8>,
    pub(crate) properties: Vec<(String, String)>,
}

/// Encodes a publication of `origin`'s bus.
pub(crate) fn publication(
    origin: &str,
    boot: u64,
    seq: u64,
    sender: &str,
    headers: &Headers,
    message: &Value,
) -> OutgoingPublication {
    let mut m = Map::new();
    m.insert("sender".into(), Value::from(sender));
    m.insert("headers".into(), Value::Map(headers.clone()));
    m.insert("message".into(), message.clone());
    let mut properties = vec![
        (ORIGIN.to_owned(), origin.to_owned()),
        (BOOT.to_owned(), boot.to_string()),
        (SEQ.to_owned(), seq.to_string()),
    ];
    trace_properties(TraceContext::from_headers(headers).as_ref(), &mut properties);
    OutgoingPublication {
        payload: json::to_vec(&Value::Map(m)),
        properties,
    }
}

/// A publication received from another platform.
#[derive(Debug)]
pub(crate) struct IncomingPublication {
    pub(crate) sender: String,
    pub(crate) headers: Headers,
    pub(crate) message: Value,
    /// (boot, seq), for dedup; `None` if the sender did not number it.
    pub(crate) number: Option<(u64, u64)>,
}

/// Decodes a publication that came under `volttron/<platform>/pubsub/`.
pub(crate) fn parse_publication(
    platform: &str,
    payload: &[u8],
    props: &[(String, String)],
    max: usize,
) -> Result<IncomingPublication, WireError> {
    if let Some(claimed) = property(props, ORIGIN)
        && claimed != platform
    {
        return Err(WireError::SpoofedOrigin {
            claimed: claimed.to_owned(),
            topic: platform.to_owned(),
        });
    }
    let mut m = parse_map(payload, max)?;
    let sender = string(&m, "sender")?;
    crate::core::Identity::new(&sender).map_err(|_| WireError::Field("sender"))?;
    let headers = match m.remove("headers") {
        Some(Value::Map(h)) => h,
        None | Some(Value::Null) => Headers::new(),
        Some(_) => return Err(WireError::Field("headers")),
    };
    let message = m.remove("message").unwrap_or(Value::Null);
    let number = match (property(props, BOOT), property(props, SEQ)) {
        (Some(b), Some(s)) => Some((
            b.parse().map_err(|_| WireError::Field(BOOT))?,
            s.parse().map_err(|_| WireError::Field(SEQ))?,
        )),
        _ => None,
    };
    Ok(IncomingPublication {
        sender,
        headers,
        message,
        number,
    })
}

/// A call to an agent of another platform.
#[derive(Debug, PartialEq)]
pub(crate) struct CallRequest {
    pub(crate) sender: String,
    pub(crate) peer: String,
    pub(crate) method: String,
    pub(crate) args: Args,
    pub(crate) timeout_ms: u64,
}

/// Encodes a call; the trace goes in the returned user properties.
pub(crate) fn call(request: &CallRequest, trace: Option<&TraceContext>) -> (Vec<u8>, Vec<(String, String)>) {
    let mut args = Map::new();
    args.insert("positional".into(), Value::List(request.args.positional.clone()));
    args.insert("named".into(), Value::Map(request.args.named.clone()));
    let mut m = Map::new();
    m.insert("sender".into(), Value::from(request.sender.as_str()));
    m.insert("peer".into(), Value::from(request.peer.as_str()));
    m.insert("method".into(), Value::from(request.method.as_str()));
    m.insert("args".into(), Value::Map(args));
    m.insert("timeout_ms".into(), Value::from(request.timeout_ms as i64));
    let mut props = Vec::new();
    trace_properties(trace, &mut props);
    (json::to_vec(&Value::Map(m)), props)
}

/// Decodes a call.
pub(crate) fn parse_call(payload: &[u8], max: usize) -> Result<CallRequest, WireError> {
    let mut m = parse_map(payload, max)?;
    let sender = string(&m, "sender")?;
    crate::core::Identity::new(&sender).map_err(|_| WireError::Field("sender"))?;
    let peer = string(&m, "peer")?;
    let method = string(&m, "method")?;
    let args = match m.remove("args") {
        Some(Value::Map(mut a)) => {
            let positional = match a.remove("positional") {
                Some(Value::List(l)) => l,
                None => Vec::new(),
                Some(_) => return Err(WireError::Field("args")),
            };
            let named = match a.remove("named") {
                Some(Value::Map(n)) => n,
                None => Map::new(),
                Some(_) => return Err(WireError::Field("args")),
            };
            Args { positional, named }
        }
        None => Args::default(),
        Some(_) => return Err(WireError::Field("args")),
    };
    let timeout_ms = m
        .get("timeout_ms")
        .and_then(Value::as_i64)
        .and_then(|t| u64::try_from(t).ok())
        .ok_or(WireError::Field("timeout_ms"))?;
    Ok(CallRequest {
        sender,
        peer,
        method,
        args,
        timeout_ms,
    })
}

/// Encodes a reply.
pub(crate) fn reply(result: &Result<Value, RpcError>) -> Vec<u8> {
    let mut m = Map::new();
    match result {
        Ok(v) => {
            m.insert("result".into(), v.clone());
        }
        Err(e) => {
            let e = crate::core::to_value(e).unwrap_or_else(|_| Value::from(e.to_string()));
            m.insert("error".into(), e);
        }
    }
    json::to_vec(&Value::Map(m))
}

/// Decodes a reply to a call of `method`.
pub(crate) fn parse_reply(
    payload: &[u8],
    method: &str,
    max: usize,
) -> Result<Result<Value, RpcError>, WireError> {
    let mut m = parse_map(payload, max)?;
    if let Some(v) = m.remove("result") {
        return Ok(Ok(v));
    }
    match m.remove("error") {
        Some(e) => Ok(Err(crate::core::from_value::<RpcError>(e.clone())
            .unwrap_or_else(|_| RpcError::Remote {
                method: method.to_owned(),
                message: e.as_str().map_or_else(|| format!("{e:?}"), str::to_owned),
                kind: "error".into(),
            }))),
        None => Err(WireError::Field("result")),
    }
}

/// A platform's announcement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Status {
    pub(crate) online: bool,
    pub(crate) boot: u64,
    pub(crate) version: String,
    pub(crate) exports: Vec<String>,
}

/// Encodes `platform`'s status.
pub(crate) fn status(platform: &str, status: &Status) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("instance-name".into(), Value::from(platform));
    m.insert(
        "state".into(),
        Value::from(if status.online { "online" } else { "offline" }),
    );
    m.insert("boot".into(), Value::from(status.boot.to_string()));
    m.insert("version".into(), Value::from(status.version.as_str()));
    m.insert(
        "exports".into(),
        Value::List(status.exports.iter().map(|e| Value::from(e.as_str())).collect()),
    );
    json::to_vec(&Value::Map(m))
}

/// Decodes the status under `volttron/<platform>/status`; an empty payload (a cleared
/// retained message) is `None`.
pub(crate) fn parse_status(platform: &str, payload: &[u8], max: usize) -> Result<Option<Status>, WireError> {
    if payload.is_empty() {
        return Ok(None);
    }
    let m = parse_map(payload, max)?;
    let claimed = string(&m, "instance-name")?;
    if claimed != platform {
        return Err(WireError::SpoofedOrigin {
            claimed,
            topic: platform.to_owned(),
        });
    }
    let online = match m.get("state").and_then(Value::as_str) {
        Some("online") => true,
        Some("offline") => false,
        _ => return Err(WireError::Field("state")),
    };
    Ok(Some(Status {
        online,
        boot: m
            .get("boot")
            .and_then(Value::as_str)
            .and_then(|b| b.parse().ok())
            .unwrap_or(0),
        version: m.get("version").and_then(Value::as_str).unwrap_or("").to_owned(),
        exports: m
            .get("exports")
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publication_round_trips_with_its_number() {
        let mut h = Headers::new();
        h.insert("TimeStamp".into(), Value::from("2026-12-07T00:00:00Z"));
        let out = publication("site1", 7, 42, "driver", &h, &Value::from(21.5));
        let p = parse_publication("site1", &out.payload, &out.properties, 1 << 20).unwrap();
        assert_eq!(p.sender, "driver");
        assert_eq!(p.headers, h);
        assert_eq!(p.message, Value::from(21.5));
        assert_eq!(p.number, Some((7, 42)));
    }

    #[test]
    fn bad_publications_are_refused() {
        let out = publication("site1", 1, 1, "a", &Headers::new(), &Value::Null);
        assert!(matches!(
            parse_publication("site2", &out.payload, &out.properties, 1 << 20),
            Err(WireError::SpoofedOrigin { .. })
        ));
        assert!(matches!(
            parse_publication("site1", b"{not json", &[], 1 << 20),
            Err(WireError::Json(_))
        ));
        assert!(matches!(
            parse_publication("site1", b"[1]", &[], 1 << 20),
            Err(WireError::Json(_))
        ));
        assert!(matches!(
            parse_publication("site1", br#"{"sender":"a b"}"#, &[], 1 << 20),
            Err(WireError::Field("sender"))
        ));
        assert!(matches!(
            parse_publication("site1", &out.payload, &out.properties, 8),
            Err(WireError::TooLarge { .. })
        ));
        let props = vec![
            (SEQ.to_owned(), "x".to_owned()),
            (BOOT.to_owned(), "1".to_owned()),
        ];
        assert!(parse_publication("site1", br#"{"sender":"a"}"#, &props, 1 << 20).is_err());
    }

    #[test]
    fn calls_and_replies_round_trip() {
        let request = CallRequest {
            sender: "ui".into(),
            peer: "hvac".into(),
            method: "set_point".into(),
            args: Args::new().arg(Value::from(21)),
            timeout_ms: 5000,
        };
        let (payload, _) = call(&request, None);
        assert_eq!(parse_call(&payload, 1 << 20).unwrap(), request);
        let ok = reply(&Ok(Value::from("done")));
        assert_eq!(parse_reply(&ok, "m", 1 << 20).unwrap(), Ok(Value::from("done")));
        let e = RpcError::MethodNotFound { method: "m".into() };
        let err = reply(&Err(e.clone()));
        assert_eq!(parse_reply(&err, "m", 1 << 20).unwrap(), Err(e));
        assert!(parse_reply(b"{}", "m", 1 << 20).is_err());
        assert!(parse_call(br#"{"sender":"a","peer":"b","method":"c"}"#, 1 << 20).is_err());
    }

    #[test]
    fn statuses_round_trip_and_must_name_their_platform() {
        let s = Status {
            online: true,
            boot: 9,
            version: "0.1.0".into(),
            exports: vec!["devices/".into()],
        };
        let payload = status("site1", &s);
        assert_eq!(parse_status("site1", &payload, 1 << 20).unwrap(), Some(s));
        assert!(parse_status("site2", &payload, 1 << 20).is_err());
        assert_eq!(parse_status("site1", b"", 1 << 20).unwrap(), None);
    }
}
