//! [`MetricsService`]: `GET /metrics` on a plain listener (`metrics-address`), for builds
//! without the web service or operators who keep scrapes off the web port.
//!
//! | request | answer |
//! |---------|--------|
//! | `GET /metrics` (any query) | `200`, OpenMetrics or the classic text format by the `Accept` header ([`Metrics::scrape`]) |
//! | `HEAD /metrics` | `200`, no body |
//! | another method on `/metrics` | `405` |
//! | another path | `404` |
//!
//! The listener is bound in the platform's bind phase (a port in use fails
//! [`PlatformBuilder::start`](crate::PlatformBuilder::start)) and served by one thread of
//! its own (tiny_http; no runtime, nothing on an arbiter thread). It stops first at
//! shutdown, after the scrape in progress.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::platform::Platform;
use crate::platform::service::{BindContext, PlatformService, ServiceContext, ServiceError, ServiceStop};

use super::{CONTENT_TYPE, Metrics};

const NAME: &str = "metrics";

/// Why the metrics listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// `metrics-address` is not `HOST:PORT`.
    #[error("metrics-address {text:?}: expected HOST:PORT with an IP address, e.g. 127.0.0.1:9466")]
    Address {
        /// The text given.
        text: String,
    },
    /// The address could not be bound.
    #[error("metrics-address {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The plain metrics listener, to plug into a platform with
/// [`PlatformBuilder::service`](crate::PlatformBuilder::service) (see the module docs).
pub struct MetricsService {
    address: SocketAddr,
    metrics: Metrics,
    listener: Option<TcpListener>,
}

impl MetricsService {
    /// Serves `metrics` at `http://{address}/metrics`.
    pub fn new(address: SocketAddr, metrics: Metrics) -> MetricsService {
        MetricsService {
            address,
            metrics,
            listener: None,
        }
    }

    /// Parses `metrics-address` (`HOST:PORT`, an IP address; port 0 picks one).
    pub fn parse_address(text: &str) -> Result<SocketAddr, MetricsError> {
        let trimmed = text.trim();
        let trimmed = trimmed.strip_prefix("http://").unwrap_or(trimmed);
        trimmed
            .trim_end_matches('/')
            .parse()
            .map_err(|_| MetricsError::Address {
                text: text.to_owned(),
            })
    }

    /// The address bound, once bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }
}

impl PlatformService for MetricsService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&mut self, ctx: &BindContext<'_>) -> Result<(), ServiceError> {
        ctx.instrument(std::sync::Arc::new(self.metrics.clone()));
        let listener = TcpListener::bind(self.address).map_err(|source| {
            ServiceError::new(
                NAME,
                MetricsError::Bind {
                    address: self.address,
                    source,
                }
                .to_string(),
            )
        })?;
        self.listener = Some(listener);
        Ok(())
    }

    fn addresses(&self) -> Vec<String> {
        self.local_addr()
            .map(|a| vec![format!("http://{a}/metrics")])
            .unwrap_or_default()
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let MetricsService {
            metrics, listener, ..
        } = *self;
        let listener = listener.ok_or_else(|| ServiceError::new(NAME, "started before it was bound"))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map(Arc::new)
            .map_err(|e| ServiceError::new(NAME, e.to_string()))?;
        let platform = ctx.platform().clone();
        let serving = server.clone();
        let thread: JoinHandle<()> = std::thread::Builder::new()
            .name("volttron-metrics".into())
            .spawn(move || serve(&serving, &metrics, &platform))
            .map_err(|e| ServiceError::new(NAME, e.to_string()))?;
        Ok(Box::new(move || {
            server.unblock();
            let _ = thread.join();
        }))
    }
}

/// Answers requests until the server is unblocked.
fn serve(server: &tiny_http::Server, metrics: &Metrics, platform: &Platform) {
    let header = |value: &str| tiny_http::Header::from_bytes("Content-Type", value).expect("a valid header");
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("");
        let response = if path != "/metrics" {
            tiny_http::Response::from_string("not found: the metrics are at /metrics\n").with_status_code(404)
        } else {
            match request.method() {
                tiny_http::Method::Get => {
                    let accept = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Accept"))
                        .map(|h| h.value.as_str().to_owned());
                    let (content_type, text) =
                        futures::executor::block_on(metrics.scrape(platform, accept.as_deref()));
                    tiny_http::Response::from_string(text).with_header(header(content_type))
                }
                tiny_http::Method::Head => {
                    tiny_http::Response::from_string(String::new()).with_header(header(CONTENT_TYPE))
                }
                _ => tiny_http::Response::from_string("only GET\n").with_status_code(405),
            }
        };
        if let Err(e) = request.respond(response) {
            tracing::debug!("metrics: a scraper went away: {e}");
        }
    }
}
