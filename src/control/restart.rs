//! The crash monitor: when a crashed agent is restarted, and when it is given up.
//!
//! [`CrashMonitor`] is a state machine with the time passed in: it launches nothing and
//! sleeps nowhere. Times are readings of the platform clock, [`Clock::elapsed`] (virtual
//! in tests, so a crash loop plays out without waiting). Its owner (the control service)
//! tells it what happened — [`started`](CrashMonitor::started),
//! [`stop_requested`](CrashMonitor::stop_requested), [`exited`](CrashMonitor::exited) —
//! and acts on its [`Decision`]s: after [`Decision::Restart`] it sets a timer on the
//! platform clock for `after`, and when the timer fires and
//! [`restart_due`](CrashMonitor::restart_due) agrees, it launches the agent again.
//!
//! | event | state before | decision, and what the owner does | state after |
//! |---|---|---|---|
//! | explicit start ([`started`](CrashMonitor::started)) | any | the restart history is cleared; the owner launches | `Running` |
//! | exit code 0 | `Running` | [`Decision::Exited`]: not restarted | `Down` |
//! | non-zero exit code, or a signal | `Running`, `n` < `limit` restarts in the last `period` | [`Decision::Restart`] after `initial_backoff`·2ⁿ, at most `max_backoff` | `BackingOff` |
//! | non-zero exit code, or a signal | `Running`, `limit` restarts in the last `period` | [`Decision::GaveUp`], reported once: the owner sets health BAD and sends one alert | `GaveUp` |
//! | the backoff has elapsed ([`restart_due`](CrashMonitor::restart_due)) | `BackingOff` | `true`: the owner launches again | `Running` |
//! | stop requested | `Running` | the exit that follows is not a crash | `Stopping` |
//! | stop requested | `BackingOff` | the pending restart is cancelled | `Down` |
//! | any exit | `Stopping` | [`Decision::Stopped`] | `Down` |
//! | any exit | `Down`, `BackingOff`, `GaveUp` | [`Decision::Ignored`] (no process of ours was running) | unchanged |
//!
//! Eclipse VOLTTRON restarts a crashed agent forever (volttron-core #188): an agent that
//! crashes at start-up spins. Here a crash loop ends after `limit` restarts within
//! `period`, with backoff between them, and the agent stays down (health BAD, one
//! alert) until someone starts it again. Crashes further apart than `period` never add
//! up to the limit, and the backoff starts over from `initial_backoff` once no restart
//! lies within the last `period`.
//!
//! A restart that cannot even be launched is reported as `exited(Exit::Code(127), now)`,
//! as a shell reports a command it cannot run.
//!
//! [`Clock::elapsed`]: crate::Clock::elapsed

use std::collections::VecDeque;
use std::time::Duration;

use super::process::Exit;

/// When and how often a crashed agent is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RestartPolicy {
    /// The delay before the first restart (within `period`).
    pub initial_backoff: Duration,
    /// The delay doubles with each restart within `period`, up to this.
    pub max_backoff: Duration,
    /// At most this many restarts within `period`; the next crash gives up. 0: never
    /// restart.
    pub limit: u32,
    /// The window over which restarts are counted. A zero period forgets every restart
    /// at once: the agent is restarted forever.
    pub period: Duration,
}

impl Default for RestartPolicy {
    /// 1 s, doubling up to 1 min; 5 restarts within 10 min.
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            limit: 5,
            period: Duration::from_secs(600),
        }
    }
}

impl RestartPolicy {
    /// Never restart: the first crash gives up.
    pub fn never() -> Self {
        RestartPolicy {
            limit: 0,
            ..RestartPolicy::default()
        }
    }

    /// The delay before a restart when `recent` restarts lie within the period:
    /// `initial_backoff`·2^`recent`, at most `max_backoff`.
    pub fn backoff(&self, recent: u32) -> Duration {
        crate::supervision::Backoff {
            initial: self.initial_backoff,
            max: self.max_backoff,
        }
        .delay(recent.saturating_add(1))
    }
}

/// Where the monitored agent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MonitorState {
    /// Not running, and no restart pending (never started, exited cleanly, stopped).
    Down,
    /// Running (started, or restarted).
    Running,
    /// Running, being stopped: its exit is not a crash.
    Stopping,
    /// Crashed; to be restarted at `until`.
    BackingOff {
        /// When the restart is due.
        until: Duration,
        /// Which restart within the period it will be (from 1).
        attempt: u32,
    },
    /// Crashed too often: not restarted until started explicitly.
    GaveUp,
}

