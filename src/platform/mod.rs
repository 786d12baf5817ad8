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
//! | [`supervision`] | OTP-style supervisors: child specs, strategies, restart limits, backoff |
//! | [`backpressure`] | bounded mailboxes and per-subscription overflow policies |
//! | [`clock`] | the single clock behind every timer, real or virtual |
//! | [`counters`] | hot-path counters, and the [`Instrumentation`](counters::Instrumentation) seam for sampled timings |
//! | `mailbox` | per-agent data queues with idle-to-busy wake-ups |
//! | [`service`] | the seam capabilities plug in through ([`PlatformService`](service::PlatformService)) |

pub mod backpressure;
pub mod clock;
pub mod counters;
pub(crate) mod endpoint;
pub(crate) mod external;
pub(crate) mod mailbox;
pub mod router;
pub(crate) mod runtime;
pub mod service;
pub mod supervision;
pub(crate) mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::agent::Agent;
use crate::agent::{IntoTopic, PublishError};
use crate::bridge::BridgeAddress;
use crate::core::{Headers, Health, Identity, IdentityError, IntoArgs, RpcError, Value};
use backpressure::MailboxStats;
use clock::Clock;
use endpoint::Endpoint;
use mailbox::Activity;
use router::{QueryInfo, Router, SubscriptionInfo};
use runtime::Runtime;
use supervision::{AgentStatus, ChildSpec, SupervisorRef, SupervisorSpec};
use supervisor::{QueryStatus, Shutdown, StartChild, StopChild, SupervisorNode};

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
    /// A bridge address could not be bound.
    #[error(transparent)]
    Listen(#[from] crate::bridge::server::ListenError),
    /// The platform's key, or the auth files, could not be read or created.
    #[error("auth: {0}")]
    Auth(String),
    /// A plugged service could not bind or start.
    #[error(transparent)]
    Service(service::ServiceError),
    /// A setting for agent processes (budget, hard cap, isolation) cannot be used.
    #[error("agent processes: {0}")]
    AgentSettings(String),
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
    heartbeat: Option<Duration>,
    services: bool,
    listen: Vec<BridgeAddress>,
    /// `None`: the default Unix socket when there is a home.
    default_socket: Option<bool>,
    auth: bool,
    allowed_uids: Vec<u32>,
    hello_timeout: Duration,
    link_keepalive: Duration,
    max_frame: usize,
    control: bool,
    agent_restart: crate::control::restart::RestartPolicy,
    agent_stop_grace: Duration,
    agent_monitor_interval: Duration,
    agent_memory_pressure_below: Option<u64>,
    agent_budget: crate::resources::admission::BudgetPolicy,
    agent_memory_hard_cap: Option<f64>,
    agent_isolation: Option<crate::control::isolation::UidRange>,
    agent_data_only_writable: bool,
    plugged: Vec<ServiceSlot>,
    instrumentation: Option<Arc<dyn counters::Instrumentation>>,
}

/// A [`PlatformService`](service::PlatformService) waiting in a builder (clones of the
/// builder share it: the first to start takes it).
#[derive(Clone)]
struct ServiceSlot(Arc<Mutex<Option<Box<dyn service::PlatformService>>>>);

