//! OpenTelemetry export of traces (feature `otel`): traced work becomes spans, exported
//! over OTLP/HTTP to a collector.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! # fn demo() -> Result<(), volttron::otel::OtelError> {
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (and the other OTEL_ variables)
//! let otel = volttron::otel::OtelTracing::from_env("volttron")?;
//! tracing_subscriber::registry().with(otel.layer()).init();
//! otel.install();
//! // ... run the platform; at exit:
//! otel.shutdown(); // flushes what is still batched
//! # Ok(()) }
//! ```
//!
//! | traced work | span | parent |
//! |-------------|------|--------|
//! | a handler run of a publication with a `traceparent` header, or of a traced request | `"<identity> <kind>"` (server), attributes `volttron.identity`, `volttron.kind` | the context received |
//! | a call made with a trace (inside traced work, or [`RpcCall::trace`](crate::platform::RpcCall::trace)) | `"<callee>.<method>"` (client), attributes `volttron.caller`, `rpc.service`, `rpc.method` | the handler's span |
//! | anything else | none (no cost) | — |
//!
//! The request carries the client span's context, so the callee's handler span is its child:
//! a driver → controller → actuator chain is one trace, across the bridge too (both sides of
//! a bridged agent make their spans if both install an exporter). Publications a handler
//! makes carry the handler span's context.
//!
//! The exporter reads the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL` = `http/protobuf`
//! (default) or `http/json`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`),
//! batches spans on a thread of its own (never on the platform's threads) and sends them
//! over plain `http://` (a collector on the host or the site network; this build links no
//! TLS client for it).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, TraceContextExt, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::agent::trace_scope::{ActiveSpan, SpanFactory};
use crate::core::trace::{TRACEPARENT, TRACESTATE};
use crate::core::{Identity, TraceContext};
use crate::platform::counters::HandlerKind;

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The OTLP exporter refused its configuration (a bad endpoint variable, ...).
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

/// The OTLP exporter and its tracer: give [`layer`](Self::layer) to the `tracing`
/// subscriber and [`install`](Self::install) the span factory (see the module docs).
#[derive(Debug, Clone)]
pub struct OtelTracing {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

impl OtelTracing {
    /// An exporter configured by the `OTEL_EXPORTER_OTLP_*` variables, its spans named as
    /// from `service_name` (the resource's `service.name`; `OTEL_SERVICE_NAME` wins).
    pub fn from_env(service_name: &str) -> Result<OtelTracing, OtelError> {
        Self::build(None, service_name)
    }

    /// An exporter sending to `traces_url` (the whole URL, e.g.
    /// `http://127.0.0.1:4318/v1/traces`), for a host that keeps the address in its own
    /// configuration; the other `OTEL_EXPORTER_OTLP_*` variables still apply.
    pub fn with_endpoint(traces_url: &str, service_name: &str) -> Result<OtelTracing, OtelError> {
        Self::build(Some(traces_url), service_name)
    }

    fn build(endpoint: Option<&str>, service_name: &str) -> Result<OtelTracing, OtelError> {
        use opentelemetry_otlp::WithExportConfig;
        let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok().as_deref() {
            Some("http/json") => opentelemetry_otlp::Protocol::HttpJson,
            _ => opentelemetry_otlp::Protocol::HttpBinary,
        };
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol);
        if let Some(url) = endpoint {
            builder = builder.with_endpoint(url);
        }
        let exporter = builder.build().map_err(|e| OtelError::Exporter(e.to_string()))?;
        let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service_name.to_owned());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(name)
                    .build(),
            )
            .build();
        let tracer = provider.tracer("volttron");
        Ok(OtelTracing { provider, tracer })
    }

    /// The `tracing` layer that turns the platform's spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, Tracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    /// Makes traced work into spans in this process ([`set_span_factory`](crate::agent::trace_scope::set_span_factory));
    /// false if a factory was installed already.
    pub fn install(&self) -> bool {
        crate::agent::trace_scope::set_span_factory(OtelSpans)
    }

    /// Exports what is still batched; call before the process exits.
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}

/// The span factory: `tracing` spans whose OpenTelemetry parent is the context received.
struct OtelSpans;

/// Reads a [`TraceContext`] as the propagator's carrier.
struct Carrier<'a>(&'a TraceContext);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.0.traceparent()),
            TRACESTATE => self.0.tracestate(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// Collects the propagator's output.
#[derive(Default)]
struct Headers {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// Gives `span` the parent `parent` and returns it as an [`ActiveSpan`] with its context.
fn activate(span: tracing::Span, parent: &TraceContext) -> Option<ActiveSpan> {
    if span.is_disabled() {
        return None;
    }
    let propagator = TraceContextPropagator::new();
    span.set_parent(propagator.extract(&Carrier(parent))).ok()?;
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut out = Headers::default();
    propagator.inject_context(&context, &mut out);
    let context = TraceContext::parse(&out.traceparent?, out.tracestate.as_deref()).ok()?;
    Some(ActiveSpan {
        context,
        guard: Box::new(span),
    })
}

impl SpanFactory for OtelSpans {
    fn handler(&self, identity: &Identity, kind: HandlerKind, parent: &TraceContext) -> Option<ActiveSpan> {
        let span = tracing::info_span!(
            target: "volttron::trace",
            "handler",
            otel.name = format!("{identity} {}", kind.as_str()),
            otel.kind = ?SpanKind::Server,
            volttron.identity = identity.as_str(),
            volttron.kind = kind.as_str(),
        );
        activate(span, parent)
    }

    fn call(
        &self,
        caller: &Identity,
        callee: &str,
        method: &str,
        parent: &TraceContext,
    ) -> Option<ActiveSpan> {
        let span = tracing::info_span!(
            target: "volttron::trace",
            "call",
            otel.name = format!("{callee}.{method}"),
            otel.kind = ?SpanKind::Client,
            volttron.caller = caller.as_str(),
            rpc.service = callee,
            rpc.method = method,
        );
        activate(span, parent)
    }
}
