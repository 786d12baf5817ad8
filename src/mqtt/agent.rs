//! `platform.federation`: the agent that hands this platform's exported publications to
//! the link and answers operators.
//!
//! | RPC | answers |
//! |-----|---------|
//! | `list_platforms` | `[{"name","state":"online"|"offline","since","version","exports"}]`, the other platforms seen |
//! | `status` | this platform's link: `{"instance","broker","connected","platforms",[...],"backlog":{"messages","bytes","oldest_age_seconds","dropped"},"counters":{...}}` |
//! | `flush` | once everything published before is handed to the broker connection or durable in the backlog: `{"backlogged": n}` |
//!
//! With the `metrics` feature it also keeps `volttron_app_federation_backlog_messages`,
//! `_backlog_bytes`, `_backlog_oldest_age_seconds`, `_backlog_dropped` and
//! `volttron_app_federation_connected` (labelled `identity="platform.federation"`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::AgentContext;
use crate::core::{Map, Publication, Value};
use crate::mqtt::link::Link;
use crate::platform::backpressure::OverflowPolicy;

/// The agent's identity.
pub const IDENTITY: &str = "platform.federation";

/// The agent behind [`IDENTITY`].
pub(crate) struct FederationAgent {
    pub(crate) link: Arc<Link>,
}

/// The prefixes to subscribe to so that each publication to export arrives once: the
/// union of `prefixes` without those another one covers.
pub(crate) fn covering(mut prefixes: Vec<String>) -> Vec<String> {
    prefixes.sort();
    prefixes.dedup();
    let mut kept: Vec<String> = Vec::new();
    for p in prefixes {
        if !kept.iter().any(|k| p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    kept
}

impl FederationAgent {
    fn on_publication(&mut self, _ctx: &AgentContext, p: &Publication) {
        // What an import rule published came from MQTT: never sent back.
        if p.sender.as_str() != IDENTITY {
            self.link.export(p);
        }
    }

    fn backlog_age_seconds(&self) -> f64 {
        let oldest = self.link.outbox.figures.oldest_ms.load(Ordering::Relaxed);
        if oldest == 0 {
            return 0.0;
        }
        let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
        now.saturating_sub(oldest) as f64 / 1000.0
    }
}

#[crate::agent]
impl FederationAgent {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        let config = &self.link.config;
        let mut prefixes = config.export.clone();
        prefixes.extend(config.mqtt_export.iter().map(|r| r.prefix.clone()));
        for prefix in covering(prefixes) {
            // Checked when the configuration was read: a failure here is a bug, logged.
            if let Err(e) = ctx.subscribe_with("", &prefix, OverflowPolicy::DropOldest, Self::on_publication)
            {
                tracing::error!(prefix, "federation: cannot subscribe to an exported prefix: {e}");
            }
        }
    }

    /// The other platforms seen.
    #[rpc]
    fn list_platforms(&mut self) -> Value {
        self.link.platforms()
    }

    /// This platform's link.
    #[rpc]
    fn status(&mut self) -> Value {
        let link = &self.link;
        let f = &link.outbox.figures;
        let c = &link.counters;
        let n = |a: &std::sync::atomic::AtomicU64| Value::from(a.load(Ordering::Relaxed) as i64);
        let mut backlog = Map::new();
        backlog.insert("messages".into(), n(&f.messages));
        backlog.insert("bytes".into(), n(&f.bytes));
        backlog.insert(
            "oldest_age_seconds".into(),
            Value::from(self.backlog_age_seconds()),
        );
        backlog.insert("dropped".into(), n(&f.dropped));
        backlog.insert("write_errors".into(), n(&f.errors));
        let mut counters = Map::new();
        for (name, a) in [
            ("published", &c.published),
            ("received", &c.received),
            ("duplicates", &c.duplicates),
            ("refused", &c.refused),
            ("calls_sent", &c.calls_sent),
            ("calls_served", &c.calls_served),
            ("connections", &c.reconnects),
        ] {
            counters.insert(name.into(), n(a));
        }
        let mut m = Map::new();
        m.insert("instance".into(), Value::from(link.me.as_str()));
        m.insert("broker".into(), Value::from(link.config.broker.to_string()));
        m.insert("connected".into(), Value::from(link.is_connected()));
        m.insert("platforms".into(), link.platforms());
        m.insert("backlog".into(), Value::Map(backlog));
        m.insert("counters".into(), Value::Map(counters));
        Value::Map(m)
    }

    /// Waits until everything published before is sent or durable in the backlog.
    #[rpc]
    async fn flush(&mut self) -> Value {
        let link = self.link.clone();
        let backlogged = link.outbox.flush().await;
        let mut m = Map::new();
        m.insert("backlogged".into(), Value::from(backlogged as i64));
        Value::Map(m)
    }

    /// Keeps the metrics of the module docs.
    #[periodic(secs = 5)]
    fn gauges(&mut self, ctx: &AgentContext) {
        #[cfg(feature = "metrics")]
        if let Some(m) = ctx.metrics() {
            let f = &self.link.outbox.figures;
            let set = |name: &str, help: &str, v: f64| {
                if let Ok(g) = m.gauge(name, help) {
                    g.set(v);
                }
            };
            set(
                "federation_backlog_messages",
                "Publications waiting in the federation's backlog.",
                f.messages.load(Ordering::Relaxed) as f64,
            );
            set(
                "federation_backlog_bytes",
                "Bytes in the federation's backlog.",
                f.bytes.load(Ordering::Relaxed) as f64,
            );
            set(
                "federation_backlog_oldest_age_seconds",
                "Age of the oldest publication in the federation's backlog (0 when empty).",
                self.backlog_age_seconds(),
            );
            set(
                "federation_backlog_dropped",
                "Publications the backlog's policies dropped since start.",
                f.dropped.load(Ordering::Relaxed) as f64,
            );
            set(
                "federation_connected",
                "1 while the broker connection is up.",
                if self.link.is_connected() { 1.0 } else { 0.0 },
            );
        }
        #[cfg(not(feature = "metrics"))]
        let _ = ctx;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn covering_prefixes_drop_covered_ones() {
        let c = super::covering(vec![
            "devices/a".into(),
            "devices/".into(),
            "alerts/".into(),
            "devices/".into(),
        ]);
        assert_eq!(c, ["alerts/", "devices/"]);
    }
}
