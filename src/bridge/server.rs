//! The platform side of the bridge: listeners, and one session per connected agent.
//!
//! Each accepted connection goes through, in order:
//!
//! | step | Unix socket | TCP |
//! |------|-------------|-----|
//! | transport check | the peer's uid (`SO_PEERCRED`) must be an allowed uid | — |
//! | Noise XX handshake | when the client starts one (its first byte tells), required when auth is on; the link stays plaintext after it | always; the link is encrypted after it |
//! | `Hello` within the hello timeout | identity valid, not taken, and (with auth) allowed for the handshake's key | same |
//! | `Welcome` | the connection is a peer in the routing table | same |
//!
//! From then on the connection *is* the peer: its mailbox is drained by the session's
//! writer (deliveries, RPC requests, peer events become frames) and its frames are carried
//! out with an endpoint of the connection's identity, so an in-process agent and a remote one see
//! each other exactly alike. When the connection ends, for any reason, the peer is removed
//! from the routing table at once (peers get `peerlist` drop), its subscriptions go with
//! it, and calls waiting on it fail with `PeerStopped`.
//!
//! A bad frame (undecodable, oversized, or one an agent never sends) is answered with an
//! [`ErrorFrame`] and closes that connection only; it is logged with the reason.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::oneshot;
use tokio_util::codec::{Encoder, FramedRead};
use tokio_util::io::{InspectReader, InspectWriter};

use super::address::BridgeAddress;
use super::codec::{FrameCodec, FrameError};
use super::frame::*;
use super::keepalive::{Keepalive, KeepaliveAction};
use super::link::{Outbox, Rewind, SendError, write_loop};
use super::noise::{NoiseSession, server_handshake};
use crate::auth::keys::KeyPair;
use crate::auth::{Authority, KeyVerdict};
use crate::core::{Identity, RpcError, Value};
use crate::platform::counters;
use crate::platform::endpoint::{Endpoint, SubscribeError};
use crate::platform::mailbox::{Envelope, Mailbox, PeerEvent};
use crate::platform::router::{Exports, PeerEntry};

/// How long a new connection has to complete its handshake and `Hello`.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Envelopes the writer turns into frames per batch.
const DRAIN_BATCH: usize = 512;

/// Frames a reader handles before it yields to the other tasks of its thread.
pub(crate) const YIELD_EVERY: u32 = 128;

/// What every session of one platform shares.
pub(crate) struct BridgeShared {
    /// The platform's own endpoint (router, clock, RPC deadline); sessions copy it with
    /// their identity.
    pub(crate) endpoint: Endpoint,
    pub(crate) auth: Option<Arc<Authority>>,
    /// The platform's key pair: the serverkey of the Noise handshake.
    pub(crate) server_key: Arc<KeyPair>,
    pub(crate) hello_timeout: Duration,
    /// How often a silent link is checked ([`crate::bridge::keepalive`]).
    pub(crate) keepalive: Duration,
    pub(crate) max_frame: usize,
    /// Uids allowed on the Unix socket (the platform's own is always among them).
    pub(crate) allowed_uids: Vec<std::ops::RangeInclusive<u32>>,
    /// Connections open right now (accepted, not yet closed).
    pub(crate) open: AtomicUsize,
}

/// A bound listener, ready to serve.
pub(crate) enum Listener {
    Unix {
        listener: std::os::unix::net::UnixListener,
        path: PathBuf,
        owner_uid: u32,
    },
    Tcp(std::net::TcpListener),
}

/// Why a listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct ListenError {
    /// The address.
    pub address: BridgeAddress,
    /// The I/O error.
    pub source: std::io::Error,
}

