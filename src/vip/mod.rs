//! VIP over ZeroMQ: VOLTTRON 11's own Python agents connect to this platform unchanged
//! (cargo feature `vip`, on in the binaries).
//!
//! A [`VipService`] plugged into the platform ([`PlatformBuilder::service`]) binds a
//! ZeroMQ ROUTER socket, with CURVE and a ZAP handler, where VOLTTRON 11's agents look
//! for their platform:
//!
//! - `ipc://@<realpath of $VOLTTRON_HOME>/run/vip.socket`, in the abstract namespace (so
//!   it never collides with the bridge's socket file of the same name);
//! - the TCP addresses given ([`VipService::listen`]; `vip-address` in the home's config).
//!
//! Each VIP peer is a peer of the same routing table as in-process and bridged agents:
//! it is in the peer list, its subscriptions are VOLTTRON's prefixes, its publications
//! reach every subscriber and every subscriber's reach it, RPC goes both ways, and
//! `authz.json` applies to it as to any agent.
//!
//! | piece | what |
//! |-------|------|
//! | `frame` | VIP multipart messages as bytes |
//! | `json` | Python's JSON (NaN, Infinity, big integers) and latin-1 text |
//! | `jsonrpc` | VOLTTRON's JSON-RPC 2.0: params shapes, batches, error shapes |
//! | `zap` | the CURVE handshake's ZAP answers |
//! | `server` | the socket thread: poll, admission, drains, sends |
//! | `dispatch` | what each VIP message does |
//! | `peer` | a VIP peer's routing-table entry and its outgoing messages |
//! | [`services`] | VOLTTRON 11's service identities (`platform.config_store`, `platform.auth`, ...) |
//!
//! Authentication: with auth on, a peer's first message is checked against its CURVE
//! key: the key of `credentials_store/<identity>.json` or of an approved entry is let
//! in, a key bound to another identity is refused, and an unknown key joins the pending
//! list for `vctl auth approve`. A refused peer is told with VOLTTRON's "unauthorized"
//! error (`-32001`), on which VOLTTRON's client exits; the control service's crash
//! restart brings it back, and once approved it connects.
//!
//! A peer leaves on `agentstop`, when its process exits (the control service says so at
//! once: VOLTTRON's agents send no agentstop on SIGINT), or when its connection closes
//! (the listener then probes its peers with a welcome they ignore; a send to a gone
//! connection fails).
//!
//! [`PlatformBuilder::service`]: crate::PlatformBuilder::service

pub mod client;
pub(crate) mod dispatch;
pub(crate) mod frame;
pub(crate) mod peer;
pub(crate) mod server;
pub mod services;
pub(crate) mod zap;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::auth::Authority;
use crate::platform::endpoint::Endpoint;
use crate::platform::service::{BindContext, PlatformService, ServiceContext, ServiceError, ServiceStop};

/// The router's name in `welcome` messages.
pub(crate) const ROUTER_ID: &str = "volttron.router";

/// JSON-RPC's "unauthorized", on which VOLTTRON's client exits.
pub(crate) const UNAUTHORIZED: i64 = -32001;

/// EACCES: a publish or subscription `authz.json` refuses.
pub(crate) const EACCES: i64 = 13;

/// The socket's high-water marks, as VOLTTRON's router.
const HWM: i32 = 6000;

/// Default for [`VipService::max_message`].
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// The name of a service error.
const NAME: &str = "vip";

/// Why the VIP listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VipError {
    /// The system libzmq was built without CURVE (libsodium).
    #[error(
        "the libzmq this program links has no CURVE support (install Debian's libzmq3-dev, which is built with libsodium)"
    )]
    NoCurve,
    /// A socket could not be made or bound.
    #[error("{0}")]
    Socket(String),
    /// An address is not one the listener can bind.
    #[error("invalid VIP address {address:?}: {reason}")]
    Address {
        /// The address as given.
        address: String,
        /// Why.
        reason: String,
    },
}

/// What the socket thread's handlers share.
pub(crate) struct Context {
    pub(crate) endpoint: Endpoint,
    pub(crate) authority: Option<Arc<Authority>>,
    pub(crate) serverkey: String,
    pub(crate) addresses: Vec<String>,
}

