//! The embeddable platform: [`Platform::builder`] starts one inside any application.
//!
//! The platform runs on its own threads (an actix system: one thread for the platform's
//! services and clock, and a pool of agent threads), so the [`Platform`] handle is a plain
//! `Send + Sync + Clone` value whose async methods work from any executor: inside an
//! existing tokio runtime, under `#[volttron::main]`, or from `futures::executor`.
//!
//! | piece | what it is |
//! |-------|------------|
//! | [`router`] | the routing table: peers, subscription index, mailboxes (data path, no actor hop) |
//! | [`supervisor`] | the actor that owns the agent registry, placement and shutdown order |
//! | [`clock`] | the single clock behind every timer, real or virtual |
//! | `mailbox` | per-agent data queues with idle-to-busy wake-ups |

pub mod backpressure;
pub mod clock;
pub(crate) mod endpoint;
pub(crate) mod mailbox;
pub mod router;
pub mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use futures::future::{Either, select};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::agent::context::ContextInner;
use crate::agent::host::{AgentHost, BootError, KillAgent, StopAgent};
use crate::agent::{Agent, AgentContext};
use crate::agent::{IntoTopic, PublishError};
use crate::core::{Headers, Identity, IdentityError, IntoArgs, RpcError, Value};
use backpressure::MailboxStats;
use clock::Clock;
use endpoint::Endpoint;
use mailbox::Activity;
use router::{QueryInfo, Router, SubscriptionInfo};
use supervisor::{AgentControl, AgentStatus, BeginShutdown, Lookup, Spawn, SpawnRefusal, Status, Supervisor};

pub use endpoint::{DEFAULT_RPC_TIMEOUT, PLATFORM_VERSION, RpcCall};
pub use mailbox::PeerEvent;

/// The identity the [`Platform`] handle itself uses as sender when it publishes or calls.
pub const PLATFORM_IDENTITY: &str = "platform";

/// Why the platform could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The home directory could not be created.
    #[error("cannot create platform home {path}: {source}")]
    Home {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The instance name is not valid.
    #[error("invalid instance name: {0}")]
    InstanceName(IdentityError),
    /// The platform threads could not start.
    #[error("cannot start the platform runtime: {0}")]
    Runtime(String),
}

/// Why an agent could not be spawned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The identity is not valid.
    #[error("invalid identity: {0}")]
    InvalidIdentity(#[from] IdentityError),
    /// Another peer already has this identity (VOLTTRON only times out here; issue #610).
    #[error("identity '{0}' is already in use on this platform")]
    DuplicateIdentity(Identity),
    /// `on_setup` or `on_start` failed or panicked, or a declared subscription or schedule
    /// is invalid.
    #[error("agent '{identity}' failed to start: {reason}")]
    StartFailed {
        /// The agent.
        identity: Identity,
        /// Why.
        reason: String,
    },
    /// The platform is shutting down or has stopped.
    #[error("the platform is shut down")]
    PlatformStopped,
}

/// Configures and starts a [`Platform`].
#[derive(Debug, Clone)]
#[must_use = "call .start().await to run the platform"]
pub struct PlatformBuilder {
    instance_name: String,
    home: Option<PathBuf>,
    clock: Option<Clock>,
    agent_threads: usize,
    rpc_timeout: Duration,
    shutdown_timeout: Duration,
    mailbox_capacity: usize,
}

/// Default for [`PlatformBuilder::mailbox_capacity`] (VOLTTRON's router high-water mark
/// is 6000 messages per socket).
pub const DEFAULT_MAILBOX_CAPACITY: usize = 10_000;

impl Default for PlatformBuilder {
    fn default() -> Self {
        PlatformBuilder {
            instance_name: "volttron1".into(),
            home: None,
            clock: None,
            agent_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            shutdown_timeout: Duration::from_secs(10),
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
        }
    }
}

impl PlatformBuilder {
    /// The instance name (VOLTTRON's `instance-name`, default `volttron1`).
    pub fn instance_name(mut self, name: impl Into<String>) -> Self {
        self.instance_name = name.into();
        self
    }

