//! The platform health service (`platform.health`): it follows the peer list and every
//! heartbeat, and answers VOLTTRON's `get_platform_health()` (with VOLTTRON 11's
//! `peer`, `service_agent` and `message` fields beside this project's own). A heartbeat
//! is this project's `{"status", "context"}` or VOLTTRON 11's bare status string.
//!
//! ```json
//! {"listener": {"connected": true, "last_heartbeat": "2024-01-01T00:01:00+00:00",
//!               "status": "GOOD", "context": null, "missed_heartbeats": 0,
//!               "peer": "listener", "service_agent": false, "message": "GOOD"}}
//! ```
//!
//! `missed_heartbeats` counts the heartbeat periods (from the heartbeat's `period`
//! header) that have passed since the last one; a peer that never sent one has `null`
//! there and in `last_heartbeat`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::core::{Map, Value};
use crate::platform::PeerEvent;
use crate::prelude::*;

/// The service's identity, as VOLTTRON's.
pub const IDENTITY: &str = "platform.health";

#[derive(Debug, Default, Clone)]
struct PeerRecord {
    connected: bool,
    last_heartbeat: Option<DateTime<Utc>>,
    period: Option<f64>,
    status: Option<String>,
    context: Value,
}

/// The health service agent (started by the platform; not for users to spawn).
#[derive(Debug, Default)]
pub(crate) struct HealthService {
    peers: BTreeMap<String, PeerRecord>,
}

#[crate::agent]
impl HealthService {
    #[on_start]
    fn start(&mut self, ctx: &AgentContext) {
        for peer in ctx.peers() {
            self.peers.entry(peer.to_string()).or_default().connected = true;
        }
    }

    #[on_peerlist]
    fn peer(&mut self, event: &PeerEvent) {
        let record = self.peers.entry(event.peer().to_string()).or_default();
        record.connected = matches!(event, PeerEvent::Added(_));
    }

    #[subscribe("heartbeat/")]
    fn heartbeat(&mut self, ctx: &AgentContext, msg: &Publication) {
        let Some(peer) = msg.topic.as_str().strip_prefix("heartbeat/") else {
            return;
        };
        let record = self.peers.entry(peer.to_owned()).or_default();
        record.last_heartbeat = msg
            .header("TimeStamp")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| Some(ctx.now()));
        record.period = msg.header("period").and_then(Value::as_f64);
        // This project's agents send `{"status", "context"}`; VOLTTRON 11's send the
        // status alone, as a string.
        record.status = msg.message["status"]
            .as_str()
            .or_else(|| msg.message.as_str())
            .map(str::to_owned);
        record.context = msg.message["context"].clone();
    }

    /// Every known peer's connection, last heartbeat, health and missed heartbeats.
    #[rpc]
    fn get_platform_health(&mut self, ctx: &AgentContext) -> Map {
        let now = ctx.now();
        self.peers
            .iter()
            .map(|(peer, r)| {
                let missed = match (r.last_heartbeat, r.period) {
                    (Some(last), Some(period)) if period > 0.0 => {
                        let behind = (now - last).num_milliseconds().max(0) as f64 / 1000.0;
                        Value::from((behind / period).floor() as u64)
                    }
                    _ => Value::Null,
                };
                let mut m = Map::new();
                m.insert("connected".into(), Value::from(r.connected));
                m.insert(
                    "last_heartbeat".into(),
                    Value::from(r.last_heartbeat.map(|t| t.to_rfc3339())),
                );
                m.insert("status".into(), Value::from(r.status.clone()));
                m.insert("context".into(), r.context.clone());
                m.insert("missed_heartbeats".into(), missed);
                // VOLTTRON 11's own fields (what its vctl shows).
                m.insert("peer".into(), Value::from(peer.as_str()));
                m.insert(
                    "service_agent".into(),
                    Value::from(crate::services::is_service(peer)),
                );
                m.insert("message".into(), Value::from(r.status.clone()));
                (peer.clone(), Value::Map(m))
            })
            .collect()
    }
}
