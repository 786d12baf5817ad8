//! The actuator's schedule book: tasks, their time slots per device, conflicts and
//! preemption, as VOLTTRON's actuator decides them.
//!
//! | existing task | new request | overlap on a device |
//! |---------------|-------------|---------------------|
//! | `LOW_PREEMPT` | `HIGH` | the existing task is preempted: removed if it has not started, otherwise it keeps the device for the grace time (60 s by default) and loses its later slots |
//! | `LOW`, not started (no slot of it reached yet) | `HIGH` | preempted: removed |
//! | `LOW_PREEMPT`, already preempted, in its grace time | `HIGH` | no conflict: the new task's slots there start when the grace time ends |
//! | any other | any | refused: `CONFLICTS_WITH_EXISTING_SCHEDULES`, with the conflicting slots |
//!
//! A request is refused as a whole (nothing changes) or granted as a whole. Slots are
//! half-open `[start, end)`; `start < end`. A task ends when its last slot ends. Requests
//! are read by [`parse_requests`]: times without an offset are wall-clock times of the zone
//! it is given (the actuator gives the host's local zone, as VOLTTRON's does).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::agents::time::{parse_timestamp, parse_timestamp_in};

use crate::core::{Map, Value};

/// A task's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Preempts `LOW_PREEMPT` tasks, and `LOW` tasks that have not started.
    High,
    /// Cannot be preempted once started.
    Low,
    /// May be preempted by `HIGH`.
    LowPreempt,
}

impl Priority {
    /// VOLTTRON's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "HIGH",
            Priority::Low => "LOW",
            Priority::LowPreempt => "LOW_PREEMPT",
        }
    }

    fn parse(text: &str) -> Option<Priority> {
        match text.trim().to_ascii_uppercase().as_str() {
            "HIGH" => Some(Priority::High),
            "LOW" => Some(Priority::Low),
            "LOW_PREEMPT" => Some(Priority::LowPreempt),
            _ => None,
        }
    }
}

/// One device for one time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The device's path.
    pub device: String,
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// Until (exclusive).
    pub end: DateTime<Utc>,
}

impl Slot {
    fn overlaps(&self, other: &Slot) -> bool {
        self.device == other.device && self.start < other.end && other.start < self.end
    }

    fn to_value(&self) -> Value {
        Value::List(vec![
            Value::from(self.device.as_str()),
            Value::from(format_time(self.start)),
            Value::from(format_time(self.end)),
        ])
    }
}

/// A granted request.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Who asked (the caller's identity).
    pub agent_id: String,
    /// The task's id, unique among live tasks.
    pub task_id: String,
    /// Its priority.
    pub priority: Priority,
    /// Its slots, by start.
    pub slots: Vec<Slot>,
    /// Set when it was preempted: it holds nothing after this time.
    pub preempted_until: Option<DateTime<Utc>>,
}

impl Task {
    fn effective(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().filter_map(|s| match self.preempted_until {
            Some(until) if s.start >= until => None,
            Some(until) => Some(Slot {
                end: s.end.min(until),
                ..s.clone()
            }),
            None => Some(s.clone()),
        })
    }

    /// When its last (effective) slot ends.
    pub fn ends(&self) -> Option<DateTime<Utc>> {
        self.effective().map(|s| s.end).max()
    }
}

/// Why a request was refused: VOLTTRON's `info` string, and its `data`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{info}")]
pub struct Refusal {
    /// `CONFLICTS_WITH_EXISTING_SCHEDULES`, `TASK_ID_ALREADY_EXISTS`, `MALFORMED_REQUEST: ...`, ...
    pub info: String,
    /// For conflicts: `{agent_id: {task_id: [[device, start, end], ..]}}`.
    pub data: Value,
}

impl Refusal {
    fn plain(info: impl Into<String>) -> Refusal {
        Refusal {
            info: info.into(),
            data: Value::Map(Map::new()),
        }
    }
}

/// A task preempted by a granted request.
#[derive(Debug, Clone, PartialEq)]
pub struct Preempted {
    /// Whose it was.
    pub agent_id: String,
    /// Its id.
    pub task_id: String,
}

