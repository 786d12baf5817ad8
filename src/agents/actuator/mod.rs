//! VOLTTRON's actuator: schedules of devices, and writes only from the holder of the
//! current slot.
//!
//! Agents ask for time on devices (`request_new_schedule`), and while a slot of theirs is
//! current they write through the actuator, which writes through the platform driver
//! (`platform.driver`; while the actuator runs the driver takes writes only from it). The
//! schedule book ([`schedule`]) decides conflicts and preemption; it is kept in the
//! actuator's configuration store (`schedules`), so it survives a restart.
//!
//! RPCs (VOLTTRON 11's `volttron-actuator`; the `requester_id` argument is kept for
//! compatibility, but the caller's identity is what counts, as in VOLTTRON). "Held" means
//! the caller holds the device's current slot; a device nobody holds may be written only
//! with `allow_no_lock_write` (VOLTTRON 11 defaults it to true; here writes need the slot
//! unless it is set).
//!
//! | method | needs | returns / publishes |
//! |--------|-------|---------------------|
//! | `request_new_schedule(requester_id, task_id, priority, requests)` | — | `{"result": "SUCCESS" \| "FAILURE", "info": .., "data": ..}`; preempted tasks' owners get `devices/actuators/schedule/result` with `PREEMPTED` |
//! | `request_cancel_schedule(requester_id, task_id)` | — | same shape |
//! | `get_point(topic, point=None)` | nothing (VOLTTRON); held with `require_schedule_for_reads` | the value |
//! | `get_multiple_points(topics)` (topics, or `[device, point]` pairs) | as `get_point` | `[{topic: value}, {topic: error}]` |
//! | `scrape_all(topic)` | as `get_point` | `{point: value}` |
//! | `set_point(requester_id, topic, value, point=None)` | held | the value the device holds; `devices/actuators/write/<topic>` (the value asked for) and `devices/actuators/value/<topic>` |
//! | `set_multiple_points(requester_id, topics_values)` | held, for every device (else nothing is written) | `{topic: error}` for the points that failed |
//! | `revert_point(requester_id, topic, point=None)` | held | `devices/actuators/reverted/point/<topic>` |
//! | `revert_device(requester_id, topic)` | held | `devices/actuators/reverted/device/<device>` |
//! | `get_schedule()` | — | the live tasks (this project's) |
//!
//! A refused or failed RPC is an error for the caller (`caller (<id>) does not have this
//! lock`, or the driver's error), as in VOLTTRON.
//!
//! The same requests by publication, as VOLTTRON: `devices/actuators/get/<topic>`,
//! `devices/actuators/set/<topic>` (message: the value; none is `ValueError: missing
//! argument`), `devices/actuators/revert/point/<topic>`,
//! `devices/actuators/revert/device/<device>`, and `devices/actuators/schedule/request`
//! (headers `type` = `NEW_SCHEDULE` | `CANCEL_SCHEDULE`, `taskID`, `priority`; message: the
//! requests), answered on `devices/actuators/schedule/result`. Errors of requests by
//! publication go to `devices/actuators/error/<topic>` (`{"type": "LockError" | "ValueError"
//! | "RemoteError", "value": reason}`).
//!
//! Schedule times without an offset are wall-clock times of the host's local zone, as
//! VOLTTRON's actuator reads them; times it writes carry their offset.
//!
//! While a slot is current: `devices/actuators/schedule/announce/<device>` at its start and
//! every `schedule_publish_interval` (headers `requesterID`, `taskID`, `window`: seconds
//! left, `time`), and the driver's `heart_beat` for the held devices at the slot's start and
//! every `heartbeat_interval`. When the holder's slot ends or is cancelled the device is
//! reverted (`revert_device`); `"revert_on_slot_end": false` leaves it as written, as
//! VOLTTRON 11 does.
//!
//! `config` keys: `schedule_publish_interval` (60 s), `heartbeat_interval` (60 s),
//! `preempt_grace_time` (60 s), `driver_vip_identity` (`platform.driver`),
//! `allow_no_lock_write` (false; VOLTTRON 11: true), and this project's
//! `require_schedule_for_reads` (false) and `revert_on_slot_end` (true).

