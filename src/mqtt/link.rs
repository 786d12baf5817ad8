//! The federation's one MQTT 5 connection: its event loop (on the platform's edge
//! thread), what arrives on it, and the calls waiting for replies.
//!
//! | arrives | what the link does |
//! |---------|--------------------|
//! | a status of another platform | records it; a platform that left fails the calls waiting on it with [`RpcError::Unreachable`] |
//! | a publication of another platform | checks allow list, import prefixes, size, origin, `authz.json` (as `<platform>.<sender>`), dedup; then delivers it to this platform's `all_platforms` subscriptions |
//! | a call for this platform | calls the agent as `<platform>.<sender>` (so `authz.json` applies) within the caller's deadline; replies on the response topic |
//! | a reply | completes the waiting call |
//! | a plain MQTT message of an import rule | publishes it on the bus |
//! | anything malformed, oversized or spoofed | dropped with a log line, counted |
//!
//! When the connection drops, calls in flight fail with [`RpcError::Unreachable`], new
//! publications go to the backlog, and the link reconnects with a backoff of 0.1 s
//! doubling to 5 s (rumqttc has none). On reconnection it subscribes again (rumqttc does
//! not) unless the broker kept the session, announces itself, and replays the backlog.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use tokio::sync::oneshot;

use crate::core::{Identity, Publication, RpcError, Topic, Value};
use crate::mqtt::bridging;
use crate::mqtt::config::FederationConfig;
use crate::mqtt::dedup::Dedup;
use crate::mqtt::directory::{Change, Directory};
use crate::mqtt::outbox::{Message, Outbox};
use crate::mqtt::topics::{self, FederationTopic};
use crate::mqtt::wire::{self, CallRequest, Status};
use crate::platform::endpoint::Endpoint;
use crate::platform::external::{ExternalCall, ExternalPlatforms};
use crate::platform::router::RemoteInterest;

/// The name other platforms know a local sender by: its identity, but `vctl`'s for every
/// `vctl` (`control.connection.<pid>` is a second one holding the same key).
fn federated_name(identity: &str) -> &str {
    if crate::services::control::is_control_connection(identity) {
        crate::services::control::CONTROL_CONNECTION
    } else {
        identity
    }
}

/// A call sent to another platform, waiting for its reply.
struct PendingCall {
    platform: String,
    method: String,
    reply: oneshot::Sender<Result<Value, RpcError>>,
    deadline: Instant,
}

/// What the link counts.
#[derive(Default)]
pub(crate) struct LinkCounters {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) calls_sent: AtomicU64,
    pub(crate) calls_served: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

/// The link, shared by its event loop, the `platform.federation` agent and the routing
/// table (as [`ExternalPlatforms`]).
pub(crate) struct Link {
    pub(crate) me: String,
    pub(crate) boot: u64,
    pub(crate) config: FederationConfig,
    client: AsyncClient,
    pub(crate) outbox: Outbox,
    endpoint: Endpoint,
    connected: AtomicBool,
    seq: AtomicU64,
    directory: Mutex<Directory>,
    calls: Mutex<HashMap<u64, PendingCall>>,
    next_call: AtomicU64,
    dedup: Mutex<Dedup>,
    /// The MQTT filters subscribed now.
    filters: Mutex<BTreeSet<String>>,
    pub(crate) counters: LinkCounters,
}

impl Link {
    pub(crate) fn new(
        me: String,
        config: FederationConfig,
        client: AsyncClient,
        outbox: Outbox,
        endpoint: Endpoint,
    ) -> Link {
        let boot = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(1);
        Link {
            me,
            boot,
            config,
            client,
            outbox,
            endpoint,
            connected: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            directory: Mutex::new(Directory::default()),
            calls: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
            dedup: Mutex::new(Dedup::default()),
            filters: Mutex::new(BTreeSet::new()),
            counters: LinkCounters::default(),
        }
    }

    /// Whether the broker connection is up.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The platforms seen, for `list_platforms`.
    pub(crate) fn platforms(&self) -> Value {
        self.directory.lock().listing()
    }

