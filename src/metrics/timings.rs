//! The histograms the platform's sampled timings go into: [`Metrics`](super::Metrics) is the
//! platform's [`Instrumentation`] (see [`crate::platform::counters`] for what is sampled).

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::Identity;
use crate::platform::counters::HandlerKind;

/// `identity` and `kind` of a handler run (the identity shared, not copied: a sample's
/// lookup allocates nothing).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HandlerLabels {
    identity: IdentityValue,
    kind: &'static str,
}

/// An [`Identity`] as a label value.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) struct IdentityValue(Identity);

impl EncodeLabelValue for IdentityValue {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.0.as_str())
    }
}

/// The callee of an RPC call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CalleeLabels {
    callee: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 µs to 16 s, by fours: a handler or a call on one machine.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 4.0, 13))
}

/// 100 µs to 0.8 s, by twos: a write made durable.
fn fsync_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-4, 2.0, 14))
}

/// The platform's histograms.
pub(crate) struct Timings {
    handler: HistogramFamily<HandlerLabels>,
    rpc: HistogramFamily<CalleeLabels>,
    fsync: Histogram,
}

impl Timings {
    /// Made and registered in `registry` (under `volttron_`).
    pub(crate) fn register(registry: &mut Registry) -> Timings {
        let t = Timings {
            handler: Family::new_with_constructor(latency_buckets as fn() -> Histogram),
            rpc: Family::new_with_constructor(latency_buckets as fn() -> Histogram),
            fsync: fsync_buckets(),
        };
        let r = registry.sub_registry_with_prefix("volttron");
        r.register_with_unit(
            "agent_handler",
            "Handler run time (a sample: one run in 16 per agent and kind).",
            prometheus_client::registry::Unit::Seconds,
            t.handler.clone(),
        );
        r.register_with_unit(
            "rpc_round_trip",
            "RPC round trip at the caller, by callee (a sample: one call in 16 per callee).",
            prometheus_client::registry::Unit::Seconds,
            t.rpc.clone(),
        );
        r.register_with_unit(
            "config_store_fsync",
            "Time to make a config-store write durable (its fsyncs).",
            prometheus_client::registry::Unit::Seconds,
            t.fsync.clone(),
        );
        t
    }

    pub(crate) fn handler_run(&self, identity: &Identity, kind: HandlerKind, elapsed: Duration) {
        self.handler
            .get_or_create(&HandlerLabels {
                identity: IdentityValue(identity.clone()),
                kind: kind.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn rpc_round_trip(&self, callee: &str, elapsed: Duration) {
        self.rpc
            .get_or_create(&CalleeLabels {
                callee: callee.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn config_fsync(&self, elapsed: Duration) {
        self.fsync.observe(elapsed.as_secs_f64());
    }
}
