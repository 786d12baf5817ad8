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
//! | an agent's own series | [`Metrics::register`] (an agent holds a `Metrics` clone), labelled with its identity |
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

mod collector;
mod service;
mod snapshot;
pub mod text_format;

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::registry::{Metric, Registry};

use crate::platform::Platform;

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
        Metrics {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
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
