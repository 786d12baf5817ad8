//! The platform clock: every timer in the platform goes through it.
//!
//! Periodic and cron schedules, one-shot timers, RPC deadlines: all are entries in one
//! timer table owned by the [`Clock`]. With a **real** clock a driver task on the platform
//! thread fires entries as wall time passes. With a **virtual** clock time stands still
//! until a test calls [`TestPlatform::advance`](crate::testing::TestPlatform::advance), which fires every due
//! entry in deadline order and returns once their handlers have run. Tests never sleep.
//!
//! | schedule              | first run                 | next run                                   |
//! |-----------------------|---------------------------|--------------------------------------------|
//! | one-shot `after(d)`   | now + d                   | —                                          |
//! | periodic `every(p)`   | now + wait                | previous + p; missed runs are skipped, not caught up |
//! | cron `m h dom mon dow`| next matching minute (UTC)| next matching minute after the previous    |
//!
//! A periodic timer whose previous run is still queued or running is not queued again:
//! a slow handler delays its own schedule, it never builds a backlog.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use crate::agent::cron::CronSchedule;
use crate::platform::mailbox::{Activity, ActivityGuard, Envelope, Mailbox};

/// Identifies a timer so it can be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// The platform's single source of time. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use volttron::Clock;
///
/// let clock = Clock::virtual_at("2024-06-01T12:00:00Z".parse().unwrap());
/// assert!(clock.is_virtual());
/// assert_eq!(clock.now().to_rfc3339(), "2024-06-01T12:00:00+00:00");
/// assert_eq!(clock.elapsed(), Duration::ZERO);
/// ```
#[derive(Clone)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

struct ClockInner {
    kind: ClockKind,
    timers: Mutex<TimerTable>,
    /// Woken when a timer is added (the real driver re-plans; `advance` re-checks).
    changed: Notify,
    next_id: AtomicU64,
    /// How many `advance` calls are under way (virtual clocks).
    advancing: AtomicUsize,
}

enum ClockKind {
    Real {
        origin: Instant,
    },
    Virtual {
        start: DateTime<Utc>,
        elapsed: Mutex<Duration>,
    },
}

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Completes a [`Sleep`].
    Wake(oneshot::Sender<()>),
    /// Completes a [`Clock::sleep_as_work`]: the work begins when the timer fires.
    WakeAsWork(oneshot::Sender<ActivityGuard>, Arc<Activity>),
    /// Puts a `Timer` envelope in an agent's mailbox.
    Agent {
        mailbox: Arc<Mailbox>,
        /// Set while a firing is queued or running; a periodic timer skips while set.
        busy: Arc<AtomicBool>,
    },
}

/// How a timer repeats.
#[derive(Clone)]
pub(crate) enum Repeat {
    Once,
    Every(Duration),
    Cron(Arc<CronSchedule>),
}

struct TimerEntry {
    action: TimerAction,
    repeat: Repeat,
    key: (Duration, u64),
}

#[derive(Default)]
struct TimerTable {
    /// Ordered by (deadline as time since the clock's origin, id).
    queue: BTreeMap<(Duration, u64), ()>,
    entries: HashMap<u64, TimerEntry>,
}

impl Clock {
    /// A clock that follows wall time.
    pub fn real() -> Self {
        Self::with_kind(ClockKind::Real {
            origin: Instant::now(),
        })
    }

    /// A virtual clock standing at `start` until advanced.
    pub fn virtual_at(start: DateTime<Utc>) -> Self {
        Self::with_kind(ClockKind::Virtual {
            start,
            elapsed: Mutex::new(Duration::ZERO),
        })
    }

    /// A virtual clock standing at 2024-01-01T00:00:00Z (a Monday) until advanced.
    pub fn virtual_clock() -> Self {
        Self::virtual_at(
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
                .single()
                .expect("a valid fixed date"),
        )
    }

    fn with_kind(kind: ClockKind) -> Self {
        Clock {
            inner: Arc::new(ClockInner {
                kind,
                timers: Mutex::new(TimerTable::default()),
                changed: Notify::new(),
                next_id: AtomicU64::new(1),
                advancing: AtomicUsize::new(0),
            }),
        }
    }

