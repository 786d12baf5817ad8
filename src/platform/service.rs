//! The seam through which capabilities plug into a platform: the VIP listener for
//! VOLTTRON's Python agents today, the web service and federation next.
//!
//! A [`PlatformService`] is a value given to [`PlatformBuilder::service`]; the builder
//! keeps a list of them and the platform runs each through two phases without knowing
//! any of them by name:
//!
//! | phase | when | what a service does there |
//! |-------|------|---------------------------|
//! | [`bind`](PlatformService::bind) | during [`PlatformBuilder::start`], after the home, keys and auth rules are loaded, before any service or agent runs | claims its sockets and ports, so that agents launched by the control service find them; an error fails `start` |
//! | [`start`](PlatformService::start) | once the core services run | joins the routing table, spawns its work and its own agents ([`ServiceContext::spawn_agent`]: `start` returns once they run); returns a [`ServiceStop`] |
//! | stop | first thing in [`Platform::shutdown`], in reverse order of start | closes its edge before the agents behind it stop |
//!
//! Services run their asynchronous work on the platform's edge thread
//! ([`ServiceContext::spawn`]), never on an agent thread, and their blocking work on threads
//! of their own.
//!
//! [`PlatformBuilder::service`]: crate::PlatformBuilder::service
//! [`PlatformBuilder::start`]: crate::PlatformBuilder::start
//! [`Platform::shutdown`]: crate::Platform::shutdown

use std::path::Path;
use std::sync::Arc;

use actix::prelude::ArbiterHandle;

use crate::auth::Authority;
use crate::auth::keys::KeyPair;
use crate::platform::Platform;
use crate::platform::endpoint::Endpoint;

/// Why a service could not bind or start.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct ServiceError {
    /// The service's name.
    pub service: &'static str,
    /// What went wrong.
    pub message: String,
}

impl ServiceError {
    /// An error of `service`.
    pub fn new(service: &'static str, message: impl Into<String>) -> Self {
        ServiceError {
            service,
            message: message.into(),
        }
    }
}

/// What a service sees while it binds: the platform's configuration, before anything runs.
pub struct BindContext<'a> {
    pub(crate) home: Option<&'a Path>,
    pub(crate) instance_name: &'a str,
    pub(crate) server_key: &'a KeyPair,
    pub(crate) authority: Option<&'a Arc<Authority>>,
    pub(crate) instrumentation: std::cell::OnceCell<Arc<dyn crate::platform::counters::Instrumentation>>,
}

impl BindContext<'_> {
    /// The platform home, if it has one.
    pub fn home(&self) -> Option<&Path> {
        self.home
    }

    /// The instance name.
    pub fn instance_name(&self) -> &str {
        self.instance_name
    }

    /// The platform's key pair (its public key is the *serverkey*).
    pub fn server_key(&self) -> &KeyPair {
        self.server_key
    }

    /// Whether the platform authenticates peers and applies `authz.json`.
    pub fn auth(&self) -> bool {
        self.authority.is_some()
    }

    /// Attaches `instrumentation` to the platform (a metrics service does), unless the
    /// builder was given one or another service attached one first. Returns whether this
    /// one was attached.
    pub fn instrument(&self, instrumentation: Arc<dyn crate::platform::counters::Instrumentation>) -> bool {
        self.instrumentation.set(instrumentation).is_ok()
    }
}

/// What a service sees once the platform runs.
#[cfg_attr(
    not(any(feature = "vip", feature = "web")),
    allow(dead_code, reason = "read by the services of feature modules")
)]
pub struct ServiceContext {
    pub(crate) platform: Platform,
    pub(crate) endpoint: Endpoint,
    pub(crate) edge: ArbiterHandle,
    pub(crate) authority: Option<Arc<Authority>>,
    /// The boots of the agents services spawned, awaited before `start` returns.
    pub(crate) boots: Arc<parking_lot::Mutex<Vec<AgentBoot>>>,
}

/// The answer of a service's agent's boot: `Err` with why it did not start.
pub(crate) type AgentBoot = tokio::sync::oneshot::Receiver<Result<(), String>>;

#[cfg_attr(
    not(any(feature = "vip", feature = "web")),
    allow(dead_code, reason = "used by the services of feature modules")
)]
impl ServiceContext {
    /// The platform's handle.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Runs `fut` on the platform's edge thread (shared by the services' connections;
    /// not an agent thread). False if the platform is stopping.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) -> bool {
        self.edge.spawn(fut)
    }

    /// Starts the service's own agent `identity` (`platform.alerts`, ...): the platform's
    /// start returns once it runs, so its RPCs answer from the first call, and fails if
    /// it does not boot.
    pub fn spawn_agent<A: crate::Agent>(&self, identity: &'static str, agent: A) -> Result<(), ServiceError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let platform = self.platform.clone();
        let spawned = self.edge.spawn(async move {
            let booted = platform.spawn(identity, agent).await;
            let _ = tx.send(
                booted
                    .map(|_| ())
                    .map_err(|e| format!("{identity} did not start: {e}")),
            );
        });
        if !spawned {
            return Err(ServiceError::new(
                "service",
                format!("{identity}: the platform is stopping"),
            ));
        }
        self.boots.lock().push(rx);
        Ok(())
    }

    /// The routing table's endpoint, as the platform itself.
    #[cfg_attr(not(feature = "vip"), allow(dead_code, reason = "used by the VIP listener"))]
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(crate) fn authority(&self) -> Option<&Arc<Authority>> {
        self.authority.as_ref()
    }

    /// An endpoint sending as `identity` for a service that authorizes its own callers:
    /// its publishes, subscriptions and calls are not checked against `authz.json` again.
    pub(crate) fn trusted_endpoint(&self, identity: crate::core::Identity) -> Endpoint {
        Endpoint {
            identity,
            trusted: true,
            ..self.endpoint.clone()
        }
    }
}

/// Stops a started service; called once, at shutdown.
pub type ServiceStop = Box<dyn FnOnce() + Send>;

/// A capability plugged into the platform (see the module docs).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a platform service",
    note = "implement `volttron::platform::service::PlatformService` (bind, then start) for it"
)]
pub trait PlatformService: Send + 'static {
    /// The service's name, for logs and errors (`"vip"`, `"web"`).
    fn name(&self) -> &'static str;

    /// Claims sockets and ports before any agent runs. The default does nothing.
    fn bind(&mut self, ctx: &BindContext<'_>) -> Result<(), ServiceError> {
        let _ = ctx;
        Ok(())
    }

    /// Starts the service on a running platform.
    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError>;

    /// The addresses the service listens on, once bound (for logs and `query("addresses")`).
    fn addresses(&self) -> Vec<String> {
        Vec::new()
    }
}
