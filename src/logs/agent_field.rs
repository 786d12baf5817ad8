//! The agent's identity on every record an agent logs.
//!
//! An in-process agent's handlers run with its identity as the thread's current agent
//! (`crate::agent::log_scope`, set by its host); an agent process's output is logged with
//! the field `agent` itself (`crate::control`); a span with a field `agent` (an embedding
//! application's) names one too. [`identity_of`] finds the identity of an event: its own
//! `agent` field, else that of the innermost span carrying one (remembered by
//! [`AgentSpans`]), else the current agent. [`WithAgent`] wraps a tracing-subscriber
//! format to put that identity on the record.
//!
//! | the event | JSON record | human line |
//! |-----------|-------------|------------|
//! | has a field `agent` | as the format writes it (the field is there, flattened) | as the format writes it (`agent=ID` among the fields) |
//! | in an agent's span, or run by an agent's handler | `{"agent":"<identity>", ...}` then the format's fields | the format's line, then ` agent=<identity>` |
//! | neither | as the format writes it | as the format writes it |
//!
//! An event's own field wins: the control service's records about an agent name that
//! agent.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The field that names the agent.
pub const AGENT_FIELD: &str = "agent";

/// A span's `agent` field, kept in its extensions by [`AgentSpans`].
#[derive(Debug, Clone)]
struct AgentIdentity(String);

/// The layer that remembers the `agent` field of spans (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentSpans;

impl<S> Layer<S> for AgentSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().fields().field(AGENT_FIELD).is_none() {
            return;
        }
        let mut found = FindAgent(None);
        attrs.record(&mut found);
        if let (Some(identity), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().insert(AgentIdentity(identity));
        }
    }
}

/// Visits fields for `agent`.
struct FindAgent(Option<String>);

impl Visit for FindAgent {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == AGENT_FIELD {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == AGENT_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The identity of the agent that logged `event`: its `agent` field, else the innermost
/// span's that [`AgentSpans`] saw.
pub fn identity_of<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> Option<String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if event.metadata().fields().field(AGENT_FIELD).is_some() {
        let mut found = FindAgent(None);
        event.record(&mut found);
        return found.0;
    }
    ctx.event_scope(event)
        .and_then(|mut spans| {
            spans.find_map(|span| span.extensions().get::<AgentIdentity>().map(|a| a.0.clone()))
        })
        .or_else(|| crate::agent::log_scope::current_agent().map(|a| a.as_str().to_owned()))
}

/// The identity from the spans or the current agent, for an event without its own
/// `agent` field (the format writes that one).
fn added_identity<S, N>(event: &Event<'_>, ctx: &FmtContext<'_, S, N>) -> Option<String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    if event.metadata().fields().field(AGENT_FIELD).is_some() {
        return None;
    }
    ctx.event_scope()
        .and_then(|mut spans| {
            spans.find_map(|span| span.extensions().get::<AgentIdentity>().map(|a| a.0.clone()))
        })
        .or_else(|| crate::agent::log_scope::current_agent().map(|a| a.as_str().to_owned()))
}

/// An event format with the agent's identity added (see the module docs); `F` is
/// tracing-subscriber's `Format<Json>` with `flatten_event(true)`, or its human `Format`.
#[derive(Debug, Clone)]
pub struct WithAgent<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for WithAgent<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(identity) = added_identity(event, ctx) else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut record = String::new();
        self.0.format_event(ctx, Writer::new(&mut record), event)?;
        match record.strip_prefix('{') {
            Some(rest) => {
                let name = serde_json::to_string(&identity).map_err(|_| fmt::Error)?;
                let comma = if rest.starts_with('}') { "" } else { "," };
                write!(writer, "{{\"{AGENT_FIELD}\":{name}{comma}{rest}")
            }
            // The human format: a field at the end of the line.
            None => {
                let line = record.strip_suffix('\n').unwrap_or(&record);
                let value = if identity.contains(char::is_whitespace) || identity.contains('"') {
                    format!("{identity:?}")
                } else {
                    identity
                };
                writeln!(writer, "{line} {AGENT_FIELD}={value}")
            }
        }
    }
}
