//! One device's task: its scrape schedule, its requests, its revert bookkeeping.
//!
//! Each device runs in a task of its own on the driver agent's thread: a device that does
//! not answer holds up only itself. The task sleeps on the platform clock (the virtual one
//! in tests) until the device's next scrape, or until a request arrives.
//!
//! | event | what the task does |
//! |-------|--------------------|
//! | the scrape is due | `scrape_all` within the timeout, publish (`publish.rs`), schedule the next at the next interval boundary + the device's offset |
//! | a scrape fails on the device's side | the device is BAD in the agent's health, nothing is published, the next try waits `interval × 2ⁿ⁻¹` (at most 5 min) |
//! | a scrape succeeds again | the device is GOOD again, the schedule resumes |
//! | `set_point` | the value read before the first write of a point is kept for `revert_point` (VOLTTRON's `BasicRevert`) |
//! | the device starts | `subscribe_changes` (BACnet COV); again after the feed's `renew_after`, or after one interval if it failed |
//! | the device reports a change | published as VOLTTRON's `publish_cov_value` (`publish.rs`); kept for revert as a read is |
//! | the command channel closes | the task ends (the device was removed or reconfigured, or the agent stopped) |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::Clock;
use crate::agent::AgentContext;
use crate::core::{Headers, Status, Value};

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::platform::mailbox::ActivityGuard;

use super::interface::{Driver, DriverError, PointChange};
use super::publish::DevicePublisher;

/// The longest wait between tries of a failing device.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A request to a device's task.
pub(crate) enum Command {
    Get(String, oneshot::Sender<Result<Value, DriverError>>),
    Set(String, Value, oneshot::Sender<Result<Value, DriverError>>),
    ScrapeAll(oneshot::Sender<Result<BTreeMap<String, Value>, DriverError>>),
    /// One point, or every point written since the last revert.
    Revert(Option<String>, oneshot::Sender<Result<(), DriverError>>),
    /// Toggles the heartbeat point, if the device has one.
    HeartBeat,
}

/// What is wrong: devices that do not answer, and configuration entries that cannot be
/// used. The driver's health is BAD while either is not empty, with both in its context
/// (`{"bad_devices": {device: reason}, "config_errors": {entry: reason}}`, empty ones left out).
#[derive(Clone)]
pub(crate) struct HealthBoard {
    ctx: AgentContext,
    faults: Arc<Mutex<Faults>>,
}

/// The two kinds of fault, by device / by entry.
#[derive(Clone, Default)]
pub(crate) struct Faults {
    pub(crate) bad_devices: BTreeMap<String, String>,
    pub(crate) config_errors: BTreeMap<String, String>,
}

fn set(map: &mut BTreeMap<String, String>, key: &str, reason: Option<String>) -> bool {
    match reason {
        Some(r) => map.insert(key.to_owned(), r.clone()).as_ref() != Some(&r),
        None => map.remove(key).is_some(),
    }
}

impl HealthBoard {
    pub(crate) fn new(ctx: AgentContext) -> HealthBoard {
        HealthBoard {
            ctx,
            faults: Arc::default(),
        }
    }

    /// Marks `device` BAD with `reason`, or GOOD with `None`.
    pub(crate) fn mark(&self, device: &str, reason: Option<String>) {
        self.update(|f| set(&mut f.bad_devices, device, reason));
    }

    /// Records why configuration `entry` cannot be used, or that it can (`None`).
    pub(crate) fn mark_config(&self, entry: &str, reason: Option<String>) {
        self.update(|f| set(&mut f.config_errors, entry, reason));
    }

    fn update(&self, change: impl FnOnce(&mut Faults) -> bool) {
        let faults = {
            let mut f = self.faults.lock();
            if !change(&mut f) {
                return;
            }
            f.clone()
        };
        let as_map = |m: BTreeMap<String, String>| {
            Value::Map(m.into_iter().map(|(k, r)| (k, Value::from(r))).collect())
        };
        let mut context = crate::core::Map::new();
        if !faults.bad_devices.is_empty() {
            context.insert("bad_devices".to_owned(), as_map(faults.bad_devices));
        }
        if !faults.config_errors.is_empty() {
            context.insert("config_errors".to_owned(), as_map(faults.config_errors));
        }
        if context.is_empty() {
            self.ctx.set_health(Status::Good, None);
        } else {
            self.ctx
                .set_health(Status::Bad, Some(&Value::Map(context).to_json_string()));
        }
    }

    /// What is wrong now.
    pub(crate) fn faults(&self) -> Faults {
        self.faults.lock().clone()
    }
}

/// A device's task, before it runs.
pub(crate) struct Worker {
    pub(crate) path: String,
    pub(crate) driver: Box<dyn Driver>,
    pub(crate) publisher: DevicePublisher,
    pub(crate) ctx: AgentContext,
    pub(crate) health: HealthBoard,
    pub(crate) interval: Duration,
    /// Where in the interval this device is scraped (the stagger).
    pub(crate) offset: Duration,
    pub(crate) timeout: Duration,
    pub(crate) heart_beat_point: Option<String>,
}