impl Listener {
    /// Binds synchronously, so that the platform's `start` reports a taken address. A
    /// stale socket file left by a dead platform is replaced; a live one is not.
    pub(crate) fn bind(address: &BridgeAddress) -> Result<Listener, ListenError> {
        let fail = |source| ListenError {
            address: address.clone(),
            source,
        };
        match address {
            BridgeAddress::Unix(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(fail)?;
                }
                if path.exists() {
                    if std::os::unix::net::UnixStream::connect(path).is_ok() {
                        return Err(fail(std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            "another platform is listening on this socket",
                        )));
                    }
                    std::fs::remove_file(path).map_err(fail)?;
                }
                let listener = std::os::unix::net::UnixListener::bind(path).map_err(fail)?;
                listener.set_nonblocking(true).map_err(fail)?;
                let owner_uid = std::fs::metadata(path).map_err(fail)?.uid();
                Ok(Listener::Unix {
                    listener,
                    path: path.clone(),
                    owner_uid,
                })
            }
            BridgeAddress::Tcp(addr) => {
                let listener = std::net::TcpListener::bind(addr).map_err(fail)?;
                listener.set_nonblocking(true).map_err(fail)?;
                Ok(Listener::Tcp(listener))
            }
        }
    }

    /// The address actually bound (a TCP port of 0 becomes the chosen port).
    pub(crate) fn address(&self) -> BridgeAddress {
        match self {
            Listener::Unix { path, .. } => BridgeAddress::Unix(path.clone()),
            Listener::Tcp(l) => BridgeAddress::Tcp(l.local_addr().expect("bound listener has an address")),
        }
    }

    /// The uid that owns the socket file: the platform's effective uid.
    pub(crate) fn owner_uid(&self) -> Option<u32> {
        match self {
            Listener::Unix { owner_uid, .. } => Some(*owner_uid),
            Listener::Tcp(_) => None,
        }
    }

    /// Accepts connections until the task is dropped (the platform stops). Runs on the
    /// bridge's thread.
    pub(crate) async fn serve(self, shared: Arc<BridgeShared>) {
        match self {
            Listener::Unix { listener, path, .. } => {
                let listener = match tokio::net::UnixListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!(path = %path.display(), "bridge listener: {e}"),
                };
                let _cleanup = RemoveOnDrop(path);
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let shared = shared.clone();
                            tokio::spawn(async move { accept_unix(shared, stream).await });
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            }
            Listener::Tcp(listener) => {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!("bridge listener: {e}"),
                };
                loop {
                    match listener.accept().await {
                        Ok((stream, addr)) => {
                            let _ = stream.set_nodelay(true);
                            let shared = shared.clone();
                            tokio::spawn(async move { accept_tcp(shared, stream, addr).await });
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            }
        }
    }
}

/// Out of file descriptors and the like: back off briefly instead of spinning.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!("bridge accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Counts an open connection while alive.
struct OpenGuard(Arc<BridgeShared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

fn open_guard(shared: &Arc<BridgeShared>) -> OpenGuard {
    shared.open.fetch_add(1, Ordering::AcqRel);
    counters::add(&shared.endpoint.router.counters.bridge_connections, 1);
    OpenGuard(shared.clone())
}

async fn accept_unix(shared: Arc<BridgeShared>, mut stream: tokio::net::UnixStream) {
    let _open = open_guard(&shared);
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => return tracing::warn!("bridge: cannot read the peer's credentials: {e}"),
    };
    let source = format!("uid {uid}");
    if !shared.allowed_uids.iter().any(|r| r.contains(&uid)) {
        tracing::warn!(
            source,
            "bridge: refused a Unix-socket peer whose uid is not allowed"
        );
        return refuse(
            &mut stream,
            &shared,
            ErrorCode::Unauthorized,
            "your uid may not connect",
        )
        .await;
    }
    // A Noise handshake starts with a two-byte length (first byte 0); a plain link with
    // the frame magic.
    let mut first = [0u8; 1];
    let read = tokio::time::timeout(shared.hello_timeout, stream.read_exact(&mut first)).await;
    match read {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return,
        Err(_) => {
            return tracing::info!(
                source,
                "bridge: connection closed: nothing received before the hello timeout"
            );
        }
    }
    let mut stream = Rewind::new(&first, stream);
    let key = if first[0] == 0 {
        match handshake(&shared, &mut stream, &source).await {
            Some(session) => Some(session.remote_key().to_string()),
            None => return,
        }
    } else {
        None
    };
    let (read, write) = tokio::io::split(stream);
    run_session(shared, read, write, key, source).await;
}