/// Every live task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleBook {
    tasks: BTreeMap<String, Task>,
}

/// A slot's time as VOLTTRON's conflict data writes it (`str` of an aware datetime):
/// `2024-06-01 12:00:00+00:00`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.f%:z").to_string()
}

/// Reads `[[device, start, end], ...]` (or one `[device, start, end]`); times without an
/// offset are wall-clock times in `zone`. An empty list gives no slots (the book refuses it
/// as `MALFORMED_REQUEST_EMPTY`).
pub fn parse_requests<Tz: TimeZone>(requests: &Value, zone: &Tz) -> Result<Vec<Slot>, Refusal> {
    let malformed = |why: String| Refusal::plain(format!("MALFORMED_REQUEST: {why}"));
    let items = match requests {
        Value::List(items) => items,
        Value::Null => return Ok(Vec::new()),
        _ => return Err(malformed("expected [[device, start, end], ...]".into())),
    };
    let items: Vec<&Value> = match items.as_slice() {
        // VOLTTRON takes a single [device, start, end] too,
        [a, b, c] if [a, b, c].iter().all(|v| v.as_str().is_some()) => vec![requests],
        // and, by publication, the list wrapped in one more.
        [Value::List(inner)] if !inner.is_empty() && inner.iter().all(|v| matches!(v, Value::List(_))) => {
            inner.iter().collect()
        }
        _ => items.iter().collect(),
    };
    let mut slots = Vec::new();
    for item in items {
        let Value::List(parts) = item else {
            return Err(malformed(format!("{item} is not [device, start, end]")));
        };
        let [device, start, end] = parts.as_slice() else {
            return Err(malformed(format!("{item} is not [device, start, end]")));
        };
        let (Some(device), Some(start_text), Some(end_text)) =
            (device.as_str(), start.as_str(), end.as_str())
        else {
            return Err(malformed(format!("{item} is not three strings")));
        };
        let device = crate::agents::device_path::device_path(device);
        if device.is_empty() {
            return Err(malformed("empty device".into()));
        }
        let start = parse_timestamp_in(start_text, zone)
            .ok_or_else(|| malformed(format!("{start_text:?} is not a time")))?;
        let end = parse_timestamp_in(end_text, zone)
            .ok_or_else(|| malformed(format!("{end_text:?} is not a time")))?;
        if start >= end {
            return Err(malformed(format!("{start_text} is not before {end_text}")));
        }
        slots.push(Slot {
            device: device.to_owned(),
            start,
            end,
        });
    }
    slots.sort_by(|a, b| (a.start, &a.device).cmp(&(b.start, &b.device)));
    for (i, a) in slots.iter().enumerate() {
        if slots[i + 1..].iter().any(|b| a.overlaps(b)) {
            return Err(Refusal::plain("REQUEST_CONFLICTS_WITH_SELF"));
        }
    }
    Ok(slots)
}

