//! The agent's identity on every record an agent logs.
//!
//! An in-process agent's handlers run inside its host's span `agent` (field `agent`, see
//! `crate::agent`'s host); an agent process's output is logged with the field `agent`
//! itself (`crate::control`). [`AgentSpans`] remembers each span's `agent` field, and
//! [`identity_of`] finds the identity of an event: its own `agent` field, else that of the
//! innermost span carrying one. [`WithAgent`] wraps tracing-subscriber's JSON format to
//! put that identity on the record as the top-level field `agent`.
//!
//! | the event | JSON record |
//! |-----------|-------------|
//! | has a field `agent` | as the JSON formatter writes it (the field is there, flattened) |
//! | inside an agent's span | `{"agent":"<identity>", ...}` then the formatter's fields |
//! | neither | as the JSON formatter writes it |

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
    ctx.event_scope(event)?
        .find_map(|span| span.extensions().get::<AgentIdentity>().map(|a| a.0.clone()))
}

/// The identity from the spans only (for an event without its own `agent` field).
fn span_identity<S, N>(event: &Event<'_>, ctx: &FmtContext<'_, S, N>) -> Option<String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    ctx.event_scope()?
        .find_map(|span| span.extensions().get::<AgentIdentity>().map(|a| a.0.clone()))
        .filter(|_| event.metadata().fields().field(AGENT_FIELD).is_none())
}

/// A JSON event format with the agent's identity added as the field `agent` (see the
/// module docs); `F` is tracing-subscriber's `Format<Json>` with `flatten_event(true)`.
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
        let Some(identity) = span_identity(event, ctx) else {
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
            None => writer.write_str(&record),
        }
    }
}