impl std::fmt::Debug for ServiceSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0.lock() {
            Some(s) => write!(f, "ServiceSlot({})", s.name()),
            None => f.write_str("ServiceSlot(taken)"),
        }
    }
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
            heartbeat: None,
            services: true,
            listen: Vec::new(),
            default_socket: None,
            auth: false,
            allowed_uids: Vec::new(),
            hello_timeout: crate::bridge::server::DEFAULT_HELLO_TIMEOUT,
            link_keepalive: crate::bridge::keepalive::DEFAULT_KEEPALIVE,
            max_frame: crate::bridge::frame::DEFAULT_MAX_FRAME,
            control: false,
            agent_restart: Default::default(),
            agent_stop_grace: Duration::from_secs(10),
            agent_monitor_interval: Duration::from_secs(2),
            agent_memory_pressure_below: None,
            agent_budget: crate::resources::admission::BudgetPolicy::VOLTTRON,
            agent_memory_hard_cap: None,
            agent_isolation: None,
            agent_data_only_writable: false,
            plugged: Vec::new(),
            instrumentation: None,
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

    /// Starts every agent's heartbeat with this period (VOLTTRON's `heartbeat_autostart`;
    /// off by default, as there). Agents can still start, stop or re-period theirs.
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = Some(period);
        self
    }

    /// Whether to run the platform's own services (`platform.health`, ...; default on).
    pub fn services(mut self, on: bool) -> Self {
        self.services = on;
        self
    }

    /// Also listens for bridge connections on `address` (a TCP address: the links are
    /// Noise-encrypted). May be called several times.
    pub fn listen(mut self, address: BridgeAddress) -> Self {
        self.listen.push(address);
        self
    }

    /// Whether to listen on the default Unix socket, `$VOLTTRON_HOME/run/vip.socket`
    /// (default: yes when the platform has a home).
    pub fn unix_socket(mut self, on: bool) -> Self {
        self.default_socket = Some(on);
        self
    }

    /// Requires authentication and applies `authz.json` (default off for an embedded
    /// platform; the `volttron` binary turns it on). Needs a home directory: keys and
    /// rules live there. Bridged agents must then present a key the platform knows
    /// (`credentials_store/<identity>.json`, or an approved entry); unknown keys wait in
    /// the pending list of the `platform.auth` service.
    pub fn auth(mut self, on: bool) -> Self {
        self.auth = on;
        self
    }

    /// Also accepts Unix-socket peers running as `uid` (the platform's own uid always
    /// may connect).
    pub fn allow_uid(mut self, uid: u32) -> Self {
        self.allowed_uids.push(uid);
        self
    }

    /// How often a bridge link with no incoming frame is pinged; after three silent
    /// intervals the agent is presumed gone (a dead host) and dropped (default 10 s; see
    /// [`crate::bridge::keepalive`]).
    pub fn link_keepalive(mut self, every: Duration) -> Self {
        self.link_keepalive = every;
        self
    }

    /// How long a bridge connection has for its handshake and hello (default 10 s).
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// The largest bridge frame body accepted or sent (default 4 MiB).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Runs the `control` service: the agents installed under the home's `agents/` run as
    /// child processes, attached through the Unix socket (what the `volttron` binary
    /// does; needs a home, the default socket and the `control` cargo feature, on by
    /// default).
    pub fn control(mut self, on: bool) -> Self {
        self.control = on;
        self
    }

    /// How the control service restarts crashed agent processes (default: 1 s backoff
    /// doubling to 1 min, at most 5 restarts in 10 min).
    pub fn agent_restart(mut self, policy: crate::control::restart::RestartPolicy) -> Self {
        self.agent_restart = policy;
        self
    }

    /// How long each step of stopping an agent process (SIGINT, then SIGTERM) waits
    /// before the next (default 10 s).
    pub fn agent_stop_grace(mut self, grace: Duration) -> Self {
        self.agent_stop_grace = grace;
        self
    }

    /// How often the control service samples agent processes' CPU and memory from
    /// `/proc` (default 2 s; VOLTTRON's `agent-monitor-frequency`).
    pub fn agent_monitor_interval(mut self, interval: Duration) -> Self {
        self.agent_monitor_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The MemAvailable (bytes) below which the machine counts as under memory pressure,
    /// when agents over their resource contract are acted on (default: 10 % of MemTotal).
    pub fn agent_memory_pressure_below(mut self, bytes: u64) -> Self {
        self.agent_memory_pressure_below = Some(bytes);
        self
    }

    /// The shares of the machine that agents' resource contracts may reserve (default
    /// [`BudgetPolicy::VOLTTRON`](crate::resources::admission::BudgetPolicy::VOLTTRON):
    /// 80 % of the BogoMIPS, 50 % of the memory). The CPU share is also the line above
    /// which the agents' CPU use puts the machine under CPU pressure.
    pub fn agent_budget(mut self, budget: crate::resources::admission::BudgetPolicy) -> Self {
        self.agent_budget = budget;
        self
    }

    /// Caps the memory of an agent with a contract at `factor` (>= 1) times its
    /// contract's soft limit, in its cgroup (where cgroups are available): the kernel
    /// reclaims, then kills, above it. Default: no cap (the soft limit only).
    pub fn agent_memory_hard_cap(mut self, factor: f64) -> Self {
        self.agent_memory_hard_cap = Some(factor);
        self
    }

    /// Agent isolation mode (VOLTTRON's `agent-isolation-mode`): each agent process runs
    /// as a user of its own, with a uid from `uids` (see [`crate::control::isolation`]).
    /// Needs the control service, and a platform running as root: `start` fails
    /// otherwise.
    pub fn agent_isolation(mut self, uids: crate::control::isolation::UidRange) -> Self {
        self.agent_isolation = Some(uids);
        self
    }

    /// Agents may write only beneath their `data/` directory (Landlock; their `TMPDIR` is
    /// `data/tmp`). Default off.
    pub fn agent_data_only_writable(mut self, on: bool) -> Self {
        self.agent_data_only_writable = on;
        self
    }

    /// Plugs a capability into the platform (the VIP listener, the web service, ...): it
    /// binds during [`start`](Self::start), before any agent runs, starts once the core
    /// services do, and stops first at shutdown (see [`service`]). May be called several
    /// times; services start in the order given.
    pub fn service(mut self, service: impl service::PlatformService) -> Self {
        self.plugged
            .push(ServiceSlot(Arc::new(Mutex::new(Some(Box::new(service))))));
        self
    }

    /// Sends the platform's sampled timings (handler run times, RPC round trips,
    /// config-store `fsync`s) to `instrumentation` (see [`counters`]): the metrics
    /// module's `Metrics`, or the host's own. A plugged service may attach one while it
    /// binds ([`BindContext::instrument`](service::BindContext::instrument)); this one wins.
    pub fn instrumentation(mut self, instrumentation: impl counters::Instrumentation) -> Self {
        self.instrumentation = Some(Arc::new(instrumentation));
        self
    }

    fn check_agent_settings(&self) -> Result<(), PlatformError> {
        let invalid = |e: &dyn std::fmt::Display| PlatformError::AgentSettings(e.to_string());
        self.agent_budget.validate().map_err(|e| invalid(&e))?;
        if let Some(factor) = self.agent_memory_hard_cap
            && !(factor.is_finite() && factor >= 1.0)
        {
            return Err(invalid(&format!(
                "the memory hard cap must be at least 1 times the soft limit, not {factor}"
            )));
        }
        if self.control && !cfg!(feature = "control") {
            return Err(invalid(
                &"this build has no control service (the `control` cargo feature is off)",
            ));
        }
        if self.agent_isolation.is_some() && !self.control {
            return Err(invalid(&"agent isolation mode needs the control service"));
        }
        #[cfg(feature = "control")]
        if self.agent_isolation.is_some() {
            crate::control::isolation::check_privileges().map_err(|e| invalid(&e))?;
        }
        Ok(())
    }

    /// The bridge addresses to bind: the listed ones plus the default socket.
    fn bridge_addresses(&self) -> Vec<BridgeAddress> {
        let mut addresses = Vec::new();
        if let Some(home) = &self.home
            && self.default_socket != Some(false)
        {
            addresses.push(BridgeAddress::Unix(home.join("run").join("vip.socket")));
        }
        addresses.extend(self.listen.iter().cloned());
        addresses
    }

    /// Starts the platform threads and core services.
    pub async fn start(mut self) -> Result<Platform, PlatformError> {
        Identity::new(&self.instance_name).map_err(PlatformError::InstanceName)?;
        self.check_agent_settings()?;
        if let Some(home) = &self.home {
            std::fs::create_dir_all(home).map_err(|source| PlatformError::Home {
                path: home.clone(),
                source,
            })?;
        }
        let authority = match (&self.home, self.auth) {
            (Some(home), true) => {
                Some(crate::auth::Authority::open(home).map_err(|e| PlatformError::Auth(e.to_string()))?)
            }
            (None, true) => {
                return Err(PlatformError::Auth(
                    "auth needs a home directory for its keys and rules".into(),
                ));
            }
            (_, false) => None,
        };
        let listeners = self
            .bridge_addresses()
            .iter()
            .map(crate::bridge::server::Listener::bind)
            .collect::<Result<Vec<_>, _>>()?;
        let mut plugged = Vec::with_capacity(self.plugged.len());
        for slot in &self.plugged {
            let service = slot.0.lock().take().ok_or_else(|| {
                PlatformError::Service(service::ServiceError::new(
                    "platform",
                    "a service was already started by a clone of this builder",
                ))
            })?;
            plugged.push(service);
        }
        let server_key = if listeners.is_empty() && plugged.is_empty() {
            None
        } else {
            Some(Arc::new(match &self.home {
                Some(home) => crate::auth::keys::PlatformKey::load_or_create(home)
                    .map_err(|e| PlatformError::Auth(e.to_string()))?
                    .key_pair()
                    .clone(),
                None => {
                    crate::auth::keys::KeyPair::generate().map_err(|e| PlatformError::Auth(e.to_string()))?
                }
            }))
        };
        let mut instrumentation = self.instrumentation.take();
        if let Some(key) = &server_key {
            let ctx = service::BindContext {
                home: self.home.as_deref(),
                instance_name: &self.instance_name,
                server_key: key,
                authority: authority.as_ref(),
                instrumentation: instrumentation
                    .take()
                    .map(std::cell::OnceCell::from)
                    .unwrap_or_default(),
            };
            for service in &mut plugged {
                service.bind(&ctx).map_err(PlatformError::Service)?;
            }
            instrumentation = ctx.instrumentation.into_inner();
        }
        let addresses: Vec<BridgeAddress> = listeners.iter().map(|l| l.address()).collect();
        let control = match (&self.home, self.control) {
            (_, false) => None,
            (Some(home), true) => {
                let socket = addresses
                    .iter()
                    .find(|a| matches!(a, BridgeAddress::Unix(_)))
                    .ok_or_else(|| {
                        PlatformError::Runtime("the control service needs the Unix socket".into())
                    })?;
                Some(crate::services::control::ControlConfig {
                    home: crate::home::VolttronHome::new(home.clone()),
                    address: socket.to_string(),
                    serverkey: server_key.as_ref().map(|k| k.public.to_string()),
                    restart: self.agent_restart,
                    grace: self.agent_stop_grace,
                    monitor_interval: self.agent_monitor_interval,
                    memory_pressure_below: self.agent_memory_pressure_below,
                    budget: self.agent_budget,
                    memory_hard_cap: self.agent_memory_hard_cap,
                    isolation: self.agent_isolation,
                    data_only_writable: self.agent_data_only_writable,
                })
            }
            (None, true) => {
                return Err(PlatformError::Runtime(
                    "the control service needs a home directory".into(),
                ));
            }
        };
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
                addresses: plugged
                    .iter()
                    .flat_map(|s| s.addresses())
                    .chain(addresses.iter().map(|a| a.to_string()))
                    .collect(),
                serverkey: server_key.as_ref().map(|k| k.public.to_string()),
                home: self.home.clone(),
            },
            activity.clone(),
            self.mailbox_capacity,
        ));
        let stop_drivers = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let threads = self.agent_threads;
        let endpoint = Endpoint {
            identity: Identity::new(PLATFORM_IDENTITY).expect("valid identity"),
            router,
            clock,
            rpc_timeout: self.rpc_timeout,
            trusted: false,
        };
        if let Some(auth) = &authority {
            let _ = endpoint.router.auth.set(auth.clone());
        }
        if let Some(i) = instrumentation {
            let _ = endpoint.router.instrumentation.set(i);
        }
        let shutdown_timeout = self.shutdown_timeout;
        let heartbeat = self.heartbeat;
        let services = self.services;
        // The edge thread: bridge listeners and connections, plugged services.
        let bridged = !listeners.is_empty() || !plugged.is_empty();
        let stop = stop_drivers.clone();
        std::thread::Builder::new()
            .name("volttron-platform".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                let (rt, root, arbiters) = system.block_on(async move {
                    // The wall clock is the platform clock when that is real; a virtual
                    // clock has no driver (only `advance` moves it).
                    actix_rt::spawn(wall.clone().drive_real(stop));
                    let mut arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
                    let handles: Vec<ArbiterHandle> = arbiters.iter().map(|a| a.handle()).collect();
                    let mut extra_thread = |on: bool| {
                        on.then(|| {
                            let a = Arbiter::new();
                            let h = a.handle();
                            arbiters.push(a);
                            h
                        })
                    };
                    let services_arbiter = extra_thread(services);
                    let bridge_arbiter = extra_thread(bridged);
                    let rt = Arc::new(Runtime::new(
                        endpoint,
                        wall,
                        handles,
                        services_arbiter,
                        bridge_arbiter,
                        Arbiter::current(),
                        shutdown_timeout,
                        heartbeat,
                    ));
                    let root = SupervisorNode::root(rt.clone()).start();
                    (rt, root, arbiters)
                });
                let _ = ready_tx.send((rt, root, System::current()));
                let result = system.run();
                for a in arbiters {
                    a.stop();
                    let _ = a.join();
                }
                let _ = done_tx.send(result.map_err(|e| e.to_string()));
            })
            .map_err(|e| PlatformError::Runtime(e.to_string()))?;
        let (rt, root, system) = ready_rx
            .await
            .map_err(|_| PlatformError::Runtime("platform thread exited during start".into()))?;
        let platform = Platform {
            inner: Arc::new(PlatformInner {
                rt,
                home: self.home,
                instance_name: self.instance_name,
                root,
                system,
                stop_drivers,
                done: Mutex::new(Some(done_rx)),
                shut_down: AtomicBool::new(false),
                bridge: Mutex::new(None),
                stops: Mutex::new(Vec::new()),
            }),
        };
        if self.services {
            // Before any user agent: shutdown stops them last.
            let services = ChildSpec::supervisor(crate::services::core_services(
                platform.home(),
                authority.clone(),
                control,
            ));
            if let Err(e) = platform.start_child(services).await {
                platform.shutdown().await;
                return Err(PlatformError::Runtime(format!(
                    "core services did not start: {e}"
                )));
            }
        }
        if let Some(server_key) = server_key {
            let shared = Arc::new(crate::bridge::server::BridgeShared {
                endpoint: platform.inner.rt.endpoint.clone(),
                auth: authority.clone(),
                server_key,
                hello_timeout: self.hello_timeout,
                keepalive: self.link_keepalive,
                max_frame: self.max_frame,
                allowed_uids: listeners
                    .iter()
                    .filter_map(|l| l.owner_uid())
                    .chain(self.allowed_uids.iter().copied())
                    .map(|uid| uid..=uid)
                    // Agents in isolation mode connect as their own users.
                    .chain(self.agent_isolation.map(|r| r.as_range()))
                    .collect(),
                open: Default::default(),
            });
            let arbiter = platform
                .inner
                .rt
                .bridge_arbiter
                .clone()
                .expect("bridge thread started");
            for listener in listeners {
                arbiter.spawn(listener.serve(shared.clone()));
            }
            *platform.inner.bridge.lock() = Some((addresses, shared));
        }
        let boots = Arc::new(Mutex::new(Vec::new()));
        for service in plugged {
            let name = service.name();
            let ctx = service::ServiceContext {
                boots: boots.clone(),
                platform: platform.clone(),
                endpoint: platform.inner.rt.endpoint.clone(),
                edge: platform
                    .inner
                    .rt
                    .bridge_arbiter
                    .clone()
                    .expect("edge thread started"),
                authority: authority.clone(),
            };
            match service.start(ctx) {
                Ok(stop) => platform.inner.stops.lock().push(stop),
                Err(e) => {
                    tracing::error!(service = name, "{e}");
                    platform.shutdown().await;
                    return Err(PlatformError::Service(e));
                }
            }
        }
        // The services' own agents run before the platform is handed out.
        let boots: Vec<_> = std::mem::take(&mut *boots.lock());
        for boot in boots {
            let failed = match boot.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("a service's agent was dropped before it booted".to_owned()),
            };
            if let Some(e) = failed {
                tracing::error!("{e}");
                platform.shutdown().await;
                return Err(PlatformError::Service(service::ServiceError::new("service", e)));
            }
        }
        Ok(platform)
    }
}

