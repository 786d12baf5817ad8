//! Running an agent in its own process, attached to a platform through the socket bridge.
//!
//! The agent is the same `#[volttron::agent]` struct that runs in-process: its handlers,
//! its [`AgentContext`](crate::AgentContext), its timers and config callbacks behave the
//! same. Only the transport differs: publishes, subscriptions and calls travel up the
//! link, deliveries and calls come down it.
//!
//! ```no_run
//! use volttron::prelude::*;
//!
//! #[derive(Default)]
//! struct Meter;
//!
//! #[volttron::agent]
//! impl Meter {
//!     #[periodic(secs = 5)]
//!     fn sample(&mut self, ctx: &AgentContext) {
//!         let _ = ctx.publish("devices/meter/all", 42.0);
//!     }
//! }
//!
//! fn main() -> Result<(), volttron::remote::RemoteError> {
//!     // Identity, platform address, credentials and config come from the environment
//!     // the platform launches agents with.
//!     volttron::remote::run(Meter)
//! }
//! ```
//!
//! | environment variable | meaning | default |
//! |---|---|---|
//! | `AGENT_VIP_IDENTITY` | the agent's identity | required |
//! | `VOLTTRON_HOME` | the platform home | `~/.volttron` |
//! | `VOLTTRON_PLATFORM_ADDRESS` | `ipc://PATH` or `tcp://HOST:PORT` | `ipc://$VOLTTRON_HOME/run/vip.socket` |
//! | `AGENT_CREDENTIALS` | the agent's key pair: a JSON file path, or the JSON itself (`{"public": .., "secret": ..}`) | `$VOLTTRON_HOME/credentials_store/<identity>.json` if present |
//! | `VOLTTRON_SERVERKEY` | the platform's public key, checked in the handshake | `$VOLTTRON_HOME/keystore.json`, then `known_hosts` |
//! | `AGENT_CONFIG` | a JSON file stored as the agent's `config` when its store has none | none |
//!
//! Behaviour of the link:
//!
//! | event | what happens |
//! |---|---|
//! | start | connects (retrying with backoff up to the connect timeout), then runs the agent: `on_setup`, `on_start`, then `#[on_connected]` |
//! | link lost | waiting calls fail with `PeerStopped`, publishes and calls fail with `NotConnected`, mirrored peers drop, `#[on_disconnected]` runs; reconnection starts with exponential backoff |
//! | the platform goes silent (its host died, the network dropped) | after one silent [`keepalive`](Remote::keepalive) interval the link is pinged; after three it counts as lost (as above) and reconnection starts |
//! | link back | subscriptions are sent again, the peer list is mirrored again, `#[on_connected]` runs |
//! | agent stops (or crashes) | the link closes and [`run`] returns |
//! | SIGINT / SIGTERM | the agent is stopped (`on_stop` runs), then the link closes |
//! | the launching platform process dies (`VOLTTRON_PARENT_PID` set and no longer the parent) | the same, within half a second |
//!
//! A publish through the bridge does not wait for the platform: it returns `Ok(0)` once
//! the publication is queued on the link (the count of subscribers reached is known only
//! on the platform).

mod connection;
mod upstream;

pub use connection::Connection;
pub(crate) use upstream::Upstream;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_util::codec::FramedRead;

use crate::agent::Agent;
use crate::auth::keys::{KeyPair, PublicKey};
use crate::bridge::BridgeAddress;
use crate::bridge::codec::FrameCodec;
use crate::bridge::frame::*;
use crate::bridge::keepalive::{Keepalive, KeepaliveAction};
use crate::bridge::link::write_loop;
use crate::bridge::noise::{NoiseError, client_handshake};
use crate::core::{Identity, IdentityError};
use crate::platform::supervision::Backoff;
use crate::platform::{Platform, PlatformError, SpawnError};