async fn accept_tcp(
    shared: Arc<BridgeShared>,
    mut stream: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
) {
    let _open = open_guard(&shared);
    let source = addr.ip().to_string();
    let Some(session) = handshake(&shared, &mut stream, &source).await else {
        return;
    };
    let key = session.remote_key().to_string();
    let stream = session.into_stream(stream);
    let (read, write) = tokio::io::split(stream);
    run_session(shared, read, write, Some(key), source).await;
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &BridgeShared,
    stream: &mut S,
    source: &str,
) -> Option<NoiseSession> {
    let outcome =
        tokio::time::timeout(shared.hello_timeout, server_handshake(stream, &shared.server_key)).await;
    if !matches!(outcome, Ok(Ok(_))) {
        counters::add(&shared.endpoint.router.counters.bridge_handshake_failures, 1);
    }
    match outcome {
        Ok(Ok(session)) => Some(session),
        Ok(Err(e)) => {
            tracing::info!(source, "bridge: connection closed: handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::info!(
                source,
                "bridge: connection closed: handshake not finished before the hello timeout"
            );
            None
        }
    }
}

/// Sends one error frame on a link that will not become a session.
async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    shared: &BridgeShared,
    code: ErrorCode,
    message: &str,
) {
    use tokio::io::AsyncWriteExt;
    counters::add(&shared.endpoint.router.counters.bridge_handshake_failures, 1);
    let mut buf = BytesMut::new();
    let frame = Frame::Error(ErrorFrame {
        request_id: None,
        code,
        message: message.to_owned(),
    });
    if FrameCodec::default()
        .with_max_frame(shared.max_frame)
        .encode(&frame, &mut buf)
        .is_ok()
    {
        let _ = writer.write_all(&buf).await;
        let _ = writer.flush().await;
    }
}

