//! Encodes the latest [`PlatformSnapshot`] as the registry's platform series.

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::snapshot::{AgentSample, PlatformSnapshot, ProcessSample};
use crate::platform::counters::HandlerKind;

/// Holds the snapshot the scrape in progress took.
#[derive(Debug, Default)]
pub(crate) struct SnapshotCollector {
    latest: Mutex<Option<PlatformSnapshot>>,
}

impl SnapshotCollector {
    pub(crate) fn store(&self, snapshot: PlatformSnapshot) {
        *self.latest.lock() = Some(snapshot);
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One family of `kind`: `name` with a value per label set (nothing for no rows).
fn family<'a, V>(
    encoder: &mut DescriptorEncoder,
    kind: MetricType,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a>, V)>,
    encode: impl Fn(V, prometheus_client::encoding::MetricEncoder<'_>) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        encode(value, family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One gauge family.
fn gauges<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a>, f64)>,
) -> Result<(), std::fmt::Error> {
    family(encoder, MetricType::Gauge, name, help, rows, |v, e| {
        ConstGauge::new(v).encode(e)
    })
}

/// One counter family.
fn counters<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    family(encoder, MetricType::Counter, name, help, rows, |v, e| {
        ConstCounter::new(v).encode(e)
    })
}

fn per_agent<'a>(
    s: &'a PlatformSnapshot,
    value: impl Fn(&AgentSample) -> Option<f64> + 'a,
) -> impl Iterator<Item = (Labels<'a>, f64)> + 'a {
    s.agents
        .iter()
        .filter_map(move |(id, a)| value(a).map(|v| (vec![("identity", id.as_str())], v)))
}

fn per_process<'a>(
    s: &'a PlatformSnapshot,
    value: impl Fn(&ProcessSample) -> Option<f64> + 'a,
) -> impl Iterator<Item = (Labels<'a>, f64)> + 'a {
    per_agent(s, move |a| a.process.as_ref().and_then(&value))
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self.latest.lock();
        let Some(s) = latest.as_ref() else {
            return Ok(());
        };
        let e = &mut e;
        gauges(
            e,
            "volttron_build_info",
            "The build of the platform (always 1).",
            [(
                vec![("version", s.version), ("instance", s.instance.as_str())],
                1.0,
            )],
        )?;
        gauges(
            e,
            "volttron_uptime_seconds",
            "Seconds since the platform's metrics were made.",
            [(vec![], s.uptime_seconds)],
        )?;
        gauges(
            e,
            "volttron_peers",
            "Connected peers.",
            [(vec![], s.peers as f64)],
        )?;
        gauges(
            e,
            "volttron_subscriptions",
            "Subscriptions on every bus.",
            [(vec![], s.subscriptions as f64)],
        )?;
        gauges(
            e,
            "volttron_agent_up",
            "1 while the agent is connected.",
            per_agent(s, |a| Some(flag(a.up))),
        )?;
        gauges(
            e,
            "volttron_agent_mailbox_depth",
            "Envelopes waiting in the agent's mailbox.",
            per_agent(s, |a| a.up.then_some(a.mailbox_depth as f64)),
        )?;
        gauges(
            e,
            "volttron_agent_mailbox_capacity",
            "Publications the agent's mailbox may hold.",
            per_agent(s, |a| a.up.then_some(a.mailbox_capacity as f64)),
        )?;
        counters(
            e,
            "volttron_agent_publications_dropped",
            "Publications dropped for a full mailbox, by overflow policy.",
            s.agents.iter().filter(|(_, a)| a.up).flat_map(|(id, a)| {
                a.dropped
                    .iter()
                    .map(move |(policy, n)| (vec![("identity", id.as_str()), ("policy", *policy)], *n))
            }),
        )?;
        counters(
            e,
            "volttron_agent_restarts",
            "Restarts of the agent by its supervisor.",
            s.agents
                .iter()
                .filter(|(_, a)| a.up)
                .map(|(id, a)| (vec![("identity", id.as_str())], a.restarts)),
        )?;
        gauges(
            e,
            "volttron_agent_health",
            "1 for the status the agent last reported in a heartbeat.",
            s.agents.iter().filter_map(|(id, a)| {
                a.health
                    .as_deref()
                    .map(|h| (vec![("identity", id.as_str()), ("status", h)], 1.0))
            }),
        )?;
        gauges(
            e,
            "volttron_agent_heartbeat_age_seconds",
            "Seconds since the agent's last heartbeat.",
            per_agent(s, |a| a.heartbeat_age),
        )?;
        gauges(
            e,
            "volttron_agent_process_running",
            "Installed agents: 1 while the agent's process runs.",
            per_process(s, |p| Some(flag(p.running))),
        )?;
        gauges(
            e,
            "volttron_agent_gave_up",
            "Installed agents: 1 once the restart policy gave up.",
            per_process(s, |p| Some(flag(p.gave_up))),
        )?;
        gauges(
            e,
            "volttron_agent_cpu_ratio",
            "Installed agents: CPU use in cores (1.0 is one core).",
            per_process(s, |p| p.cpu_cores),
        )?;
        gauges(
            e,
            "volttron_agent_resident_memory_bytes",
            "Installed agents: resident memory.",
            per_process(s, |p| p.rss_bytes.map(|b| b as f64)),
        )?;
        gauges(
            e,
            "volttron_agent_reserved_memory_bytes",
            "Installed agents: the memory their resource contract reserves.",
            per_process(s, |p| p.reserved_memory_bytes.map(|b| b as f64)),
        )?;
        gauges(
            e,
            "volttron_agent_reserved_cpu_mips",
            "Installed agents: the CPU their resource contract reserves, in MIPS.",
            per_process(s, |p| p.reserved_cpu_mips),
        )?;
        resources(e, s)?;
        hot_paths(e, s)
    }
}

