//! Prometheus metrics (feature `metrics`): a [`Metrics`] registry that an embedding
//! application may own or read, whose platform series are computed at scrape time from
//! the platform itself, so the hot paths pay nothing for them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use volttron::metrics::{Metrics, MetricsService};
//! let metrics = Metrics::new();
//! let platform = volttron::Platform::builder()
//!     .service(MetricsService::new("127.0.0.1:9466".parse()?, metrics.clone()))
//!     .start()
//!     .await?;
//! // Or read them in the host application, to serve or push as it likes:
//! let text = metrics.encode(&platform).await;
//! # let _ = text; platform.shutdown().await; Ok(()) }
//! ```
//!
//! | where | how |
//! |-------|-----|
//! | `GET /metrics` on the web service | `WebService::metrics(metrics)` (the `volttron` binary does it) |
//! | `GET /metrics` on `metrics-address` | [`MetricsService`]: a plain listener on a thread of its own, for builds without `web` |
//! | in the host | [`Metrics::encode`], or [`Metrics::with_registry`] to put the series into the host's own `Registry` |
//! | an agent's own series | [`AgentContext::metrics`](crate::AgentContext::metrics) (labelled with its identity), or [`Metrics::register`] for the host's |
//!
//! The series (OpenMetrics text; names under `volttron_`; labels only `identity`, `policy`,
//! `status`, `version`, `instance` — never topics or argument values):
//!
//! | series | type | what |
//! |--------|------|------|
//! | `volttron_build_info{version,instance}` | gauge | 1 |
//! | `volttron_uptime_seconds` | gauge | since these metrics were made (with the platform, in the binary) |
//! | `volttron_peers` | gauge | connected peers |
//! | `volttron_subscriptions` | gauge | subscriptions on every bus |
//! | `volttron_agent_up{identity}` | gauge | 1 while connected |
//! | `volttron_agent_mailbox_depth{identity}` | gauge | envelopes waiting |
//! | `volttron_agent_mailbox_capacity{identity}` | gauge | publications that may wait |
//! | `volttron_agent_publications_dropped_total{identity,policy}` | counter | by overflow policy (`drop_oldest`, `drop_newest`, `disconnect`) |
//! | `volttron_agent_restarts_total{identity}` | counter | restarts by its supervisor |
//! | `volttron_agent_health{identity,status}` | gauge | 1 for the status it last reported (`GOOD`, `BAD`, `UNKNOWN`) |
//! | `volttron_agent_heartbeat_age_seconds{identity}` | gauge | since its last heartbeat |
//! | `volttron_agent_process_running{identity}` | gauge | installed agents: 1 while its process runs |
//! | `volttron_agent_gave_up{identity}` | gauge | installed agents: 1 once its restart policy gave up |
//! | `volttron_agent_cpu_ratio{identity}` | gauge | installed agents: CPU, cores (1.0 = one core) |
//! | `volttron_agent_resident_memory_bytes{identity}` | gauge | installed agents: RSS |
//! | `volttron_agent_reserved_memory_bytes{identity}` | gauge | installed agents: its contract's memory |
//! | `volttron_agent_reserved_cpu_mips{identity}` | gauge | installed agents: its contract's CPU |
//!
//! The platform's hot-path counters ([`crate::platform::counters`]: always kept, read at
//! scrape time) and the histograms of its sampled timings (when this `Metrics` is the
//! platform's instrumentation: [`PlatformBuilder::instrumentation`](crate::PlatformBuilder::instrumentation),
//! or a [`MetricsService`], which attaches its own when it binds):
//!
//! | series | type | what |
//! |--------|------|------|
//! | `volttron_agent_handler_runs_total{identity,kind}` | counter | handler runs; `kind`: `publication`, `rpc`, `timer`, `config`, `event`, `lifecycle` |
//! | `volttron_agent_handler_seconds{identity,kind}` | histogram | run time of one run in 16 per agent and kind (async handlers to completion) |
//! | `volttron_agent_handler_panics_total{identity}` | counter | handlers that panicked (kept across restarts) |
//! | `volttron_agent_deliveries_total{identity}` | counter | publications queued for the agent |
//! | `volttron_rpc_calls_total{callee}` | counter | calls and notifications to the callee, from anyone |
//! | `volttron_rpc_errors_total{callee,code}` | counter | failed calls by JSON-RPC code (`-32601`, `-32602`, `-32000`, `-32001`) |
//! | `volttron_rpc_timeouts_total{callee}` | counter | calls whose deadline passed |
//! | `volttron_rpc_round_trip_seconds{callee}` | histogram | round trip at the caller of one call in 16 per callee |
//! | `volttron_pubsub_publishes_total` | counter | publishes, from anyone |
//! | `volttron_authz_refusals_total` | counter | publishes, subscriptions and calls refused by `authz.json` |
//! | `volttron_bridge_connections_total` | counter | bridge connections accepted |
//! | `volttron_bridge_handshake_failures_total` | counter | connections refused or failed before their session |
//! | `volttron_bridge_frames_total{direction}` / `volttron_bridge_bytes_total{direction}` | counter | `in`, `out` |
//! | `volttron_bridge_keepalive_closes_total` | counter | links closed for silence |
//! | `volttron_bridge_outbox_full_total` | counter | frames dropped: an agent stopped reading and its outbox is full |
//! | `volttron_resources_budget_cpu_mips` / `..._memory_bytes` | gauge | what agents' contracts may reserve in all (control service) |
//! | `volttron_resources_reserved_cpu_mips` / `..._memory_bytes` | gauge | what the running agents reserve (left: budget − reserved) |
//! | `volttron_resources_enforcement_actions_total{action}` | counter | `warn`, `terminate`: agents over their contract under pressure |
//! | `volttron_supervisor_give_ups_total` | counter | supervisors giving up on a child over its restart limit |
//! | `volttron_config_store_writes_total` | counter | config-store writes made durable |
//! | `volttron_config_store_fsync_seconds` | histogram | the time to make each durable |
//! | `volttron_app_<name>{identity}` | any | an agent's own, through [`AgentContext::metrics`](crate::AgentContext::metrics) (see [`agent`]) |

