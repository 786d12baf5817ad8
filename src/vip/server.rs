//! The listener's thread: one ROUTER socket (every VIP peer), the ZAP handler, a socket
//! monitor and a wake-up descriptor, polled together.
//!
//! ZeroMQ sockets belong to one thread, so this thread does all socket work: it reads
//! and answers VIP messages, drains the mailboxes of its peers into frames (their
//! wakers flag the peer and write the eventfd), polls the calls its peers made (a reply
//! wakes it through the same eventfd), and sends what was queued for the socket. Publishing and subscribing go straight to
//! the routing table from here, as from any agent's thread.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use parking_lot::Mutex;

use crate::core::Identity;
use crate::vip::frame::{self, Parsed};
use crate::vip::peer::VipPeer;
use crate::vip::{Context, VipError};

/// Routing ids remembered (admitted or refused) before the refused ones are forgotten:
/// each connection names its own, so a stranger could otherwise grow the table.
const MAX_SLOTS: usize = 4096;

/// How many envelopes one peer's drain takes before the loop looks at the sockets again.
const DRAIN_BATCH: usize = 256;

/// After a connection closes, the peers are probed this long later, then once more
/// (libzmq ends a pipe shortly after its connection).
const PROBE_DELAYS: [Duration; 2] = [Duration::from_millis(20), Duration::from_millis(500)];

/// What the listener's thread shares with the rest of the platform.
pub(crate) struct Shared {
    /// Messages to send, queued by other threads.
    outbound: Mutex<VecDeque<Vec<Vec<u8>>>>,
    /// Routing ids whose mailbox has work.
    ready: Mutex<Vec<Vec<u8>>>,
    /// Identities whose process exited (told by the control service).
    exited: Mutex<Vec<String>>,
    wake: OwnedFd,
    pub(crate) stop: AtomicBool,
}

impl Shared {
    pub(crate) fn new() -> Result<Shared, VipError> {
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|e| VipError::Socket(format!("eventfd: {e}")))?;
        Ok(Shared {
            outbound: Mutex::new(VecDeque::new()),
            ready: Mutex::new(Vec::new()),
            exited: Mutex::new(Vec::new()),
            wake,
            stop: AtomicBool::new(false),
        })
    }

    /// Wakes the thread.
    pub(crate) fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// Queues a message for the socket.
    pub(crate) fn send(&self, message: Vec<Vec<u8>>) {
        self.outbound.lock().push_back(message);
        self.wake();
    }

    /// Flags a peer's mailbox as having work.
    pub(crate) fn ready(&self, routing_id: &[u8]) {
        self.ready.lock().push(routing_id.to_vec());
        self.wake();
    }

    /// Drops the peer of `identity` at once: its process exited.
    pub(crate) fn process_exited(&self, identity: &str) {
        self.exited.lock().push(identity.to_owned());
        self.wake();
    }

    fn clear_wake(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.wake, &mut buf);
    }
}

/// The sockets, bound before any agent runs.
pub(crate) struct Sockets {
    /// Kept for the sockets' lifetime.
    pub(crate) _context: zmq::Context,
    pub(crate) router: zmq::Socket,
    pub(crate) zap: zmq::Socket,
    pub(crate) monitor: zmq::Socket,
}

/// A peer known to the socket.
pub(crate) enum Slot {
    Admitted(Box<VipPeer>),
    /// Refused; messages are answered with an error until it says hello again.
    Refused,
}

/// Work the thread waits on (answers to the calls its peers made), polled here: a reply
/// wakes the thread through the eventfd, with no hop through another thread.
pub(crate) type Pending = FuturesUnordered<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>;

impl futures::task::ArcWake for Shared {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        Shared::wake(arc_self);
    }
}

