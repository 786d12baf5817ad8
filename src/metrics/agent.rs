//! An agent's own series, through its context: [`AgentContext::metrics`].
//!
//! ```
//! use volttron::prelude::*;
//!
//! #[derive(Default)]
//! struct Meter;
//!
//! #[volttron::agent]
//! impl Meter {
//!     #[subscribe("devices/")]
//!     fn reading(&mut self, ctx: &AgentContext, _p: &Publication) {
//!         if let Some(m) = ctx.metrics() {
//!             // `volttron_app_readings_total{identity="meter"}`
//!             m.counter("readings", "Readings seen.").expect("a valid name").inc();
//!         }
//!     }
//! }
//! ```
//!
//! | call | series | type |
//! |------|--------|------|
//! | [`AgentMetrics::counter`] | `volttron_app_<name>_total{identity}` | counter |
//! | [`AgentMetrics::gauge`] | `volttron_app_<name>{identity}` | gauge (`f64`) |
//! | [`AgentMetrics::histogram`] | `volttron_app_<name>_bucket{identity,le}`… | histogram (the first agent's buckets hold for the name) |
//!
//! Each name is one family shared by every agent that uses it, each agent's series
//! labelled with its identity; asking again for a name returns the same series. A name
//! already registered as another type is refused ([`AgentMetricError::TypeMismatch`]).
//! `ctx.metrics()` is `None` on a platform without [`Metrics`] attached, and in an agent's
//! own process (an agent attached through the bridge keeps no registry).

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::Metrics;
use crate::agent::AgentContext;
use crate::core::Identity;

/// The label every agent series carries.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IdentityLabel {
    identity: String,
}

/// Makes a histogram with the buckets the name was first registered with.
#[derive(Clone)]
pub(crate) struct Buckets(Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A gauge of `f64` values.
pub type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The families agents registered, by name.
#[derive(Default)]
pub(crate) struct AgentFamilies(HashMap<String, AgentFamily>);

pub(crate) enum AgentFamily {
    Counter(Family<IdentityLabel, Counter>),
    Gauge(Family<IdentityLabel, FloatGauge>),
    Histogram(Family<IdentityLabel, Histogram, Buckets>),
}

impl AgentFamily {
    fn kind(&self) -> &'static str {
        match self {
            AgentFamily::Counter(_) => "counter",
            AgentFamily::Gauge(_) => "gauge",
            AgentFamily::Histogram(_) => "histogram",
        }
    }
}

/// Why an agent's metric could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentMetricError {
    /// Not a Prometheus metric name (`[a-zA-Z_][a-zA-Z0-9_]*`), or a counter's name that
    /// ends in `_total` (the suffix is added).
    #[error("metric name {0:?}: expected [a-zA-Z_][a-zA-Z0-9_]* (a counter's without `_total`)")]
    InvalidName(String),
    /// The name is registered as another type.
    #[error("metric {name:?} is already a {registered}")]
    TypeMismatch {
        /// The name.
        name: String,
        /// The type it has.
        registered: &'static str,
    },
    /// A histogram without buckets, or with buckets not finite and increasing.
    #[error("histogram {0:?}: buckets must be finite and strictly increasing, at least one")]
    InvalidBuckets(String),
}