pub mod agent;
mod collector;
mod service;
mod snapshot;
pub mod text_format;
mod timings;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::registry::{Metric, Registry};

use crate::platform::Platform;
use crate::platform::counters::{HandlerKind, Instrumentation};

pub use agent::{AgentMetricError, AgentMetrics};
/// The prometheus-client crate this module is built on, for the host's and agents' own
/// metrics and registries (the same version, so they register here).
pub use prometheus_client;
pub use service::{MetricsError, MetricsService};
pub use snapshot::{AgentSample, PlatformSnapshot};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A metrics registry with the platform's series in it. Clones share it.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Mutex<Registry>,
    timings: timings::Timings,
    agent_families: Mutex<agent::AgentFamilies>,
    latest: Arc<collector::SnapshotCollector>,
    /// One scrape at a time: a snapshot is stored, then encoded.
    scrape: futures::lock::Mutex<()>,
    created: Instant,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry of its own.
    pub fn new() -> Metrics {
        Metrics::with_registry(Registry::default())
    }

    /// The host application's `registry`: the platform's series are added to it, and
    /// [`encode`](Self::encode) encodes all of it.
    pub fn with_registry(mut registry: Registry) -> Metrics {
        let latest = Arc::new(collector::SnapshotCollector::default());
        registry.register_collector(Box::new(latest.clone()));
        let timings = timings::Timings::register(&mut registry);
        Metrics {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                timings,
                agent_families: Mutex::new(agent::AgentFamilies::default()),
                latest,
                scrape: futures::lock::Mutex::new(()),
                created: Instant::now(),
            }),
        }
    }

    /// Registers a metric of the application's or an agent's (prometheus-client's `Counter`,
    /// `Gauge`, `Histogram`, `Family`...) under `volttron_<name>`. An agent labels its series
    /// with its identity (a `Family` keyed by it). Names ending in `_total` are refused by
    /// prometheus-client: a counter's suffix is added for it.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .registry
            .lock()
            .sub_registry_with_prefix("volttron")
            .register(name, help, metric);
    }

    /// A scrape answering an `Accept` header: OpenMetrics ([`CONTENT_TYPE`]) when it asks
    /// for it (Prometheus does), else the classic text format
    /// ([`text_format::TEXT_CONTENT_TYPE`], which `promtool check metrics` reads). Returns
    /// the content type and the body.
    pub async fn scrape(&self, platform: &Platform, accept: Option<&str>) -> (&'static str, String) {
        let text = self.encode(platform).await;
        if text_format::accepts_openmetrics(accept) {
            (CONTENT_TYPE, text)
        } else {
            (text_format::TEXT_CONTENT_TYPE, text_format::to_text(&text))
        }
    }

    /// Every series, as OpenMetrics text ([`CONTENT_TYPE`]): the platform's taken now.
    pub async fn encode(&self, platform: &Platform) -> String {
        let snapshot = PlatformSnapshot::take(platform, self.inner.created).await;
        let _one = self.inner.scrape.lock().await;
        self.inner.latest.store(snapshot);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry.lock());
        text
    }
}

/// The platform's sampled timings become histograms: give a `Metrics` to
/// [`PlatformBuilder::instrumentation`](crate::PlatformBuilder::instrumentation) (a
/// [`MetricsService`] attaches its own when it binds).
impl Instrumentation for Metrics {
    fn handler_run(&self, identity: &crate::core::Identity, kind: HandlerKind, elapsed: Duration) {
        self.inner.timings.handler_run(identity, kind, elapsed);
    }

    fn rpc_round_trip(&self, callee: &str, elapsed: Duration) {
        self.inner.timings.rpc_round_trip(callee, elapsed);
    }

    fn config_fsync(&self, elapsed: Duration) {
        self.inner.timings.config_fsync(elapsed);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