impl ScheduleBook {
    /// Grants or refuses a request (its slots as [`parse_requests`] read them) made at
    /// `now`; on success, the tasks it preempted. Checked in VOLTTRON's order:
    /// `TASK_ID_ALREADY_EXISTS`, `MISSING_TASK_ID`, `MISSING_PRIORITY`, `INVALID_PRIORITY`,
    /// `MISSING_AGENT_ID`, `MALFORMED_REQUEST_EMPTY`, then conflicts.
    pub fn request(
        &mut self,
        agent_id: &str,
        task_id: &str,
        priority: &str,
        slots: Vec<Slot>,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> Result<Vec<Preempted>, Refusal> {
        if self.tasks.contains_key(task_id) {
            return Err(Refusal::plain("TASK_ID_ALREADY_EXISTS"));
        }
        if task_id.trim().is_empty() {
            return Err(Refusal::plain("MISSING_TASK_ID"));
        }
        if priority.trim().is_empty() {
            return Err(Refusal::plain("MISSING_PRIORITY"));
        }
        let priority = Priority::parse(priority).ok_or_else(|| Refusal::plain("INVALID_PRIORITY"))?;
        if agent_id.trim().is_empty() {
            return Err(Refusal::plain("MISSING_AGENT_ID"));
        }
        if slots.is_empty() {
            return Err(Refusal::plain("MALFORMED_REQUEST_EMPTY"));
        }
        if slots.iter().all(|s| s.end <= now) {
            return Err(Refusal::plain("MALFORMED_REQUEST: every slot is in the past"));
        }
        let mut conflicts: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
        let mut preempt = Vec::new();
        for task in self.tasks.values() {
            let clashing: Vec<Slot> = task
                .effective()
                .filter(|existing| slots.iter().any(|s| s.overlaps(existing)))
                .collect();
            if clashing.is_empty() {
                continue;
            }
            // VOLTTRON's check_can_preempt_other: HIGH preempts anything but HIGH, except a
            // LOW task that has started. One already preempted is left to its grace time.
            let started = task.effective().any(|s| s.start <= now);
            let preemptable = priority == Priority::High
                && task.priority != Priority::High
                && (task.priority == Priority::LowPreempt || !started);
            if preemptable && task.preempted_until.is_some() {
                continue;
            } else if preemptable {
                preempt.push(task.task_id.clone());
            } else {
                conflicts
                    .entry(task.agent_id.clone())
                    .or_default()
                    .entry(task.task_id.clone())
                    .or_default()
                    .extend(clashing.iter().map(Slot::to_value));
            }
        }
        if !conflicts.is_empty() {
            let data = conflicts
                .into_iter()
                .map(|(agent, tasks)| {
                    let tasks: Map = tasks.into_iter().map(|(t, s)| (t, Value::List(s))).collect();
                    (agent, Value::Map(tasks))
                })
                .collect();
            return Err(Refusal {
                info: "CONFLICTS_WITH_EXISTING_SCHEDULES".into(),
                data: Value::Map(data),
            });
        }
        let until = now + chrono::Duration::from_std(grace).unwrap_or_default();
        let mut preempted = Vec::new();
        for id in preempt {
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            let running = task.effective().any(|s| s.start <= now);
            preempted.push(Preempted {
                agent_id: task.agent_id.clone(),
                task_id: id.clone(),
            });
            if running {
                task.preempted_until = Some(until);
            } else {
                self.tasks.remove(&id);
            }
        }
        // A preempted task in its grace time still holds its device: the new task's slots
        // there start after the grace time.
        let mut slots = slots;
        for s in &mut slots {
            for task in self.tasks.values() {
                if let Some(until) = task.preempted_until
                    && task.effective().any(|e| e.device == s.device && e.start <= now)
                    && s.start < until
                {
                    s.start = until.min(s.end);
                }
            }
        }
        slots.retain(|s| s.start < s.end);
        self.tasks.insert(
            task_id.to_owned(),
            Task {
                agent_id: agent_id.to_owned(),
                task_id: task_id.to_owned(),
                priority,
                slots,
                preempted_until: None,
            },
        );
        Ok(preempted)
    }

    /// Cancels `task_id` if `agent_id` owns it.
    pub fn cancel(&mut self, agent_id: &str, task_id: &str) -> Result<Task, Refusal> {
        match self.tasks.get(task_id) {
            None => Err(Refusal::plain("TASK_ID_DOES_NOT_EXIST")),
            Some(t) if t.agent_id != agent_id => Err(Refusal::plain("AGENT_ID_TASK_ID_MISMATCH")),
            Some(_) => Ok(self.tasks.remove(task_id).expect("present")),
        }
    }

    /// Who holds `device` at `now`: (agent, task, when the slot ends).
    pub fn holder(&self, device: &str, now: DateTime<Utc>) -> Option<(&str, &str, DateTime<Utc>)> {
        self.tasks.values().find_map(|t| {
            t.effective()
                .find(|s| s.device == device && s.start <= now && now < s.end)
                .map(|s| (t.agent_id.as_str(), t.task_id.as_str(), s.end))
        })
    }

    /// Every device held at `now`, with its holder.
    pub fn held(&self, now: DateTime<Utc>) -> Vec<(String, String, String, DateTime<Utc>)> {
        let mut out: Vec<_> = self
            .tasks
            .values()
            .flat_map(|t| {
                t.effective()
                    .filter(move |s| s.start <= now && now < s.end)
                    .map(move |s| (s.device, t.agent_id.clone(), t.task_id.clone(), s.end))
            })
            .collect();
        out.sort();
        out
    }

    /// The next slot start or end after `now`.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.tasks
            .values()
            .flat_map(|t| t.effective().flat_map(|s| [s.start, s.end]).collect::<Vec<_>>())
            .filter(|t| *t > now)
            .min()
    }