/// The VIP listener, to plug into a platform with
/// [`PlatformBuilder::service`](crate::PlatformBuilder::service).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use volttron::Platform;
/// use volttron::vip::VipService;
///
/// let platform = Platform::builder()
///     .home("/var/lib/volttron")
///     .auth(true)
///     .service(VipService::new().listen("tcp://127.0.0.1:22916"))
///     .start()
///     .await
///     .unwrap();
/// # platform.shutdown().await;
/// # }
/// ```
pub struct VipService {
    tcp: Vec<String>,
    ipc: Option<bool>,
    max_message: usize,
    bound: Option<Bound>,
}

impl Default for VipService {
    fn default() -> Self {
        VipService {
            tcp: Vec::new(),
            ipc: None,
            max_message: DEFAULT_MAX_MESSAGE,
            bound: None,
        }
    }
}

struct Bound {
    sockets: server::Sockets,
    addresses: Vec<String>,
    serverkey: String,
}

impl std::fmt::Debug for VipService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VipService")
            .field("tcp", &self.tcp)
            .field("addresses", &self.addresses())
            .finish()
    }
}

impl VipService {
    /// A listener on the home's abstract `ipc://@.../run/vip.socket`.
    pub fn new() -> Self {
        VipService::default()
    }

    /// Also listens on a TCP address (`tcp://127.0.0.1:22916`; port 0 picks one).
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.tcp.push(address.into());
        self
    }

    /// The largest message a peer may send (default [`DEFAULT_MAX_MESSAGE`], 64 MiB;
    /// VOLTTRON sets none): libzmq disconnects a peer that sends a larger one.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes.max(1);
        self
    }

    /// Whether to listen on the home's `ipc://@` address (default: when there is a home).
    pub fn ipc(mut self, on: bool) -> Self {
        self.ipc = Some(on);
        self
    }

    /// The address VOLTTRON 11's agents derive from a home: `ipc://@<realpath>/run/vip.socket`.
    pub fn ipc_address(home: &Path) -> Result<String, VipError> {
        let real = std::fs::canonicalize(home).map_err(|e| VipError::Address {
            address: home.display().to_string(),
            reason: format!("cannot resolve the home: {e}"),
        })?;
        let path: PathBuf = real.join("run").join("vip.socket");
        let name = format!("@{}", path.display());
        // The abstract name must fit sun_path (108 bytes, one for the leading NUL).
        if name.len() > 107 {
            return Err(VipError::Address {
                address: format!("ipc://{name}"),
                reason: "the home's path is too long for a socket name (107 bytes at most)".into(),
            });
        }
        Ok(format!("ipc://{name}"))
    }

    fn bind_sockets(&mut self, ctx: &BindContext<'_>) -> Result<Bound, VipError> {
        if zmq::has("curve") != Some(true) {
            return Err(VipError::NoCurve);
        }
        let socket_error = |what: &str, e: zmq::Error| VipError::Socket(format!("{what}: {e}"));
        let context = zmq::Context::new();
        // The ZAP handler first: without one, libzmq lets any key in.
        let zap = context
            .socket(zmq::REP)
            .map_err(|e| socket_error("ZAP socket", e))?;
        zap.set_linger(0).map_err(|e| socket_error("ZAP socket", e))?;
        zap.bind(zap::ENDPOINT)
            .map_err(|e| socket_error("ZAP handler", e))?;
        let router = context
            .socket(zmq::ROUTER)
            .map_err(|e| socket_error("ROUTER socket", e))?;
        let set = |r: zmq::Result<()>| r.map_err(|e| socket_error("socket option", e));
        set(router.set_router_mandatory(true))?;
        set(router.set_sndhwm(HWM))?;
        set(router.set_rcvhwm(HWM))?;
        set(router.set_linger(0))?;
        set(router.set_maxmsgsize(i64::try_from(self.max_message).unwrap_or(i64::MAX)))?;
        set(router.set_tcp_keepalive(1))?;
        set(router.set_tcp_keepalive_idle(180))?;
        set(router.set_tcp_keepalive_intvl(20))?;
        set(router.set_tcp_keepalive_cnt(6))?;
        set(router.set_curve_server(true))?;
        set(router.set_curve_secretkey(ctx.server_key().secret.as_bytes()))?;
        set(router.set_zap_domain("vip"))?;
        let monitor_endpoint = "inproc://volttron.vip.monitor";
        router
            .monitor(monitor_endpoint, zmq::SocketEvent::DISCONNECTED as i32)
            .map_err(|e| socket_error("socket monitor", e))?;
        let monitor = context
            .socket(zmq::PAIR)
            .map_err(|e| socket_error("monitor socket", e))?;
        monitor
            .connect(monitor_endpoint)
            .map_err(|e| socket_error("monitor socket", e))?;
        let mut wanted = Vec::new();
        if let Some(home) = ctx.home()
            && self.ipc != Some(false)
        {
            wanted.push(Self::ipc_address(home)?);
        }
        wanted.extend(self.tcp.iter().cloned());
        let mut addresses = Vec::new();
        for address in wanted {
            let spec = bind_spec(&address)?;
            router.bind(&spec).map_err(|e| VipError::Address {
                address: address.clone(),
                reason: format!("cannot bind: {e}"),
            })?;
            let bound = match router.get_last_endpoint() {
                Ok(Ok(actual)) if spec.starts_with("tcp://") => actual,
                _ => address,
            };
            addresses.push(bound);
        }
        Ok(Bound {
            sockets: server::Sockets {
                _context: context,
                router,
                zap,
                monitor,
            },
            addresses,
            serverkey: ctx.server_key().public.to_string(),
        })
    }
}

