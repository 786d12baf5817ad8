//! The alert book: every alert by id, its condition, flapping, acknowledgement and the
//! silences; it decides what is notified. Pure: time comes in as arguments (the platform
//! clock), so it runs the same under a virtual clock.
//!
//! | rule | behaviour |
//! |------|-----------|
//! | dedup | one alert per id (`origin/key`); a report that does not change what was last notified notifies nothing (it counts) |
//! | resolve | a `GOOD` report of a firing alert notifies `resolved` once, with the severity it fired with (so by the same routes); an alert never notified as firing resolves silently |
//! | flapping | more than `flap_changes` changes of condition within `flap_window` make the alert `flapping`: notified once; its changes are counted, not notified, until it was still for a whole `flap_window`, when its condition then is notified once |
//! | silence | a pattern (glob over the id) until a time: matching alerts are tracked but not notified; when the silence ends, an alert whose status differs from what was last notified is notified |
//! | ack | a firing (or flapping) alert can be acknowledged: it is not repeated; resolving clears the ack |
//! | repeat | with `repeat` set, a firing alert not acknowledged is notified again every `repeat` |
//! | retention | a resolved alert is forgotten `retention` after its last report |
//! | capacity | at most [`AlertBook::DEFAULT_CAPACITY`] alerts: a new one past that makes room by forgetting the resolved alert last seen longest ago; with none resolved, firing alerts are all kept (they are what matters) |

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerts::notification::{AlertStatus, Notification};
use crate::alerts::observation::{Condition, Observation, Severity};
use crate::alerts::rules::Timing;
use crate::core::glob::{Glob, Syntax};

/// An acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Who acknowledged (the caller's identity).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A silence: alerts whose id matches `pattern` are not notified until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// A glob over alert ids (`hvac.*/*`, `*/heartbeat`).
    pub pattern: String,
    /// When it ends.
    pub until: DateTime<Utc>,
    /// Who set it.
    pub by: String,
}

/// One alert as `list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    /// `origin/key`.
    pub id: String,
    /// Who raised it.
    pub origin: String,
    /// The key.
    pub key: String,
    /// The topic of its last report.
    pub topic: String,
    /// Firing, resolved or flapping.
    pub status: AlertStatus,
    /// How bad.
    pub severity: Severity,
    /// What its last report said.
    pub context: serde_json::Value,
    /// Its first report.
    pub first_seen: DateTime<Utc>,
    /// Its last report.
    pub last_seen: DateTime<Utc>,
    /// Reports received.
    pub count: u64,
    /// Changes of condition within the flapping window.
    pub recent_changes: usize,
    /// What was last notified, if anything.
    pub notified: Option<AlertStatus>,
    /// Its acknowledgement.
    pub ack: Option<Ack>,
    /// Whether a silence holds it now.
    pub silenced: bool,
}

/// Why `ack` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No alert has that id.
    #[error("no alert {0:?} (see `vctl alerts list`)")]
    Unknown(String),
    /// The alert is resolved.
    #[error("alert {0:?} is resolved; there is nothing to acknowledge")]
    Resolved(String),
}

#[derive(Debug, Clone)]
struct Alert {
    origin: String,
    key: String,
    topic: String,
    condition: Condition,
    severity: Severity,
    context: serde_json::Value,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    count: u64,
    /// When its condition changed, within the flapping window.
    changes: VecDeque<DateTime<Utc>>,
    flapping: bool,
    notified: Option<AlertStatus>,
    last_notified: Option<DateTime<Utc>>,
    ack: Option<Ack>,
}

impl Alert {
    fn status(&self) -> AlertStatus {
        match (self.flapping, self.condition) {
            (true, _) => AlertStatus::Flapping,
            (false, Condition::Firing) => AlertStatus::Firing,
            (false, Condition::Resolved) => AlertStatus::Resolved,
        }
    }
}

/// Every alert and silence (see the module docs).
#[derive(Debug)]
pub struct AlertBook {
    alerts: BTreeMap<String, Alert>,
    silences: Vec<(Glob, Silence)>,
    instance: String,
    capacity: usize,
}

impl AlertBook {
    /// How many alerts a book holds before it forgets resolved ones early.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// An empty book for the platform `instance` (named in notifications).
    pub fn new(instance: impl Into<String>) -> Self {
        AlertBook {
            alerts: BTreeMap::new(),
            silences: Vec::new(),
            instance: instance.into(),
            capacity: Self::DEFAULT_CAPACITY,
        }
    }