    /// This platform's status message.
    pub(crate) fn status_payload(&self, online: bool) -> Vec<u8> {
        wire::status(
            &self.me,
            &Status {
                online,
                boot: self.boot,
                version: crate::platform::endpoint::PLATFORM_VERSION.into(),
                exports: self.config.export.clone(),
            },
        )
    }

    /// Sends a publication of this platform's bus that the federation or a plain MQTT
    /// rule exports (called by the `platform.federation` agent).
    pub(crate) fn export(&self, p: &Publication) {
        let topic = p.topic.as_str();
        // Only the default bus federates.
        if !p.bus.is_empty() {
            return;
        }
        if !topics::publishable(topic) {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                topic,
                "federation: a topic with MQTT wildcard characters is not exported"
            );
            return;
        }
        if self.config.exports(topic) {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
            let out = wire::publication(
                &self.me,
                self.boot,
                seq,
                federated_name(p.sender.as_str()),
                &p.headers,
                &p.message,
            );
            if out.payload.len() > self.config.max_message_bytes {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    topic,
                    len = out.payload.len(),
                    "federation: publication above max-message-bytes not exported"
                );
            } else {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                self.outbox.send(
                    topic,
                    Message {
                        topic: topics::pubsub(&self.me, topic),
                        payload: out.payload,
                        properties: out.properties,
                        qos: QoS::AtLeastOnce,
                        retain: false,
                    },
                );
            }
        }
        for rule in &self.config.mqtt_export {
            if let Some(mqtt_topic) = rule.mqtt_topic(topic) {
                self.outbox.send(
                    topic,
                    Message {
                        topic: mqtt_topic,
                        payload: rule.payload_of(&p.message),
                        properties: Vec::new(),
                        qos: bridging::qos(rule.qos),
                        retain: rule.retain,
                    },
                );
            }
        }
    }

    /// The MQTT filters this platform needs: statuses, calls and replies for it, the
    /// `all_platforms` subscriptions' levels, the import rules.
    fn wanted_filters(&self, interest: &RemoteInterest) -> BTreeSet<String> {
        let mut f = topics::filters(
            interest
                .iter()
                .filter(|(bus, _)| bus.is_empty())
                .map(|(_, prefix)| prefix.as_str()),
        );
        f.insert(format!("{}/+/status", topics::ROOT));
        f.insert(format!("{}/+/rpc/{}", topics::ROOT, self.me));
        f.insert(format!("{}/+/reply/{}", topics::ROOT, self.me));
        for rule in &self.config.mqtt_import {
            f.insert(rule.filter.clone());
        }
        f
    }

    /// Subscribes to what `interest` needs and unsubscribes what it no longer does; with
    /// `all`, subscribes to everything again (a new session).
    fn update_filters(&self, interest: &RemoteInterest, all: bool) {
        let wanted = self.wanted_filters(interest);
        let mut current = self.filters.lock();
        let add: Vec<Filter> = wanted
            .iter()
            .filter(|f| all || !current.contains(*f))
            .map(|f| {
                let mut filter = Filter::new(f.clone(), QoS::AtLeastOnce);
                filter.nolocal = true;
                filter
            })
            .collect();
        let remove: Vec<String> = current.difference(&wanted).cloned().collect();
        if !add.is_empty() && self.client.try_subscribe_many(add).is_err() {
            tracing::warn!("federation: subscribe request not queued; retried on reconnection");
        }
        for f in remove {
            let _ = self.client.try_unsubscribe(f);
        }
        *current = wanted;
    }

    fn refuse(&self, topic: &str, why: impl std::fmt::Display) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(topic, "federation: dropped a message from the broker: {why}");
    }

    /// Handles one message from the broker (see the module docs).
    fn on_publish(self: &Arc<Self>, p: Publish) {
        let Ok(topic) = std::str::from_utf8(&p.topic) else {
            return self.refuse("?", "topic is not UTF-8");
        };
        let props = p.properties.as_ref();
        let user: &[(String, String)] = props.map_or(&[], |pr| pr.user_properties.as_slice());
        let max = self.config.max_message_bytes;
        match topics::parse(topic) {
            Some(FederationTopic::Status { platform }) => {
                if platform == self.me {
                    return;
                }
                match wire::parse_status(platform, &p.payload, max) {
                    Ok(status) => self.status_changed(platform, status),
                    Err(e) => self.refuse(topic, e),
                }
            }
            Some(FederationTopic::PubSub {
                platform,
                topic: bus_topic,
            }) => {
                if platform == self.me {
                    return; // never loops back
                }
                if !self.config.allows(platform) {
                    return self.refuse(topic, format!("platform {platform:?} is not allowed"));
                }
                if !self.config.imports(bus_topic) {
                    return self.refuse(topic, "not under an imported prefix");
                }
                let incoming = match wire::parse_publication(platform, &p.payload, user, max) {
                    Ok(i) => i,
                    Err(e) => return self.refuse(topic, e),
                };
                let Ok(bus_topic) = Topic::new(bus_topic) else {
                    return self.refuse(topic, "not a valid VOLTTRON topic");
                };
                let Ok(sender) = Identity::new(format!("{platform}.{}", incoming.sender)) else {
                    return self.refuse(topic, "sender name too long");
                };
                if let Some((boot, seq)) = incoming.number
                    && !self.dedup.lock().fresh(platform, boot, seq)
                {
                    self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if let Some(auth) = self.endpoint.router.auth.get()
                    && let Err(e) = auth.check_publish(&sender, bus_topic.as_str())
                {
                    self.endpoint.router.refused();
                    return self.refuse(topic, e);
                }
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                self.endpoint.router.publish_remote(Publication {
                    sender,
                    bus: String::new(),
                    topic: bus_topic,
                    headers: incoming.headers,
                    message: incoming.message,
                    origin: Some(platform.to_owned()),
                });
            }
            Some(FederationTopic::Rpc { from, to }) => {
                if to != self.me || from == self.me {
                    return;
                }
                if !self.config.allows(from) {
                    return self.refuse(topic, format!("platform {from:?} is not allowed"));
                }
                let response = props.and_then(|pr| pr.response_topic.clone());
                let correlation = props.and_then(|pr| pr.correlation_data.clone());
                let (Some(response), Some(correlation)) = (response, correlation) else {
                    return self.refuse(topic, "a call without response topic or correlation data");
                };
                if response != topics::reply(&self.me, from) {
                    return self.refuse(
                        topic,
                        format!("response topic {response:?} is not this platform's reply topic"),
                    );
                }
                match wire::parse_call(&p.payload, max) {
                    Ok(call) => self.serve(from, call, wire::trace_of(user), response, correlation.to_vec()),
                    Err(e) => self.refuse(topic, e),
                }
            }
            Some(FederationTopic::Reply { from, to }) => {
                if to != self.me {
                    return;
                }
                let id = props
                    .and_then(|pr| pr.correlation_data.as_ref())
                    .and_then(|c| <[u8; 8]>::try_from(c.as_ref()).ok())
                    .map(u64::from_be_bytes);
                let Some(id) = id else {
                    return self.refuse(topic, "a reply without correlation data");
                };
                let pending = {
                    let mut calls = self.calls.lock();
                    match calls.get(&id) {
                        Some(c) if c.platform == from => calls.remove(&id),
                        _ => None,
                    }
                };
                let Some(pending) = pending else {
                    return; // its caller gave up, or a spoof
                };
                match wire::parse_reply(&p.payload, &pending.method, max) {
                    Ok(result) => {
                        let _ = pending.reply.send(result);
                    }
                    Err(e) => {
                        let _ = pending.reply.send(Err(RpcError::Remote {
                            method: pending.method.clone(),
                            message: format!("malformed reply from platform {from:?}: {e}"),
                            kind: "federation".into(),
                        }));
                        self.refuse(topic, e);
                    }
                }
            }
            None => self.on_plain(topic, &p.payload),
        }
    }

    /// A message of an import rule: published on the bus.
    fn on_plain(&self, topic: &str, payload: &[u8]) {
        let Some(rule) = self
            .config
            .mqtt_import
            .iter()
            .find(|r| r.bus_topic(topic).is_some())
        else {
            return;
        };
        if payload.len() > self.config.max_message_bytes {
            return self.refuse(topic, "above max-message-bytes");
        }
        let Some(bus_topic) = rule.bus_topic(topic).and_then(|t| Topic::new(t).ok()) else {
            return self.refuse(topic, "maps to no valid bus topic");
        };
        let Some(value) = rule.value_of(payload) else {
            return self.refuse(topic, "payload is neither JSON nor UTF-8 text");
        };
        let mut headers = crate::core::Headers::new();
        headers.insert("mqtt-topic".into(), Value::from(topic));
        let _ = self.endpoint.publish("", bus_topic, headers, value);
    }

    fn status_changed(&self, platform: &str, status: Option<Status>) {
        let change = self.directory.lock().update(platform, status);
        match change {
            Change::Joined => tracing::info!(platform, "federation: platform joined"),
            Change::Restarted => tracing::info!(platform, "federation: platform restarted"),
            Change::Left => {
                tracing::info!(platform, "federation: platform left");
                self.fail_calls(
                    |c| c.platform == platform,
                    &format!("platform {platform:?} left the federation"),
                );
            }
            Change::Unchanged => {}
        }
    }

    fn fail_calls(&self, which: impl Fn(&PendingCall) -> bool, reason: &str) {
        let failed: Vec<PendingCall> = {
            let mut calls = self.calls.lock();
            let ids: Vec<u64> = calls
                .iter()
                .filter(|(_, c)| which(c))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter().filter_map(|id| calls.remove(&id)).collect()
        };
        for c in failed {
            let _ = c.reply.send(Err(RpcError::Unreachable {
                platform: c.platform,
                reason: reason.to_owned(),
            }));
        }
    }

    /// Answers a call from `from` (see the module docs).
    fn serve(
        self: &Arc<Self>,
        from: &str,
        call: CallRequest,
        trace: Option<crate::core::TraceContext>,
        response: String,
        correlation: Vec<u8>,
    ) {
        self.counters.calls_served.fetch_add(1, Ordering::Relaxed);
        let timeout = Duration::from_millis(call.timeout_ms.clamp(1, 3_600_000));
        let caller = Identity::new(format!("{from}.{}", call.sender));
        let link = self.clone();
        let send = move |result: Result<Value, RpcError>| {
            let message = Message {
                topic: response,
                payload: wire::reply(&result),
                properties: Vec::new(),
                qos: QoS::AtMostOnce,
                retain: false,
            };
            let topic = message.topic.clone();
            if !link.outbox.send_now(message, Some((topic, correlation))) {
                tracing::warn!("federation: a reply was not queued (the client's queue is full)");
            }
        };
        let Ok(caller) = caller else {
            return send(Err(RpcError::InvalidParams {
                method: call.method,
                message: "caller name too long".into(),
            }));
        };
        let endpoint = Endpoint {
            identity: caller,
            trusted: false,
            ..self.endpoint.clone()
        };
        let reply = endpoint
            .call(&call.peer, &call.method, call.args)
            .timeout(timeout)
            .trace(trace)
            .into_future();
        tokio::spawn(async move { send(reply.await) });
    }

    /// Drops calls whose callers gave up (their deadline passed).
    fn sweep(&self) {
        let now = Instant::now();
        self.calls
            .lock()
            .retain(|_, c| !c.reply.is_closed() && c.deadline + Duration::from_secs(1) > now);
    }

    /// Runs the connection until `stop` fires; then announces this platform offline and
    /// disconnects.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut events: EventLoop,
        mut interest: tokio::sync::watch::Receiver<RemoteInterest>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = events.poll() => match event {
                    Ok(event) => {
                        backoff = Duration::from_millis(100);
                        self.on_event(event, &interest);
                    }
                    Err(e) => {
                        if self.connected.swap(false, Ordering::AcqRel) {
                            tracing::warn!(broker = %self.config.broker, "federation: broker connection lost: {e}");
                            self.outbox.disconnected();
                            self.fail_calls(|_| true, "the connection to the broker was lost");
                        } else {
                            tracing::debug!(broker = %self.config.broker, "federation: broker not reachable: {e}");
                        }
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            _ = &mut stop => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                },
                changed = interest.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = interest.borrow_and_update().clone();
                    if self.is_connected() {
                        self.update_filters(&now, false);
                    }
                }
                _ = tick.tick() => self.sweep(),
                _ = &mut stop => break,
            }
        }
        self.shut_down(events).await;
    }

    fn on_event(self: &Arc<Self>, event: Event, interest: &tokio::sync::watch::Receiver<RemoteInterest>) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    broker = %self.config.broker,
                    session_present = ack.session_present,
                    "federation: connected to the broker"
                );
                self.outbox.connected(ack.session_present);
                self.connected.store(true, Ordering::Release);
                let now = interest.borrow().clone();
                self.update_filters(&now, !ack.session_present);
                let announce = Message {
                    topic: topics::status(&self.me),
                    payload: self.status_payload(true),
                    properties: Vec::new(),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                };
                self.outbox.send_now(announce, None);
                let link = self.clone();
                tokio::spawn(async move {
                    let l = link.clone();
                    link.outbox.replay(move || l.is_connected()).await;
                });
            }
            Event::Incoming(Packet::Publish(p)) => self.on_publish(p),
            Event::Incoming(Packet::PubAck(ack)) => self.outbox.acknowledged(ack.pkid),
            Event::Outgoing(Outgoing::Publish(pkid)) => self.outbox.published(pkid),
            _ => {}
        }
    }

    async fn shut_down(&self, mut events: EventLoop) {
        if !self.is_connected() {
            return;
        }
        let offline = Message {
            topic: topics::status(&self.me),
            payload: self.status_payload(false),
            properties: Vec::new(),
            qos: QoS::AtLeastOnce,
            retain: true,
        };
        self.outbox.send_now(offline, None);
        let _ = self.client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        self.connected.store(false, Ordering::Release);
        self.fail_calls(|_| true, "this platform is shutting down");
    }
}