/// What the owner of a [`CrashMonitor`] should do about an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Launch the agent again after `after` (then check
    /// [`restart_due`](CrashMonitor::restart_due)).
    Restart {
        /// The backoff.
        after: Duration,
        /// Which restart within the period this is (from 1).
        attempt: u32,
    },
    /// It exited cleanly (code 0): leave it down.
    Exited,
    /// It exited after a stop was requested: leave it down.
    Stopped,
    /// It crashed after `restarts` restarts within the period: leave it down, set its
    /// health BAD, send one alert. Given once per crash loop.
    GaveUp {
        /// The restarts within the period before this crash.
        restarts: u32,
        /// The crash that made the monitor give up.
        last_exit: Exit,
    },
    /// Nothing to do: no process was running (a stale or repeated report).
    Ignored,
}

/// Decides about restarts of one agent; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct CrashMonitor {
    policy: RestartPolicy,
    state: MonitorState,
    /// When (on the platform clock) the restarts within the period were decided, oldest
    /// first.
    restarts: VecDeque<Duration>,
}

impl CrashMonitor {
    /// A monitor for an agent that is not running.
    pub fn new(policy: RestartPolicy) -> Self {
        CrashMonitor {
            policy,
            state: MonitorState::Down,
            restarts: VecDeque::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    /// The current state.
    pub fn state(&self) -> MonitorState {
        self.state
    }

    /// The agent was started explicitly (by an operator, or at platform start): clears
    /// the restart history, leaves `GaveUp`, cancels a pending restart.
    pub fn started(&mut self) {
        self.restarts.clear();
        self.state = MonitorState::Running;
    }

    /// A stop was requested: the exit that follows is not a crash, and a pending restart
    /// is cancelled. Returns whether a restart was cancelled.
    pub fn stop_requested(&mut self) -> bool {
        match self.state {
            MonitorState::Running => {
                self.state = MonitorState::Stopping;
                false
            }
            MonitorState::BackingOff { .. } => {
                self.state = MonitorState::Down;
                true
            }
            MonitorState::Down | MonitorState::Stopping | MonitorState::GaveUp => false,
        }
    }

    /// The agent's process ended with `exit` at `now` (on the platform clock).
    pub fn exited(&mut self, exit: Exit, now: Duration) -> Decision {
        match self.state {
            MonitorState::Stopping => {
                self.state = MonitorState::Down;
                Decision::Stopped
            }
            MonitorState::Running if exit.is_clean() => {
                self.state = MonitorState::Down;
                Decision::Exited
            }
            MonitorState::Running => {
                self.prune(now);
                let recent = self.restarts.len() as u32;
                if recent >= self.policy.limit {
                    self.state = MonitorState::GaveUp;
                    return Decision::GaveUp {
                        restarts: recent,
                        last_exit: exit,
                    };
                }
                let after = self.policy.backoff(recent);
                self.restarts.push_back(now);
                let attempt = recent + 1;
                self.state = MonitorState::BackingOff {
                    until: now.saturating_add(after),
                    attempt,
                };
                Decision::Restart { after, attempt }
            }
            MonitorState::Down | MonitorState::BackingOff { .. } | MonitorState::GaveUp => Decision::Ignored,
        }
    }

    /// Whether the pending restart is due at `now`; if so the state becomes `Running`
    /// and the owner launches the agent.
    pub fn restart_due(&mut self, now: Duration) -> bool {
        match self.state {
            MonitorState::BackingOff { until, .. } if now >= until => {
                self.state = MonitorState::Running;
                true
            }
            _ => false,
        }
    }

    /// The restarts decided within the period before `now`.
    pub fn restarts_within_period(&self, now: Duration) -> u32 {
        let period = self.policy.period;
        self.restarts
            .iter()
            .filter(|&&t| now.saturating_sub(t) < period)
            .count() as u32
    }

    /// Forgets the restarts older than the period.
    fn prune(&mut self, now: Duration) {
        let period = self.policy.period;
        self.restarts.retain(|&t| now.saturating_sub(t) < period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_saturates() {
        let policy = RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RestartPolicy::default()
        };
        let delays: Vec<u128> = (0..6).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(40), Duration::from_secs(1));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
    }
}