pub mod schedule;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::TimerId;
use crate::agent::{AgentContext, ConfigAction, ConfigUpdate};
use crate::core::{Caller, Headers, Map, Publication, Value};

pub use schedule::{Preempted, Priority, Refusal, ScheduleBook, Slot, Task, parse_requests};

/// The actuator's VIP identity.
pub const IDENTITY: &str = crate::agents::ACTUATOR_IDENTITY;

/// The configuration entry that holds the schedule book.
pub const SCHEDULES: &str = "schedules";

const TICK: &str = "actuator.tick";

/// The actuator's `config`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActuatorSettings {
    /// Between announcements of a current slot.
    pub schedule_publish_interval: Duration,
    /// Between heart beats of the held devices.
    pub heartbeat_interval: Duration,
    /// How long a preempted, running task keeps its device.
    pub preempt_grace_time: Duration,
    /// The platform driver's identity.
    pub driver: String,
    /// Whether a device nobody holds may be written (VOLTTRON 11's default: true).
    pub allow_no_lock_write: bool,
    /// Whether reads need the caller to hold the current slot.
    pub require_schedule_for_reads: bool,
    /// Whether a device is reverted when its holder's slot ends or is cancelled.
    pub revert_on_slot_end: bool,
}

impl Default for ActuatorSettings {
    fn default() -> Self {
        ActuatorSettings {
            schedule_publish_interval: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(60),
            preempt_grace_time: Duration::from_secs(60),
            driver: crate::agents::DRIVER_IDENTITY.to_owned(),
            allow_no_lock_write: false,
            require_schedule_for_reads: false,
            revert_on_slot_end: true,
        }
    }
}

impl ActuatorSettings {
    /// Parses the `config` entry.
    pub fn parse(value: &Value) -> Result<ActuatorSettings, String> {
        let Value::Map(map) = value else {
            return Err(format!("config: expected a JSON object, found {value}"));
        };
        let mut s = ActuatorSettings::default();
        for (key, v) in map {
            let seconds = || match v.as_f64() {
                Some(x) if x > 0.0 && x <= 1e9 => Ok(Duration::from_secs_f64(x)),
                _ => Err(format!("config: {key:?}: {v} is not a number of seconds > 0")),
            };
            let flag = || {
                v.as_bool()
                    .ok_or_else(|| format!("config: {key:?}: {v} is not true or false"))
            };
            match key.as_str() {
                "schedule_publish_interval" => s.schedule_publish_interval = seconds()?,
                "heartbeat_interval" => s.heartbeat_interval = seconds()?,
                "preempt_grace_time" => s.preempt_grace_time = seconds()?,
                "driver_vip_identity" => {
                    s.driver = v
                        .as_str()
                        .filter(|d| !d.is_empty())
                        .ok_or_else(|| format!("config: {key:?}: {v} is not an identity"))?
                        .to_owned()
                }
                "allow_no_lock_write" => s.allow_no_lock_write = flag()?,
                "require_schedule_for_reads" => s.require_schedule_for_reads = flag()?,
                "revert_on_slot_end" => s.revert_on_slot_end = flag()?,
                other => return Err(format!("config: unknown key {other:?}")),
            }
        }
        Ok(s)
    }
}

/// VOLTTRON's actuator as an agent; see the [module docs](self).
#[derive(Debug, Default)]
pub struct Actuator {
    settings: ActuatorSettings,
    book: ScheduleBook,
    /// Who held each device at the last tick.
    holders: BTreeMap<String, (String, String)>,
    next_tick: Option<TimerId>,
    periodic: Vec<TimerId>,
}

fn result(ok: bool, info: &str, data: Value) -> Value {
    Value::Map(Map::from([
        (
            "result".to_owned(),
            Value::from(if ok { "SUCCESS" } else { "FAILURE" }),
        ),
        ("info".to_owned(), Value::from(info)),
        ("data".to_owned(), data),
    ]))
}

/// `topic` (+ `point`) as a device and a point.
/// A failed request: VOLTTRON's error `type` and the reason.
struct Failure {
    kind: &'static str,
    reason: String,
}

impl Failure {
    fn lock(reason: String) -> Failure {
        Failure {
            kind: "LockError",
            reason,
        }
    }