/// Reads the hello, admits the peer, then serves it until the link ends.
async fn run_session<R, W>(shared: Arc<BridgeShared>, read: R, write: W, key: Option<String>, source: String)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let codec = FrameCodec::default().with_max_frame(shared.max_frame);
    let cells = shared.endpoint.router.clone();
    let read = InspectReader::new(read, move |bytes: &[u8]| {
        counters::add(&cells.counters.bridge_bytes_in, bytes.len() as u64)
    });
    let cells = shared.endpoint.router.clone();
    let mut write = InspectWriter::new(write, move |bytes: &[u8]| {
        counters::add(&cells.counters.bridge_bytes_out, bytes.len() as u64)
    });
    let mut frames = FramedRead::with_capacity(read, codec, 64 * 1024);
    let hello = match tokio::time::timeout(shared.hello_timeout, frames.next()).await {
        Err(_) => {
            tracing::info!(
                source,
                "bridge: connection closed: no hello before the hello timeout"
            );
            return refuse(
                &mut write,
                &shared,
                ErrorCode::Malformed,
                "no hello before the timeout",
            )
            .await;
        }
        Ok(None) => return,
        Ok(Some(Err(e))) => {
            tracing::info!(source, "bridge: connection closed: bad first frame: {e}");
            let code = e.code().unwrap_or(ErrorCode::Malformed);
            return refuse(&mut write, &shared, code, &e.to_string()).await;
        }
        Ok(Some(Ok(Frame::Hello(hello)))) => hello,
        Ok(Some(Ok(other))) => {
            let message = format!("expected Hello, got {}", other.kind().name());
            tracing::info!(source, "bridge: connection closed: {message}");
            return refuse(&mut write, &shared, ErrorCode::UnknownFrame, &message).await;
        }
    };
    if hello.version != PROTOCOL_VERSION {
        let message = format!(
            "protocol version {} is not supported; this platform speaks {PROTOCOL_VERSION}",
            hello.version
        );
        return refuse(&mut write, &shared, ErrorCode::BadVersion, &message).await;
    }
    let identity = hello.identity;
    if let Some(auth) = &shared.auth {
        let verdict = match &key {
            None => KeyVerdict::Denied("this platform requires authentication: connect with a key".into()),
            Some(key) => auth.verify_peer(identity.as_str(), key, &source),
        };
        let reason = match verdict {
            KeyVerdict::Allowed => {
                auth.record_success(&source);
                None
            }
            KeyVerdict::Pending => Some(format!(
                "the key for '{identity}' is not known; it is pending approval by an administrator"
            )),
            KeyVerdict::Denied(reason) => Some(reason.to_string()),
        };
        if let Some(reason) = reason {
            auth.record_failure(&source);
            let delay = auth.failure_delay(&source);
            tracing::warn!(source, identity = identity.as_str(), "bridge: refused: {reason}");
            tokio::time::sleep(delay).await;
            return refuse(&mut write, &shared, ErrorCode::Unauthorized, &reason).await;
        }
    }
    let endpoint = Endpoint {
        identity: identity.clone(),
        ..shared.endpoint.clone()
    };
    let router = endpoint.router.clone();
    let peer_id = router.next_peer_id();
    let mailbox = router.mailbox_for(&identity);
    let entry = PeerEntry {
        id: peer_id,
        mailbox: mailbox.clone(),
        watches_peers: true,
        exports: Exports::Declared(Arc::new(hello.exports)),
    };
    if router.add_peer(identity.clone(), entry).is_err() {
        tracing::info!(
            source,
            identity = identity.as_str(),
            "bridge: refused a duplicate identity"
        );
        let message = format!("identity '{identity}' is already in use on this platform");
        return refuse(&mut write, &shared, ErrorCode::DuplicateIdentity, &message).await;
    }
    tracing::info!(source, identity = identity.as_str(), "bridge: peer connected");
    let outbox = Outbox::new(shared.max_frame);
    let session = Arc::new(Session {
        identity: identity.clone(),
        peer_id,
        endpoint,
        mailbox: mailbox.clone(),
        outbox: outbox.clone(),
        calls: Mutex::new(HashMap::new()),
        pings: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    let _ = outbox.send(&Frame::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        instance_name: router.info.instance_name.clone(),
        identity: identity.clone(),
    }));
    {
        let wake = outbox.clone();
        mailbox.set_waker(Box::new(move || wake.wake()));
    }
    let writer = {
        let session = session.clone();
        let mut codec = FrameCodec::default().with_max_frame(shared.max_frame);
        let mut envelopes = Vec::with_capacity(DRAIN_BATCH);
        tokio::spawn(write_loop(outbox.clone(), write, move |batch| {
            session.mailbox.take_batch(DRAIN_BATCH, &mut envelopes);
            for envelope in envelopes.drain(..) {
                session.envelope_frame(envelope, &mut codec, batch);
                session.mailbox.handled();
            }
            session.mailbox.finish_drain()
        }))
    };
    let mut handled = 0u32;
    let mut received = 0u64;
    let mut keepalive = Keepalive::new(shared.keepalive);
    let reason = loop {
        handled = handled.wrapping_add(1);
        if handled.is_multiple_of(YIELD_EVERY) {
            // Let this thread's writers drain what these frames queued before reading on.
            tokio::task::yield_now().await;
        }
        let next = tokio::select! {
            next = frames.next() => next,
            _ = keepalive.tick() => match keepalive.on_tick(received) {
                KeepaliveAction::Nothing => continue,
                KeepaliveAction::Ping => {
                    let id = session.next_id.fetch_add(1, Ordering::Relaxed);
                    session.send(Frame::Ping(Ping { id, peer: None }));
                    continue;
                }
                KeepaliveAction::Dead => {
                    counters::add(&router.counters.bridge_keepalive_closes, 1);
                    break keepalive.dead_reason();
                }
            },
        };
        received += 1;
        match next {
            None => break "the agent closed the connection".to_owned(),
            Some(Err(FrameError::Io(e))) => break format!("read failed: {e}"),
            Some(Err(e)) => {
                let code = e.code().unwrap_or(ErrorCode::Malformed);
                let _ = session.outbox.send(&error_frame(None, code, e.to_string()));
                break format!("bad frame: {e}");
            }
            Some(Ok(frame)) => {
                counters::add(&router.counters.bridge_frames_in, 1);
                if let Err(message) = session.handle(frame) {
                    let _ = session
                        .outbox
                        .send(&error_frame(None, ErrorCode::UnknownFrame, message.clone()));
                    break message;
                }
            }
        }
    };
    tracing::info!(
        source,
        identity = identity.as_str(),
        "bridge: peer disconnected: {reason}"
    );
    session.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