    /// Holds at most `capacity` alerts (at least 1) before forgetting resolved ones early.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Forgets the resolved alert last seen longest ago, if the book is full.
    fn make_room(&mut self) {
        if self.alerts.len() < self.capacity {
            return;
        }
        let oldest = self
            .alerts
            .iter()
            .filter(|(_, a)| a.status() == AlertStatus::Resolved)
            .min_by_key(|(_, a)| a.last_seen)
            .map(|(id, _)| id.clone());
        if let Some(id) = oldest {
            self.alerts.remove(&id);
        }
    }

    /// Records a report; returns the notification it causes, if any.
    pub fn observe(&mut self, o: Observation, now: DateTime<Utc>, timing: &Timing) -> Option<Notification> {
        let id = o.id();
        if !self.alerts.contains_key(&id) {
            self.make_room();
        }
        let alert = self.alerts.entry(id.clone()).or_insert_with(|| Alert {
            origin: o.origin.clone(),
            key: o.key.clone(),
            topic: o.topic.clone(),
            condition: o.condition,
            severity: o.severity,
            context: serde_json::Value::Null,
            first_seen: now,
            last_seen: now,
            count: 0,
            changes: VecDeque::new(),
            flapping: false,
            notified: None,
            last_notified: None,
            ack: None,
        });
        if alert.condition != o.condition {
            alert.condition = o.condition;
            alert.changes.push_back(now);
        }
        prune(&mut alert.changes, now, timing);
        if alert.changes.len() > timing.flap_changes {
            alert.flapping = true;
        }
        if o.condition == Condition::Resolved {
            alert.ack = None;
        }
        alert.topic = o.topic;
        // A resolving report (VOLTTRON's GOOD carries no severity) keeps the severity the
        // alert fired with, so its `resolved` takes the same routes as its `firing`.
        if o.condition == Condition::Firing {
            alert.severity = o.severity;
        }
        alert.context = o.context;
        alert.last_seen = now;
        alert.count += 1;
        let silenced = silenced(&self.silences, &id, now);
        decide(&id, alert, now, timing, silenced, false, &self.instance)
    }

    /// Ends silences, settles flapping alerts, repeats, forgets old resolved alerts;
    /// returns what is to be notified now.
    pub fn tick(&mut self, now: DateTime<Utc>, timing: &Timing) -> Vec<Notification> {
        self.silences.retain(|(_, s)| s.until > now);
        let retention = chrono::Duration::from_std(timing.retention).unwrap_or(chrono::Duration::MAX);
        self.alerts.retain(|_, a| {
            !(a.condition == Condition::Resolved && !a.flapping && now - a.last_seen >= retention)
        });
        let mut out = Vec::new();
        for (id, alert) in &mut self.alerts {
            prune(&mut alert.changes, now, timing);
            if alert.flapping && alert.changes.is_empty() {
                alert.flapping = false;
            }
            let silenced = silenced(&self.silences, id, now);
            if let Some(n) = decide(id, alert, now, timing, silenced, true, &self.instance) {
                out.push(n);
            }
        }
        out
    }

    /// Acknowledges a firing or flapping alert.
    pub fn ack(&mut self, id: &str, by: &str, now: DateTime<Utc>) -> Result<(), AckError> {
        let alert = self
            .alerts
            .get_mut(id)
            .ok_or_else(|| AckError::Unknown(id.to_owned()))?;
        if alert.status() == AlertStatus::Resolved {
            return Err(AckError::Resolved(id.to_owned()));
        }
        alert.ack = Some(Ack {
            by: by.to_owned(),
            at: now,
        });
        Ok(())
    }

    /// Silences alerts whose id matches `pattern` until `until`.
    pub fn silence(&mut self, pattern: &str, until: DateTime<Utc>, by: &str) -> Silence {
        let silence = Silence {
            pattern: pattern.to_owned(),
            until,
            by: by.to_owned(),
        };
        let glob = Glob::new(
            pattern,
            Syntax {
                classes: true,
                escapes: false,
            },
        );
        self.silences.push((glob, silence.clone()));
        silence
    }

    /// Every alert, by id.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<AlertView> {
        self.alerts
            .iter()
            .map(|(id, a)| AlertView {
                id: id.clone(),
                origin: a.origin.clone(),
                key: a.key.clone(),
                topic: a.topic.clone(),
                status: a.status(),
                severity: a.severity,
                context: a.context.clone(),
                first_seen: a.first_seen,
                last_seen: a.last_seen,
                count: a.count,
                recent_changes: a.changes.len(),
                notified: a.notified,
                ack: a.ack.clone(),
                silenced: silenced(&self.silences, id, now),
            })
            .collect()
    }

    /// The silences in force (those that ended are dropped at the next tick).
    pub fn silences(&self, now: DateTime<Utc>) -> Vec<Silence> {
        self.silences
            .iter()
            .filter(|(_, s)| s.until > now)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Whether an alert with this id is firing (or flapping).
    pub fn is_active(&self, id: &str) -> bool {
        self.alerts
            .get(id)
            .is_some_and(|a| a.status() != AlertStatus::Resolved)
    }
}

