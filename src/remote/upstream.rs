//! The agent side of a link: what the remote agent's endpoint sends up, and what the
//! frames that come down turn into.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, oneshot};

use crate::agent::{ContextError, PublishError};
use crate::bridge::frame::*;
use crate::bridge::link::{Outbox, SendError};
use crate::core::{Args, Headers, Identity, RpcError, Topic, TraceContext, Value};
use crate::platform::backpressure::OverflowPolicy;
use crate::platform::mailbox::{Delivered, Envelope, Mailbox, Request};
use crate::platform::router::{PeerEntry, Router};

/// One subscription of the local agent, kept to re-subscribe after a reconnect.
struct SubRecord {
    bus: String,
    prefix: String,
    overflow: OverflowPolicy,
    all_platforms: bool,
}

/// The link as the agent's process sees it. Installed in the local router; see
/// [`Router::upstream`].
pub(crate) struct Upstream {
    identity: Identity,
    pub(super) outbox: Arc<Outbox>,
    connected: AtomicBool,
    next_id: AtomicU64,
    instance_name: RwLock<String>,
    address: String,
    calls: Mutex<HashMap<RequestId, oneshot::Sender<Result<Value, RpcError>>>>,
    pings: Mutex<HashMap<RequestId, oneshot::Sender<()>>>,
    /// Confirmed publishes waiting for the platform's answer.
    publishes: Mutex<HashMap<RequestId, oneshot::Sender<Result<usize, PublishError>>>>,
    subs: Mutex<BTreeMap<u32, SubRecord>>,
    /// Confirmed subscriptions waiting for the platform's answer (by subscription id).
    sub_waiters: Mutex<HashMap<u32, oneshot::Sender<Result<(), ContextError>>>>,
    /// Platform peers mirrored into the local router (identity → local peer number).
    mirror: Mutex<HashMap<Identity, u64>>,
    /// The local agent's mailbox, once it is running.
    local: Mutex<Option<Arc<Mailbox>>>,
    router: std::sync::Weak<Router>,
    /// Requests from the platform whose replies are not sent yet.
    answering: std::sync::atomic::AtomicUsize,
    answered: Notify,
    /// The local agent left (stopped or crashed).
    gone: AtomicBool,
    pub(super) gone_notify: Notify,
}

fn not_connected() -> RpcError {
    RpcError::NotConnected
}