    /// The platform home directory (`$VOLTTRON_HOME`); created if missing.
    pub fn home(mut self, path: impl Into<PathBuf>) -> Self {
        self.home = Some(path.into());
        self
    }

    /// The clock (default: real). Give a virtual clock to drive time by hand.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How many threads run agents (default: one per CPU).
    pub fn agent_threads(mut self, n: usize) -> Self {
        self.agent_threads = n.max(1);
        self
    }

    /// The default RPC deadline (30 s).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// How long shutdown waits for each agent's `on_stop` (default 10 s, wall time).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How many publications each agent's mailbox holds before the subscriptions'
    /// overflow policies apply (default [`DEFAULT_MAILBOX_CAPACITY`]); see
    /// [`backpressure`].
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    /// Starts the platform threads and core services.
    pub async fn start(self) -> Result<Platform, PlatformError> {
        Identity::new(&self.instance_name).map_err(PlatformError::InstanceName)?;
        if let Some(home) = &self.home {
            std::fs::create_dir_all(home).map_err(|source| PlatformError::Home {
                path: home.clone(),
                source,
            })?;
        }
        let clock = self.clock.clone().unwrap_or_else(Clock::real);
        let wall = if clock.is_virtual() {
            Clock::real()
        } else {
            clock.clone()
        };
        let activity = clock.is_virtual().then(|| Arc::new(Activity::default()));
        let router = Arc::new(Router::new(
            QueryInfo {
                instance_name: self.instance_name.clone(),
            },
            activity.clone(),
            self.mailbox_capacity,
        ));
        let stop_drivers = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let threads = self.agent_threads;
        // The wall clock is the platform clock when that is real; a virtual clock has no
        // driver (only `advance` moves it).
        let driver = wall.clone();
        let stop = stop_drivers.clone();
        std::thread::Builder::new()
            .name("volttron-platform".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                let (supervisor, arbiters, handles) = system.block_on(async move {
                    actix_rt::spawn(driver.drive_real(stop));
                    let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
                    let handles: Vec<ArbiterHandle> = arbiters.iter().map(|a| a.handle()).collect();
                    let supervisor = Supervisor::new(handles.clone()).start();
                    (supervisor, arbiters, handles)
                });
                let _ = ready_tx.send((supervisor, System::current(), handles));
                let result = system.run();
                for a in arbiters {
                    a.stop();
                    let _ = a.join();
                }
                let _ = done_tx.send(result.map_err(|e| e.to_string()));
            })
            .map_err(|e| PlatformError::Runtime(e.to_string()))?;
        let (supervisor, system, arbiters) = ready_rx
            .await
            .map_err(|_| PlatformError::Runtime("platform thread exited during start".into()))?;
        Ok(Platform {
            inner: Arc::new(PlatformInner {
                endpoint: Endpoint {
                    identity: Identity::new(PLATFORM_IDENTITY).expect("valid identity"),
                    router,
                    clock,
                    rpc_timeout: self.rpc_timeout,
                },
                wall,
                home: self.home,
                instance_name: self.instance_name,
                supervisor,
                system,
                arbiters,
                stop_drivers,
                done: Mutex::new(Some(done_rx)),
                shutdown_timeout: self.shutdown_timeout,
                shut_down: AtomicBool::new(false),
            }),
        })
    }
}

struct PlatformInner {
    endpoint: Endpoint,
    /// Wall-time clock for shutdown deadlines (the platform clock itself when it is real).
    wall: Clock,
    home: Option<PathBuf>,
    instance_name: String,
    supervisor: Addr<Supervisor>,
    system: System,
    /// The agent threads.
    arbiters: Vec<ArbiterHandle>,
    stop_drivers: Arc<AtomicBool>,
    done: Mutex<Option<oneshot::Receiver<Result<(), String>>>>,
    shutdown_timeout: Duration,
    shut_down: AtomicBool,
}