/// Why a remote agent could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A required environment variable is missing or invalid.
    #[error("environment variable {name}: {message}")]
    Environment {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The identity is not valid.
    #[error("invalid identity: {0}")]
    Identity(#[from] IdentityError),
    /// The platform could not be reached before the connect timeout.
    #[error("cannot reach the platform at {address} within {timeout:?}: {last_error}")]
    Unreachable {
        /// The address tried.
        address: BridgeAddress,
        /// The connect timeout.
        timeout: Duration,
        /// The last failure.
        last_error: String,
    },
    /// The platform refused the agent (bad credentials, identity in use, ...). Not
    /// retried: the answer would be the same.
    #[error("the platform refused the connection ({code:?}): {message}")]
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The platform's explanation.
        message: String,
    },
    /// The agent's local runtime could not start.
    #[error(transparent)]
    Runtime(#[from] PlatformError),
    /// The agent failed to start.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The agent's credentials could not be read.
    #[error("credentials: {0}")]
    Credentials(String),
}

/// Configures and runs an agent attached to a platform over the bridge. See the
/// [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "call .run(agent) or .start(agent)"]
pub struct Remote {
    address: BridgeAddress,
    home: Option<PathBuf>,
    identity: Option<String>,
    keys: Option<KeyPair>,
    serverkey: Option<PublicKey>,
    agent_config: Option<PathBuf>,
    connect_timeout: Duration,
    backoff: Backoff,
    max_frame: usize,
    rpc_timeout: Duration,
    heartbeat: Option<Duration>,
    keepalive: Duration,
}

/// Errors a single connection attempt can end with.
#[derive(Debug)]
enum ConnectError {
    /// Worth retrying (platform not up yet, link dropped).
    Transient(String),
    /// Not worth retrying.
    Refused(ErrorCode, String),
}

impl From<std::io::Error> for ConnectError {
    fn from(e: std::io::Error) -> Self {
        ConnectError::Transient(e.to_string())
    }
}

impl From<NoiseError> for ConnectError {
    fn from(e: NoiseError) -> Self {
        match e {
            NoiseError::ServerKeyMismatch { .. } => {
                ConnectError::Refused(ErrorCode::Unauthorized, e.to_string())
            }
            other => ConnectError::Transient(other.to_string()),
        }
    }
}

type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
type BoxWrite = Box<dyn AsyncWrite + Unpin + Send>;

/// An established, welcomed link.
struct Link {
    frames: FramedRead<BoxRead, FrameCodec>,
    write: BoxWrite,
    welcome: Welcome,
    peers: Vec<Identity>,
    /// Frames that arrived while waiting for the peer list.
    early: Vec<Frame>,
}

impl Remote {
    /// Connects to the platform at `address`.
    pub fn new(address: BridgeAddress) -> Self {
        Remote {
            address,
            home: None,
            identity: None,
            keys: None,
            serverkey: None,
            agent_config: None,
            connect_timeout: Duration::from_secs(60),
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
            },
            max_frame: DEFAULT_MAX_FRAME,
            rpc_timeout: crate::platform::DEFAULT_RPC_TIMEOUT,
            heartbeat: None,
            keepalive: crate::bridge::keepalive::DEFAULT_KEEPALIVE,
        }
    }

    /// Reads the environment a platform launches agents with (see the module docs).
    pub fn from_env() -> Result<Self, RemoteError> {
        let var = |name: &'static str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let identity = var("AGENT_VIP_IDENTITY").ok_or(RemoteError::Environment {
            name: "AGENT_VIP_IDENTITY",
            message: "not set: the agent's identity is required".into(),
        })?;
        let home = match var("VOLTTRON_HOME") {
            Some(h) => PathBuf::from(h),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".volttron"))
                .ok_or(RemoteError::Environment {
                    name: "VOLTTRON_HOME",
                    message: "not set, and neither is HOME".into(),
                })?,
        };
        let address = match var("VOLTTRON_PLATFORM_ADDRESS") {
            Some(a) => a
                .parse()
                .map_err(|e: crate::bridge::AddressError| RemoteError::Environment {
                    name: "VOLTTRON_PLATFORM_ADDRESS",
                    message: e.to_string(),
                })?,
            None => BridgeAddress::Unix(home.join("run").join("vip.socket")),
        };
        let mut remote = Remote::new(address).identity(&identity).home(home.clone());
        remote.keys = match var("AGENT_CREDENTIALS") {
            Some(c) => Some(parse_credentials(&c).map_err(|message| RemoteError::Environment {
                name: "AGENT_CREDENTIALS",
                message,
            })?),
            None => crate::auth::keys::CredentialStore::new(&home)
                .load(&identity)
                .map_err(|e| RemoteError::Credentials(e.to_string()))?,
        };
        remote.serverkey = match var("VOLTTRON_SERVERKEY") {
            Some(k) => {
                Some(
                    k.parse()
                        .map_err(|e: crate::auth::keys::KeyError| RemoteError::Environment {
                            name: "VOLTTRON_SERVERKEY",
                            message: e.to_string(),
                        })?,
                )
            }
            None => local_serverkey(&home, &remote.address),
        };
        remote.agent_config = var("AGENT_CONFIG").map(PathBuf::from);
        Ok(remote)
    }

    /// The identity to register under.
    pub fn identity(mut self, identity: &str) -> Self {
        self.identity = Some(identity.to_owned());
        self
    }

    /// The platform home the agent belongs to (`VOLTTRON_HOME`): its
    /// [`data_dir`](crate::AgentContext::data_dir) is under it.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// The agent's key pair (required by platforms with auth on, and on TCP).
    pub fn credentials(mut self, keys: KeyPair) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The platform's public key; the handshake fails if the platform has another.
    pub fn serverkey(mut self, key: PublicKey) -> Self {
        self.serverkey = Some(key);
        self
    }

    /// A JSON file stored as the agent's `config` when the store has none.
    pub fn agent_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.agent_config = Some(path.into());
        self
    }

    /// How long the first connection may take, retries included (default 60 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Reconnection backoff: the first delay, doubled after each failure up to `max`
    /// (default 100 ms to 5 s).
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff {
            initial,
            max: max.max(initial),
        };
        self
    }

    /// The default RPC deadline of the agent's calls (30 s).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// How often the link is checked when nothing arrives from the platform: pinged after
    /// one silent interval, presumed dead (and reconnected) after three (default 10 s; see
    /// [`crate::bridge::keepalive`]). Notices a platform host that died without closing
    /// the connection.
    pub fn keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every;
        self
    }

    /// Starts the agent's heartbeat with this period.
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = Some(period);
        self
    }

    /// Connects and runs `agent` until it stops, or until SIGINT/SIGTERM stops it.
    pub async fn run<A: Agent>(self, agent: A) -> Result<(), RemoteError> {
        let running = self.start(agent).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => futures::future::pending::<()>().await,
            }
        };
        // Launched by a platform (VOLTTRON_PARENT_PID): stop when it is gone, as a
        // PR_SET_PDEATHSIG would (without an unsafe pre_exec hook).
        let orphaned = crate::control::parent::parent_watch(Duration::from_millis(500));
        tokio::select! {
            _ = running.stopped() => {}
            _ = tokio::signal::ctrl_c() => running.stop().await,
            _ = terminated => running.stop().await,
            _ = orphaned => {
                tracing::warn!("the platform that launched this agent is gone; stopping");
                running.stop().await;
            }
        }
        running.shutdown().await;
        Ok(())
    }

    /// Connects and starts `agent`; returns a handle to watch or stop it.
    pub async fn start<A: Agent>(self, agent: A) -> Result<RemoteAgent, RemoteError> {
        let identity = Identity::new(self.identity.as_deref().ok_or(RemoteError::Environment {
            name: "AGENT_VIP_IDENTITY",
            message: "no identity given".into(),
        })?)?;
        let this = Arc::new(self);
        let exports: Vec<RpcExport> = A::__descriptor()
            .rpcs
            .iter()
            .map(|r| RpcExport {
                name: r.name.to_owned(),
                params: r.params.iter().map(|p| p.name.to_owned()).collect(),
            })
            .collect();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            identity: identity.clone(),
            exports,
        };
        // The agent's local runtime: one agent thread, which also runs the link, so a
        // frame reaches its handler (and a reply its socket) without a thread hop. The
        // instance name is the platform's (queries go up the link).
        let mut builder = Platform::builder()
            .instance_name("remote")
            .services(false)
            .agent_threads(1)
            .rpc_timeout(this.rpc_timeout);
        if let Some(period) = this.heartbeat {
            builder = builder.heartbeat(period);
        }
        if let Some(home) = &this.home {
            // For data_dir(); this local runtime listens on nothing.
            builder = builder.home(home).unix_socket(false);
        }
        let platform = builder.start().await?;
        let router = platform.inner_router();
        let up = Upstream::new(
            identity.clone(),
            &router,
            this.max_frame,
            this.address.to_string(),
        );
        let _ = router.upstream.set(up.clone());
        let (ready_tx, ready_rx) = oneshot::channel();
        let (finished_tx, finished) = oneshot::channel();
        let agent_config = this.agent_config.clone();
        let link = run_link(this, hello, up.clone(), ready_tx, finished_tx);
        if !platform.spawn_on_agent_thread(link) {
            platform.shutdown().await;
            return Err(RemoteError::Runtime(PlatformError::Runtime(
                "the agent thread is gone".into(),
            )));
        }
        let connected = ready_rx.await.unwrap_or_else(|_| {
            Err(RemoteError::Runtime(PlatformError::Runtime(
                "the link task ended".into(),
            )))
        });
        if let Err(e) = connected {
            platform.shutdown().await;
            return Err(e);
        }
        if let Some(path) = &agent_config {
            seed_config(&platform, &identity, path).await;
        }
        if let Err(e) = platform.spawn(identity.as_str(), agent).await {
            up.local_peer_left(&identity);
            let _ = finished.await;
            platform.shutdown().await;
            return Err(e.into());
        }
        if let Some(mailbox) = router.mailbox(&identity) {
            up.set_local(mailbox);
        }
        // Once the platform has handled the agent's subscriptions, as an in-process spawn
        // guarantees.
        let _ = up.barrier().await;
        up.tell_connected();
        Ok(RemoteAgent {
            identity,
            platform,
            up,
            finished,
        })
    }

    /// Connects, retrying transient failures until the connect timeout.
    async fn first_connect(&self, hello: &Hello) -> Result<Link, RemoteError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let mut attempt = 1;
        loop {
            match self.connect_once(hello, Vec::new()).await {
                Ok(link) => return Ok(link),
                Err(ConnectError::Refused(code, message)) => {
                    return Err(RemoteError::Refused { code, message });
                }
                Err(ConnectError::Transient(e)) => {
                    let now = tokio::time::Instant::now();
                    let delay = self.backoff.delay(attempt);
                    if now + delay > deadline {
                        return Err(RemoteError::Unreachable {
                            address: self.address.clone(),
                            timeout: self.connect_timeout,
                            last_error: e,
                        });
                    }
                    tracing::debug!(address = %self.address, "connect failed: {e}; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One attempt: transport, handshake, hello, welcome, peer list.
    async fn connect_once(&self, hello: &Hello, resubscribe: Vec<Frame>) -> Result<Link, ConnectError> {
        let (read, write): (BoxRead, BoxWrite) = match &self.address {
            BridgeAddress::Unix(path) => {
                let mut stream = tokio::net::UnixStream::connect(path).await?;
                if let Some(keys) = &self.keys {
                    // Authenticates both keys; the local link then stays plaintext.
                    client_handshake(&mut stream, keys, self.serverkey.as_ref()).await?;
                }
                let (r, w) = tokio::io::split(stream);
                (Box::new(r), Box::new(w))
            }
            BridgeAddress::Tcp(addr) => {
                let mut stream = tokio::net::TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                let keys = match &self.keys {
                    Some(k) => k.clone(),
                    None => {
                        return Err(ConnectError::Refused(
                            ErrorCode::Unauthorized,
                            "a TCP link needs the agent's key pair (AGENT_CREDENTIALS)".into(),
                        ));
                    }
                };
                if self.serverkey.is_none() {
                    tracing::warn!(address = %self.address, "no serverkey for this platform: its key is not checked");
                }
                let session = client_handshake(&mut stream, &keys, self.serverkey.as_ref()).await?;
                let (r, w) = tokio::io::split(session.into_stream(stream));
                (Box::new(r), Box::new(w))
            }
        };
        let codec = FrameCodec::default().with_max_frame(self.max_frame);
        let mut frames = FramedRead::with_capacity(read, codec.clone(), 64 * 1024);
        let mut write = write;
        let mut enc = codec;
        let hello = std::iter::once(Frame::Hello(hello.clone()));
        // The peer-list reply comes after the platform has handled the subscriptions.
        let mut hello_bytes = bytes::BytesMut::new();
        for frame in hello
            .chain(resubscribe)
            .chain(std::iter::once(Frame::PeerList(PeerList { id: 1 })))
        {
            tokio_util::codec::Encoder::encode(&mut enc, &frame, &mut hello_bytes)
                .map_err(|e| ConnectError::Transient(e.to_string()))?;
        }
        tokio::io::AsyncWriteExt::write_all(&mut write, &hello_bytes).await?;
        tokio::io::AsyncWriteExt::flush(&mut write).await?;
        let mut welcome = None;
        let mut early = Vec::new();
        let wait = async {
            loop {
                match frames.next().await {
                    None => {
                        return Err(ConnectError::Transient(
                            "the platform closed the connection".into(),
                        ));
                    }
                    Some(Err(e)) => return Err(ConnectError::Transient(e.to_string())),
                    Some(Ok(Frame::Welcome(w))) => welcome = Some(w),
                    Some(Ok(Frame::Error(e))) if e.request_id.is_none() => {
                        // Refusals end a first connection attempt; a reconnection keeps
                        // trying (the platform may not have noticed the old link die yet).
                        return Err(ConnectError::Refused(e.code, e.message));
                    }
                    Some(Ok(Frame::PeerListReply(r))) if welcome.is_some() => return Ok(r.peers),
                    Some(Ok(other)) if welcome.is_some() => early.push(other),
                    Some(Ok(other)) => {
                        return Err(ConnectError::Transient(format!(
                            "expected Welcome, got {}",
                            other.kind().name()
                        )));
                    }
                }
            }
        };
        let peers = tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .map_err(|_| ConnectError::Transient("no welcome within 30 s".into()))??;
        Ok(Link {
            frames,
            write,
            welcome: welcome.expect("welcome precedes the peer list"),
            peers,
            early,
        })
    }
}

/// The link's whole life, on the agent's thread: first connection (reported on
/// `ready`), then [`maintain`]. `finished` fires when it is over.
async fn run_link(
    remote: Arc<Remote>,
    hello: Hello,
    up: Arc<Upstream>,
    ready: oneshot::Sender<Result<(), RemoteError>>,
    finished: oneshot::Sender<()>,
) {
    let link = match remote.first_connect(&hello).await {
        Ok(link) => link,
        Err(e) => {
            let _ = ready.send(Err(e));
            let _ = finished.send(());
            return;
        }
    };
    up.link_up(&link.welcome, &link.peers);
    let writer = tokio::spawn(write_loop(up.outbox.clone(), link.write, |_| false));
    for frame in link.early {
        let _ = up.handle(frame);
    }
    let _ = ready.send(Ok(()));
    maintain(remote, hello, up, link.frames, writer).await;
    let _ = finished.send(());
}

/// Reads frames until the link drops, then reconnects, for as long as the agent runs.
async fn maintain(
    remote: Arc<Remote>,
    hello: Hello,
    up: Arc<Upstream>,
    mut frames: FramedRead<BoxRead, FrameCodec>,
    mut writer: tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let identity = hello.identity.clone();
    loop {
        let mut handled = 0u32;
        let mut received = 0u64;
        let mut keepalive = Keepalive::new(remote.keepalive);
        let gone = up.gone_notify.notified();
        futures::pin_mut!(gone);
        let reason = loop {
            handled = handled.wrapping_add(1);
            if handled.is_multiple_of(crate::bridge::server::YIELD_EVERY) {
                // Let the agent handle what these frames delivered before reading on.
                tokio::task::yield_now().await;
            }
            tokio::select! {
                frame = frames.next() => {
                    received += 1;
                    match frame {
                        None => break "the platform closed the connection".to_owned(),
                        Some(Err(e)) => break format!("bad frame: {e}"),
                        Some(Ok(frame)) => {
                            if let Err(e) = up.handle(frame) {
                                break e;
                            }
                        }
                    }
                },
                _ = keepalive.tick() => match keepalive.on_tick(received) {
                    KeepaliveAction::Nothing => {}
                    // The pong is a frame; its id matches no waiting ping.
                    KeepaliveAction::Ping => {
                        let _ = up.send(&Frame::Ping(Ping { id: up.id(), peer: None }));
                    }
                    KeepaliveAction::Dead => break keepalive.dead_reason(),
                },
                _ = &mut gone => gone.set(up.gone_notify.notified()),
            }
            if up.is_gone() {
                break String::new();
            }
        };
        if up.is_gone() {
            // Let what the agent sent last (its final publishes, the reply to the call
            // that stopped it) go out.
            let _ = tokio::time::timeout(Duration::from_secs(1), up.replies_sent()).await;
            up.outbox.close();
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut writer).await;
            return;
        }
        tracing::warn!(
            identity = identity.as_str(),
            "link to the platform lost: {reason}"
        );
        up.link_down();
        writer.abort();
        let mut attempt = 1;
        let link = loop {
            tokio::select! {
                _ = tokio::time::sleep(remote.backoff.delay(attempt)) => {}
                _ = up.gone_notify.notified() => {}
            }
            if up.is_gone() {
                return;
            }
            match remote.connect_once(&hello, up.resubscribe_frames()).await {
                Ok(link) => break link,
                Err(ConnectError::Transient(e) | ConnectError::Refused(_, e)) => {
                    tracing::debug!(
                        identity = identity.as_str(),
                        "reconnect failed: {e}; next try in {:?}",
                        remote.backoff.delay(attempt + 1)
                    );
                    attempt += 1;
                }
            }
        };
        tracing::info!(
            identity = identity.as_str(),
            "link to the platform re-established"
        );
        frames = link.frames;
        up.link_up(&link.welcome, &link.peers);
        writer = tokio::spawn(write_loop(up.outbox.clone(), link.write, |_| false));
        for frame in link.early {
            let _ = up.handle(frame);
        }
        up.tell_connected();
    }
}

/// Stores the agent's initial configuration when the platform's store has none.
async fn seed_config(platform: &Platform, identity: &Identity, path: &Path) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return tracing::warn!(path = %path.display(), "agent config not read: {e}"),
    };
    let store = crate::services::config_store::IDENTITY;
    let names: Result<Vec<String>, _> = platform
        .call(store, "list_configs", (identity.as_str(),))
        .returning()
        .await;
    match names {
        Ok(names) if names.iter().any(|n| n.eq_ignore_ascii_case("config")) => {}
        Ok(_) => {
            let set = platform
                .call(
                    store,
                    "set_config",
                    (identity.as_str(), "config", text, "json", false),
                )
                .await;
            if let Err(e) = set {
                tracing::warn!(path = %path.display(), "agent config not stored: {e}");
            }
        }
        Err(e) => tracing::warn!("agent config not stored: the config store did not answer: {e}"),
    }
}