    /// Removes the tasks whose slots have all ended; returns them.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<Task> {
        let done: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.ends().is_none_or(|e| e <= now))
            .map(|t| t.task_id.clone())
            .collect();
        done.into_iter().filter_map(|id| self.tasks.remove(&id)).collect()
    }

    /// The live tasks.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// The book as JSON, for the configuration store.
    pub fn to_value(&self) -> Value {
        Value::List(
            self.tasks
                .values()
                .map(|t| {
                    let mut m = Map::new();
                    m.insert("agent_id".into(), Value::from(t.agent_id.as_str()));
                    m.insert("task_id".into(), Value::from(t.task_id.as_str()));
                    m.insert("priority".into(), Value::from(t.priority.as_str()));
                    m.insert(
                        "slots".into(),
                        Value::List(t.slots.iter().map(Slot::to_value).collect()),
                    );
                    if let Some(u) = t.preempted_until {
                        m.insert("preempted_until".into(), Value::from(format_time(u)));
                    }
                    Value::Map(m)
                })
                .collect(),
        )
    }

    /// Reads what [`to_value`](Self::to_value) wrote.
    pub fn from_value(value: &Value) -> Result<ScheduleBook, String> {
        let Value::List(items) = value else {
            return Err("expected a list of tasks".into());
        };
        let mut book = ScheduleBook::default();
        for item in items {
            let text = |k: &str| {
                item.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("task without {k:?}"))
            };
            let task_id = text("task_id")?.to_owned();
            let priority = Priority::parse(text("priority")?).ok_or("a task with an unknown priority")?;
            // Stored with offsets; a naive time (an older book) is UTC.
            let slots =
                parse_requests(item.get("slots").unwrap_or(&Value::Null), &Utc).map_err(|e| e.info)?;
            let preempted_until = match item.get("preempted_until").and_then(Value::as_str) {
                Some(t) => Some(parse_timestamp(t).ok_or("bad preempted_until")?),
                None => None,
            };
            book.tasks.insert(
                task_id.clone(),
                Task {
                    agent_id: text("agent_id")?.to_owned(),
                    task_id,
                    priority,
                    slots,
                    preempted_until,
                },
            );
        }
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap()
    }

    fn req_value(device: &str, start: &str, end: &str) -> Value {
        Value::List(vec![Value::List(vec![
            Value::from(device),
            Value::from(start),
            Value::from(end),
        ])])
    }

    fn req(device: &str, start: &str, end: &str) -> Vec<Slot> {
        parse_requests(&req_value(device, start, end), &Utc).unwrap()
    }

    const GRACE: Duration = Duration::from_secs(60);

    /// `book.request` of one slot `(device, start, end)` at `now`, with the default grace.
    fn ask(
        book: &mut ScheduleBook,
        agent: &str,
        task: &str,
        priority: &str,
        (device, start, end): (&str, &str, &str),
        now: DateTime<Utc>,
    ) -> Result<Vec<Preempted>, Refusal> {
        book.request(agent, task, priority, req(device, start, end), now, GRACE)
    }

    #[test]
    fn conflicts_and_preemption_as_volttron() {
        let now = t("2024-06-01 12:00:00");
        let mut book = ScheduleBook::default();
        ask(
            &mut book,
            "a",
            "t1",
            "LOW",
            ("campus/b/rtu1", "2024-06-01 12:00:00", "2024-06-01 13:00:00"),
            now,
        )
        .unwrap();
        // LOW cannot be preempted, even by HIGH.
        let e = ask(
            &mut book,
            "b",
            "t2",
            "HIGH",
            ("campus/b/rtu1", "2024-06-01 12:30:00", "2024-06-01 12:45:00"),
            now,
        )
        .unwrap_err();
        assert_eq!(e.info, "CONFLICTS_WITH_EXISTING_SCHEDULES");
        assert_eq!(
            e.data.to_json_string(),
            r#"{"a":{"t1":[["campus/b/rtu1","2024-06-01 12:00:00+00:00","2024-06-01 13:00:00+00:00"]]}}"#
        );
        // Back to back is no conflict.
        ask(
            &mut book,
            "b",
            "t3",
            "LOW_PREEMPT",
            ("campus/b/rtu1", "2024-06-01 13:00:00", "2024-06-01 14:00:00"),
            now,
        )
        .unwrap();
        assert_eq!(book.holder("campus/b/rtu1", now).unwrap().0, "a");
        // HIGH preempts a LOW_PREEMPT task that has not started: it is gone.
        let p = ask(
            &mut book,
            "c",
            "t4",
            "HIGH",
            ("campus/b/rtu1", "2024-06-01 13:30:00", "2024-06-01 13:40:00"),
            now,
        )
        .unwrap();
        assert_eq!(
            p,
            [Preempted {
                agent_id: "b".into(),
                task_id: "t3".into()
            }]
        );
        assert!(book.tasks().all(|t| t.task_id != "t3"));
        assert_eq!(
            ask(
                &mut book,
                "x",
                "t4",
                "LOW",
                ("d", "2024-06-01 15:00", "2024-06-01 16:00"),
                now
            )
            .unwrap_err()
            .info,
            "TASK_ID_ALREADY_EXISTS"
        );
        assert_eq!(
            ask(
                &mut book,
                "x",
                "t5",
                "MEDIUM",
                ("d", "2024-06-01 15:00", "2024-06-01 16:00"),
                now
            )
            .unwrap_err()
            .info,
            "INVALID_PRIORITY"
        );
        assert!(
            parse_requests(&req_value("d", "2024-06-01 16:00", "2024-06-01 15:00"), &Utc)
                .unwrap_err()
                .info
                .starts_with("MALFORMED_REQUEST")
        );
        assert_eq!(
            book.request("x", "t5", "LOW", Vec::new(), now, GRACE)
                .unwrap_err()
                .info,
            "MALFORMED_REQUEST_EMPTY"
        );
        assert_eq!(
            ask(
                &mut book,
                "x",
                "t5",
                "",
                ("d", "2024-06-01 15:00", "2024-06-01 16:00"),
                now
            )
            .unwrap_err()
            .info,
            "MISSING_PRIORITY"
        );
        let two = Value::List(vec![
            Value::List(vec![
                Value::from("d"),
                Value::from("2024-06-01 15:00:00"),
                Value::from("2024-06-01 16:00:00"),
            ]),
            Value::List(vec![
                Value::from("d"),
                Value::from("2024-06-01 15:30:00"),
                Value::from("2024-06-01 16:30:00"),
            ]),
        ]);
        assert_eq!(
            parse_requests(&two, &Utc).unwrap_err().info,
            "REQUEST_CONFLICTS_WITH_SELF"
        );
        assert_eq!(
            book.cancel("b", "t4").unwrap_err().info,
            "AGENT_ID_TASK_ID_MISMATCH"
        );
        assert_eq!(
            book.cancel("c", "nope").unwrap_err().info,
            "TASK_ID_DOES_NOT_EXIST"
        );
        // It survives a round trip through JSON.
        assert_eq!(ScheduleBook::from_value(&book.to_value()).unwrap(), book);
    }

    #[test]
    fn a_running_low_preempt_task_keeps_the_device_for_the_grace_time() {
        let now = t("2024-06-01 12:00:00");
        let mut book = ScheduleBook::default();
        ask(
            &mut book,
            "a",
            "t1",
            "LOW_PREEMPT",
            ("d", "2024-06-01 11:00:00", "2024-06-01 13:00:00"),
            now,
        )
        .unwrap();
        let p = ask(
            &mut book,
            "b",
            "t2",
            "HIGH",
            ("d", "2024-06-01 12:00:00", "2024-06-01 12:30:00"),
            now,
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(book.holder("d", now).unwrap().0, "a");
        assert_eq!(book.holder("d", t("2024-06-01 12:00:59")).unwrap().0, "a");
        assert_eq!(book.holder("d", t("2024-06-01 12:01:00")).unwrap().0, "b");
        assert_eq!(book.next_change(now), Some(t("2024-06-01 12:01:00")));
        let done = book.expire(t("2024-06-01 12:01:00"));
        assert_eq!(done[0].task_id, "t1");
    }

    #[test]
    fn high_preempts_a_low_task_that_has_not_started_and_waits_out_a_grace_time() {
        let now = t("2024-06-01 12:00:00");
        let mut book = ScheduleBook::default();
        // LOW, later today: not started, so HIGH takes its place.
        ask(
            &mut book,
            "a",
            "later",
            "LOW",
            ("d", "2024-06-01 14:00", "2024-06-01 15:00"),
            now,
        )
        .unwrap();
        let p = ask(
            &mut book,
            "b",
            "urgent",
            "HIGH",
            ("d", "2024-06-01 14:30", "2024-06-01 14:45"),
            now,
        )
        .unwrap();
        assert_eq!(p[0].task_id, "later");
        assert!(book.tasks().all(|t| t.task_id != "later"));
        // HIGH never preempts HIGH.
        assert_eq!(
            ask(
                &mut book,
                "c",
                "h2",
                "HIGH",
                ("d", "2024-06-01 14:40", "2024-06-01 14:50"),
                now
            )
            .unwrap_err()
            .info,
            "CONFLICTS_WITH_EXISTING_SCHEDULES"
        );
        // A running LOW_PREEMPT task preempted once keeps its grace time; a second HIGH
        // request is no conflict with it, and starts when the grace time ends.
        ask(
            &mut book,
            "a",
            "now",
            "LOW_PREEMPT",
            ("e", "2024-06-01 11:00", "2024-06-01 13:00"),
            now,
        )
        .unwrap();
        let p = ask(
            &mut book,
            "b",
            "h3",
            "HIGH",
            ("e", "2024-06-01 12:05", "2024-06-01 12:10"),
            now,
        )
        .unwrap();
        assert_eq!(p[0].task_id, "now");
        let p = ask(
            &mut book,
            "c",
            "h4",
            "HIGH",
            ("e", "2024-06-01 12:00", "2024-06-01 12:03"),
            now,
        )
        .unwrap();
        assert!(p.is_empty(), "not preempted twice: {p:?}");
        assert_eq!(book.holder("e", t("2024-06-01 12:00:30")).unwrap().1, "now");
        assert_eq!(book.holder("e", t("2024-06-01 12:01:30")).unwrap().1, "h4");
        assert_eq!(book.holder("e", t("2024-06-01 12:06:00")).unwrap().1, "h3");
    }

    #[test]
    fn naive_request_times_are_in_the_given_zone_and_the_book_stores_offsets() {
        let pacific = chrono::FixedOffset::west_opt(7 * 3600).unwrap();
        let slots = parse_requests(
            &req_value("d", "2024-06-01 05:00:00", "2024-06-01 06:00:00"),
            &pacific,
        )
        .unwrap();
        assert_eq!(slots[0].start, t("2024-06-01 12:00:00"));
        let mut book = ScheduleBook::default();
        book.request("a", "t", "LOW", slots, t("2024-06-01 11:00:00"), GRACE)
            .unwrap();
        let stored = book.to_value().to_json_string();
        assert!(stored.contains("2024-06-01 12:00:00+00:00"), "{stored}");
        assert_eq!(ScheduleBook::from_value(&book.to_value()).unwrap(), book);
    }
}