/// A running platform. Cheap to clone; every clone controls the same platform.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use volttron::Platform;
///
/// let platform = Platform::builder().instance_name("campus1").start().await.unwrap();
/// assert_eq!(platform.query("instance-name").unwrap().as_str(), Some("campus1"));
/// assert_eq!(platform.publish("devices/nobody/listens", 1).unwrap(), 0);
/// platform.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct Platform {
    inner: Arc<PlatformInner>,
}

/// A handle to a spawned agent.
#[derive(Clone)]
pub struct AgentRef {
    identity: Identity,
    control: AgentControl,
    platform: Platform,
}

impl AgentRef {
    /// The agent's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Stops the agent: its `on_stop` runs, then it leaves the bus. If it does not finish
    /// within the platform's shutdown timeout (or, on a virtual clock, if it is stuck
    /// waiting for time to pass), it is killed without `on_stop`.
    pub async fn stop(&self) {
        self.platform
            .stop_within_timeout(&self.identity, &self.control)
            .await;
    }
}

impl std::fmt::Debug for AgentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRef")
            .field("identity", &self.identity)
            .finish()
    }
}

impl Platform {
    /// A builder with the defaults: instance `volttron1`, real clock, no home directory.
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder::default()
    }

    /// Starts `agent` as `identity`. Returns once its `on_start` has completed.
    ///
    /// A duplicate identity is refused at once with [`SpawnError::DuplicateIdentity`].
    pub async fn spawn<A: Agent>(
        &self,
        identity: impl TryInto<Identity, Error = IdentityError>,
        agent: A,
    ) -> Result<AgentRef, SpawnError> {
        let identity = identity.try_into()?;
        if self.inner.shut_down.load(Ordering::Acquire) {
            return Err(SpawnError::PlatformStopped);
        }
        let router = &self.inner.endpoint.router;
        if router.is_connected(&identity) || identity.as_str() == PLATFORM_IDENTITY {
            return Err(SpawnError::DuplicateIdentity(identity));
        }
        let peer_id = router.next_peer_id();
        let ctx = AgentContext {
            inner: Arc::new(ContextInner {
                endpoint: Endpoint {
                    identity: identity.clone(),
                    ..self.inner.endpoint.clone()
                },
                peer_id,
                mailbox: router.new_mailbox(),
                agent_type: std::any::TypeId::of::<A>(),
                descriptor: A::__descriptor(),
                registry: Default::default(),
                stop: Default::default(),
            }),
        };
        let (boot_tx, boot_rx) = oneshot::channel();
        let starter: supervisor::Starter = Box::new(move |arbiter, exited| {
            let addr =
                AgentHost::start_in_arbiter(arbiter, move |_| AgentHost::new(agent, ctx, boot_tx, exited));
            AgentControl {
                stop: addr.clone().recipient(),
                kill: addr.recipient(),
            }
        });
        let spawn = Spawn {
            identity: identity.clone(),
            peer_id,
            starter,
        };
        let control = match self.inner.supervisor.send(spawn).await {
            Ok(Ok(control)) => control,
            Ok(Err(SpawnRefusal::Duplicate)) => return Err(SpawnError::DuplicateIdentity(identity)),
            Ok(Err(SpawnRefusal::ShuttingDown)) | Err(_) => return Err(SpawnError::PlatformStopped),
        };
        match boot_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(BootError::Duplicate)) => return Err(SpawnError::DuplicateIdentity(identity)),
            Ok(Err(BootError::Failed(reason))) => return Err(SpawnError::StartFailed { identity, reason }),
            Err(_) => return Err(SpawnError::PlatformStopped),
        }
        Ok(AgentRef {
            identity,
            control,
            platform: self.clone(),
        })
    }

    /// Stops the agent `identity` (its `on_stop` runs); returns false if it was not running.
    pub async fn stop_agent(&self, identity: &str) -> bool {
        let Ok(identity) = Identity::new(identity) else {
            return false;
        };
        match self.inner.supervisor.send(Lookup(identity.clone())).await {
            Ok(Some(control)) => {
                self.stop_within_timeout(&identity, &control).await;
                true
            }
            _ => false,
        }
    }

    /// What the supervisor knows of `identity`: running, or how it exited.
    pub async fn agent_status(&self, identity: &str) -> Option<AgentStatus> {
        let identity = Identity::new(identity).ok()?;
        self.inner.supervisor.send(Status(identity)).await.ok().flatten()
    }

    /// Publishes as `platform` on the default bus; returns how many subscribers it reached.
    pub fn publish(&self, topic: impl IntoTopic, message: impl Into<Value>) -> Result<usize, PublishError> {
        self.publish_on("", topic, Headers::new(), message)
    }

    /// Publishes as `platform` with headers on `bus`.
    pub fn publish_on(
        &self,
        bus: &str,
        topic: impl IntoTopic,
        headers: Headers,
        message: impl Into<Value>,
    ) -> Result<usize, PublishError> {
        let topic = topic.into_topic()?;
        Ok(self.inner.endpoint.publish(bus, topic, headers, message.into()))
    }

    /// Prepares an RPC call as `platform`; `.await` it for the reply.
    pub fn call(&self, peer: &str, method: &str, args: impl IntoArgs) -> RpcCall {
        self.inner.endpoint.call(peer, method, args)
    }

    /// Sends an RPC notification as `platform`.
    pub fn notify(&self, peer: &str, method: &str, args: impl IntoArgs) -> Result<(), RpcError> {
        self.inner.endpoint.notify(peer, method, args)
    }

    /// Checks that `peer` is alive and handling messages.
    pub async fn ping(&self, peer: &str) -> Result<(), RpcError> {
        self.inner.endpoint.ping(peer).await
    }

    /// Connected peers, sorted.
    pub fn peers(&self) -> Vec<Identity> {
        self.inner.endpoint.router.peers()
    }

    /// Every subscription on the platform whose text starts with `prefix`, sorted
    /// (VOLTTRON's `pubsub.list`).
    pub fn subscriptions(&self, prefix: &str) -> Vec<SubscriptionInfo> {
        self.inner.endpoint.router.subscriptions(prefix)
    }

    /// The mailbox counters of a connected agent: queued, capacity, and publications
    /// dropped by each overflow policy.
    pub fn mailbox_stats(&self, identity: &str) -> Option<MailboxStats> {
        self.inner.endpoint.router.mailbox_stats(identity)
    }

    /// A platform fact, as [`AgentContext::query`].
    pub fn query(&self, key: &str) -> Option<Value> {
        self.inner.endpoint.query(key)
    }

    /// The platform clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.endpoint.clock
    }

    /// The instance name.
    pub fn instance_name(&self) -> &str {
        &self.inner.instance_name
    }

    /// The home directory, if one was configured.
    pub fn home(&self) -> Option<&Path> {
        self.inner.home.as_deref()
    }

    /// Stops every agent, newest first, each given the shutdown timeout to run `on_stop`,
    /// then stops the platform threads. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return self.wait_stopped().await;
        }
        let agents = self
            .inner
            .supervisor
            .send(BeginShutdown)
            .await
            .unwrap_or_default();
        for (identity, control) in agents {
            self.stop_within_timeout(&identity, &control).await;
        }
        self.inner.stop_drivers.store(true, Ordering::Release);
        self.inner.wall.wake_driver();
        self.inner.system.stop();
        self.wait_stopped().await;
    }

    /// Stops one agent, killing it if it does not stop in time.
    async fn stop_within_timeout(&self, identity: &Identity, control: &AgentControl) {
        let (tx, mut rx) = oneshot::channel();
        control.stop.do_send(StopAgent {
            done: Some(tx),
            counted: false,
        });
        // `Some(_)`: stopped, or already gone (the channel closed); `None`: stuck.
        let finished = if self.clock().is_virtual() {
            // Nothing but the test moves virtual time: once the platform has stalled,
            // an agent that has not stopped is waiting for time that will not pass.
            let mut finished = None;
            self.settle_until(|| {
                if finished.is_none() {
                    finished = match rx.try_recv() {
                        Err(oneshot::error::TryRecvError::Empty) => None,
                        other => Some(other.is_ok()),
                    };
                }
                finished.is_some()
            })
            .await;
            finished
        } else {
            let deadline = self.inner.wall.sleep(self.inner.shutdown_timeout);
            match select(&mut rx, deadline).await {
                Either::Left((r, _)) => Some(r.is_ok()),
                Either::Right(_) => None,
            }
        };
        if finished.is_some() {
            return;
        }
        let reason = format!("did not stop within {:?}", self.inner.shutdown_timeout);
        tracing::warn!(agent = identity.as_str(), "{reason}; killing it");
        let (tx, rx) = oneshot::channel();
        control.kill.do_send(KillAgent {
            reason,
            done: Some(tx),
        });
        let _ = rx.await;
    }

    async fn wait_stopped(&self) {
        let done = self.inner.done.lock().take();
        if let Some(done) = done {
            let _ = done.await;
        }
    }

    pub(crate) fn inner_router(&self) -> Arc<Router> {
        self.inner.endpoint.router.clone()
    }

    /// Fires every timer due within `by`, in deadline order, and returns once their
    /// handlers (and everything they set in motion) have run or are blocked. Virtual
    /// clocks only; on a real clock this returns at once.
    pub(crate) async fn advance(&self, by: Duration) {
        let clock = self.clock();
        if !clock.is_virtual() {
            return;
        }
        let target = clock.elapsed() + by;
        loop {
            self.settle().await;
            if !clock.fire_one_due(target) {
                break;
            }
        }
        clock.set_elapsed(target);
        self.settle().await;
    }

    /// Waits until every message on the platform has been handled, or everything still
    /// in flight is blocked (an async handler awaiting a timer or a reply that needs the
    /// clock to move).
    ///
    /// Blocked is detected without sleeping: after two probe round trips through every
    /// agent thread, nothing was delivered and no handler finished.
    pub(crate) async fn settle(&self) {
        let Some(activity) = self.inner.endpoint.router.activity.clone() else {
            return;
        };
        self.settle_until(|| activity.in_flight() == 0).await;
    }

    /// Waits until `done()` holds or the platform is stalled: two probe round trips
    /// through every agent thread saw no delivery and no finished handler.
    async fn settle_until(&self, mut done: impl FnMut() -> bool) {
        let Some(activity) = self.inner.endpoint.router.activity.clone() else {
            return;
        };
        let guard = self.inner.wall.sleep(Duration::from_secs(60));
        futures::pin_mut!(guard);
        loop {
            if done() {
                return;
            }
            let before = activity.progress();
            let probes = async {
                self.probe_agent_threads().await;
                self.probe_agent_threads().await;
            };
            futures::pin_mut!(probes);
            if let Either::Right(_) = select(probes, guard.as_mut()).await {
                panic!(
                    "platform still busy after 60 s of wall time ({} messages in flight)",
                    activity.in_flight()
                );
            }
            if activity.progress() == before && !done() {
                return;
            }
        }
    }

    /// Runs a no-op through every agent thread and waits for it: whatever was runnable
    /// there before has had its turn.
    async fn probe_agent_threads(&self) {
        for arbiter in &self.inner.arbiters {
            let (tx, rx) = oneshot::channel::<()>();
            if arbiter.spawn(async move {
                let _ = tx.send(());
            }) {
                let _ = rx.await;
            }
        }
    }
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("instance_name", &self.inner.instance_name)
            .field("clock", self.clock())
            .finish()
    }
}

impl Drop for PlatformInner {
    /// A platform dropped without [`Platform::shutdown`] stops its threads without running
    /// the agents' `on_stop`.
    fn drop(&mut self) {
        if !self.shut_down.swap(true, Ordering::AcqRel) {
            self.stop_drivers.store(true, Ordering::Release);
            self.wall.wake_driver();
            self.system.stop();
        }
    }
}