struct PlatformInner {
    rt: Arc<Runtime>,
    home: Option<PathBuf>,
    instance_name: String,
    /// The top of the supervision tree.
    root: Addr<SupervisorNode>,
    system: System,
    stop_drivers: Arc<AtomicBool>,
    done: Mutex<Option<oneshot::Receiver<Result<(), String>>>>,
    shut_down: AtomicBool,
    /// The bridge's bound addresses and shared state, when it listens.
    bridge: Mutex<Option<(Vec<BridgeAddress>, Arc<crate::bridge::server::BridgeShared>)>>,
    /// How to stop each plugged service, in start order.
    stops: Mutex<Vec<service::ServiceStop>>,
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
    platform: Platform,
}

impl AgentRef {
    /// The agent's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Stops the agent: its `on_stop` runs, then it leaves the bus. If it does not finish
    /// within its shutdown timeout (or, on a virtual clock, if it is stuck waiting for
    /// time to pass), it is killed without `on_stop`. It is not restarted.
    pub async fn stop(&self) {
        self.platform.stop_agent(&self.identity).await;
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
    /// A duplicate identity is refused at once with [`SpawnError::DuplicateIdentity`]. The
    /// agent is [`Restart::Temporary`](supervision::Restart::Temporary): an instance cannot be
    /// rebuilt; use [`Platform::start_child`] with a factory to have it restarted.
    pub async fn spawn<A: Agent>(
        &self,
        identity: impl TryInto<Identity, Error = IdentityError>,
        agent: A,
    ) -> Result<AgentRef, SpawnError> {
        let identity = identity.try_into()?;
        if identity.as_str() == PLATFORM_IDENTITY || self.inner.rt.endpoint.router.is_connected(&identity) {
            return Err(SpawnError::DuplicateIdentity(identity));
        }
        self.start_child(ChildSpec::instance(identity.clone(), agent))
            .await?;
        Ok(AgentRef {
            identity,
            platform: self.clone(),
        })
    }

    /// Starts a child of the platform's top supervisor: an agent with its factory,
    /// restart type and shutdown policy, or a supervisor. Returns once it has started.
    pub async fn start_child(&self, child: ChildSpec) -> Result<(), SpawnError> {
        if self.inner.shut_down.load(Ordering::Acquire) {
            return Err(SpawnError::PlatformStopped);
        }
        // Counted as activity, so that `settle` waits for a start that is under way.
        let _busy = self.inner.rt.busy();
        match self.inner.root.send(StartChild(child)).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(SpawnError::PlatformStopped),
        }
    }