/// The state of the listener's thread.
pub(crate) struct Server {
    pub(crate) sockets: Sockets,
    pub(crate) shared: Arc<Shared>,
    pub(crate) ctx: Arc<Context>,
    pub(crate) peers: HashMap<Vec<u8>, Slot>,
    pub(crate) pending: Pending,
    /// When to probe the peers for departed connections.
    probes: Vec<Instant>,
    /// Messages that could not be parsed, logged once per routing id.
    malformed: std::collections::HashSet<Vec<u8>>,
    /// Peers whose queue is full (HWM), logged once until it drains.
    congested: std::collections::HashSet<Vec<u8>>,
}

impl Server {
    pub(crate) fn new(sockets: Sockets, shared: Arc<Shared>, ctx: Arc<Context>) -> Server {
        Server {
            sockets,
            shared,
            ctx,
            peers: HashMap::new(),
            pending: FuturesUnordered::new(),
            probes: Vec::new(),
            malformed: Default::default(),
            congested: Default::default(),
        }
    }

    /// Runs until the platform stops.
    pub(crate) fn run(mut self) {
        let waker = futures::task::waker(self.shared.clone());
        while !self.shared.stop.load(Ordering::Acquire) {
            let timeout = self.poll_timeout();
            let (router_in, zap_in, monitor_in) = {
                let wake_fd = self.shared.wake.as_fd().as_raw_fd();
                let mut items = [
                    self.sockets.router.as_poll_item(zmq::POLLIN),
                    self.sockets.zap.as_poll_item(zmq::POLLIN),
                    self.sockets.monitor.as_poll_item(zmq::POLLIN),
                    zmq::PollItem::from_fd(wake_fd, zmq::POLLIN),
                ];
                if let Err(e) = zmq::poll(&mut items, timeout) {
                    if e == zmq::Error::ETERM {
                        break;
                    }
                    tracing::warn!("vip: poll failed: {e}");
                    continue;
                }
                if items[3].is_readable() {
                    self.shared.clear_wake();
                }
                (
                    items[0].is_readable(),
                    items[1].is_readable(),
                    items[2].is_readable(),
                )
            };
            if zap_in {
                self.answer_zap();
            }
            if monitor_in {
                self.read_monitor();
            }
            if router_in {
                self.read_router();
            }
            self.poll_pending(&waker);
            self.drop_exited();
            self.drain_ready();
            self.send_outbound();
            self.run_probes();
        }
        self.close_all("the platform is stopping");
    }

    /// Runs the waiting answers that can go on.
    fn poll_pending(&mut self, waker: &std::task::Waker) {
        let mut cx = std::task::Context::from_waker(waker);
        while let std::task::Poll::Ready(Some(())) = self.pending.poll_next_unpin(&mut cx) {}
    }

    fn poll_timeout(&self) -> i64 {
        match self.probes.iter().min() {
            None => -1,
            Some(at) => at.saturating_duration_since(Instant::now()).as_millis() as i64,
        }
    }

    fn answer_zap(&mut self) {
        while let Ok(frames) = self.sockets.zap.recv_multipart(zmq::DONTWAIT) {
            let request = crate::vip::zap::parse(&frames);
            let answer = crate::vip::zap::reply(request.as_ref());
            if answer[2] != b"200" {
                tracing::info!(
                    mechanism = %request.as_ref().map(|r| String::from_utf8_lossy(&r.mechanism).into_owned()).unwrap_or_default(),
                    "vip: handshake refused: only CURVE clients may connect"
                );
            }
            if let Err(e) = self.sockets.zap.send_multipart(answer, 0) {
                tracing::warn!("vip: cannot answer ZAP: {e}");
            }
        }
    }

    fn read_monitor(&mut self) {
        let mut closed = false;
        while let Ok(frames) = self.sockets.monitor.recv_multipart(zmq::DONTWAIT) {
            let event = frames
                .first()
                .and_then(|f| f.get(..2))
                .map(|b| u16::from_le_bytes([b[0], b[1]]));
            if event == Some(zmq::SocketEvent::DISCONNECTED.to_raw()) {
                closed = true;
            }
        }
        if closed {
            let now = Instant::now();
            self.probes.extend(PROBE_DELAYS.iter().map(|d| now + *d));
        }
    }