fn error_frame(request_id: Option<RequestId>, code: ErrorCode, message: String) -> Frame {
    Frame::Error(ErrorFrame {
        request_id,
        code,
        message,
    })
}

/// One admitted connection.
struct Session {
    identity: Identity,
    peer_id: u64,
    endpoint: Endpoint,
    mailbox: Arc<Mailbox>,
    outbox: Arc<Outbox>,
    /// Requests sent to the agent, waiting for its reply.
    calls: Mutex<HashMap<RequestId, oneshot::Sender<Result<Value, RpcError>>>>,
    /// Pings sent to the agent, waiting for its pong.
    pings: Mutex<HashMap<RequestId, oneshot::Sender<()>>>,
    next_id: AtomicU64,
}

impl Session {
    fn send(&self, frame: Frame) {
        let cells = &self.endpoint.router.counters;
        match self.outbox.send(&frame) {
            Ok(()) => counters::add(&cells.bridge_frames_out, 1),
            Err(e) => {
                if matches!(e, SendError::Full(_)) {
                    counters::add(&cells.bridge_outbox_full, 1);
                }
                tracing::debug!(identity = self.identity.as_str(), "bridge: frame not sent: {e}");
            }
        }
    }

    fn reply_error(&self, id: RequestId, code: ErrorCode, message: String) {
        self.send(error_frame(Some(id), code, message));
    }

    /// Carries out one frame from the agent. `Err` closes the connection.
    fn handle(self: &Arc<Self>, frame: Frame) -> Result<(), String> {
        match frame {
            Frame::Ping(Ping { id, peer: None }) => self.send(Frame::Pong(Pong { id })),
            Frame::Ping(Ping { id, peer: Some(peer) }) => {
                let this = self.clone();
                tokio::spawn(async move {
                    match this.endpoint.ping(&peer).await {
                        Ok(()) => this.send(Frame::Pong(Pong { id })),
                        Err(e) => this.reply_error(id, ErrorCode::UnreachablePeer, e.to_string()),
                    }
                });
            }
            Frame::Pong(Pong { id }) => {
                if let Some(tx) = self.pings.lock().remove(&id) {
                    let _ = tx.send(());
                }
            }
            Frame::Query(Query { id, key }) => self.send(Frame::QueryReply(QueryReply {
                id,
                value: self.endpoint.query(&key),
            })),
            Frame::PeerList(PeerList { id }) => self.send(Frame::PeerListReply(PeerListReply {
                id,
                peers: self.endpoint.router.peers(),
            })),
            Frame::Subscribe(s) => {
                let Ok(sub_id) = u32::try_from(s.id) else {
                    self.reply_error(
                        s.id,
                        ErrorCode::Malformed,
                        "subscription ids must fit in 32 bits".into(),
                    );
                    return Ok(());
                };
                let overflow = s.overflow.map(Into::into).unwrap_or_default();
                match self.endpoint.subscribe(
                    self.peer_id,
                    &self.mailbox,
                    &s.bus,
                    &s.prefix,
                    sub_id,
                    overflow,
                    s.all_platforms,
                ) {
                    Ok(()) => self.send(Frame::Ack(Ack { id: s.id })),
                    Err(e @ SubscribeError::Unauthorized(_)) => {
                        self.reply_error(s.id, ErrorCode::Unauthorized, e.to_string())
                    }
                    Err(e) => self.reply_error(s.id, ErrorCode::Malformed, e.to_string()),
                }
            }
            Frame::Unsubscribe(u) => {
                self.endpoint
                    .router
                    .unsubscribe(self.peer_id, u.bus.as_deref(), u.prefix.as_deref());
                self.send(Frame::Ack(Ack { id: u.id }));
            }
            Frame::Publish(p) => match self.endpoint.publish(&p.bus, p.topic, p.headers, p.message) {
                Ok(reached) if p.id != 0 => self.send(Frame::PublishAck(PublishAck {
                    id: p.id,
                    reached: reached as u64,
                })),
                Ok(_) => {}
                // A publish without an id wants no answer, but a refusal is still reported.
                Err(e) => self.send(error_frame(
                    (p.id != 0).then_some(p.id),
                    ErrorCode::Unauthorized,
                    e.to_string(),
                )),
            },
            Frame::RpcRequest(r) => {
                let reply = self
                    .endpoint
                    .call(r.peer.as_str(), &r.method, r.args)
                    .trace(WireTrace::context(r.trace.as_ref()))
                    .on_platform_opt(r.platform)
                    .into_future();
                let this = self.clone();
                tokio::spawn(async move {
                    let result = reply.await;
                    this.send(Frame::RpcReply(RpcReply { id: r.id, result }));
                });
            }
            Frame::RpcNotify(n) => {
                let trace = WireTrace::context(n.trace.as_ref());
                if let Err(e) = self
                    .endpoint
                    .notify_traced(n.peer.as_str(), &n.method, n.args, trace)
                {
                    tracing::debug!(
                        identity = self.identity.as_str(),
                        "bridge: notify not delivered: {e}"
                    );
                }
            }
            Frame::RpcReply(r) => {
                if let Some(tx) = self.calls.lock().remove(&r.id) {
                    let _ = tx.send(r.result);
                }
            }
            Frame::Error(e) => match e.request_id.and_then(|id| self.calls.lock().remove(&id)) {
                Some(tx) => {
                    let _ = tx.send(Err(RpcError::Remote {
                        method: String::new(),
                        message: e.message,
                        kind: "bridge".into(),
                    }));
                }
                None => tracing::info!(
                    identity = self.identity.as_str(),
                    code = ?e.code,
                    "bridge: the agent reported: {}",
                    e.message
                ),
            },
            other => return Err(format!("unexpected {} frame from an agent", other.kind().name())),
        }
        Ok(())
    }