    /// Starts a supervisor (and, in order, its children) under the platform's top
    /// supervisor. If one of its children cannot start, the ones already started are
    /// stopped and the error returned.
    pub async fn supervise(&self, spec: SupervisorSpec) -> Result<SupervisorRef, SpawnError> {
        let name = spec.name.clone();
        self.start_child(ChildSpec::supervisor(spec)).await?;
        Ok(SupervisorRef {
            name,
            parent: self.inner.root.clone(),
        })
    }

    /// Stops the agent `identity` (its `on_stop` runs, bounded by its shutdown policy);
    /// it is not restarted. Returns false if it was not running.
    pub async fn stop_agent(&self, identity: &str) -> bool {
        let Ok(identity) = Identity::new(identity) else {
            return false;
        };
        let owner = self.inner.rt.owner(&identity);
        match owner {
            Some(owner) => owner.send(StopChild(identity.to_string())).await.unwrap_or(false),
            None => false,
        }
    }

    /// What the platform knows of `identity`: running, restarting, or how it exited.
    pub async fn agent_status(&self, identity: &str) -> Option<AgentStatus> {
        self.agent_record(identity).await.map(|(status, _)| status)
    }

    /// `identity`'s health: `STARTING` while it boots, `GOOD` once running, `BAD` with the
    /// reason after an abnormal exit (kept through a restart until the fresh instance is up).
    pub async fn agent_health(&self, identity: &str) -> Option<Health> {
        self.agent_record(identity).await.map(|(_, health)| health)
    }