    /// True for a virtual (test) clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self.inner.kind, ClockKind::Virtual { .. })
    }

    /// Time elapsed since the clock was made (virtual: since its start).
    pub fn elapsed(&self) -> Duration {
        match &self.inner.kind {
            ClockKind::Real { origin } => origin.elapsed(),
            ClockKind::Virtual { elapsed, .. } => *elapsed.lock(),
        }
    }

    /// The current time, UTC.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.inner.kind {
            ClockKind::Real { .. } => Utc::now(),
            ClockKind::Virtual { start, elapsed } => *start + *elapsed.lock(),
        }
    }

    /// A future that completes after `duration` of this clock's time.
    ///
    /// Works from any executor: it does not need a tokio timer.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        let (tx, rx) = oneshot::channel();
        let id = self.insert(self.elapsed() + duration, TimerAction::Wake(tx), Repeat::Once);
        Sleep {
            clock: self.clone(),
            id,
            rx,
        }
    }

    /// Like [`sleep`](Self::sleep), but for a test platform's `advance`/`settle` the work the
    /// sleeper does once woken counts as in flight until it drops the returned guard. With
    /// no activity counter (a platform that does not track work), a plain sleep.
    #[cfg_attr(
        not(feature = "driver"),
        allow(dead_code, reason = "the driver's device tasks use it")
    )]
    pub(crate) async fn sleep_as_work(
        &self,
        duration: Duration,
        activity: Option<Arc<Activity>>,
    ) -> Option<ActivityGuard> {
        let Some(activity) = activity else {
            self.sleep(duration).await;
            return None;
        };
        let (tx, rx) = oneshot::channel();
        let id = self.insert(
            self.elapsed() + duration,
            TimerAction::WakeAsWork(tx, activity),
            Repeat::Once,
        );
        // Cancelled if this future is dropped before the timer fires.
        struct Pending<'a>(&'a Clock, TimerId);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.cancel(self.1);
            }
        }
        let _pending = Pending(self, id);
        rx.await.ok()
    }

    /// Schedules an agent timer; returns its id.
    pub(crate) fn schedule(
        &self,
        first: Duration,
        repeat: Repeat,
        mailbox: Arc<Mailbox>,
        busy: Arc<AtomicBool>,
    ) -> TimerId {
        let deadline = match &repeat {
            Repeat::Cron(schedule) => match self.next_cron(schedule, self.elapsed()) {
                Some(d) => d,
                None => return TimerId(self.inner.next_id.fetch_add(1, Ordering::Relaxed)),
            },
            _ => self.elapsed() + first,
        };
        self.insert(deadline, TimerAction::Agent { mailbox, busy }, repeat)
    }

    fn insert(&self, deadline: Duration, action: TimerAction, repeat: Repeat) -> TimerId {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let key = (deadline, id);
        let earliest = {
            let mut t = self.inner.timers.lock();
            t.queue.insert(key, ());
            t.entries.insert(id, TimerEntry { action, repeat, key });
            t.queue.keys().next() == Some(&key)
        };
        // The real driver only needs to re-plan when the earliest deadline moved.
        if earliest && !self.is_virtual() {
            self.inner.changed.notify_one();
        }
        TimerId(id)
    }

    /// Cancels a timer; returns whether it was still scheduled.
    pub fn cancel(&self, id: TimerId) -> bool {
        let mut t = self.inner.timers.lock();
        match t.entries.remove(&id.0) {
            Some(entry) => {
                t.queue.remove(&entry.key);
                true
            }
            None => false,
        }
    }

    /// Number of scheduled timers (for tests and diagnostics).
    pub fn pending_timers(&self) -> usize {
        self.inner.timers.lock().entries.len()
    }

    /// The next cron deadline strictly after clock time `after`, as clock time.
    fn next_cron(&self, schedule: &CronSchedule, after: Duration) -> Option<Duration> {
        let now_elapsed = self.elapsed();
        let now_wall = self.now();
        let after_wall = now_wall - chrono::Duration::from_std(now_elapsed.saturating_sub(after)).ok()?;
        let next = schedule.next_after(after_wall)?;
        let ahead = (next - now_wall).to_std().unwrap_or(Duration::ZERO);
        Some(now_elapsed + ahead)
    }

    /// The earliest deadline, if any.
    fn next_deadline(&self) -> Option<Duration> {
        self.inner.timers.lock().queue.keys().next().map(|k| k.0)
    }

    /// Fires the earliest timer if it is due at or before `limit`; returns whether one fired.
    /// A virtual clock is moved to the timer's deadline first.
    fn fire_next(&self, limit: Duration) -> bool {
        let mut t = self.inner.timers.lock();
        let Some((&key, _)) = t.queue.iter().next() else {
            return false;
        };
        if key.0 > limit {
            return false;
        }
        t.queue.remove(&key);
        let Some(mut entry) = t.entries.remove(&key.1) else {
            return true;
        };
        if let ClockKind::Virtual { elapsed, .. } = &self.inner.kind {
            let mut e = elapsed.lock();
            if *e < key.0 {
                *e = key.0;
            }
        }
        let now = self.elapsed().max(key.0);
        let next = match &entry.repeat {
            Repeat::Once => None,
            Repeat::Every(period) => {
                let mut next = key.0 + *period;
                if next <= now {
                    // No catch-up: skip to the first period boundary after now.
                    let behind = now - key.0;
                    let periods = behind.as_nanos() / period.as_nanos().max(1) + 1;
                    next = key.0 + period.mul_f64(periods as f64);
                }
                Some(next)
            }
            Repeat::Cron(schedule) => {
                let schedule = schedule.clone();
                drop(t);
                let next = self.next_cron(&schedule, key.0.max(now));
                t = self.inner.timers.lock();
                next
            }
        };
        match entry.action {
            TimerAction::Wake(tx) => {
                drop(t);
                let _ = tx.send(());
            }
            TimerAction::WakeAsWork(tx, activity) => {
                drop(t);
                // Begun before the sleeper runs, so `advance` waits for what it does next; a
                // sleeper that is gone drops the guard with the unsent value.
                let _ = tx.send(activity.guard());
            }
            TimerAction::Agent {
                ref mailbox,
                ref busy,
            } => {
                let deliver = !busy.swap(true, Ordering::AcqRel);
                let mailbox = mailbox.clone();
                let busy = busy.clone();
                if let Some(deadline) = next {
                    entry.key = (deadline, key.1);
                    t.queue.insert(entry.key, ());
                    t.entries.insert(key.1, entry);
                }
                drop(t);
                if deliver && mailbox.deliver(Envelope::Timer { id: TimerId(key.1) }).is_err() {
                    busy.store(false, Ordering::Release);
                    self.cancel(TimerId(key.1));
                }
            }
        }
        true
    }

    /// Fires the earliest timer if due at or before `limit`; returns whether one fired.
    pub(crate) fn fire_one_due(&self, limit: Duration) -> bool {
        self.fire_next(limit)
    }

    /// Sets a virtual clock's time (never backwards). No-op on a real clock.
    pub(crate) fn set_elapsed(&self, to: Duration) {
        if let ClockKind::Virtual { elapsed, .. } = &self.inner.kind {
            let mut e = elapsed.lock();
            if *e < to {
                *e = to;
            }
        }
    }

    /// Marks an `advance` under way until the guard is dropped.
    pub(crate) fn advancing_guard(&self) -> AdvancingGuard {
        self.inner.advancing.fetch_add(1, Ordering::AcqRel);
        AdvancingGuard(self.clone())
    }

    /// Whether a test is moving this (virtual) clock right now.
    pub(crate) fn is_advancing(&self) -> bool {
        self.inner.advancing.load(Ordering::Acquire) > 0
    }

    /// Drives a real clock: fires timers as wall time reaches them. Runs until `stop` is set.
    pub(crate) async fn drive_real(self, stop: Arc<AtomicBool>) {
        let ClockKind::Real { origin } = self.inner.kind else {
            return;
        };
        while !stop.load(Ordering::Acquire) {
            let changed = self.inner.changed.notified();
            while self.fire_next(self.elapsed()) {}
            match self.next_deadline() {
                Some(deadline) => {
                    let at = tokio::time::Instant::from_std(origin + deadline);
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Wakes the real driver so it can notice a stop request.
    pub(crate) fn wake_driver(&self) {
        self.inner.changed.notify_one();
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("virtual", &self.is_virtual())
            .field("now", &self.now())
            .finish()
    }
}

/// Ends an `advance` (see [`Clock::advancing_guard`]).
pub(crate) struct AdvancingGuard(Clock);

impl Drop for AdvancingGuard {
    fn drop(&mut self) {
        self.0.inner.advancing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The future returned by [`Clock::sleep`]. Dropping it cancels the timer.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    clock: Clock,
    id: TimerId,
    rx: oneshot::Receiver<()>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // An error means the clock's table was dropped with the platform: time is over.
        Pin::new(&mut self.rx).poll(cx).map(|_| ())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.clock.cancel(self.id);
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep").field("id", &self.id).finish()
    }
}