/// The address as libzmq binds it: `tcp://host:0` means any free port (`*`).
fn bind_spec(address: &str) -> Result<String, VipError> {
    let invalid = |reason: &str| VipError::Address {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(rest) = address.strip_prefix("tcp://") {
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected tcp://HOST:PORT"))?;
        if host.is_empty() {
            return Err(invalid("expected tcp://HOST:PORT"));
        }
        return match port {
            "0" | "*" => Ok(format!("tcp://{host}:*")),
            p if p.parse::<u16>().is_ok() => Ok(address.to_owned()),
            _ => Err(invalid("the port is not a number")),
        };
    }
    if address.starts_with("ipc://") {
        return Ok(address.to_owned());
    }
    Err(invalid("expected tcp://HOST:PORT or ipc://PATH"))
}

impl PlatformService for VipService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&mut self, ctx: &BindContext<'_>) -> Result<(), ServiceError> {
        let bound = self
            .bind_sockets(ctx)
            .map_err(|e| ServiceError::new(NAME, e.to_string()))?;
        tracing::info!(addresses = ?bound.addresses, "vip: listening");
        self.bound = Some(bound);
        Ok(())
    }

    fn addresses(&self) -> Vec<String> {
        self.bound
            .as_ref()
            .map(|b| b.addresses.clone())
            .unwrap_or_default()
    }

    fn start(self: Box<Self>, ctx: ServiceContext) -> Result<ServiceStop, ServiceError> {
        let bound = self
            .bound
            .ok_or_else(|| ServiceError::new(NAME, "started before it was bound"))?;
        let shared = Arc::new(server::Shared::new().map_err(|e| ServiceError::new(NAME, e.to_string()))?);
        let context = Arc::new(Context {
            endpoint: ctx.endpoint().clone(),
            authority: ctx.authority().cloned(),
            serverkey: bound.serverkey,
            addresses: bound.addresses,
        });
        {
            let shared = shared.clone();
            ctx.endpoint()
                .router
                .on_process_exit(Box::new(move |identity| shared.process_exited(identity)));
        }
        let server = server::Server::new(bound.sockets, shared.clone(), context);
        let thread = std::thread::Builder::new()
            .name("volttron-vip".into())
            .spawn(move || server.run())
            .map_err(|e| ServiceError::new(NAME, format!("cannot start its thread: {e}")))?;
        Ok(Box::new(move || {
            shared.stop.store(true, Ordering::Release);
            shared.wake();
            let _ = thread.join();
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_port_zero_binds_any_port_and_bad_addresses_are_refused() {
        assert_eq!(bind_spec("tcp://127.0.0.1:0").unwrap(), "tcp://127.0.0.1:*");
        assert_eq!(
            bind_spec("tcp://127.0.0.1:22916").unwrap(),
            "tcp://127.0.0.1:22916"
        );
        assert!(bind_spec("tcp://127.0.0.1:http").is_err());
        assert!(bind_spec("tcp://:1").is_err());
        assert!(bind_spec("udp://x").is_err());
    }

    #[test]
    fn the_ipc_address_is_the_realpath_in_the_abstract_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            VipService::ipc_address(&link).unwrap(),
            format!("ipc://@{}/run/vip.socket", real.display())
        );
        let long = dir.path().join("x".repeat(120));
        std::fs::create_dir(&long).unwrap();
        assert!(VipService::ipc_address(&long).is_err());
    }
}