impl Upstream {
    pub(crate) fn new(
        identity: Identity,
        router: &Arc<Router>,
        max_frame: usize,
        address: String,
    ) -> Arc<Self> {
        let outbox = Outbox::new(max_frame);
        outbox.close();
        Arc::new(Upstream {
            identity,
            outbox,
            connected: AtomicBool::new(false),
            // Above every subscription id (a u32), so an error frame's request id says
            // unambiguously what it answers.
            next_id: AtomicU64::new(1 << 32),
            instance_name: RwLock::new(String::new()),
            address,
            calls: Mutex::new(HashMap::new()),
            pings: Mutex::new(HashMap::new()),
            publishes: Mutex::new(HashMap::new()),
            subs: Mutex::new(BTreeMap::new()),
            sub_waiters: Mutex::new(HashMap::new()),
            mirror: Mutex::new(HashMap::new()),
            local: Mutex::new(None),
            router: Arc::downgrade(router),
            answering: Default::default(),
            answered: Notify::new(),
            gone: AtomicBool::new(false),
            gone_notify: Notify::new(),
        })
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(super) fn id(&self) -> RequestId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn send(&self, frame: &Frame) -> Result<(), SendError> {
        self.outbox.send(frame)
    }

    // ---- what the local endpoint sends up -------------------------------------------

    pub(crate) fn publish(
        &self,
        bus: &str,
        topic: Topic,
        headers: Headers,
        message: Value,
    ) -> Result<usize, PublishError> {
        // Id 0: no answer wanted (a refusal is still reported, and logged).
        self.send_publish(0, bus, topic, headers, message).map(|()| 0)
    }

    /// Publishes with a request id: the receiver gets the platform's answer (how many
    /// subscribers it reached, or its refusal), or `NotConnected` if the link drops first.
    pub(crate) fn publish_confirmed(
        &self,
        bus: &str,
        topic: Topic,
        headers: Headers,
        message: Value,
    ) -> Result<oneshot::Receiver<Result<usize, PublishError>>, PublishError> {
        let id = self.id();
        let (tx, rx) = oneshot::channel();
        self.publishes.lock().insert(id, tx);
        if let Err(e) = self.send_publish(id, bus, topic, headers, message) {
            self.publishes.lock().remove(&id);
            return Err(e);
        }
        Ok(rx)
    }

    fn send_publish(
        &self,
        id: RequestId,
        bus: &str,
        topic: Topic,
        headers: Headers,
        message: Value,
    ) -> Result<(), PublishError> {
        let frame = Frame::Publish(Publish {
            id,
            bus: bus.to_owned(),
            topic,
            headers,
            message,
        });
        self.send(&frame).map_err(|e| match e {
            SendError::Closed => PublishError::NotConnected,
            SendError::Full(queued) => PublishError::LinkFull { queued },
            SendError::Encode(e) => {
                PublishError::Unauthorized(format!("the publication cannot cross the bridge: {e}"))
            }
        })
    }

    /// The platform's answer to subscription `id`, once it comes: register before the
    /// subscription is sent. A refusal also removes the subscription from the local
    /// router; a link that drops first gives `NotConnected` (the subscription is sent
    /// again on reconnection).
    pub(crate) fn await_subscription(&self, id: u32) -> oneshot::Receiver<Result<(), ContextError>> {
        let (tx, rx) = oneshot::channel();
        self.sub_waiters.lock().insert(id, tx);
        rx
    }

    /// Drops the wait for subscription `id` (it was not sent after all).
    pub(crate) fn forget_subscription_wait(&self, id: u32) {
        self.sub_waiters.lock().remove(&id);
    }

    pub(crate) fn subscribe(
        &self,
        id: u32,
        bus: &str,
        prefix: &str,
        overflow: OverflowPolicy,
        all_platforms: bool,
    ) {
        let record = SubRecord {
            bus: bus.to_owned(),
            prefix: prefix.to_owned(),
            overflow,
            all_platforms,
        };
        let frame = subscribe_frame(id, &record);
        self.subs.lock().insert(id, record);
        // Sent now if connected; otherwise on (re)connection.
        let _ = self.send(&frame);
    }

    pub(crate) fn unsubscribe(&self, bus: Option<&str>, prefix: Option<&str>, ids: &[u32]) {
        {
            let mut subs = self.subs.lock();
            for id in ids {
                subs.remove(id);
            }
        }
        let _ = self.send(&Frame::Unsubscribe(Unsubscribe {
            id: self.id(),
            bus: bus.map(str::to_owned),
            prefix: prefix.map(str::to_owned),
        }));
    }

    pub(crate) fn call(
        &self,
        peer: &str,
        method: &str,
        args: Args,
        trace: Option<TraceContext>,
        platform: Option<String>,
    ) -> Result<oneshot::Receiver<Result<Value, RpcError>>, RpcError> {
        let peer = Identity::new(peer).map_err(|_| RpcError::UnknownPeer {
            peer: peer.to_owned(),
        })?;
        let id = self.id();
        let (tx, rx) = oneshot::channel();
        self.calls.lock().insert(id, tx);
        let frame = Frame::RpcRequest(RpcRequest {
            id,
            peer,
            method: method.to_owned(),
            args,
            trace: WireTrace::of(trace.as_ref()),
            platform,
        });
        if let Err(e) = self.send(&frame) {
            self.calls.lock().remove(&id);
            return Err(match e {
                SendError::Encode(e) => RpcError::InvalidParams {
                    method: method.to_owned(),
                    message: format!("the request cannot cross the bridge: {e}"),
                },
                _ => not_connected(),
            });
        }
        Ok(rx)
    }

    pub(crate) fn notify(
        &self,
        peer: &str,
        method: &str,
        args: Args,
        trace: Option<TraceContext>,
    ) -> Result<(), RpcError> {
        let peer = Identity::new(peer).map_err(|_| RpcError::UnknownPeer {
            peer: peer.to_owned(),
        })?;
        let frame = Frame::RpcNotify(RpcNotify {
            peer,
            method: method.to_owned(),
            args,
            trace: WireTrace::of(trace.as_ref()),
        });
        self.send(&frame).map_err(|_| not_connected())
    }

    pub(crate) fn ping(&self, peer: &str) -> Result<oneshot::Receiver<()>, RpcError> {
        if !self.is_connected() {
            return Err(not_connected());
        }
        let router = self.router.upgrade().ok_or_else(not_connected)?;
        if !router.is_connected(peer) {
            return Err(RpcError::UnknownPeer {
                peer: peer.to_owned(),
            });
        }
        let id = self.id();
        let (tx, rx) = oneshot::channel();
        self.pings.lock().insert(id, tx);
        let peer = Identity::new(peer).map_err(|_| RpcError::UnknownPeer {
            peer: peer.to_owned(),
        })?;
        self.send(&Frame::Ping(Ping { id, peer: Some(peer) }))
            .map_err(|_| not_connected())?;
        Ok(rx)
    }

    /// Platform facts known without a round trip (from the welcome).
    pub(crate) fn query(&self, key: &str) -> Option<Value> {
        Some(match key {
            "instance-name" => Value::from(self.instance_name.read().as_str()),
            "platform-version" => Value::from(crate::platform::PLATFORM_VERSION),
            "addresses" => Value::List(vec![Value::from(self.address.as_str())]),
            "local_address" => Value::from(self.address.as_str()),
            "message-bus" => Value::from("volttron-rs"),
            _ => return None,
        })
    }

    /// The local agent left its (local) routing table: the process is done.
    pub(crate) fn local_peer_left(&self, identity: &Identity) {
        if *identity == self.identity {
            self.gone.store(true, Ordering::Release);
            self.gone_notify.notify_waiters();
            self.gone_notify.notify_one();
        }
    }

    /// Resolves once every request from the platform has its reply queued (the agent
    /// stopped: the last replies, e.g. to the call that stopped it, still go out).
    pub(super) async fn replies_sent(&self) {
        loop {
            let notified = self.answered.notified();
            if self.answering.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    // ---- link state --------------------------------------------------------------------

    pub(super) fn set_local(&self, mailbox: Arc<Mailbox>) {
        *self.local.lock() = Some(mailbox);
    }

    /// The subscriptions to send again on a new link (right after its hello, so they
    /// are in force once the platform answers the peer-list request that follows).
    pub(super) fn resubscribe_frames(&self) -> Vec<Frame> {
        self.subs
            .lock()
            .iter()
            .map(|(id, s)| subscribe_frame(*id, s))
            .collect()
    }

    /// A link is up: frames flow and the peer mirror is set. The agent is told with
    /// [`tell_connected`](Self::tell_connected).
    pub(super) fn link_up(&self, welcome: &Welcome, peers: &[Identity]) {
        *self.instance_name.write() = welcome.instance_name.clone();
        self.outbox.reopen();
        self.set_mirror(peers);
        self.connected.store(true, Ordering::Release);
    }

    /// Runs the agent's `#[on_connected]`.
    pub(super) fn tell_connected(&self) {
        if let Some(local) = self.local.lock().as_ref() {
            let _ = local.deliver(Envelope::Link(true));
        }
    }

    /// Resolves once the platform has handled every frame sent before it (a ping to the
    /// link's other end), or fails if the link drops first.
    pub(super) fn barrier(&self) -> oneshot::Receiver<()> {
        let id = self.id();
        let (tx, rx) = oneshot::channel();
        self.pings.lock().insert(id, tx);
        if self.send(&Frame::Ping(Ping { id, peer: None })).is_err() {
            self.pings.lock().remove(&id);
        }
        rx
    }

    /// The link went down: waiting calls fail, mirrored peers drop, the agent is told.
    pub(super) fn link_down(&self) {
        self.connected.store(false, Ordering::Release);
        self.outbox.close();
        for (_, tx) in self.calls.lock().drain() {
            let _ = tx.send(Err(RpcError::PeerStopped {
                peer: "the platform (link lost)".into(),
            }));
        }
        self.pings.lock().clear();
        for (_, tx) in self.publishes.lock().drain() {
            let _ = tx.send(Err(PublishError::NotConnected));
        }
        for (_, tx) in self.sub_waiters.lock().drain() {
            let _ = tx.send(Err(ContextError::NotConnected));
        }
        self.set_mirror(&[]);
        if let Some(local) = self.local.lock().as_ref() {
            let _ = local.deliver(Envelope::Link(false));
        }
    }

    fn set_mirror(&self, peers: &[Identity]) {
        let Some(router) = self.router.upgrade() else {
            return;
        };
        let mut mirror = self.mirror.lock();
        let gone: Vec<(Identity, u64)> = mirror
            .iter()
            .filter(|(p, _)| !peers.contains(p))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        for (peer, id) in gone {
            mirror.remove(&peer);
            router.remove_peer(&peer, id);
        }
        for peer in peers {
            if !mirror.contains_key(peer) {
                Self::mirror_add(&router, &mut mirror, &self.identity, peer.clone());
            }
        }
    }

    fn mirror_add(router: &Router, mirror: &mut HashMap<Identity, u64>, me: &Identity, peer: Identity) {
        if peer == *me || mirror.contains_key(&peer) {
            return;
        }
        let id = router.next_peer_id();
        // Never delivered to: calls to platform peers go up the link.
        let mailbox = router.new_mailbox();
        mailbox.close();
        let entry = PeerEntry {
            id,
            mailbox,
            watches_peers: false,
            exports: crate::platform::router::Exports::Unknown,
        };
        if router.add_peer(peer.clone(), entry).is_ok() {
            mirror.insert(peer, id);
        }
    }

    // ---- what comes down -------------------------------------------------------------

    /// Handles one frame from the platform; `Err` is a protocol violation (closes the link).
    pub(super) fn handle(self: &Arc<Self>, frame: Frame) -> Result<(), String> {
        let local = self.local.lock().clone();
        match frame {
            Frame::Delivery(d) => {
                let (Some(local), Ok(sub)) = (local, u32::try_from(d.subscription)) else {
                    return Ok(());
                };
                let overflow = self.subs.lock().get(&sub).map(|s| s.overflow);
                let Some(overflow) = overflow else {
                    return Ok(()); // unsubscribed meanwhile
                };
                let envelope = Envelope::Publication {
                    publication: Arc::new(d.publication),
                    subscription: sub,
                };
                if let Delivered::Disconnect = local.deliver_publication(envelope, overflow) {
                    tracing::warn!(
                        identity = self.identity.as_str(),
                        subscription = sub,
                        "slow subscriber: mailbox full, publication dropped"
                    );
                }
            }
            // A profile of this process (feature `profile`): taken off the agent's thread,
            // answered by the link, so the agent keeps running while it is sampled.
            #[cfg(feature = "profile")]
            Frame::RpcRequest(r) if r.method == crate::profile::AGENT_METHOD => {
                let this = self.clone();
                tokio::spawn(async move {
                    let result =
                        crate::profile::agent_process::answer(this.identity.clone(), r.peer, r.args).await;
                    let _ = this.send(&Frame::RpcReply(RpcReply { id: r.id, result }));
                });
            }
            Frame::RpcRequest(r) => {
                let Some(local) = local else {
                    let _ = self.send(&Frame::RpcReply(RpcReply {
                        id: r.id,
                        result: Err(RpcError::PeerStopped {
                            peer: self.identity.to_string(),
                        }),
                    }));
                    return Ok(());
                };
                let (tx, rx) = oneshot::channel();
                let trace = WireTrace::context(r.trace.as_ref());
                let request = Envelope::Request(Box::new(Request {
                    sender: r.peer,
                    method: r.method,
                    args: r.args,
                    reply: Some(tx),
                    trace,
                }));
                if let Err(e) = local.deliver(request) {
                    e.refuse(&self.identity);
                }
                let this = self.clone();
                let id = r.id;
                self.answering.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(async move {
                    let result = rx.await.unwrap_or_else(|_| {
                        Err(RpcError::PeerStopped {
                            peer: this.identity.to_string(),
                        })
                    });
                    let _ = this.send(&Frame::RpcReply(RpcReply { id, result }));
                    if this.answering.fetch_sub(1, Ordering::AcqRel) == 1 {
                        this.answered.notify_waiters();
                    }
                });
            }
            Frame::RpcNotify(n) => {
                if let Some(local) = local {
                    let trace = WireTrace::context(n.trace.as_ref());
                    let _ = local.deliver(Envelope::Request(Box::new(Request {
                        sender: n.peer,
                        method: n.method,
                        args: n.args,
                        reply: None,
                        trace,
                    })));
                }
            }
            Frame::Ping(Ping { id, .. }) => match local {
                Some(local) => {
                    let (tx, rx) = oneshot::channel();
                    let _ = local.deliver(Envelope::Ping(tx));
                    let this = self.clone();
                    tokio::spawn(async move {
                        if rx.await.is_ok() {
                            let _ = this.send(&Frame::Pong(Pong { id }));
                        }
                    });
                }
                None => {
                    let _ = self.send(&Frame::Pong(Pong { id }));
                }
            },
            Frame::Pong(Pong { id }) => {
                if let Some(tx) = self.pings.lock().remove(&id) {
                    let _ = tx.send(());
                }
            }
            Frame::RpcReply(r) => {
                if let Some(tx) = self.calls.lock().remove(&r.id) {
                    let _ = tx.send(r.result);
                }
            }
            Frame::PeerAdded(PeerAdded { peer }) => {
                if let Some(router) = self.router.upgrade() {
                    Self::mirror_add(&router, &mut self.mirror.lock(), &self.identity, peer);
                }
            }
            Frame::PeerDropped(PeerDropped { peer }) => {
                let id = self.mirror.lock().remove(&peer);
                if let (Some(id), Some(router)) = (id, self.router.upgrade()) {
                    router.remove_peer(&peer, id);
                }
            }
            Frame::PeerListReply(r) => self.set_mirror(&r.peers),
            Frame::PublishAck(a) => {
                if let Some(tx) = self.publishes.lock().remove(&a.id) {
                    let _ = tx.send(Ok(usize::try_from(a.reached).unwrap_or(usize::MAX)));
                }
            }
            Frame::Ack(a) => {
                if let Ok(sub) = u32::try_from(a.id)
                    && let Some(tx) = self.sub_waiters.lock().remove(&sub)
                {
                    let _ = tx.send(Ok(()));
                }
            }
            Frame::QueryReply(_) => {}
            Frame::Error(e) => self.on_error(e),
            other => {
                return Err(format!(
                    "unexpected {} frame from the platform",
                    other.kind().name()
                ));
            }
        }
        Ok(())
    }

    fn on_error(&self, e: ErrorFrame) {
        let Some(id) = e.request_id else {
            tracing::warn!(identity = self.identity.as_str(), code = ?e.code, "platform: {}", e.message);
            return;
        };
        if let Some(tx) = self.calls.lock().remove(&id) {
            let _ = tx.send(Err(match e.code {
                ErrorCode::Unauthorized => RpcError::Unauthorized {
                    method: String::new(),
                    message: e.message,
                },
                _ => RpcError::Remote {
                    method: String::new(),
                    message: e.message,
                    kind: "bridge".into(),
                },
            }));
            return;
        }
        if self.pings.lock().remove(&id).is_some() {
            return;
        }
        if let Some(tx) = self.publishes.lock().remove(&id) {
            // The platform sends its own error's text, "cannot publish: ...".
            let message = e.message.strip_prefix("cannot publish: ").unwrap_or(&e.message);
            let _ = tx.send(Err(PublishError::Unauthorized(message.to_owned())));
            return;
        }
        if let Ok(sub) = u32::try_from(id)
            && let Some(s) = self.subs.lock().remove(&sub)
        {
            tracing::error!(
                identity = self.identity.as_str(),
                subscription = s.prefix,
                "the platform refused a subscription: {}",
                e.message
            );
            // Gone locally too: the agent's subscriptions are what the platform holds.
            if let Some(router) = self.router.upgrade()
                && let Some(peer) = router.peer_number(self.identity.as_str())
            {
                router.unsubscribe_id(peer, &s.bus, &s.prefix, sub);
            }
            if let Some(tx) = self.sub_waiters.lock().remove(&sub) {
                let message = e.message.strip_prefix("cannot subscribe: ").unwrap_or(&e.message);
                let _ = tx.send(Err(ContextError::Unauthorized(message.to_owned())));
            }
            return;
        }
        tracing::warn!(identity = self.identity.as_str(), code = ?e.code, "platform: {}", e.message);
    }
}

fn subscribe_frame(id: u32, sub: &SubRecord) -> Frame {
    Frame::Subscribe(Subscribe {
        id: u64::from(id),
        bus: sub.bus.clone(),
        prefix: sub.prefix.clone(),
        overflow: Some(sub.overflow.into()),
        all_platforms: sub.all_platforms,
    })
}