/// The admission budget, what running agents reserve of it, the enforcement actions.
fn resources(e: &mut DescriptorEncoder, s: &PlatformSnapshot) -> Result<(), std::fmt::Error> {
    let Some(r) = &s.resources else {
        return Ok(());
    };
    gauges(
        e,
        "volttron_resources_budget_cpu_mips",
        "CPU agents' contracts may reserve in all (MIPS).",
        [(vec![], r.budget.cpu_mips)],
    )?;
    gauges(
        e,
        "volttron_resources_budget_memory_bytes",
        "Memory agents' contracts may reserve in all.",
        [(vec![], r.budget.memory_bytes as f64)],
    )?;
    gauges(
        e,
        "volttron_resources_reserved_cpu_mips",
        "CPU the running agents' contracts reserve (MIPS); the budget left is budget - reserved.",
        [(vec![], r.reserved.cpu_mips)],
    )?;
    gauges(
        e,
        "volttron_resources_reserved_memory_bytes",
        "Memory the running agents' contracts reserve.",
        [(vec![], r.reserved.memory_bytes as f64)],
    )?;
    counters(
        e,
        "volttron_resources_enforcement_actions",
        "Enforcement actions on agents over their contract under pressure.",
        [
            (vec![("action", "warn")], r.actions.warnings),
            (vec![("action", "terminate")], r.actions.terminations),
        ],
    )
}

/// The counters the platform keeps on its hot paths (see [`crate::platform::counters`]).
fn hot_paths(e: &mut DescriptorEncoder, s: &PlatformSnapshot) -> Result<(), std::fmt::Error> {
    let connected = || {
        s.agents
            .iter()
            .filter_map(|(id, a)| a.counters.as_ref().map(|c| (id.as_str(), c)))
    };
    counters(
        e,
        "volttron_agent_handler_runs",
        "Handler runs, by kind.",
        connected().flat_map(|(id, c)| {
            HandlerKind::ALL
                .into_iter()
                .map(move |k| (vec![("identity", id), ("kind", k.as_str())], c.runs(k)))
        }),
    )?;
    counters(
        e,
        "volttron_agent_handler_panics",
        "Handlers that panicked.",
        connected().map(|(id, c)| (vec![("identity", id)], c.panics)),
    )?;
    counters(
        e,
        "volttron_agent_deliveries",
        "Publications queued for the agent.",
        connected().map(|(id, c)| (vec![("identity", id)], c.deliveries)),
    )?;
    counters(
        e,
        "volttron_rpc_calls",
        "RPC calls to the callee (notifications included).",
        connected().map(|(id, c)| (vec![("callee", id)], c.rpc_calls)),
    )?;
    counters(
        e,
        "volttron_rpc_errors",
        "RPC calls to the callee that failed, by JSON-RPC code.",
        connected().flat_map(|(id, c)| {
            CODE_LABELS
                .into_iter()
                .zip(c.rpc_errors)
                .map(move |(code, n)| (vec![("callee", id), ("code", code)], n))
        }),
    )?;
    counters(
        e,
        "volttron_rpc_timeouts",
        "RPC calls to the callee whose deadline passed.",
        connected().map(|(id, c)| (vec![("callee", id)], c.rpc_timeouts)),
    )?;
    let p = &s.counters;
    let one = |n: u64| [(vec![], n)];
    counters(
        e,
        "volttron_pubsub_publishes",
        "Publishes, from anyone.",
        one(p.publishes),
    )?;
    counters(
        e,
        "volttron_authz_refusals",
        "Publishes, subscriptions and calls refused by authz.json.",
        one(p.authz_refusals),
    )?;
    counters(
        e,
        "volttron_bridge_connections",
        "Bridge connections accepted (before their handshake).",
        one(p.bridge_connections),
    )?;
    counters(
        e,
        "volttron_bridge_handshake_failures",
        "Bridge connections refused or failed before they became a session.",
        one(p.bridge_handshake_failures),
    )?;
    counters(
        e,
        "volttron_bridge_frames",
        "Bridge frames, by direction.",
        [
            (vec![("direction", "in")], p.bridge_frames_in),
            (vec![("direction", "out")], p.bridge_frames_out),
        ],
    )?;
    counters(
        e,
        "volttron_bridge_bytes",
        "Bridge bytes on the sockets, by direction.",
        [
            (vec![("direction", "in")], p.bridge_bytes_in),
            (vec![("direction", "out")], p.bridge_bytes_out),
        ],
    )?;
    counters(
        e,
        "volttron_bridge_keepalive_closes",
        "Bridge links closed because the agent stopped answering keepalives.",
        one(p.bridge_keepalive_closes),
    )?;
    counters(
        e,
        "volttron_bridge_outbox_full",
        "Frames that found a bridged agent's outbox full.",
        one(p.bridge_outbox_full),
    )?;
    counters(
        e,
        "volttron_supervisor_give_ups",
        "Times a supervisor gave up on a child over its restart limit (removed, or escalated).",
        one(p.supervisor_give_ups),
    )?;
    counters(
        e,
        "volttron_config_store_writes",
        "Config-store writes made durable.",
        one(p.config_writes),
    )
}

/// [`RPC_ERROR_CODES`](crate::platform::counters::RPC_ERROR_CODES) as label values.
const CODE_LABELS: [&str; 4] = ["-32601", "-32602", "-32000", "-32001"];

#[cfg(test)]
mod tests {
    #[test]
    fn code_labels_are_the_codes() {
        let codes: Vec<String> = crate::platform::counters::RPC_ERROR_CODES
            .iter()
            .map(i64::to_string)
            .collect();
        assert_eq!(codes, super::CODE_LABELS);
    }
}