impl ExternalPlatforms for Arc<Link> {
    fn call(
        &self,
        platform: &str,
        call: ExternalCall,
    ) -> Result<oneshot::Receiver<Result<Value, RpcError>>, RpcError> {
        let unreachable = |reason: &str| RpcError::Unreachable {
            platform: platform.to_owned(),
            reason: reason.to_owned(),
        };
        if !self.config.allows(platform) {
            return Err(unreachable("not on this platform's allow list"));
        }
        if !self.is_connected() {
            return Err(unreachable("the broker is not reachable from this platform"));
        }
        if !self.directory.lock().online(platform) {
            return Err(unreachable("it is not online in the federation"));
        }
        let request = CallRequest {
            sender: federated_name(call.sender.as_str()).to_owned(),
            peer: call.peer,
            method: call.method.clone(),
            args: call.args,
            timeout_ms: u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let (payload, properties) = wire::call(&request, call.trace.as_ref());
        if payload.len() > self.config.max_message_bytes {
            return Err(RpcError::InvalidParams {
                method: call.method,
                message: format!(
                    "the request is {} bytes, above max-message-bytes ({})",
                    payload.len(),
                    self.config.max_message_bytes
                ),
            });
        }
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.calls.lock().insert(
            id,
            PendingCall {
                platform: platform.to_owned(),
                method: call.method,
                reply: tx,
                deadline: Instant::now() + call.timeout,
            },
        );
        let message = Message {
            topic: topics::rpc(&self.me, platform),
            payload,
            properties,
            qos: QoS::AtMostOnce,
            retain: false,
        };
        let response = (topics::reply(platform, &self.me), id.to_be_bytes().to_vec());
        if !self.outbox.send_now(message, Some(response)) {
            self.calls.lock().remove(&id);
            return Err(unreachable("the link to the broker is congested"));
        }
        self.counters.calls_sent.fetch_add(1, Ordering::Relaxed);
        Ok(rx)
    }
}