    async fn agent_record(&self, identity: &str) -> Option<(AgentStatus, Health)> {
        let identity = Identity::new(identity).ok()?;
        let owner = self.inner.rt.owner(&identity);
        // Asked through its supervisor, so every exit it was sent is accounted for; a
        // supervisor that has ended has recorded everything already.
        if let Some(owner) = owner
            && let Ok(record) = owner.send(QueryStatus(identity.clone())).await
        {
            return record;
        }
        self.inner
            .rt
            .registry
            .get(&identity)
            .map(|r| (r.status.clone(), r.health.lock().clone()))
    }

    /// How many times a supervisor has restarted `identity`.
    pub fn restart_count(&self, identity: &str) -> u32 {
        Identity::new(identity)
            .ok()
            .and_then(|id| self.inner.rt.registry.get(&id).map(|r| r.restarts))
            .unwrap_or(0)
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
        self.inner
            .rt
            .endpoint
            .publish(bus, topic, headers, message.into())
    }

    /// Prepares an RPC call as `platform`; `.await` it for the reply.
    pub fn call(&self, peer: &str, method: &str, args: impl IntoArgs) -> RpcCall {
        self.inner.rt.endpoint.call(peer, method, args)
    }

    /// Sends an RPC notification as `platform`.
    pub fn notify(&self, peer: &str, method: &str, args: impl IntoArgs) -> Result<(), RpcError> {
        self.inner.rt.endpoint.notify(peer, method, args)
    }