/// The platform's key when it lives in the same home, else the known host entry.
fn local_serverkey(home: &Path, address: &BridgeAddress) -> Option<PublicKey> {
    if let BridgeAddress::Unix(_) = address
        && let Ok(Some(key)) = crate::auth::keys::PlatformKey::public_key(home)
    {
        return Some(key);
    }
    crate::auth::keys::KnownHosts::load(home)
        .ok()
        .and_then(|hosts| hosts.get(&address.to_string()))
}

/// `AGENT_CREDENTIALS`: inline JSON or a path to it.
fn parse_credentials(value: &str) -> Result<KeyPair, String> {
    let text = if value.trim_start().starts_with('{') {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).map_err(|e| format!("cannot read {value}: {e}"))?
    };
    KeyPair::from_json(&text).map_err(|e| e.to_string())
}

/// A running remote agent.
pub struct RemoteAgent {
    identity: Identity,
    platform: Platform,
    up: Arc<Upstream>,
    /// Fires when the link task is over.
    finished: oneshot::Receiver<()>,
}

impl RemoteAgent {
    /// The agent's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether the link to the platform is up.
    pub fn is_connected(&self) -> bool {
        self.up.is_connected()
    }

    /// Resolves once the agent has stopped (by itself, or crashed).
    pub async fn stopped(&self) {
        loop {
            let notified = self.up.gone_notify.notified();
            if self.up.is_gone() {
                return;
            }
            notified.await;
        }
    }

    /// Stops the agent (its `on_stop` runs).
    pub async fn stop(&self) {
        self.platform.stop_agent(self.identity.as_str()).await;
    }

    /// Stops the agent if it still runs, closes the link and the local runtime.
    pub async fn shutdown(self) {
        self.platform.stop_agent(self.identity.as_str()).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.finished).await;
        self.platform.shutdown().await;
    }
}

impl std::fmt::Debug for RemoteAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAgent")
            .field("identity", &self.identity)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// Runs `agent` as a platform-launched process: reads the environment (see the module
/// docs), connects, and blocks until the agent stops or the process is asked to stop.
pub fn run<A: Agent>(agent: A) -> Result<(), RemoteError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RemoteError::Runtime(PlatformError::Runtime(e.to_string())))?;
    runtime.block_on(async move { Remote::from_env()?.run(agent).await })
}