    fn value_error(reason: String) -> Failure {
        Failure {
            kind: "ValueError",
            reason,
        }
    }

    fn remote(e: impl std::fmt::Display) -> Failure {
        Failure {
            kind: "RemoteError",
            reason: e.to_string(),
        }
    }

    fn value(&self) -> Value {
        Value::Map(Map::from([
            ("type".to_owned(), Value::from(self.kind)),
            ("value".to_owned(), Value::from(self.reason.as_str())),
        ]))
    }
}

/// A topic of `get_multiple_points` / `set_multiple_points`: `"<device>/<point>"` or
/// `[device, point]`.
fn device_point(topic: &Value) -> Result<(String, String), String> {
    match topic {
        Value::String(t) => split(t, None),
        Value::List(pair) => match pair.as_slice() {
            [Value::String(d), Value::String(p), ..] => split(d, Some(p)),
            _ => Err(format!("invalid topic: {topic}")),
        },
        other => Err(format!("invalid topic: {other}")),
    }
}

fn split(topic: &str, point: Option<&str>) -> Result<(String, String), String> {
    crate::agents::device_path::device_and_point(topic, point)
        .map(|(d, p)| (d.to_owned(), p.to_owned()))
        .ok_or_else(|| format!("{topic:?} is not <device>/<point>"))
}

impl Actuator {
    /// An actuator with VOLTTRON's defaults (its `config` entry overrides them).
    pub fn new() -> Actuator {
        Actuator::default()
    }

    /// Whether `who` may write `device` (VOLTTRON's `_check_lock`).
    fn holds(&self, ctx: &AgentContext, who: &str, device: &str) -> Result<(), String> {
        match self.book.holder(device, ctx.now()) {
            Some((agent, _, _)) if agent == who => Ok(()),
            None if self.settings.allow_no_lock_write => Ok(()),
            _ => Err(format!("caller ({who}) does not have this lock")),
        }
    }

    /// Whether `who` may read `device`.
    fn may_read(&self, ctx: &AgentContext, who: &str, device: &str) -> Result<(), String> {
        if !self.settings.require_schedule_for_reads {
            return Ok(());
        }
        match self.book.holder(device, ctx.now()) {
            Some((agent, _, _)) if agent == who => Ok(()),
            _ => Err(format!(
                "caller ({who}) does not have this lock (require_schedule_for_reads)"
            )),
        }
    }

    async fn persist(&self, ctx: &AgentContext) {
        if let Err(e) = ctx.config().set(SCHEDULES, &self.book.to_value()).await {
            tracing::error!("the schedule book could not be stored: {e}");
        }
    }

    /// Arms the timer of the next slot change.
    fn plan(&mut self, ctx: &AgentContext) {
        if let Some(t) = self.next_tick.take() {
            ctx.cancel(t);
        }
        if let Some(at) = self.book.next_change(ctx.now()) {
            let me = ctx.identity().to_string();
            self.next_tick = ctx
                .schedule_at(at, move |_: &mut Actuator, ctx| {
                    let _ = ctx.notify(&me, TICK, ());
                })
                .ok();
        }
    }

    fn publish(ctx: &AgentContext, topic: String, headers: Headers, message: Value) {
        if let Err(e) = ctx.publish_with(topic.as_str(), headers, message) {
            tracing::warn!("publish of {topic} failed: {e}");
        }
    }

    fn headers(ctx: &AgentContext, requester: &str) -> Headers {
        Headers::from([
            ("requesterID".to_owned(), Value::from(requester)),
            (
                "time".to_owned(),
                Value::from(crate::config_store::format_timestamp(&ctx.now())),
            ),
        ])
    }

    /// Announces every current slot.
    fn announce(&self, ctx: &AgentContext) {
        let now = ctx.now();
        for (device, agent, task, end) in self.book.held(now) {
            let mut headers = Self::headers(ctx, &agent);
            headers.insert("taskID".into(), Value::from(task));
            headers.insert("window".into(), Value::Int((end - now).num_seconds().max(0)));
            Self::publish(
                ctx,
                format!("devices/actuators/schedule/announce/{device}"),
                headers,
                Value::Null,
            );
        }
    }