    /// Checks that `peer` is alive and handling messages.
    pub async fn ping(&self, peer: &str) -> Result<(), RpcError> {
        self.inner.rt.endpoint.ping(peer).await
    }

    /// Every peer's connection, last heartbeat and health, from the `platform.health`
    /// service (VOLTTRON's `get_platform_health()`).
    pub async fn platform_health(&self) -> Result<Value, RpcError> {
        self.call(crate::services::health::IDENTITY, "get_platform_health", ())
            .await
    }

    /// Connected peers, sorted.
    pub fn peers(&self) -> Vec<Identity> {
        self.inner.rt.endpoint.router.peers()
    }

    /// Every subscription on the platform whose text starts with `prefix`, sorted
    /// (VOLTTRON's `pubsub.list`).
    pub fn subscriptions(&self, prefix: &str) -> Vec<SubscriptionInfo> {
        self.inner.rt.endpoint.router.subscriptions(prefix)
    }

    /// How many subscriptions the platform holds, on every bus (without listing them).
    pub fn subscription_count(&self) -> usize {
        self.inner.rt.endpoint.router.subscription_count()
    }

    /// The mailbox counters of a connected agent: queued, capacity, and publications
    /// dropped by each overflow policy.
    pub fn mailbox_stats(&self, identity: &str) -> Option<MailboxStats> {
        self.inner.rt.endpoint.router.mailbox_stats(identity)
    }

