//! Supervision, after Erlang/OTP: child specs, restart strategies, restart intensity with
//! escalation, and exponential restart backoff on the platform clock.
//!
//! ```
//! use std::time::Duration;
//! use volttron::prelude::*;
//! use volttron::supervision::{ChildSpec, Restart, Strategy, Supervisor};
//!
//! #[derive(Default)]
//! struct Meter;
//!
//! #[volttron::agent]
//! impl Meter {}
//!
//! let meters = Supervisor::builder("meters")
//!     .strategy(Strategy::OneForOne)
//!     .restart_limit(5, Duration::from_secs(5))
//!     .child(ChildSpec::agent("meter1", Meter::default))
//!     .child(ChildSpec::agent("meter2", Meter::default).restart(Restart::Transient))
//!     .build();
//! # let _ = meters;
//! // platform.supervise(meters).await?;
//! ```
//!
//! | restart type | restarted after |
//! |--------------|-----------------|
//! | [`Restart::Permanent`] | any exit, also a normal one (`ctx.stop()`) |
//! | [`Restart::Transient`] | an abnormal exit only (panic, failed start, kill) |
//! | [`Restart::Temporary`] | never (the default for [`Platform::spawn`](crate::Platform::spawn), which has no factory) |
//!
//! | strategy | when one child must be restarted |
//! |----------|----------------------------------|
//! | [`Strategy::OneForOne`] | only that child |
//! | [`Strategy::OneForAll`] | every child: the others are stopped (reverse order), then all restart in order |
//! | [`Strategy::RestForOne`] | that child and those started after it |
//!
//! More than `N` restarts within `P` (default 1 in 5 s, as OTP) and a
//! supervisor gives up: it stops its children in reverse order, stops itself and exits
//! abnormally to its parent, which applies its own policy. The platform's top supervisor
//! instead gives up on that one child only, and says so once (log and an alert on
//! `alerts/<AgentName>/<identity>`); the platform keeps running.
//!
//! A restart waits `backoff.initial × 2^(restarts in the window − 1)`, capped at
//! `backoff.max`, on the platform clock. Children start in order, each one's `on_start`
//! completing before the next starts, and stop in reverse order under their
//! [`Shutdown`] policy. A restarted agent is a fresh instance from its factory: it
//! subscribes and exports again, and its peers see a `peerlist` drop, then an add.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use parking_lot::Mutex;

use crate::agent::Agent;
use crate::core::Identity;
use crate::platform::clock::Clock;
use crate::platform::runtime::{Runtime, Started};
use crate::platform::supervisor::{AgentExited, StopChild, SupervisorNode};

/// Default restart intensity: at most this many restarts...
pub const DEFAULT_MAX_RESTARTS: u32 = 1;
/// ...within this period (OTP's defaults).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(5);

/// When a child is restarted. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always.
    Permanent,
    /// After an abnormal exit.
    Transient,
    /// Never.
    #[default]
    Temporary,
}

/// How a child is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Killed at once, without `on_stop`.
    BrutalKill,
    /// `on_stop` gets this long, then the child is killed.
    Timeout(Duration),
    /// `on_stop` gets as long as it takes (for supervisors of big subtrees).
    Infinity,
}

/// Which children restart together. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the failed child.
    #[default]
    OneForOne,
    /// All children.
    OneForAll,
    /// The failed child and those started after it.
    RestForOne,
}

/// Exponential restart delay: `initial × 2^(n − 1)` for the n-th restart in the window,
/// at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub initial: Duration,
    /// The cap.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay before the `n`-th restart in the window (`n >= 1`).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Why an agent left the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// It was stopped (by itself, the handle, or shutdown) and ran `on_stop`.
    Normal,
    /// A handler panicked; the message is the panic's.
    Crashed(String),
    /// `on_setup` or `on_start` failed or panicked.
    StartFailed(String),
    /// It did not stop in time, or its shutdown policy was `BrutalKill`, and it was ended
    /// without `on_stop`.
    Killed(String),
    /// Its supervisor gave up on it after too many restarts.
    RestartLimit,
}

impl ExitReason {
    /// True for every exit but a normal one.
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, ExitReason::Normal)
    }
}

/// An agent's state as the platform knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStatus {
    /// Running (or booting).
    Running,
    /// Waiting for its restart.
    Restarting,
    /// Exited for the given reason, not to be restarted.
    Exited(ExitReason),
}

/// Builds an agent for a (re)start.
pub(crate) type AgentFactory = Arc<
    dyn Fn(&Runtime, Identity, Recipient<AgentExited>, Option<&Clock>) -> Result<Started, String>
        + Send
        + Sync,
>;

/// What [`SupervisorBuilder::on_child_exit`] calls.
type ExitFn = dyn Fn(&str, &ExitReason) + Send + Sync;

/// Called by a supervisor for each exit of one of its children that it did not ask for.
#[derive(Clone)]
pub(crate) struct ExitHook(pub(crate) Arc<ExitFn>);

impl std::fmt::Debug for ExitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExitHook")
    }
}

#[derive(Clone)]
pub(crate) enum ChildKind {
    Agent { identity: String, factory: AgentFactory },
    Supervisor(SupervisorSpec),
}

/// One child of a supervisor: an agent (with the factory that builds a fresh instance for
/// each start) or another supervisor.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) kind: ChildKind,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Option<Shutdown>,
}