    /// Toggles the heartbeat points of the held devices.
    fn heart_beat(&self, ctx: &AgentContext) {
        let devices: Vec<String> = self.book.held(ctx.now()).into_iter().map(|(d, ..)| d).collect();
        if devices.is_empty() {
            return;
        }
        if let Err(e) = ctx.notify(&self.settings.driver, "heart_beat", (devices,)) {
            tracing::warn!("heart beat to {}: {e}", self.settings.driver);
        }
    }

    fn restart_periodic(&mut self, ctx: &AgentContext) {
        for t in self.periodic.drain(..) {
            ctx.cancel(t);
        }
        let announce = ctx.schedule_every(
            self.settings.schedule_publish_interval,
            |a: &mut Actuator, ctx| a.announce(ctx),
        );
        let beat = ctx.schedule_every(self.settings.heartbeat_interval, |a: &mut Actuator, ctx| {
            a.heart_beat(ctx)
        });
        self.periodic.extend(announce.ok());
        self.periodic.extend(beat.ok());
    }

    /// Slot changes at `now`: revert released devices (with `revert_on_slot_end`), announce
    /// new holders, drop ended tasks.
    async fn tick(&mut self, ctx: &AgentContext) {
        let now = ctx.now();
        let held: BTreeMap<String, (String, String)> = self
            .book
            .held(now)
            .into_iter()
            .map(|(d, a, t, _)| (d, (a, t)))
            .collect();
        let released: Vec<String> = self
            .holders
            .iter()
            .filter(|(d, h)| held.get(*d) != Some(h))
            .map(|(d, _)| d.clone())
            .collect();
        for device in released.iter().filter(|_| self.settings.revert_on_slot_end) {
            if let Err(e) = ctx
                .call(&self.settings.driver, "revert_device", (device.as_str(),))
                .await
            {
                tracing::warn!("revert of {device} at the end of its slot failed: {e}");
            }
        }
        let fresh = held.iter().any(|(d, h)| self.holders.get(d) != Some(h));
        self.holders = held;
        if fresh {
            self.announce(ctx);
            self.heart_beat(ctx);
        }
        let ended = self.book.expire(now);
        if !ended.is_empty() || fresh {
            self.persist(ctx).await;
        }
        self.plan(ctx);
    }

    async fn new_schedule(
        &mut self,
        ctx: &AgentContext,
        who: &str,
        task_id: &str,
        priority: &str,
        requests: &Value,
    ) -> Value {
        let granted = parse_requests(requests, &chrono::Local).and_then(|slots| {
            self.book.request(
                who,
                task_id,
                priority,
                slots,
                ctx.now(),
                self.settings.preempt_grace_time,
            )
        });
        match granted {
            Err(refusal) => result(false, &refusal.info, refusal.data),
            Ok(preempted) => {
                for p in &preempted {
                    let mut headers = Self::headers(ctx, &p.agent_id);
                    headers.insert("type".into(), Value::from("CANCEL_SCHEDULE"));
                    headers.insert("taskID".into(), Value::from(p.task_id.as_str()));
                    let data = Value::Map(Map::from([
                        ("agentID".to_owned(), Value::from(who)),
                        ("taskID".to_owned(), Value::from(task_id)),
                    ]));
                    let mut message = result(true, "", data);
                    if let Value::Map(m) = &mut message {
                        m.insert("result".into(), Value::from("PREEMPTED"));
                    }
                    Self::publish(ctx, "devices/actuators/schedule/result".into(), headers, message);
                }
                self.persist(ctx).await;
                self.tick(ctx).await;
                result(true, "", Value::Map(Map::new()))
            }
        }
    }

    async fn cancel_schedule(&mut self, ctx: &AgentContext, who: &str, task_id: &str) -> Value {
        match self.book.cancel(who, task_id) {
            Err(refusal) => result(false, &refusal.info, refusal.data),
            Ok(_) => {
                self.persist(ctx).await;
                self.tick(ctx).await;
                result(true, "", Value::Map(Map::new()))
            }
        }
    }