struct Running {
    w: Worker,
    clock: Clock,
    heart_value: bool,
    /// The last value read of each point not written since (what a revert restores).
    clean: HashMap<String, Value>,
    dirty: HashSet<String>,
    failures: u32,
    /// The worker's interval and offset as clock arithmetic takes them.
    interval: TimeDelta,
    offset: TimeDelta,
    /// The changes the device reports on its own, and when to subscribe again.
    changes: Option<BoxStream<'static, PointChange>>,
    renew_at: Option<DateTime<Utc>>,
}

/// What woke a device's task.
enum Event {
    Command(Option<Command>),
    Scrape(Option<ActivityGuard>),
    Change(Option<PointChange>),
    Renew(Option<ActivityGuard>),
}

/// The interval boundary at or before `t` (as VOLTTRON: multiples of the interval since the epoch).
fn boundary_before(t: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let micros = interval.as_micros().max(1) as i64;
    let now = t.timestamp_micros();
    DateTime::from_timestamp_micros(now - now.rem_euclid(micros)).unwrap_or(t)
}

/// Publishes a device's messages with the same headers; a failed publish is logged.
fn publish(ctx: &AgentContext, device: &str, headers: &Headers, messages: Vec<(&str, Value)>) {
    for (topic, message) in messages {
        if let Err(e) = ctx.publish_with(topic, headers.clone(), message) {
            tracing::warn!(device, "publish of {topic} failed: {e}");
        }
    }
}

fn since(clock: &Clock, at: DateTime<Utc>) -> Duration {
    (at - clock.now()).to_std().unwrap_or(Duration::ZERO)
}

impl Worker {
    /// Runs the device until its command channel closes.
    pub(crate) async fn run(self, mut commands: mpsc::Receiver<Command>) {
        let clock = self.ctx.clock().clone();
        // Both are bounded by the device's configuration (at most 1e9 s).
        let interval = TimeDelta::from_std(self.interval).unwrap_or(TimeDelta::MAX);
        let offset = TimeDelta::from_std(self.offset).unwrap_or(TimeDelta::zero());
        let mut r = Running {
            interval,
            offset,
            w: self,
            clock,
            heart_value: false,
            clean: HashMap::new(),
            dirty: HashSet::new(),
            failures: 0,
            changes: None,
            renew_at: None,
        };
        r.subscribe().await;
        let mut round = r.next_round(r.clock.now());
        loop {
            let due = round + r.offset;
            let ctx = r.w.ctx.clone();
            let sleep = ctx.sleep_as_work(since(&r.clock, due));
            let renew = async {
                match r.renew_at {
                    Some(at) => ctx.sleep_as_work(since(&r.clock, at)).await,
                    None => std::future::pending().await,
                }
            };
            let mut changes = r.changes.take();
            let change = async {
                match changes.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                biased;
                command = commands.recv() => Event::Command(command),
                work = sleep => Event::Scrape(work),
                work = renew => Event::Renew(work),
                change = change => Event::Change(change),
            };
            r.changes = changes;
            match event {
                Event::Command(None) => return,
                Event::Command(Some(c)) => r.handle(c).await,
                Event::Scrape(_work) => {
                    round = match r.scrape(round).await {
                        Ok(()) => r.next_round(r.clock.now()),
                        Err(()) => r.retry_round(),
                    };
                }
                Event::Renew(_work) => r.subscribe().await,
                Event::Change(Some(change)) => r.publish_change(change),
                Event::Change(None) => {
                    tracing::info!(device = %r.w.path, "the device's change feed ended");
                    r.changes = None;
                }
            }
        }
    }
}

impl Running {
    /// The next round boundary after `t` whose slot (boundary + offset) is still ahead.
    fn next_round(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut b = boundary_before(t, self.w.interval);
        while b + self.offset <= t {
            b += self.interval;
        }
        b
    }

    /// After a failure: the round whose slot comes after the backoff.
    fn retry_round(&self) -> DateTime<Utc> {
        let backoff = self
            .w
            .interval
            .saturating_mul(1 << self.failures.saturating_sub(1).min(16))
            .min(MAX_BACKOFF.max(self.w.interval));
        let earliest = self.clock.now() + TimeDelta::from_std(backoff).unwrap_or(self.interval);
        // The first slot (boundary + offset) at or after `earliest`.
        self.next_round(earliest - TimeDelta::microseconds(1))
    }