    /// Turns what the router queued for this peer into a frame, appended to `out`.
    fn envelope_frame(&self, envelope: Envelope, codec: &mut FrameCodec, out: &mut BytesMut) {
        let frame = match envelope {
            Envelope::Publication {
                publication,
                subscription,
            } => Frame::Delivery(Delivery {
                subscription: u64::from(subscription),
                publication: Arc::unwrap_or_clone(publication),
            }),
            Envelope::Request(request) => {
                let request = *request;
                match request.reply {
                    Some(reply) => {
                        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                        self.calls.lock().insert(id, reply);
                        Frame::RpcRequest(RpcRequest {
                            id,
                            peer: request.sender,
                            method: request.method,
                            args: request.args,
                            platform: None,
                            trace: WireTrace::of(request.trace.as_ref()),
                        })
                    }
                    None => Frame::RpcNotify(RpcNotify {
                        peer: request.sender,
                        method: request.method,
                        args: request.args,
                        trace: WireTrace::of(request.trace.as_ref()),
                    }),
                }
            }
            Envelope::Ping(reply) => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                self.pings.lock().insert(id, reply);
                Frame::Ping(Ping { id, peer: None })
            }
            Envelope::Peer(PeerEvent::Added(peer)) => Frame::PeerAdded(PeerAdded { peer }),
            Envelope::Peer(PeerEvent::Dropped(peer)) => Frame::PeerDropped(PeerDropped { peer }),
            // Timers, health, configuration follow-ups and link events belong to
            // in-process hosts; a remote agent's own process handles them.
            _ => return,
        };
        let before = out.len();
        if let Err(e) = codec.encode(&frame, out) {
            out.truncate(before);
            tracing::warn!(
                identity = self.identity.as_str(),
                "bridge: cannot send a {} frame: {e}",
                frame.kind().name()
            );
            if let Frame::RpcRequest(r) = frame
                && let Some(reply) = self.calls.lock().remove(&r.id)
            {
                let _ = reply.send(Err(RpcError::InvalidParams {
                    method: r.method,
                    message: format!("the request cannot cross the bridge: {e}"),
                }));
            }
        } else {
            counters::add(&self.endpoint.router.counters.bridge_frames_out, 1);
        }
    }

    /// The link ended: the peer leaves the platform.
    fn close(&self) {
        self.endpoint.router.remove_peer(&self.identity, self.peer_id);
        for envelope in self.mailbox.close() {
            envelope.refuse(&self.identity);
        }
        // Dropping the reply senders fails the waiting calls with `PeerStopped`.
        self.calls.lock().clear();
        self.pings.lock().clear();
        self.outbox.close();
    }
}