    /// A write through the driver: `devices/actuators/write/<topic>` (the value asked for)
    /// and `devices/actuators/value/<topic>` (the value the device holds) on success.
    async fn write(
        &mut self,
        ctx: &AgentContext,
        who: &str,
        device: &str,
        point: &str,
        value: Value,
    ) -> Result<Value, Failure> {
        self.holds(ctx, who, device).map_err(Failure::lock)?;
        let written = ctx
            .call(&self.settings.driver, "set_point", (device, point, value.clone()))
            .await
            .map_err(Failure::remote)?;
        let topic = format!("{device}/{point}");
        let headers = Self::headers(ctx, who);
        Self::publish(
            ctx,
            format!("devices/actuators/write/{topic}"),
            headers.clone(),
            value,
        );
        Self::publish(
            ctx,
            format!("devices/actuators/value/{topic}"),
            headers,
            written.clone(),
        );
        Ok(written)
    }

    /// Publishes the failure of a request made by publication.
    fn publish_failure(ctx: &AgentContext, who: &str, topic: &str, failure: &Failure) {
        Self::publish(
            ctx,
            format!("devices/actuators/error/{topic}"),
            Self::headers(ctx, who),
            failure.value(),
        );
    }

    async fn revert(
        &mut self,
        ctx: &AgentContext,
        who: &str,
        device: &str,
        point: Option<&str>,
    ) -> Result<(), Failure> {
        self.holds(ctx, who, device).map_err(Failure::lock)?;
        let (topic, reverted) = match point {
            Some(point) => {
                ctx.call(&self.settings.driver, "revert_point", (device, point))
                    .await
                    .map_err(Failure::remote)?;
                (format!("{device}/{point}"), "point")
            }
            None => {
                ctx.call(&self.settings.driver, "revert_device", (device,))
                    .await
                    .map_err(Failure::remote)?;
                (device.to_owned(), "device")
            }
        };
        Self::publish(
            ctx,
            format!("devices/actuators/reverted/{reverted}/{topic}"),
            Self::headers(ctx, who),
            Value::Null,
        );
        Ok(())
    }

    async fn read(&self, ctx: &AgentContext, who: &str, device: &str, point: &str) -> Result<Value, Failure> {
        self.may_read(ctx, who, device).map_err(Failure::lock)?;
        ctx.call(&self.settings.driver, "get_point", (device, point))
            .await
            .map_err(Failure::remote)
    }
}

#[crate::agent]
impl Actuator {
    #[on_start]
    async fn start(&mut self, ctx: &AgentContext) {
        match ctx.config().get(SCHEDULES).await {
            Ok(stored) => match ScheduleBook::from_value(&stored) {
                Ok(book) => self.book = book,
                Err(e) => tracing::error!("stored schedules are unreadable, starting empty: {e}"),
            },
            Err(e) => tracing::debug!("no stored schedules: {e}"),
        }
        self.restart_periodic(ctx);
        self.tick(ctx).await;
    }

    #[on_config("config")]
    fn on_settings(&mut self, ctx: &AgentContext, update: &ConfigUpdate) {
        let parsed = match update.action {
            ConfigAction::Delete => Ok(ActuatorSettings::default()),
            _ => ActuatorSettings::parse(&update.contents),
        };
        match parsed {
            Ok(s) => {
                self.settings = s;
                ctx.set_health(crate::core::Status::Good, None);
                self.restart_periodic(ctx);
            }
            Err(e) => {
                tracing::error!("{e}");
                ctx.set_health(crate::core::Status::Bad, Some(&e));
            }
        }
    }

    /// The timer of the next slot change (only the actuator itself may call it).
    #[rpc(name = "actuator.tick")]
    async fn on_tick(&mut self, ctx: &AgentContext, caller: Caller) -> Result<(), String> {
        if caller.identity() != ctx.identity() {
            return Err("internal method".into());
        }
        self.tick(ctx).await;
        Ok(())
    }

    /// Asks for time on devices.
    #[rpc]
    async fn request_new_schedule(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        requester_id: Value,
        task_id: String,
        priority: String,
        requests: Value,
    ) -> Value {
        let _ = requester_id;
        self.new_schedule(ctx, caller.identity().as_str(), &task_id, &priority, &requests)
            .await
    }

    /// Cancels a task of the caller's.
    #[rpc]
    async fn request_cancel_schedule(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        requester_id: Value,
        task_id: String,
    ) -> Value {
        let _ = requester_id;
        self.cancel_schedule(ctx, caller.identity().as_str(), &task_id)
            .await
    }

