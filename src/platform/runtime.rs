//! What the platform's actors and its handle share: the routing table, the clocks, the
//! agent threads, the registry of agents, and the mechanics of starting, stopping and
//! (on a virtual clock) settling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;
use futures::future::{Either, select};
use tokio::sync::oneshot;

use crate::agent::context::ContextInner;
use crate::agent::heartbeat::HeartbeatState;
use crate::agent::host::{AgentHost, BootError, KillAgent, StopAgent};
use crate::agent::{Agent, AgentContext};
use crate::core::{Health, Identity, Status};
use crate::platform::clock::Clock;
use crate::platform::endpoint::Endpoint;
use crate::platform::mailbox::Activity;
use crate::platform::supervision::{AgentStatus, ExitReason, Shutdown};
use crate::platform::supervisor::{AgentExited, SupervisorNode};

/// The control channels of one running agent (they bypass its data mailbox).
#[derive(Clone)]
pub(crate) struct AgentControl {
    pub(crate) stop: Recipient<StopAgent>,
    pub(crate) kill: Recipient<KillAgent>,
}

/// An agent just started: its controls, its peer number, and the news of its boot.
pub(crate) struct Started {
    pub(crate) control: AgentControl,
    pub(crate) peer_id: u64,
    pub(crate) boot: oneshot::Receiver<Result<(), BootError>>,
}

/// Platform activity in progress, for `settle`; ends when dropped.
pub(crate) struct Busy(Option<Arc<Activity>>);

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(a) = &self.0 {
            a.end();
        }
    }
}

/// What the platform knows of one identity.
pub(crate) struct AgentRecord {
    pub(crate) status: AgentStatus,
    /// Shared with the running instance's context, which may set it.
    pub(crate) health: Arc<parking_lot::Mutex<Health>>,
    /// How many times a supervisor restarted it.
    pub(crate) restarts: u32,
    /// Its controls while running.
    pub(crate) control: Option<AgentControl>,
    /// The supervisor it belongs to.
    pub(crate) owner: Option<Addr<SupervisorNode>>,
}

/// Probe rounds through every platform thread without progress that count as stalled.
const STALL_PROBES: usize = 3;

pub(crate) struct Runtime {
    /// The platform's own endpoint (identity `platform`): router, clock, RPC deadline.
    pub(crate) endpoint: Endpoint,
    /// Wall time, for shutdown deadlines (the platform clock itself when that is real).
    pub(crate) wall: Clock,
    /// The agent threads.
    arbiters: Vec<ArbiterHandle>,
    /// The platform services' own thread (a flood of user agents cannot starve them).
    services_arbiter: Option<ArbiterHandle>,
    /// The bridge's thread: listeners and connections (when the bridge listens).
    pub(crate) bridge_arbiter: Option<ArbiterHandle>,
    /// The platform thread (supervisors, clock driver).
    system_arbiter: ArbiterHandle,
    next_arbiter: AtomicUsize,
    pub(crate) registry: DashMap<Identity, AgentRecord>,
    /// Default time an agent gets to stop.
    pub(crate) shutdown_timeout: Duration,
    /// Heartbeat period every agent starts with, if any (else the heartbeat is off until
    /// started).
    pub(crate) heartbeat: Option<Duration>,
}

