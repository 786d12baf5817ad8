//! The heartbeat: an optional periodic publish of an agent's health on
//! `heartbeat/<identity>`, as VOLTTRON's heartbeat subsystem.
//!
//! | call (also an RPC of every agent)  | effect |
//! |------------------------------------|--------|
//! | `heartbeat.start`                  | starts publishing every period, the first one at once |
//! | `heartbeat.start_with_period(p)`   | sets the period (seconds), then starts |
//! | `heartbeat.stop`                   | stops |
//! | `heartbeat.restart`                | stops and starts (a heartbeat goes out at once) |
//! | `heartbeat.set_period(p)`          | sets the period; restarts if running |
//!
//! Each heartbeat has a `TimeStamp` header (UTC, ISO-8601), a `period` header (seconds,
//! for the platform's health service) and the agent's health as message:
//! `{"status": "GOOD", "context": null, "last_updated": "..."}`. It is off unless the
//! platform's builder sets a default period or the agent starts it.

use std::time::Duration;

use crate::agent::AgentContext;
use crate::agent::context::TimerHandler;
use crate::core::{Headers, Topic, Value};
use crate::platform::clock::{Repeat, TimerId};

/// VOLTTRON's default heartbeat period.
pub const DEFAULT_HEARTBEAT_PERIOD: Duration = Duration::from_secs(60);

/// An agent's heartbeat settings.
#[derive(Debug)]
pub(crate) struct HeartbeatState {
    pub(crate) period: Duration,
    pub(crate) timer: Option<TimerId>,
    /// Start when the agent starts (the platform builder's `heartbeat`).
    pub(crate) autostart: bool,
}

impl HeartbeatState {
    pub(crate) fn new(autostart: Option<Duration>) -> Self {
        HeartbeatState {
            period: autostart.unwrap_or(DEFAULT_HEARTBEAT_PERIOD),
            timer: None,
            autostart: autostart.is_some(),
        }
    }
}

/// Controls an agent's heartbeat; from [`AgentContext::heartbeat`].
#[derive(Debug)]
pub struct Heartbeat<'a> {
    ctx: &'a AgentContext,
}

impl Heartbeat<'_> {
    /// Starts publishing (the first heartbeat at once). No-op if running.
    pub fn start(&self) {
        let mut state = self.ctx.inner.heartbeat.lock();
        if state.timer.is_some() {
            return;
        }
        let period = state.period;
        state.timer = self
            .ctx
            .add_timer(Duration::ZERO, Repeat::Every(period), TimerHandler::Heartbeat)
            .ok();
    }

    /// Sets the period, then starts.
    pub fn start_with_period(&self, period: Duration) {
        self.set_period(period);
        self.start();
    }

    /// Stops publishing.
    pub fn stop(&self) {
        let timer = self.ctx.inner.heartbeat.lock().timer.take();
        if let Some(timer) = timer {
            self.ctx.cancel(timer);
        }
    }

    /// Stops, then starts: a heartbeat goes out at once.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    /// Sets the period (at least a millisecond); a running heartbeat restarts with it.
    pub fn set_period(&self, period: Duration) {
        let running = self.is_running();
        self.stop();
        self.ctx.inner.heartbeat.lock().period = period.max(Duration::from_millis(1));
        if running {
            self.start();
        }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.ctx.inner.heartbeat.lock().period
    }

    /// Whether it is publishing.
    pub fn is_running(&self) -> bool {
        self.ctx.inner.heartbeat.lock().timer.is_some()
    }
}

impl AgentContext {
    /// This agent's heartbeat.
    pub fn heartbeat(&self) -> Heartbeat<'_> {
        Heartbeat { ctx: self }
    }

    /// Publishes one heartbeat now.
    pub(crate) fn publish_heartbeat(&self) {
        let Ok(topic) = Topic::new(format!("heartbeat/{}", self.identity())) else {
            return;
        };
        let health = self.health();
        let mut headers = Headers::new();
        headers.insert("TimeStamp".into(), Value::from(self.now().to_rfc3339()));
        headers.insert(
            "period".into(),
            Value::from(self.heartbeat().period().as_secs_f64()),
        );
        let _ = self.publish_with(topic, headers, Value::from(&health));
    }
}
