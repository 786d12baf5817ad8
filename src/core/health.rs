//! Agent health, as VOLTTRON's health subsystem reports it: a status, a context that says
//! why, and when it last changed.

use chrono::{DateTime, Utc};

/// An agent's health status (VOLTTRON's `STATUS_GOOD` etc.; serialized in capitals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Working as intended.
    Good,
    /// Failing; the context says why.
    Bad,
    /// Not known (for example, never reported).
    Unknown,
    /// Starting up.
    Starting,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Good => "GOOD",
            Status::Bad => "BAD",
            Status::Unknown => "UNKNOWN",
            Status::Starting => "STARTING",
        })
    }
}

/// An agent's health: status, context and the time of the last change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// The status.
    pub status: Status,
    /// Why (for `BAD`: the failure).
    pub context: Option<String>,
    /// When the status last changed (platform clock).
    pub last_updated: DateTime<Utc>,
}

impl Health {
    /// A health record with `status` and `context` at `now`.
    pub fn new(status: Status, context: Option<String>, now: DateTime<Utc>) -> Self {
        Health {
            status,
            context,
            last_updated: now,
        }
    }
}

impl From<&Health> for crate::core::Value {
    /// VOLTTRON's status record: `{"status": "GOOD", "context": .., "last_updated": ".."}`.
    fn from(h: &Health) -> Self {
        let mut m = crate::core::Map::new();
        m.insert("status".into(), h.status.to_string().into());
        m.insert("context".into(), h.context.clone().into());
        m.insert("last_updated".into(), h.last_updated.to_rfc3339().into());
        crate::core::Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serializes_like_volttron() {
        assert_eq!(serde_json::to_string(&Status::Bad).unwrap(), "\"BAD\"");
        assert_eq!(Status::Starting.to_string(), "STARTING");
        let s: Status = serde_json::from_str("\"GOOD\"").unwrap();
        assert_eq!(s, Status::Good);
    }
}