    async fn within<T>(
        timeout: Duration,
        work: impl std::future::Future<Output = Result<T, DriverError>>,
    ) -> Result<T, DriverError> {
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(DriverError::Timeout(timeout)),
        }
    }

    /// Asks the device for its change feed (BACnet COV); after a failure, tries again one
    /// interval later and keeps the feed it has.
    async fn subscribe(&mut self) {
        match self.w.driver.subscribe_changes().await {
            Ok(Some(feed)) => {
                self.changes = Some(feed.changes);
                self.renew_at = feed
                    .renew_after
                    .and_then(|d| TimeDelta::from_std(d).ok())
                    .map(|d| self.clock.now() + d);
            }
            Ok(None) => {
                self.changes = None;
                self.renew_at = None;
            }
            Err(e) => {
                tracing::warn!(device = %self.w.path, "change subscription failed, trying again in one interval: {e}");
                self.renew_at = Some(self.clock.now() + self.interval);
            }
        }
    }

    /// Keeps a value read from the device as what a revert restores, unless the point has
    /// been written since (the same points every scrape: overwritten without a new key).
    fn remember(&mut self, point: &str, value: &Value) {
        if self.dirty.contains(point) {
            return;
        }
        match self.clean.get_mut(point) {
            Some(kept) => kept.clone_from(value),
            None => {
                self.clean.insert(point.to_owned(), value.clone());
            }
        }
    }

    /// Publishes a change the device reported, as VOLTTRON's `publish_cov_value`.
    fn publish_change(&mut self, change: PointChange) {
        self.remember(&change.point, &change.value);
        let headers = DevicePublisher::change_headers(self.clock.now());
        let messages = self.w.publisher.change_messages(&change.point, change.value);
        publish(&self.w.ctx, &self.w.path, &headers, messages);
    }

    /// Scrapes and publishes; `Err` when the device failed.
    async fn scrape(&mut self, round: DateTime<Utc>) -> Result<(), ()> {
        let result = Self::within(self.w.timeout, self.w.driver.scrape_all()).await;
        match result {
            Ok(values) => {
                self.failures = 0;
                self.w.health.mark(&self.w.path, None);
                for (point, value) in &values {
                    self.remember(point, value);
                }
                let headers = DevicePublisher::headers(self.clock.now(), round);
                publish(
                    &self.w.ctx,
                    &self.w.path,
                    &headers,
                    self.w.publisher.messages(values),
                );
                Ok(())
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                if self.failures == 1 {
                    tracing::warn!(device = %self.w.path, "scrape failed: {e}");
                }
                self.w.health.mark(
                    &self.w.path,
                    Some(format!("{e} ({} failed scrapes in a row)", self.failures)),
                );
                Err(())
            }
        }
    }

    fn writable(&self, point: &str) -> Result<(), DriverError> {
        match self.w.driver.points().iter().find(|p| p.name == point) {
            None => Err(DriverError::UnknownPoint(point.to_owned())),
            Some(p) if !p.writable => Err(DriverError::NotWritable(point.to_owned())),
            Some(_) => Ok(()),
        }
    }

    async fn set(&mut self, point: &str, value: Value) -> Result<Value, DriverError> {
        self.writable(point)?;
        if !self.dirty.contains(point) && !self.clean.contains_key(point) {
            let before = Self::within(self.w.timeout, self.w.driver.get_point(point)).await?;
            self.clean.insert(point.to_owned(), before);
        }
        let written = Self::within(self.w.timeout, self.w.driver.set_point(point, value)).await?;
        self.dirty.insert(point.to_owned());
        Ok(written)
    }

    async fn revert(&mut self, point: &str) -> Result<(), DriverError> {
        self.writable(point)?;
        if !Self::within(self.w.timeout, self.w.driver.revert_point(point)).await? {
            if let Some(value) = self.clean.get(point).cloned() {
                Self::within(self.w.timeout, self.w.driver.set_point(point, value)).await?;
            } else if self.dirty.contains(point) {
                return Err(DriverError::BadValue {
                    point: point.to_owned(),
                    reason: "no value to revert to".into(),
                });
            }
        }
        self.dirty.remove(point);
        Ok(())
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Get(point, reply) => {
                let result = Self::within(self.w.timeout, self.w.driver.get_point(&point)).await;
                let _ = reply.send(result);
            }
            Command::Set(point, value, reply) => {
                let _ = reply.send(self.set(&point, value).await);
            }
            Command::ScrapeAll(reply) => {
                let _ = reply.send(Self::within(self.w.timeout, self.w.driver.scrape_all()).await);
            }
            Command::Revert(Some(point), reply) => {
                let _ = reply.send(self.revert(&point).await);
            }
            Command::Revert(None, reply) => {
                let mut result = Ok(());
                let mut dirty: Vec<String> = self.dirty.iter().cloned().collect();
                dirty.sort();
                for point in dirty {
                    if let Err(e) = self.revert(&point).await {
                        result = Err(e);
                    }
                }
                // Points never written here revert only to an interface's own default (a
                // fake device's starting values, a BACnet priority released).
                let untouched: Vec<String> = self
                    .w
                    .driver
                    .points()
                    .iter()
                    .filter(|p| p.writable && !self.dirty.contains(&p.name))
                    .map(|p| p.name.clone())
                    .collect();
                for point in untouched {
                    if let Err(e) = Self::within(self.w.timeout, self.w.driver.revert_point(&point)).await {
                        result = Err(e);
                    }
                }
                let _ = reply.send(result);
            }
            Command::HeartBeat => {
                let Some(point) = self.w.heart_beat_point.clone() else {
                    return;
                };
                self.heart_value = !self.heart_value;
                let value = Value::Int(i64::from(self.heart_value));
                if let Err(e) = Self::within(self.w.timeout, self.w.driver.set_point(&point, value)).await {
                    tracing::warn!(device = %self.w.path, "heart beat on {point} failed: {e}");
                }
            }
        }
    }
}