fn prune(changes: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, timing: &Timing) {
    let window = chrono::Duration::from_std(timing.flap_window).unwrap_or(chrono::Duration::MAX);
    while changes.front().is_some_and(|t| now - *t >= window) {
        changes.pop_front();
    }
}

fn silenced(silences: &[(Glob, Silence)], id: &str, now: DateTime<Utc>) -> bool {
    silences.iter().any(|(g, s)| s.until > now && g.matches(id))
}

/// What to notify of `alert` now, if anything (and records that it was).
fn decide(
    id: &str,
    alert: &mut Alert,
    now: DateTime<Utc>,
    timing: &Timing,
    silenced: bool,
    may_repeat: bool,
    instance: &str,
) -> Option<Notification> {
    if silenced {
        return None;
    }
    let status = alert.status();
    let repeat = match (alert.notified, status) {
        (None, AlertStatus::Resolved) => return None,
        (Some(last), now_status) if last == now_status => {
            let due = match (timing.repeat, alert.last_notified) {
                (Some(every), Some(at)) => {
                    now - at >= chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX)
                }
                _ => false,
            };
            if !(may_repeat && status == AlertStatus::Firing && alert.ack.is_none() && due) {
                return None;
            }
            true
        }
        _ => false,
    };
    alert.notified = Some(status);
    alert.last_notified = Some(now);
    Some(Notification {
        id: id.to_owned(),
        origin: alert.origin.clone(),
        key: alert.key.clone(),
        topic: alert.topic.clone(),
        status,
        severity: alert.severity,
        context: alert.context.clone(),
        instance: instance.to_owned(),
        first_seen: alert.first_seen,
        last_seen: alert.last_seen,
        count: alert.count,
        repeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_704_067_200 + secs, 0).unwrap()
    }

    fn obs(condition: Condition) -> Observation {
        Observation {
            origin: "hvac.1".into(),
            key: "pressure".into(),
            topic: "alerts/Hvac/hvac_1".into(),
            condition,
            severity: Severity::Critical,
            context: serde_json::Value::Null,
        }
    }

    #[test]
    fn dedup_resolve_and_flapping() {
        let timing = Timing::default();
        let mut book = AlertBook::new("test");
        assert_eq!(
            book.observe(obs(Condition::Firing), at(0), &timing)
                .map(|n| n.status),
            Some(AlertStatus::Firing)
        );
        assert!(book.observe(obs(Condition::Firing), at(1), &timing).is_none());
        assert_eq!(
            book.observe(obs(Condition::Resolved), at(2), &timing)
                .map(|n| n.status),
            Some(AlertStatus::Resolved)
        );
        // Flapping: the fifth change within the window (flap_changes = 4) starts it.
        let mut statuses = Vec::new();
        for i in 0..100 {
            let c = if i % 2 == 0 {
                Condition::Firing
            } else {
                Condition::Resolved
            };
            statuses.extend(book.observe(obs(c), at(3 + i), &timing).map(|n| n.status));
        }
        assert_eq!(
            statuses,
            [
                AlertStatus::Firing,
                AlertStatus::Resolved,
                AlertStatus::Firing,
                AlertStatus::Flapping
            ]
        );
        assert!(book.tick(at(200), &timing).is_empty(), "still within the window");
        // Still for a whole window: the condition it settled on, once.
        let settled = book.tick(at(103 + 600), &timing);
        assert_eq!(
            settled.iter().map(|n| n.status).collect::<Vec<_>>(),
            [AlertStatus::Resolved]
        );
        assert!(book.tick(at(103 + 700), &timing).is_empty());
    }

    #[test]
    fn a_full_book_forgets_the_oldest_resolved_alert_first() {
        let timing = Timing::default();
        let mut book = AlertBook::new("test").capacity(3);
        let o = |key: &str, c| Observation {
            key: key.into(),
            ..obs(c)
        };
        book.observe(o("a", Condition::Firing), at(0), &timing);
        book.observe(o("b", Condition::Firing), at(1), &timing);
        book.observe(o("b", Condition::Resolved), at(2), &timing);
        book.observe(o("c", Condition::Firing), at(3), &timing);
        book.observe(o("d", Condition::Firing), at(4), &timing);
        let ids: Vec<String> = book.list(at(5)).into_iter().map(|a| a.id).collect();
        assert_eq!(
            ids,
            ["hvac.1/a", "hvac.1/c", "hvac.1/d"],
            "b, resolved, made room"
        );
        book.observe(o("e", Condition::Firing), at(6), &timing);
        assert_eq!(book.list(at(7)).len(), 4, "firing alerts are all kept");
    }
}