    /// Sends each admitted peer a welcome with an id it never asked for (the client
    /// ignores it); a peer whose connection is gone fails the send and is dropped.
    fn run_probes(&mut self) {
        let now = Instant::now();
        let before = self.probes.len();
        self.probes.retain(|at| *at > now);
        if self.probes.len() == before {
            return;
        }
        let ids: Vec<Vec<u8>> = self
            .peers
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Admitted(_)))
            .map(|(rid, _)| rid.clone())
            .collect();
        for rid in ids {
            let probe = frame::outgoing(
                &rid,
                b"",
                b"",
                b"probe",
                "hello",
                vec![
                    b"welcome".to_vec(),
                    b"1.0".to_vec(),
                    crate::vip::ROUTER_ID.as_bytes().to_vec(),
                    rid.clone(),
                ],
            );
            self.transmit(probe);
        }
    }

    fn read_router(&mut self) {
        loop {
            let first = match self.sockets.router.recv_msg(zmq::DONTWAIT) {
                Ok(m) => m,
                Err(zmq::Error::EAGAIN) => return,
                Err(e) => {
                    tracing::warn!("vip: receive failed: {e}");
                    return;
                }
            };
            // The routing-id frame is the ROUTER's own: the connection's properties
            // (the ZAP user id, the peer's address) come with the peer's frames.
            let mut user = None;
            let mut address = None;
            let mut frames = vec![first.to_vec()];
            let mut more = first.get_more();
            while more {
                match self.sockets.router.recv_msg(0) {
                    Ok(mut m) => {
                        more = m.get_more();
                        if user.is_none() {
                            user = m.gets("User-Id").map(str::to_owned);
                            address = m.gets("Peer-Address").map(str::to_owned);
                        }
                        frames.push(m.to_vec());
                    }
                    Err(e) => {
                        tracing::warn!("vip: receive failed mid-message: {e}");
                        return;
                    }
                }
            }
            let rid = frames[0].clone();
            match frame::parse(frames) {
                Ok(Parsed::Probe { routing_id }) => {
                    self.admit(&routing_id, b"", user.as_deref(), address.as_deref());
                }
                Ok(Parsed::Message(message)) => {
                    self.malformed.remove(&message.routing_id);
                    crate::vip::dispatch::incoming(self, message, user.as_deref(), address.as_deref());
                }
                Err(e) => {
                    // Logged once per peer until it sends a good one.
                    let identity = crate::core::json::latin1(&rid);
                    if self.malformed.len() >= MAX_SLOTS {
                        self.malformed.clear();
                    }
                    if self.malformed.insert(rid) {
                        tracing::warn!(identity, "vip: a malformed message was dropped: {e}");
                    }
                }
            }
        }
    }

    /// The admitted peer of `routing_id`, admitting it on its first message. `None` when
    /// it is refused (it has been told).
    pub(crate) fn admit(
        &mut self,
        routing_id: &[u8],
        msg_id: &[u8],
        user: Option<&str>,
        address: Option<&str>,
    ) -> Option<&mut VipPeer> {
        if !matches!(self.peers.get(routing_id), Some(Slot::Admitted(_))) {
            match crate::vip::peer::admit(self, routing_id, user, address) {
                Ok(peer) => {
                    self.peers
                        .insert(routing_id.to_vec(), Slot::Admitted(Box::new(peer)));
                }
                Err(refusal) => {
                    let first = !matches!(self.peers.get(routing_id), Some(Slot::Refused));
                    if first {
                        tracing::warn!(
                            identity = %crate::core::json::latin1(routing_id),
                            "vip: refused: {refusal}"
                        );
                    }
                    if self.peers.len() >= MAX_SLOTS {
                        self.peers.retain(|_, s| matches!(s, Slot::Admitted(_)));
                    }
                    self.peers.insert(routing_id.to_vec(), Slot::Refused);
                    self.transmit(frame::error_message(
                        routing_id,
                        msg_id,
                        b"",
                        crate::vip::UNAUTHORIZED,
                        &refusal,
                        b"",
                        b"hello",
                    ));
                    return None;
                }
            }
        }
        match self.peers.get_mut(routing_id) {
            Some(Slot::Admitted(peer)) => Some(peer),
            _ => None,
        }
    }

    /// Whether `routing_id` holds an admitted peer whose key is `user`.
    pub(crate) fn is_admitted(&self, routing_id: &[u8], user: Option<&str>) -> bool {
        matches!(self.peers.get(routing_id), Some(Slot::Admitted(p)) if p.key.as_deref() == user || self.ctx.authority.is_none())
    }

    /// Sends now; a peer whose connection is gone (EHOSTUNREACH) is dropped.
    pub(crate) fn transmit(&mut self, message: Vec<Vec<u8>>) {
        let dest = message.first().cloned().unwrap_or_default();
        match self.sockets.router.send_multipart(message, zmq::DONTWAIT) {
            Ok(()) => {
                if !self.congested.is_empty() {
                    self.congested.remove(&dest);
                }
            }
            Err(zmq::Error::EHOSTUNREACH) => self.drop_peer(&dest, "its connection is gone"),
            Err(zmq::Error::EAGAIN) => {
                // Logged once until a send to it succeeds again.
                let identity = crate::core::json::latin1(&dest);
                if self.congested.insert(dest) {
                    tracing::warn!(identity, "vip: messages dropped: the peer's queue is full (HWM)");
                }
            }
            Err(e) => tracing::warn!("vip: send failed: {e}"),
        }
    }

    fn send_outbound(&mut self) {
        loop {
            let batch: Vec<Vec<Vec<u8>>> = self.shared.outbound.lock().drain(..).collect();
            if batch.is_empty() {
                return;
            }
            for message in batch {
                self.transmit(message);
            }
        }
    }

    fn drain_ready(&mut self) {
        loop {
            let ready: Vec<Vec<u8>> = std::mem::take(&mut *self.shared.ready.lock());
            if ready.is_empty() {
                return;
            }
            for rid in ready {
                self.drain_peer(&rid);
            }
        }
    }

    fn drain_peer(&mut self, rid: &[u8]) {
        let mut out = Vec::new();
        let more = match self.peers.get_mut(rid) {
            Some(Slot::Admitted(peer)) => peer.drain(DRAIN_BATCH, &mut out),
            _ => return,
        };
        for message in out {
            self.transmit(message);
        }
        if more {
            self.shared.ready(rid);
        }
    }

    fn drop_exited(&mut self) {
        let exited: Vec<String> = std::mem::take(&mut *self.shared.exited.lock());
        for identity in exited {
            let rid = identity.as_bytes().to_vec();
            if matches!(self.peers.get(&rid), Some(Slot::Admitted(_))) {
                self.drop_peer(&rid, "its process exited");
            }
        }
    }

    /// Removes a peer from the platform: peerlist drop, subscriptions purged, its
    /// pending calls failed.
    pub(crate) fn drop_peer(&mut self, rid: &[u8], why: &str) {
        if let Some(Slot::Admitted(peer)) = self.peers.remove(rid) {
            tracing::info!(identity = peer.identity.as_str(), "vip: peer disconnected: {why}");
            peer.close();
        }
    }

    fn close_all(&mut self, why: &str) {
        let ids: Vec<Vec<u8>> = self.peers.keys().cloned().collect();
        for rid in ids {
            self.drop_peer(&rid, why);
        }
    }

    /// The identity a routing id names, if it is a valid one.
    pub(crate) fn identity_of(routing_id: &[u8]) -> Result<Identity, String> {
        let text = crate::core::json::latin1(routing_id);
        Identity::new(&text).map_err(|e| format!("invalid identity {text:?}: {e}"))
    }
}
