//! Heartbeat loss: every peer that ever published on `heartbeat/<identity>` is watched;
//! one whose last heartbeat is more than `misses` periods old (the `period` header of its
//! heartbeat, as the health service reads it) raises the alert `<identity>/heartbeat`,
//! critical; its next heartbeat resolves it.
//!
//! A peer that leaves the platform is still watched: a crashed agent's silence is the
//! case this is for. A peer stopped on purpose raises the alert too; silence it
//! (`vctl alerts silence 'meter.1/*' --for 1h`) or let it resolve when it comes back.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::agent::heartbeat::DEFAULT_HEARTBEAT_PERIOD;
use crate::alerts::observation::{Condition, Observation, Severity};
use crate::core::{Publication, Value};

/// The alert key of a lost heartbeat.
pub const HEARTBEAT_KEY: &str = "heartbeat";

#[derive(Debug, Clone)]
struct Watched {
    last: DateTime<Utc>,
    period: Duration,
    lost: bool,
}

/// The peers' last heartbeats.
#[derive(Debug, Default)]
pub(crate) struct HeartbeatWatch {
    peers: BTreeMap<String, Watched>,
}

impl HeartbeatWatch {
    /// Records a heartbeat (received `now`); the resolving observation when it was lost.
    pub(crate) fn beat(&mut self, msg: &Publication, now: DateTime<Utc>) -> Option<Observation> {
        let identity = msg.topic.as_str().strip_prefix("heartbeat/")?;
        let period = msg
            .header("period")
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite() && *p > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_HEARTBEAT_PERIOD);
        let was_lost = self.peers.get(identity).is_some_and(|w| w.lost);
        self.peers.insert(
            identity.to_owned(),
            Watched {
                last: now,
                period,
                lost: false,
            },
        );
        was_lost.then(|| observation(identity, Condition::Resolved, serde_json::json!("heartbeat back")))
    }

    /// The peers whose heartbeat is now more than `misses` periods late (each once).
    pub(crate) fn check(&mut self, now: DateTime<Utc>, misses: u32) -> Vec<Observation> {
        let mut lost = Vec::new();
        for (identity, w) in &mut self.peers {
            let allowed = w.period * misses;
            let late = (now - w.last).to_std().unwrap_or_default();
            if !w.lost && late > allowed {
                w.lost = true;
                lost.push(observation(
                    identity,
                    Condition::Firing,
                    serde_json::json!(format!(
                        "no heartbeat for {} s ({misses} periods of {} s); the last at {}",
                        late.as_secs(),
                        w.period.as_secs_f64(),
                        w.last.to_rfc3339()
                    )),
                ));
            }
        }
        lost
    }
}

fn observation(identity: &str, condition: Condition, context: serde_json::Value) -> Observation {
    Observation {
        origin: identity.to_owned(),
        key: HEARTBEAT_KEY.to_owned(),
        topic: format!("heartbeat/{identity}"),
        condition,
        severity: Severity::Critical,
        context,
    }
}
