//! What one `alerts/` publication (or one lost heartbeat) says: an [`Observation`].
//!
//! | publication part | read as |
//! |------------------|---------|
//! | sender | the origin |
//! | `alert_key` header (VOLTTRON's `health.send_alert`) | the key; without it, the topic after `alerts/` |
//! | message: a map, or a string holding JSON (VOLTTRON's `Status.as_json()`) | the body |
//! | body `status`: `GOOD` | resolved; any other status (`BAD`, `UNKNOWN`, ...) fires |
//! | body `severity`: `info`, `warning`, `critical` (this project's extension) | the severity; else `BAD` is critical and any other status a warning |
//! | body `context` | kept as given, shown in notifications |
//! | a body that is neither | fires as a warning, the body itself as context |

use serde::{Deserialize, Serialize};

use crate::core::{Publication, Value};

/// The prefix every alert is published under.
pub const ALERTS_PREFIX: &str = "alerts/";

/// How bad an alert is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs a look.
    Warning,
    /// Needs someone now.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical` (any case).
    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// Whether the condition behind an alert holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// It holds.
    Firing,
    /// It stopped.
    Resolved,
}

/// One report of an alert's condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Who raised it: the publishing peer's identity (for a lost heartbeat, the silent agent).
    pub origin: String,
    /// The alert key: the `alert_key` header, else the topic after `alerts/`.
    pub key: String,
    /// The topic it came on.
    pub topic: String,
    /// Firing or resolved.
    pub condition: Condition,
    /// How bad.
    pub severity: Severity,
    /// What the publisher said about it.
    pub context: serde_json::Value,
}

impl Observation {
    /// The alert's id, `origin/key`: what deduplicates, and what `ack` and silences name.
    pub fn id(&self) -> String {
        alert_id(&self.origin, &self.key)
    }

    /// Reads an `alerts/` publication; `None` for another topic.
    pub fn from_publication(msg: &Publication) -> Option<Observation> {
        let topic = msg.topic.as_str();
        let rest = topic.strip_prefix(ALERTS_PREFIX)?;
        let key = msg
            .header("alert_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .unwrap_or(rest)
            .to_owned();
        let body: serde_json::Value = match &msg.message {
            // VOLTTRON publishes `Status.as_json()`: the JSON as a string.
            Value::String(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.clone()))
            }
            other => serde_json::to_value(other).unwrap_or(serde_json::Value::Null),
        };
        let (condition, severity, context) = read_body(&body);
        Some(Observation {
            origin: msg.sender.to_string(),
            key,
            topic: topic.to_owned(),
            condition,
            severity,
            context,
        })
    }
}

/// The id of the alert `key` of `origin`.
pub fn alert_id(origin: &str, key: &str) -> String {
    format!("{origin}/{key}")
}

fn read_body(body: &serde_json::Value) -> (Condition, Severity, serde_json::Value) {
    let Some(map) = body.as_object() else {
        return (Condition::Firing, Severity::Warning, body.clone());
    };
    let status = map.get("status").and_then(|s| s.as_str()).unwrap_or("UNKNOWN");
    let condition = if status.eq_ignore_ascii_case("GOOD") {
        Condition::Resolved
    } else {
        Condition::Firing
    };
    let severity = map
        .get("severity")
        .and_then(|s| s.as_str())
        .and_then(Severity::parse)
        .unwrap_or(if status.eq_ignore_ascii_case("BAD") {
            Severity::Critical
        } else {
            Severity::Warning
        });
    let context = map.get("context").cloned().unwrap_or(serde_json::Value::Null);
    (condition, severity, context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Headers, Identity, Topic};

    fn publication(topic: &str, key: Option<&str>, message: Value) -> Publication {
        let mut headers = Headers::new();
        if let Some(key) = key {
            headers.insert("alert_key".into(), Value::from(key));
        }
        Publication {
            sender: Identity::new("hvac.1").unwrap(),
            bus: String::new(),
            topic: Topic::new(topic).unwrap(),
            headers,
            message,
            origin: None,
        }
    }

    #[test]
    fn volttron_status_json_string() {
        let msg = publication(
            "alerts/HvacAgent/1234",
            Some("low_pressure"),
            Value::from(
                r#"{"status": "BAD", "context": "12 psi", "last_updated": "2024-01-01T00:00:00+00:00"}"#,
            ),
        );
        let o = Observation::from_publication(&msg).unwrap();
        assert_eq!(o.id(), "hvac.1/low_pressure");
        assert_eq!(o.condition, Condition::Firing);
        assert_eq!(o.severity, Severity::Critical);
        assert_eq!(o.context, serde_json::json!("12 psi"));
    }

    #[test]
    fn good_resolves_and_key_defaults_to_topic() {
        let msg = publication(
            "alerts/HvacAgent/hvac_1",
            None,
            Value::from(serde_json::json!({"status": "GOOD", "context": null})),
        );
        let o = Observation::from_publication(&msg).unwrap();
        assert_eq!(o.key, "HvacAgent/hvac_1");
        assert_eq!(o.condition, Condition::Resolved);
    }

    #[test]
    fn severity_extension_and_unreadable_bodies() {
        let msg = publication(
            "alerts/x",
            None,
            Value::from(serde_json::json!({"status": "UNKNOWN", "severity": "INFO"})),
        );
        assert_eq!(
            Observation::from_publication(&msg).unwrap().severity,
            Severity::Info
        );
        let msg = publication("alerts/x", None, Value::from("pump on fire"));
        let o = Observation::from_publication(&msg).unwrap();
        assert_eq!((o.condition, o.severity), (Condition::Firing, Severity::Warning));
        assert_eq!(o.context, serde_json::json!("pump on fire"));
        assert!(Observation::from_publication(&publication("devices/x", None, Value::Null)).is_none());
    }
}
