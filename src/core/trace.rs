//! W3C trace context (`traceparent`, `tracestate`) as the bus carries it: in publication
//! headers and beside RPC requests, in-process, across the bridge, and into VOLTTRON's
//! Python agents' headers unchanged.
//!
//! | where | how it travels |
//! |-------|----------------|
//! | a publication | headers `traceparent` and `tracestate` (strings), as VOLTTRON carries any header |
//! | an RPC request or notification | beside the request (in-process), in the bridge's request frames |
//! | inside a handler | the trace of what it handles is current on its thread: what it publishes or calls carries it (see [`crate::agent::trace_scope`]) |
//!
//! Without an exporter the platform passes trace context on as it came (a handler's
//! publishes and calls carry the `traceparent` it received); the `otel` feature turns
//! handler runs and calls into spans, each a child of the context received.

use std::sync::Arc;

use crate::core::{Headers, Value};

/// The header holding the `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// The header holding the `tracestate`.
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` carried (W3C: 32 members of up to 256 characters; vendors
/// keep it far shorter, and a longer one is dropped rather than carried).
pub const MAX_TRACESTATE: usize = 512;

/// Why a `traceparent` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceContextError {
    /// Not `version-traceid-parentid-flags` in lower-case hex of the right lengths.
    #[error("traceparent {0:?}: expected 00-<32 hex>-<16 hex>-<2 hex>")]
    Malformed(String),
    /// An all-zero trace or parent id, or version `ff`.
    #[error("traceparent {0:?}: invalid id or version")]
    Invalid(String),
    /// A `tracestate` longer than [`MAX_TRACESTATE`] or with control characters.
    #[error("tracestate is longer than {MAX_TRACESTATE} bytes or not printable")]
    TraceState,
}

/// A validated W3C trace context. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceContext(Arc<Inner>);

#[derive(Debug, PartialEq, Eq, Hash)]
struct Inner {
    traceparent: String,
    tracestate: Option<String>,
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl TraceContext {
    /// Parses a `traceparent` (and a `tracestate`, if any) as the W3C recommendation
    /// says: version `00` is exactly four fields; a later version may add fields after
    /// the flags, which are kept.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<TraceContext, TraceContextError> {
        let malformed = || TraceContextError::Malformed(traceparent.chars().take(80).collect());
        let mut parts = traceparent.splitn(5, '-');
        let (Some(version), Some(trace), Some(parent), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let rest = parts.next();
        if version.len() != 2
            || trace.len() != 32
            || parent.len() != 16
            || flags.len() != 2
            || ![version, trace, parent, flags].into_iter().all(is_hex)
            || (version == "00" && rest.is_some())
        {
            return Err(malformed());
        }
        if version == "ff" || trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0') {
            return Err(TraceContextError::Invalid(traceparent.to_owned()));
        }
        let tracestate = match tracestate.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if s.len() > MAX_TRACESTATE || s.bytes().any(|b| !(0x20..0x7f).contains(&b)) => {
                return Err(TraceContextError::TraceState);
            }
            other => other.map(str::to_owned),
        };
        Ok(TraceContext(Arc::new(Inner {
            traceparent: traceparent.to_owned(),
            tracestate,
        })))
    }

    /// The context received as `traceparent` and `tracestate` (headers, frames, HTTP), as
    /// W3C says to take it: an invalid `traceparent` is ignored (`None`: start a new
    /// trace), an invalid `tracestate` dropped.
    pub fn received(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        TraceContext::parse(traceparent, tracestate)
            .or_else(|_| TraceContext::parse(traceparent, None))
            .ok()
    }

    /// The context of `headers` (a publication's), if they carry a valid one (see
    /// [`received`](Self::received)).
    pub fn from_headers(headers: &Headers) -> Option<TraceContext> {
        if headers.is_empty() {
            return None;
        }
        let parent = headers.get(TRACEPARENT)?.as_str()?;
        TraceContext::received(parent, headers.get(TRACESTATE).and_then(Value::as_str))
    }

    /// Writes `traceparent` (and `tracestate`) into `headers`, unless they carry one.
    pub fn write_headers(&self, headers: &mut Headers) {
        if headers.contains_key(TRACEPARENT) {
            return;
        }
        headers.insert(TRACEPARENT.to_owned(), Value::from(self.traceparent()));
        if let Some(state) = self.tracestate() {
            headers.insert(TRACESTATE.to_owned(), Value::from(state));
        }
    }

    /// The `traceparent` header's value.
    pub fn traceparent(&self) -> &str {
        &self.0.traceparent
    }

    /// The `tracestate` header's value, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.0.tracestate.as_deref()
    }

    /// The trace id (32 hex digits).
    pub fn trace_id(&self) -> &str {
        &self.0.traceparent[3..35]
    }

    /// The parent (span) id (16 hex digits).
    pub fn parent_id(&self) -> &str {
        &self.0.traceparent[36..52]
    }

    /// Whether the caller sampled it (flag `01`).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.0.traceparent[53..55], 16).is_ok_and(|f| f & 1 == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_example_parses() {
        let t = TraceContext::parse(GOOD, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id(), "00f067aa0ba902b7");
        assert!(t.sampled());
        assert_eq!(t.tracestate(), Some("congo=t61rcWkgMzE"));
        // A later version may add fields.
        assert!(TraceContext::parse(&format!("01{}-extra", &GOOD[2..]), None).is_ok());
    }

    #[test]
    fn bad_ones_are_refused_with_a_reason() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(
                matches!(
                    TraceContext::parse(bad, None),
                    Err(TraceContextError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        for invalid in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(
                matches!(
                    TraceContext::parse(invalid, None),
                    Err(TraceContextError::Invalid(_))
                ),
                "{invalid:?}"
            );
        }
        let long = "a=".to_owned() + &"b".repeat(MAX_TRACESTATE);
        assert_eq!(
            TraceContext::parse(GOOD, Some(&long)),
            Err(TraceContextError::TraceState)
        );
    }

    #[test]
    fn headers_carry_it_and_a_bad_tracestate_is_dropped() {
        let mut h = Headers::new();
        assert_eq!(TraceContext::from_headers(&h), None);
        h.insert(TRACEPARENT.into(), Value::from(GOOD));
        h.insert(TRACESTATE.into(), Value::from("x=\u{7}"));
        let t = TraceContext::from_headers(&h).unwrap();
        assert_eq!(t.tracestate(), None);
        let mut out = Headers::new();
        t.write_headers(&mut out);
        assert_eq!(out.get(TRACEPARENT).and_then(Value::as_str), Some(GOOD));
        // A publisher's own traceparent wins.
        let mut own = Headers::new();
        own.insert(TRACEPARENT.into(), Value::from("mine"));
        t.write_headers(&mut own);
        assert_eq!(own.get(TRACEPARENT).and_then(Value::as_str), Some("mine"));
        h.insert(TRACEPARENT.into(), Value::from("garbage"));
        assert_eq!(TraceContext::from_headers(&h), None);
    }
}