impl Runtime {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        endpoint: Endpoint,
        wall: Clock,
        arbiters: Vec<ArbiterHandle>,
        services_arbiter: Option<ArbiterHandle>,
        bridge_arbiter: Option<ArbiterHandle>,
        system_arbiter: ArbiterHandle,
        shutdown_timeout: Duration,
        heartbeat: Option<Duration>,
    ) -> Self {
        Runtime {
            endpoint,
            wall,
            arbiters,
            services_arbiter,
            bridge_arbiter,
            system_arbiter,
            next_arbiter: AtomicUsize::new(0),
            registry: DashMap::new(),
            shutdown_timeout,
            heartbeat,
        }
    }

    /// Runs `fut` on the first agent thread (a bridged agent's link shares its agent's
    /// thread: no hop between the socket and the handlers). False if the thread is gone.
    pub(crate) fn spawn_on_agent_thread(
        &self,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> bool {
        self.arbiters[0].spawn(fut)
    }

    /// The supervisor an agent belongs to.
    pub(crate) fn owner(&self, identity: &Identity) -> Option<Addr<SupervisorNode>> {
        self.registry.get(identity).and_then(|r| r.owner.clone())
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.endpoint.clock
    }

    /// Starts a host for `agent` on the next agent thread (round robin).
    pub(crate) fn start_agent<A: Agent>(
        &self,
        identity: Identity,
        agent: A,
        exited: Recipient<AgentExited>,
        clock: Option<&Clock>,
    ) -> Started {
        let router = &self.endpoint.router;
        let peer_id = router.next_peer_id();
        let health = self.registry.get(&identity).map_or_else(
            || {
                Arc::new(parking_lot::Mutex::new(Health::new(
                    Status::Starting,
                    None,
                    self.clock().now(),
                )))
            },
            |r| r.health.clone(),
        );
        let mailbox = router.mailbox_for(&identity);
        let ctx = AgentContext {
            inner: Arc::new(ContextInner {
                endpoint: Endpoint {
                    identity,
                    clock: clock.cloned().unwrap_or_else(|| self.endpoint.clock.clone()),
                    ..self.endpoint.clone()
                },
                peer_id,
                mailbox,
                agent_type: std::any::TypeId::of::<A>(),
                descriptor: A::__descriptor(),
                registry: Default::default(),
                stop: Default::default(),
                health,
                heartbeat: parking_lot::Mutex::new(HeartbeatState::new(self.heartbeat)),
                config_defaults: Default::default(),
            }),
        };
        let (boot_tx, boot) = oneshot::channel();
        let arbiter = match &self.services_arbiter {
            Some(services) if crate::services::is_service(ctx.identity()) => services,
            _ => {
                let n = self.next_arbiter.fetch_add(1, Ordering::Relaxed);
                &self.arbiters[n % self.arbiters.len()]
            }
        };
        let addr = AgentHost::start_in_arbiter(arbiter, move |_| AgentHost::new(agent, ctx, boot_tx, exited));
        Started {
            control: AgentControl {
                stop: addr.clone().recipient(),
                kill: addr.recipient(),
            },
            peer_id,
            boot,
        }
    }

    /// Stops one agent under a shutdown policy: `on_stop` gets the timeout (or forever),
    /// then the agent is killed; `BrutalKill` kills at once. Returns how it ended.
    pub(crate) async fn stop_agent(
        &self,
        identity: &Identity,
        control: &AgentControl,
        shutdown: Shutdown,
    ) -> ExitReason {
        // Counted as activity, so that `settle` waits for a stop under way.
        let _busy = self.busy();
        let limit = match shutdown {
            Shutdown::BrutalKill => {
                let reason = "brutal kill".to_owned();
                self.kill_agent(control, reason.clone()).await;
                return ExitReason::Killed(reason);
            }
            Shutdown::Timeout(d) => Some(d),
            Shutdown::Infinity => None,
        };
        let (tx, mut rx) = oneshot::channel();
        control.stop.do_send(StopAgent {
            done: Some(tx),
            counted: false,
        });
        // `Some(_)`: stopped, or already gone (the channel closed); `None`: stuck.
        let clock = self.clock();
        let Some(limit) = limit else {
            // Infinity: on_stop takes as long as it takes, on any clock.
            let _ = rx.await;
            return ExitReason::Normal;
        };
        let mut finished = None;
        if clock.is_virtual() {
            // Only a test moves virtual time. While it is not doing so, an agent that
            // has not stopped once the platform has stalled is waiting for time that
            // will not pass; while it is, the timeout below runs on the virtual clock.
            self.settle_until(|| {
                if finished.is_none() {
                    finished = match rx.try_recv() {
                        Err(oneshot::error::TryRecvError::Empty) => None,
                        other => Some(other.is_ok()),
                    };
                }
                finished.is_some() || clock.is_advancing()
            })
            .await;
        }
        let finished = if finished.is_some() || (clock.is_virtual() && !clock.is_advancing()) {
            finished
        } else {
            let deadline = clock.sleep(limit);
            match select(&mut rx, deadline).await {
                Either::Left((r, _)) => Some(r.is_ok()),
                Either::Right(_) => None,
            }
        };
        if finished.is_some() {
            return ExitReason::Normal;
        }
        let reason = format!("did not stop within {limit:?}");
        tracing::warn!(agent = identity.as_str(), "{reason}; killing it");
        self.kill_agent(control, reason.clone()).await;
        ExitReason::Killed(reason)
    }

    /// Records progress for `settle` (no-op without tracking).
    pub(crate) fn touch(&self) {
        if let Some(a) = &self.endpoint.router.activity {
            a.touch();
        }
    }

    /// Marks platform activity until the guard is dropped (no-op without tracking).
    pub(crate) fn busy(&self) -> Busy {
        let activity = self.endpoint.router.activity.clone();
        if let Some(a) = &activity {
            a.begin();
        }
        Busy(activity)
    }

    async fn kill_agent(&self, control: &AgentControl, reason: String) {
        let (tx, rx) = oneshot::channel();
        control.kill.do_send(KillAgent {
            reason,
            done: Some(tx),
        });
        let _ = rx.await;
    }

    /// Waits until every message on the platform has been handled, or everything still
    /// in flight is blocked (an async handler awaiting a timer or a reply that needs the
    /// clock to move). Returns at once on platforms without activity tracking.
    pub(crate) async fn settle(&self) {
        let Some(activity) = self.endpoint.router.activity.clone() else {
            return;
        };
        // Work the caller just set in motion on its own executor (a spawned task) gets a
        // turn before we look.
        tokio::task::yield_now().await;
        self.probe_threads().await;
        self.settle_until(|| activity.in_flight() == 0).await;
    }

    /// Waits until `done()` holds or the platform is stalled: `STALL_PROBES` probe round trips
    /// through every platform thread saw no delivery, no finished handler, no control step. Blocked is
    /// detected without sleeping.
    pub(crate) async fn settle_until(&self, mut done: impl FnMut() -> bool) {
        let Some(activity) = self.endpoint.router.activity.clone() else {
            return;
        };
        let guard = self.wall.sleep(Duration::from_secs(60));
        futures::pin_mut!(guard);
        loop {
            let before = activity.progress();
            for _ in 0..STALL_PROBES {
                if done() {
                    return;
                }
                if let Either::Right(_) = select(Box::pin(self.probe_threads()), guard.as_mut()).await {
                    panic!(
                        "platform still busy after 60 s of wall time ({} messages in flight)",
                        activity.in_flight()
                    );
                }
            }
            if done() || activity.progress() == before {
                return;
            }
        }
    }

    /// Runs a no-op through every platform thread and waits for it: whatever was
    /// runnable there before has had its turn.
    async fn probe_threads(&self) {
        let threads = self
            .arbiters
            .iter()
            .chain(&self.services_arbiter)
            .chain(&self.bridge_arbiter)
            .chain(std::iter::once(&self.system_arbiter));
        for arbiter in threads {
            let (tx, rx) = oneshot::channel::<()>();
            if arbiter.spawn(async move {
                let _ = tx.send(());
            }) {
                let _ = rx.await;
            }
        }
    }
}