    /// Reads a point.
    #[rpc]
    async fn get_point(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        topic: String,
        point: Option<String>,
    ) -> Result<Value, String> {
        let (device, point) = split(&topic, point.as_deref())?;
        self.read(ctx, caller.identity().as_str(), &device, &point)
            .await
            .map_err(|f| f.reason)
    }

    /// Reads several points: `[values, errors]` by topic.
    #[rpc]
    async fn get_multiple_points(&mut self, ctx: &AgentContext, caller: Caller, topics: Vec<Value>) -> Value {
        let mut values = Map::new();
        let mut errors = Map::new();
        for topic in topics {
            match device_point(&topic) {
                Ok((d, p)) => match self.read(ctx, caller.identity().as_str(), &d, &p).await {
                    Ok(v) => values.insert(format!("{d}/{p}"), v),
                    Err(f) => errors.insert(format!("{d}/{p}"), Value::from(f.reason)),
                },
                Err(e) => errors.insert(topic.to_json_string(), Value::from(e)),
            };
        }
        Value::List(vec![Value::Map(values), Value::Map(errors)])
    }

    /// Every point of a device.
    #[rpc]
    async fn scrape_all(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        topic: String,
    ) -> Result<Value, String> {
        let device = crate::agents::device_path::device_path(&topic).to_owned();
        self.may_read(ctx, caller.identity().as_str(), &device)?;
        ctx.call(&self.settings.driver, "scrape_all", (device.as_str(),))
            .await
            .map_err(|e| e.to_string())
    }

    /// Writes a point of a device the caller holds.
    #[rpc]
    async fn set_point(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        requester_id: Value,
        topic: String,
        value: Value,
        point: Option<String>,
    ) -> Result<Value, String> {
        let _ = requester_id;
        let (device, point) = split(&topic, point.as_deref())?;
        self.write(ctx, caller.identity().as_str(), &device, &point, value)
            .await
            .map_err(|f| f.reason)
    }

    /// Writes several points, one driver call per device, once the caller is known to hold
    /// every device; `{topic: error}` for the points that failed.
    #[rpc]
    async fn set_multiple_points(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        requester_id: Value,
        topics_values: Vec<(Value, Value)>,
    ) -> Result<Map, String> {
        let _ = requester_id;
        let who = caller.identity().as_str();
        let mut errors = Map::new();
        let mut by_device: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
        for (topic, value) in topics_values {
            match device_point(&topic) {
                Ok((d, p)) => by_device.entry(d).or_default().push((p, value)),
                Err(e) => {
                    errors.insert(topic.to_json_string(), Value::from(e));
                }
            }
        }
        for device in by_device.keys() {
            if self.holds(ctx, who, device).is_err() {
                return Err(format!("caller ({who}) does not lock for device {device}"));
            }
        }
        for (device, points) in by_device {
            match ctx
                .call(
                    &self.settings.driver,
                    "set_multiple_points",
                    (device.as_str(), points.clone()),
                )
                .await
            {
                Ok(Value::Map(failed)) => {
                    errors.extend(failed.into_iter().map(|(p, e)| (format!("{device}/{p}"), e)))
                }
                Ok(_) => {}
                Err(e) => {
                    for (p, _) in points {
                        errors.insert(format!("{device}/{p}"), Value::from(e.to_string()));
                    }
                }
            }
        }
        Ok(errors)
    }

    /// Reverts a point of a device the caller holds.
    #[rpc]
    async fn revert_point(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        requester_id: Value,
        topic: String,
        point: Option<String>,
    ) -> Result<(), String> {
        let _ = requester_id;
        let (device, point) = split(&topic, point.as_deref())?;
        self.revert(ctx, caller.identity().as_str(), &device, Some(&point))
            .await
            .map_err(|f| f.reason)
    }

    /// Reverts every written point of a device the caller holds.
    #[rpc]
    async fn revert_device(
        &mut self,
        ctx: &AgentContext,
        caller: Caller,
        requester_id: Value,
        topic: String,
    ) -> Result<(), String> {
        let _ = requester_id;
        let device = crate::agents::device_path::device_path(&topic).to_owned();
        self.revert(ctx, caller.identity().as_str(), &device, None)
            .await
            .map_err(|f| f.reason)
    }