/// One agent's handle on its own series (see the module docs).
#[derive(Clone)]
pub struct AgentMetrics {
    metrics: Metrics,
    identity: Identity,
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentMetrics")
            .field("identity", &self.identity)
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AgentMetrics {
    /// The handle of `identity`'s series in `metrics` (an embedding application may make one
    /// for a component that is not an agent).
    pub fn new(metrics: Metrics, identity: Identity) -> AgentMetrics {
        AgentMetrics { metrics, identity }
    }

    fn label(&self) -> IdentityLabel {
        IdentityLabel {
            identity: self.identity.as_str().to_owned(),
        }
    }

    /// Finds `name`'s family or registers the one `make` gives, then picks this agent's
    /// series from it with `pick`.
    fn series<M>(
        &self,
        name: &str,
        help: &str,
        make: impl FnOnce() -> AgentFamily,
        pick: impl Fn(&AgentFamily, &IdentityLabel) -> Option<M>,
    ) -> Result<M, AgentMetricError> {
        if !valid_name(name) {
            return Err(AgentMetricError::InvalidName(name.to_owned()));
        }
        let label = self.label();
        let mut families = self.metrics.inner.agent_families.lock();
        if let Some(family) = families.0.get(name) {
            return pick(family, &label).ok_or_else(|| AgentMetricError::TypeMismatch {
                name: name.to_owned(),
                registered: family.kind(),
            });
        }
        let family = make();
        {
            let mut registry = self.metrics.inner.registry.lock();
            let app = registry
                .sub_registry_with_prefix("volttron")
                .sub_registry_with_prefix("app");
            match &family {
                AgentFamily::Counter(f) => app.register(name, help, f.clone()),
                AgentFamily::Gauge(f) => app.register(name, help, f.clone()),
                AgentFamily::Histogram(f) => app.register(name, help, f.clone()),
            }
        }
        let picked = pick(&family, &label).expect("the family just made has this type");
        families.0.insert(name.to_owned(), family);
        Ok(picked)
    }

    /// This agent's counter `volttron_app_<name>_total`.
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, AgentMetricError> {
        if name.ends_with("_total") {
            return Err(AgentMetricError::InvalidName(name.to_owned()));
        }
        self.series(
            name,
            help,
            || AgentFamily::Counter(Family::default()),
            |f, l| match f {
                AgentFamily::Counter(f) => Some(f.get_or_create_owned(l)),
                _ => None,
            },
        )
    }

    /// This agent's gauge `volttron_app_<name>`.
    pub fn gauge(&self, name: &str, help: &str) -> Result<FloatGauge, AgentMetricError> {
        self.series(
            name,
            help,
            || AgentFamily::Gauge(Family::default()),
            |f, l| match f {
                AgentFamily::Gauge(f) => Some(f.get_or_create_owned(l)),
                _ => None,
            },
        )
    }

    /// This agent's histogram `volttron_app_<name>` with `buckets` (upper bounds; the
    /// buckets of the first registration of the name hold for every agent).
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: impl IntoIterator<Item = f64>,
    ) -> Result<Histogram, AgentMetricError> {
        let buckets: Vec<f64> = buckets.into_iter().collect();
        let increasing = buckets.windows(2).all(|w| w[0] < w[1]);
        if buckets.is_empty() || !increasing || buckets.iter().any(|b| !b.is_finite()) {
            return Err(AgentMetricError::InvalidBuckets(name.to_owned()));
        }
        self.series(
            name,
            help,
            || AgentFamily::Histogram(Family::new_with_constructor(Buckets(buckets.into()))),
            |f, l| match f {
                AgentFamily::Histogram(f) => Some(f.get_or_create_owned(l)),
                _ => None,
            },
        )
    }
}

impl AgentContext {
    /// This agent's own Prometheus series (feature `metrics`), labelled with its identity:
    /// `None` when the platform has no [`Metrics`] attached (see
    /// [`crate::metrics::agent`]).
    pub fn metrics(&self) -> Option<AgentMetrics> {
        let metrics = self
            .inner
            .endpoint
            .router
            .instrumentation
            .get()?
            .as_any()
            .downcast_ref::<Metrics>()?;
        Some(AgentMetrics::new(metrics.clone(), self.identity().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_are_checked() {
        let metrics = Metrics::new();
        let a = AgentMetrics::new(metrics.clone(), Identity::new("a").unwrap());
        let b = AgentMetrics::new(metrics.clone(), Identity::new("b").unwrap());
        a.counter("jobs", "Jobs.").unwrap().inc();
        b.counter("jobs", "Jobs.").unwrap().inc_by(2);
        // The same series again.
        assert_eq!(a.counter("jobs", "Jobs.").unwrap().get(), 1);
        assert_eq!(
            a.gauge("jobs", "x").unwrap_err(),
            AgentMetricError::TypeMismatch {
                name: "jobs".into(),
                registered: "counter"
            }
        );
        for bad in ["", "9lives", "a-b", "jobs_total"] {
            assert_eq!(
                a.counter(bad, "x").unwrap_err(),
                AgentMetricError::InvalidName(bad.into())
            );
        }
        assert!(matches!(
            a.histogram("h", "x", [1.0, 1.0]),
            Err(AgentMetricError::InvalidBuckets(_))
        ));
        assert!(matches!(
            a.histogram("h", "x", []),
            Err(AgentMetricError::InvalidBuckets(_))
        ));
        a.histogram("h", "x", [0.1, 1.0]).unwrap().observe(0.5);
        a.gauge("level", "x").unwrap().set(2.5);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.inner.registry.lock()).unwrap();
        assert!(
            text.contains("volttron_app_jobs_total{identity=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("volttron_app_jobs_total{identity=\"b\"} 2"),
            "{text}"
        );
        assert!(text.contains("volttron_app_level{identity=\"a\"} 2.5"), "{text}");
        assert!(
            text.contains("volttron_app_h_bucket{le=\"1.0\",identity=\"a\"} 1"),
            "{text}"
        );
        // One family per name.
        assert_eq!(
            text.matches("# TYPE volttron_app_jobs counter").count(),
            1,
            "{text}"
        );
    }
}
