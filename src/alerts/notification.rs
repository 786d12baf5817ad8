//! What the sinks receive: a [`Notification`], the JSON body of a webhook, the text of an
//! e-mail, the message of a bus publication.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerts::observation::Severity;

/// What an alert is, as shown to people: its condition, or `flapping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Its condition holds.
    Firing,
    /// Its condition stopped.
    Resolved,
    /// It changed condition too often (see the book's flapping rule); held until still.
    Flapping,
}

impl std::fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Flapping => "flapping",
        })
    }
}

/// One notification of one alert.
///
/// ```json
/// {"id": "hvac.1/low_pressure", "origin": "hvac.1", "key": "low_pressure",
///  "topic": "alerts/HvacAgent/hvac_1", "status": "firing", "severity": "critical",
///  "context": "12 psi", "instance": "campus1", "first_seen": "...", "last_seen": "...",
///  "count": 1, "repeat": false}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `origin/key`.
    pub id: String,
    /// Who raised it.
    pub origin: String,
    /// The alert key.
    pub key: String,
    /// The topic of its last report.
    pub topic: String,
    /// What is notified.
    pub status: AlertStatus,
    /// How bad.
    pub severity: Severity,
    /// What its last report said.
    pub context: serde_json::Value,
    /// The platform's instance name.
    pub instance: String,
    /// Its first report (platform clock).
    pub first_seen: DateTime<Utc>,
    /// Its last report.
    pub last_seen: DateTime<Utc>,
    /// Reports received.
    pub count: u64,
    /// A repeat of a notification already sent (the `repeat` rule).
    pub repeat: bool,
}

impl Notification {
    /// A one-line summary: the e-mail subject and the log record.
    pub fn summary(&self) -> String {
        format!(
            "[{}] {} {} on {}: {}",
            self.status,
            self.severity,
            self.id,
            self.instance,
            match &self.context {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }
        )
    }

    /// The e-mail body: the summary, then the notification as JSON.
    pub fn text(&self) -> String {
        format!(
            "{}\n\n{}\n",
            self.summary(),
            serde_json::to_string_pretty(self).unwrap_or_default()
        )
    }
}
