//! What a scrape reads from the platform: the routing table's peers and mailboxes at once,
//! the control service's installed agents and the health service's reports over RPC.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::core::{Value, from_value};
use crate::platform::Platform;
use crate::platform::counters::{AgentCounters, PlatformCounters};
use crate::services::control::{AgentRecord, ProcessState, ResourceBudget};

/// How long a scrape waits for the control and health services.
const SERVICE_DEADLINE: Duration = Duration::from_secs(5);

/// One agent, as a scrape saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentSample {
    /// Connected now.
    pub up: bool,
    /// Envelopes waiting in its mailbox.
    pub mailbox_depth: u64,
    /// Publications its mailbox may hold.
    pub mailbox_capacity: u64,
    /// Publications dropped: (policy, count).
    pub dropped: [(&'static str, u64); 3],
    /// Restarts by its supervisor.
    pub restarts: u64,
    /// The status it last reported in a heartbeat.
    pub health: Option<String>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age: Option<f64>,
    /// An installed agent's process: running, gave up, CPU (cores), RSS, reservation.
    pub process: Option<ProcessSample>,
    /// Its hot-path counters, while connected.
    pub counters: Option<AgentCounters>,
}

/// An installed agent's process, from the control service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessSample {
    /// Its process runs.
    pub running: bool,
    /// Its restart policy gave up.
    pub gave_up: bool,
    /// CPU, in cores.
    pub cpu_cores: Option<f64>,
    /// Resident memory.
    pub rss_bytes: Option<u64>,
    /// Its contract's memory.
    pub reserved_memory_bytes: Option<u64>,
    /// Its contract's CPU.
    pub reserved_cpu_mips: Option<f64>,
}

/// The platform at one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformSnapshot {
    /// The build's version.
    pub version: &'static str,
    /// The instance name.
    pub instance: String,
    /// Seconds since the metrics were made.
    pub uptime_seconds: f64,
    /// Connected peers.
    pub peers: u64,
    /// Subscriptions on every bus.
    pub subscriptions: u64,
    /// By identity: every connected peer and every installed agent.
    pub agents: BTreeMap<String, AgentSample>,
    /// The platform's hot-path counters.
    pub counters: PlatformCounters,
    /// The control service's admission budget, reservations and enforcement actions.
    pub resources: Option<ResourceBudget>,
}

impl PlatformSnapshot {
    /// Reads the platform now (`since`: when the metrics were made).
    pub async fn take(platform: &Platform, since: Instant) -> PlatformSnapshot {
        let mut agents: BTreeMap<String, AgentSample> = BTreeMap::new();
        let peers = platform.peers();
        for peer in &peers {
            let sample = agents.entry(peer.as_str().to_owned()).or_default();
            sample.up = true;
            if let Some(stats) = platform.mailbox_stats(peer.as_str()) {
                sample.mailbox_depth = stats.queued as u64;
                sample.mailbox_capacity = stats.capacity as u64;
                sample.dropped = [
                    ("drop_oldest", stats.dropped_oldest),
                    ("drop_newest", stats.dropped_newest),
                    ("disconnect", stats.disconnected),
                ];
            }
            sample.restarts = u64::from(platform.restart_count(peer.as_str()));
            sample.counters = platform.agent_counters(peer.as_str());
        }
        let installed: Vec<AgentRecord> =
            service_call(platform, crate::services::control::IDENTITY, "status_agents")
                .await
                .and_then(|v| from_value(v).ok())
                .unwrap_or_default();
        for record in installed {
            let sample = agents.entry(record.identity.clone()).or_default();
            let usage = record.usage.as_ref().filter(|u| !u.gone);
            sample.process = Some(ProcessSample {
                running: record.pid.is_some(),
                gave_up: record.pid.is_none() && record.state == Some(ProcessState::GaveUp),
                cpu_cores: usage.and_then(|u| u.cpu_percent_of_core).map(|p| p / 100.0),
                rss_bytes: usage.map(|u| u.rss_bytes),
                reserved_memory_bytes: record.reservation.as_ref().map(|r| r.memory_bytes),
                reserved_cpu_mips: record.reservation.as_ref().map(|r| r.cpu_mips),
            });
        }
        let resources: Option<ResourceBudget> =
            service_call(platform, crate::services::control::IDENTITY, "resource_budget")
                .await
                .and_then(|v| from_value(v).ok())
                .flatten();
        if let Some(Value::Map(health)) =
            service_call(platform, crate::services::health::IDENTITY, "get_platform_health").await
        {
            let now = chrono::Utc::now();
            for (identity, report) in health {
                let Some(sample) = agents.get_mut(&identity) else {
                    continue;
                };
                sample.health = report.get("status").and_then(Value::as_str).map(str::to_owned);
                sample.heartbeat_age = report
                    .get("last_heartbeat")
                    .and_then(Value::as_str)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| (now - t.with_timezone(&chrono::Utc)).num_milliseconds().max(0) as f64 / 1e3);
            }
        }
        PlatformSnapshot {
            version: env!("CARGO_PKG_VERSION"),
            instance: platform.instance_name().to_owned(),
            uptime_seconds: since.elapsed().as_secs_f64(),
            peers: peers.len() as u64,
            subscriptions: platform.subscription_count() as u64,
            agents,
            counters: platform.counters(),
            resources,
        }
    }
}

/// A service's answer, or `None` when it does not run (a platform without `control`).
async fn service_call(platform: &Platform, identity: &str, method: &str) -> Option<Value> {
    if !platform.peers().iter().any(|p| p.as_str() == identity) {
        return None;
    }
    platform
        .call(identity, method, ())
        .timeout(SERVICE_DEADLINE)
        .await
        .ok()
}