impl ChildSpec {
    /// An agent named `identity`, built by `factory` at every start. Permanent by default.
    pub fn agent<A: Agent>(
        identity: impl Into<String>,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> Self {
        ChildSpec {
            kind: ChildKind::Agent {
                identity: identity.into(),
                factory: Arc::new(move |rt, id, exited, clock| {
                    Ok(rt.start_agent(id, factory(), exited, clock))
                }),
            },
            restart: Restart::Permanent,
            shutdown: None,
        }
    }

    /// A ready-made agent instance: it can start once, so it is [`Restart::Temporary`].
    pub(crate) fn instance<A: Agent>(identity: Identity, agent: A) -> Self {
        let slot = Mutex::new(Some(agent));
        ChildSpec {
            kind: ChildKind::Agent {
                identity: identity.to_string(),
                factory: Arc::new(move |rt, id, exited, clock| {
                    let agent = slot.lock().take().ok_or("this agent instance has already run")?;
                    Ok(rt.start_agent(id, agent, exited, clock))
                }),
            },
            restart: Restart::Temporary,
            shutdown: None,
        }
    }

    /// A nested supervisor. Permanent, shut down with `Infinity`, by default.
    pub fn supervisor(spec: SupervisorSpec) -> Self {
        ChildSpec {
            kind: ChildKind::Supervisor(spec),
            restart: Restart::Permanent,
            shutdown: Some(Shutdown::Infinity),
        }
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown policy (default for agents: the platform's shutdown timeout).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// The child's name: the agent identity or the supervisor name.
    pub fn name(&self) -> &str {
        match &self.kind {
            ChildKind::Agent { identity, .. } => identity,
            ChildKind::Supervisor(s) => &s.name,
        }
    }
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name())
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

/// A supervisor: its strategy, limits and children. Made by [`Supervisor::builder`].
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    pub(crate) name: String,
    pub(crate) strategy: Strategy,
    pub(crate) max_restarts: u32,
    pub(crate) period: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) children: Vec<ChildSpec>,
    /// The clock of the agents below (inherited by nested supervisors); `None`: the platform's.
    pub(crate) clock: Option<Clock>,
    pub(crate) on_child_exit: Option<ExitHook>,
}

/// Entry point for building supervisors.
#[derive(Debug)]
pub struct Supervisor;

impl Supervisor {
    /// A builder for a supervisor called `name`: `OneForOne`, 1 restart in 5 s (OTP's default),
    /// backoff, no children.
    pub fn builder(name: impl Into<String>) -> SupervisorBuilder {
        SupervisorBuilder {
            spec: SupervisorSpec {
                name: name.into(),
                strategy: Strategy::OneForOne,
                max_restarts: DEFAULT_MAX_RESTARTS,
                period: DEFAULT_PERIOD,
                backoff: Backoff::default(),
                children: Vec::new(),
                clock: None,
                on_child_exit: None,
            },
        }
    }
}

/// Builds a [`SupervisorSpec`].
#[derive(Debug)]
#[must_use = "call .build()"]
pub struct SupervisorBuilder {
    spec: SupervisorSpec,
}

impl SupervisorBuilder {
    /// The restart strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.spec.strategy = strategy;
        self
    }

    /// At most `max_restarts` restarts within `period`; one more and the supervisor gives up.
    pub fn restart_limit(mut self, max_restarts: u32, period: Duration) -> Self {
        self.spec.max_restarts = max_restarts;
        self.spec.period = period;
        self
    }

    /// The restart backoff.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.spec.backoff = Backoff { initial, max };
        self
    }

    /// Adds a child; children start in the order added.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.spec.children.push(child);
        self
    }

    /// The clock the agents under this supervisor (and under the supervisors nested in
    /// it) see: their `ctx.now()`, timers, schedules and RPC deadlines. Without it they
    /// use the platform's. An owner that drives simulated time gives its agents a virtual
    /// clock here and moves it itself: the platform never advances it.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.spec.clock = Some(clock);
        self
    }

    /// Calls `hook(name, reason)` each time a child exits without this supervisor having
    /// stopped it (a crash, a failed start, `ctx.stop()`), before the restart policy
    /// applies: an owner learns of the exit at once instead of by a timeout. Runs on the
    /// supervisor's thread: keep it short (send a message).
    pub fn on_child_exit(mut self, hook: impl Fn(&str, &ExitReason) + Send + Sync + 'static) -> Self {
        self.spec.on_child_exit = Some(ExitHook(Arc::new(hook)));
        self
    }

    /// The spec, ready for [`Platform::supervise`](crate::Platform::supervise) or
    /// [`ChildSpec::supervisor`].
    pub fn build(self) -> SupervisorSpec {
        self.spec
    }
}

/// A running supervisor started with [`Platform::supervise`](crate::Platform::supervise).
#[derive(Clone)]
pub struct SupervisorRef {
    pub(crate) name: String,
    /// The supervisor it runs under.
    pub(crate) parent: Addr<SupervisorNode>,
}

impl SupervisorRef {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops its children in reverse order, then itself; it is not restarted.
    pub async fn stop(&self) {
        let _ = self.parent.send(StopChild(self.name.clone())).await;
    }
}

impl std::fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorRef").field("name", &self.name).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(100), Duration::from_secs(1));
    }
}