    /// The counters of a connected agent: its handler runs, panics, deliveries, and the
    /// RPC calls made to it (see [`counters`]).
    pub fn agent_counters(&self, identity: &str) -> Option<counters::AgentCounters> {
        self.inner.rt.endpoint.router.agent_counters(identity)
    }

    /// The platform's counters: publishes, authorization refusals, the bridge's traffic,
    /// config-store writes (see [`counters`]).
    pub fn counters(&self) -> counters::PlatformCounters {
        self.inner.rt.endpoint.router.counters.read()
    }

    /// A platform fact, as [`AgentContext::query`](crate::AgentContext::query).
    pub fn query(&self, key: &str) -> Option<Value> {
        self.inner.rt.endpoint.query(key)
    }

    /// The platform clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.rt.endpoint.clock
    }

    /// The instance name.
    pub fn instance_name(&self) -> &str {
        &self.inner.instance_name
    }

    /// The home directory, if one was configured.
    pub fn home(&self) -> Option<&Path> {
        self.inner.home.as_deref()
    }

    /// Stops every agent and supervisor, newest first, each under its shutdown policy
    /// (by default the platform's shutdown timeout for `on_stop`, then a kill), then stops
    /// the platform threads. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return self.wait_stopped().await;
        }
        // The edges first: no new peer arrives while the agents stop.
        let stops = std::mem::take(&mut *self.inner.stops.lock());
        for stop in stops.into_iter().rev() {
            stop();
        }
        let _ = self.inner.root.send(Shutdown).await;
        self.inner.stop_drivers.store(true, Ordering::Release);
        self.inner.rt.wall.wake_driver();
        self.inner.system.stop();
        self.wait_stopped().await;
    }

    async fn wait_stopped(&self) {
        let done = self.inner.done.lock().take();
        if let Some(done) = done {
            let _ = done.await;
        }
    }

    /// An agent process's resource reservation and latest sampled CPU and memory use
    /// (`{"reservation": .., "usage": ..}`), from the `control` service (platforms run with
    /// [`PlatformBuilder::control`]).
    pub async fn agent_resources(&self, identity: &str) -> Result<Value, RpcError> {
        self.call(crate::services::control::IDENTITY, "agent_resources", (identity,))
            .await
    }

    /// The bridge addresses this platform listens on (a TCP port 0 resolved to the
    /// port chosen), as `ipc://...` / `tcp://...`.
    pub fn addresses(&self) -> Vec<BridgeAddress> {
        self.inner
            .bridge
            .lock()
            .as_ref()
            .map(|(a, _)| a.clone())
            .unwrap_or_default()
    }

    /// The platform's public key (its *serverkey*), when the bridge listens.
    pub fn serverkey(&self) -> Option<crate::auth::keys::PublicKey> {
        self.inner
            .bridge
            .lock()
            .as_ref()
            .map(|(_, s)| s.server_key.public)
    }

    /// Bridge connections open right now (including ones still in their handshake).
    pub fn bridge_connections(&self) -> usize {
        self.inner
            .bridge
            .lock()
            .as_ref()
            .map_or(0, |(_, s)| s.open.load(Ordering::Acquire))
    }

    pub(crate) fn spawn_on_agent_thread(
        &self,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> bool {
        self.inner.rt.spawn_on_agent_thread(fut)
    }

    pub(crate) fn inner_router(&self) -> Arc<Router> {
        self.inner.rt.endpoint.router.clone()
    }

    /// Fires every timer due within `by`, in deadline order, and returns once their
    /// handlers (and everything they set in motion) have run or are blocked. Virtual
    /// clocks only; on a real clock this returns at once.
    pub(crate) async fn advance(&self, by: Duration) {
        let clock = self.clock();
        if !clock.is_virtual() {
            return;
        }
        let _advancing = clock.advancing_guard();
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
    /// in flight is blocked waiting for time.
    pub(crate) async fn settle(&self) {
        self.inner.rt.settle().await;
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
            self.rt.wall.wake_driver();
            self.system.stop();
        }
    }
}