    /// The live tasks.
    #[rpc]
    fn get_schedule(&mut self) -> Value {
        self.book.to_value()
    }

    /// `devices/actuators/schedule/request`: a schedule request by publication.
    #[subscribe("devices/actuators/schedule/request")]
    async fn on_schedule_request(&mut self, ctx: &AgentContext, msg: &Publication) {
        let who = msg.sender.as_str().to_owned();
        let text = |k: &str| msg.header(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let (kind, task_id) = (text("type"), text("taskID"));
        let answer = match kind.as_str() {
            "NEW_SCHEDULE" => {
                self.new_schedule(ctx, &who, &task_id, &text("priority"), &msg.message)
                    .await
            }
            "CANCEL_SCHEDULE" => self.cancel_schedule(ctx, &who, &task_id).await,
            other => {
                tracing::debug!("schedule request of type {other:?}");
                result(false, "INVALID_REQUEST_TYPE", Value::Map(Map::new()))
            }
        };
        let mut headers = Self::headers(ctx, &who);
        headers.insert("type".into(), Value::from(kind));
        headers.insert("taskID".into(), Value::from(task_id));
        Self::publish(ctx, "devices/actuators/schedule/result".into(), headers, answer);
    }

    /// `devices/actuators/set/<device>/<point>`: a write by publication.
    #[subscribe("devices/actuators/set/")]
    async fn on_set(&mut self, ctx: &AgentContext, msg: &Publication) {
        let topic = strip(msg, "devices/actuators/set/");
        let who = msg.sender.as_str();
        let outcome = match split(&topic, None) {
            Err(e) => Err(Failure::value_error(e)),
            Ok(_) if msg.message == Value::Null => Err(Failure::value_error("missing argument".into())),
            Ok((device, point)) => self
                .write(ctx, who, &device, &point, msg.message.clone())
                .await
                .map(drop),
        };
        if let Err(f) = outcome {
            Self::publish_failure(ctx, who, &topic, &f);
        }
    }

    /// `devices/actuators/get/<device>/<point>`: a read by publication, answered on
    /// `devices/actuators/value/<device>/<point>`.
    #[subscribe("devices/actuators/get/")]
    async fn on_get(&mut self, ctx: &AgentContext, msg: &Publication) {
        let topic = strip(msg, "devices/actuators/get/");
        let who = msg.sender.as_str();
        let outcome = match split(&topic, None) {
            Ok((device, point)) => self.read(ctx, who, &device, &point).await,
            Err(e) => Err(Failure::value_error(e)),
        };
        match outcome {
            Ok(v) => Self::publish(
                ctx,
                format!("devices/actuators/value/{topic}"),
                Self::headers(ctx, who),
                v,
            ),
            Err(f) => Self::publish_failure(ctx, who, &topic, &f),
        }
    }

    /// `devices/actuators/revert/point/<device>/<point>`: a revert by publication.
    #[subscribe("devices/actuators/revert/point/")]
    async fn on_revert_point(&mut self, ctx: &AgentContext, msg: &Publication) {
        let topic = strip(msg, "devices/actuators/revert/point/");
        let who = msg.sender.as_str();
        let outcome = match split(&topic, None) {
            Ok((device, point)) => self.revert(ctx, who, &device, Some(&point)).await,
            Err(e) => Err(Failure::value_error(e)),
        };
        if let Err(f) = outcome {
            Self::publish_failure(ctx, who, &topic, &f);
        }
    }

    /// `devices/actuators/revert/device/<device>`: a device's revert by publication.
    #[subscribe("devices/actuators/revert/device/")]
    async fn on_revert_device(&mut self, ctx: &AgentContext, msg: &Publication) {
        let topic = strip(msg, "devices/actuators/revert/device/");
        let device = crate::agents::device_path::device_path(&topic).to_owned();
        let who = msg.sender.as_str();
        if let Err(f) = self.revert(ctx, who, &device, None).await {
            Self::publish_failure(ctx, who, &topic, &f);
        }
    }
}

/// The topic after a request prefix.
fn strip(msg: &Publication, prefix: &str) -> String {
    msg.topic.as_str().trim_start_matches(prefix).to_owned()
}
