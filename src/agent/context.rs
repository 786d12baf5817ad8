//! [`AgentContext`]: an agent's connection to the platform.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::agent::cron::{CronError, CronSchedule};
use crate::agent::heartbeat::HeartbeatState;
use crate::agent::{Agent, descriptor::AgentDescriptor};
use crate::core::{
    Headers, Health, Identity, IntoArgs, Map, Publication, RpcError, Status, Topic, TopicError, Value,
};
use crate::platform::backpressure::OverflowPolicy;
use crate::platform::clock::{Clock, Repeat, TimerId};
use crate::platform::endpoint::{Endpoint, RpcCall, SubscribeError};
use crate::platform::mailbox::Mailbox;

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic is not valid.
    #[error("cannot publish: {0}")]
    InvalidTopic(#[from] TopicError),
    /// `authz.json` protects the topic and this agent lacks the capability.
    #[error("cannot publish: {0}")]
    Unauthorized(String),
    /// The agent is attached through the bridge and its link to the platform is down
    /// (it is reconnecting).
    #[error("cannot publish: not connected to the platform")]
    NotConnected,
    /// The agent is attached through the bridge and more than the link's limit of
    /// unsent bytes is waiting: the platform, or the network, is not keeping up.
    #[error("cannot publish: {queued} bytes are already waiting to be sent to the platform")]
    LinkFull {
        /// Bytes waiting.
        queued: usize,
    },
}

/// The platform's answer to a confirmed subscription of a bridged agent.
type SubscriptionAnswer = tokio::sync::oneshot::Receiver<Result<(), ContextError>>;

/// Why a run-time subscription or timer was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The prefix or pattern is not valid.
    #[error("cannot subscribe: {0}")]
    InvalidSubscription(#[from] TopicError),
    /// The cron expression is not valid.
    #[error("cannot schedule: {0}")]
    InvalidCron(#[from] CronError),
    /// The handler is for another agent type than the one this context belongs to.
    #[error("the handler is for agent type `{expected}`, but this context belongs to `{actual}`")]
    WrongAgentType {
        /// The type the handler takes.
        expected: &'static str,
        /// This context's agent type.
        actual: &'static str,
    },
    /// The agent has stopped.
    #[error("the agent has stopped")]
    Stopped,
    /// The agent is attached through the bridge and its link dropped before the platform
    /// answered a confirmed subscription (it is sent again on reconnection).
    #[error("cannot confirm the subscription: not connected to the platform")]
    NotConnected,
    /// `authz.json` protects topics the subscription could receive, and this agent
    /// lacks the capability.
    #[error("cannot subscribe: {0}")]
    Unauthorized(String),
}

/// Anything that names a topic: a [`Topic`] (already valid) or a string (validated).
pub trait IntoTopic {
    /// Validates and converts.
    fn into_topic(self) -> Result<Topic, TopicError>;
}

impl IntoTopic for Topic {
    fn into_topic(self) -> Result<Topic, TopicError> {
        Ok(self)
    }
}

impl IntoTopic for &Topic {
    fn into_topic(self) -> Result<Topic, TopicError> {
        Ok(self.clone())
    }
}

impl IntoTopic for &str {
    fn into_topic(self) -> Result<Topic, TopicError> {
        Topic::new(self)
    }
}

impl IntoTopic for String {
    fn into_topic(self) -> Result<Topic, TopicError> {
        Topic::new(self)
    }
}

impl IntoTopic for &String {
    fn into_topic(self) -> Result<Topic, TopicError> {
        Topic::new(self)
    }
}

pub(crate) type DynPublicationHandler<A> = Box<dyn FnMut(&mut A, &AgentContext, &Publication) + Send>;
pub(crate) type DynTimerHandler<A> = Box<dyn FnMut(&mut A, &AgentContext) + Send>;

/// What a subscription id leads to.
pub(crate) enum SubscriptionHandler {
    /// The `n`th `#[subscribe]`.
    Static(usize),
    /// A run-time subscription: a boxed `DynPublicationHandler<A>` (`None` while running).
    Dynamic(Option<Box<dyn Any + Send>>),
}

/// What a timer id leads to.
pub(crate) enum TimerHandler {
    Periodic(usize),
    Cron(usize),
    /// The built-in heartbeat.
    Heartbeat,
    /// A boxed `DynTimerHandler<A>`.
    Dynamic(Box<dyn Any + Send>),
}

pub(crate) struct TimerRecord {
    pub(crate) handler: Option<TimerHandler>,
    pub(crate) busy: Arc<AtomicBool>,
    pub(crate) once: bool,
}

#[derive(Default)]
pub(crate) struct Registry {
    /// Indexed by subscription id; `None` once unsubscribed.
    pub(crate) subscriptions: Vec<Option<SubscriptionHandler>>,
    pub(crate) timers: HashMap<TimerId, TimerRecord>,
    pub(crate) stopped: bool,
}

pub(crate) struct ContextInner {
    pub(crate) endpoint: Endpoint,
    pub(crate) peer_id: u64,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) agent_type: TypeId,
    pub(crate) descriptor: &'static AgentDescriptor,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) stop: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Shared with the platform's record of this identity.
    pub(crate) health: Arc<Mutex<Health>>,
    pub(crate) heartbeat: Mutex<HeartbeatState>,
    /// Configuration defaults, by lower-case name: (name as given, contents).
    pub(crate) config_defaults: Mutex<std::collections::BTreeMap<String, (String, Value)>>,
}

/// An agent's connection to the platform, handed to every handler.
///
/// Cheap to clone; clones may be moved into spawned tasks. Everything it offers works the
/// same whether the agent runs in the platform's process or (later) over the socket bridge.
#[derive(Clone)]
pub struct AgentContext {
    pub(crate) inner: Arc<ContextInner>,
}

impl AgentContext {
    /// This agent's identity.
    pub fn identity(&self) -> &Identity {
        &self.inner.endpoint.identity
    }

    /// Publishes `message` on `topic` (default bus, no headers); returns how many
    /// subscribers it reached. Reaching nobody is fine (0).
    pub fn publish(&self, topic: impl IntoTopic, message: impl Into<Value>) -> Result<usize, PublishError> {
        self.publish_on("", topic, Headers::new(), message)
    }

    /// Publishes with headers on the default bus.
    pub fn publish_with(
        &self,
        topic: impl IntoTopic,
        headers: Headers,
        message: impl Into<Value>,
    ) -> Result<usize, PublishError> {
        self.publish_on("", topic, headers, message)
    }

    /// Publishes with headers on `bus`.
    pub fn publish_on(
        &self,
        bus: &str,
        topic: impl IntoTopic,
        headers: Headers,
        message: impl Into<Value>,
    ) -> Result<usize, PublishError> {
        let topic = topic.into_topic()?;
        self.inner.endpoint.publish(bus, topic, headers, message.into())
    }

    /// Publishes and waits for the platform's answer: how many subscribers the
    /// publication reached, or why it was refused. In-process this is [`publish`]
    /// (answered at once); an agent attached through the bridge, whose `publish` returns
    /// `Ok(0)` as soon as the publication is queued, gets the platform's count, or
    /// [`PublishError::Unauthorized`] for a topic `authz.json` protects, after a round
    /// trip ([`PublishError::NotConnected`] if the link drops first).
    ///
    /// [`publish`]: Self::publish
    pub fn publish_confirmed(
        &self,
        topic: impl IntoTopic,
        message: impl Into<Value>,
    ) -> impl std::future::Future<Output = Result<usize, PublishError>> + Send + 'static {
        self.publish_confirmed_on("", topic, Headers::new(), message)
    }

    /// [`publish_confirmed`](Self::publish_confirmed) with headers on `bus`.
    pub fn publish_confirmed_on(
        &self,
        bus: &str,
        topic: impl IntoTopic,
        headers: Headers,
        message: impl Into<Value>,
    ) -> impl std::future::Future<Output = Result<usize, PublishError>> + Send + 'static {
        let pending = topic.into_topic().map_err(PublishError::from).map(|topic| {
            self.inner
                .endpoint
                .publish_confirmed(bus, topic, headers, message.into())
        });
        async move {
            match pending {
                Ok(answer) => answer.await,
                Err(e) => Err(e),
            }
        }
    }

    /// Subscribes at run time, on the default bus: `handler` runs for every publication
    /// whose topic starts with `prefix` (or matches it, for an MQTT-style pattern).
    ///
    /// `A` must be this context's agent type.
    pub fn subscribe<A: Agent>(
        &self,
        prefix: &str,
        handler: impl FnMut(&mut A, &AgentContext, &Publication) + Send + 'static,
    ) -> Result<(), ContextError> {
        self.subscribe_on("", prefix, handler)
    }

    /// Subscribes at run time on `bus`.
    pub fn subscribe_on<A: Agent>(
        &self,
        bus: &str,
        prefix: &str,
        handler: impl FnMut(&mut A, &AgentContext, &Publication) + Send + 'static,
    ) -> Result<(), ContextError> {
        self.subscribe_with(bus, prefix, OverflowPolicy::default(), handler)
    }

    /// Subscribes at run time on `bus` with an explicit overflow policy (what happens to a
    /// publication that finds this agent's mailbox full).
    pub fn subscribe_with<A: Agent>(
        &self,
        bus: &str,
        prefix: &str,
        overflow: OverflowPolicy,
        handler: impl FnMut(&mut A, &AgentContext, &Publication) + Send + 'static,
    ) -> Result<(), ContextError> {
        self.check_type::<A>()?;
        let boxed: DynPublicationHandler<A> = Box::new(handler);
        self.add_subscription(
            bus,
            prefix,
            overflow,
            false,
            SubscriptionHandler::Dynamic(Some(Box::new(boxed))),
        )
    }

    /// Subscribes at run time to `prefix` on the default bus of this platform **and of
    /// every platform federated with it** (VOLTTRON's `subscribe(.., all_platforms=True)`;
    /// the macro's `#[subscribe("devices/", all_platforms = true)]`). A publication from
    /// another platform carries its instance name in [`Publication::origin`]. Without a
    /// federation it receives this platform's publications only.
    pub fn subscribe_all_platforms<A: Agent>(
        &self,
        prefix: &str,
        handler: impl FnMut(&mut A, &AgentContext, &Publication) + Send + 'static,
    ) -> Result<(), ContextError> {
        self.check_type::<A>()?;
        let boxed: DynPublicationHandler<A> = Box::new(handler);
        self.add_subscription(
            "",
            prefix,
            OverflowPolicy::default(),
            true,
            SubscriptionHandler::Dynamic(Some(Box::new(boxed))),
        )
    }

    /// [`subscribe`](Self::subscribe), answered by the platform. In-process the answer is
    /// at once (as `subscribe`'s). An agent attached through the bridge, whose `subscribe`
    /// returns as soon as the subscription is recorded, waits for the platform:
    /// [`ContextError::Unauthorized`] when `authz.json` protects topics it could receive
    /// (it is then removed here too), [`ContextError::NotConnected`] if the link drops
    /// first (it is sent again on reconnection).
    pub fn subscribe_confirmed<A: Agent>(
        &self,
        prefix: &str,
        handler: impl FnMut(&mut A, &AgentContext, &Publication) + Send + 'static,
    ) -> impl std::future::Future<Output = Result<(), ContextError>> + Send + 'static {
        self.subscribe_confirmed_on("", prefix, handler)
    }

    /// [`subscribe_confirmed`](Self::subscribe_confirmed) on `bus`.
    pub fn subscribe_confirmed_on<A: Agent>(
        &self,
        bus: &str,
        prefix: &str,
        handler: impl FnMut(&mut A, &AgentContext, &Publication) + Send + 'static,
    ) -> impl std::future::Future<Output = Result<(), ContextError>> + Send + 'static {
        let pending = self.check_type::<A>().and_then(|()| {
            let boxed: DynPublicationHandler<A> = Box::new(handler);
            self.register_subscription(
                bus,
                prefix,
                OverflowPolicy::default(),
                false,
                SubscriptionHandler::Dynamic(Some(Box::new(boxed))),
                true,
            )
        });
        async move {
            match pending? {
                None => Ok(()),
                Some(answer) => answer.await.unwrap_or(Err(ContextError::NotConnected)),
            }
        }
    }

    pub(crate) fn add_subscription(
        &self,
        bus: &str,
        prefix: &str,
        overflow: OverflowPolicy,
        all_platforms: bool,
        handler: SubscriptionHandler,
    ) -> Result<(), ContextError> {
        self.register_subscription(bus, prefix, overflow, all_platforms, handler, false)
            .map(|_| ())
    }

    /// Records a subscription; with `confirm`, for an agent attached through the bridge,
    /// also the wait for the platform's answer.
    fn register_subscription(
        &self,
        bus: &str,
        prefix: &str,
        overflow: OverflowPolicy,
        all_platforms: bool,
        handler: SubscriptionHandler,
        confirm: bool,
    ) -> Result<Option<SubscriptionAnswer>, ContextError> {
        crate::core::topic::classify_subscription(prefix)?;
        let mut reg = self.inner.registry.lock();
        if reg.stopped {
            return Err(ContextError::Stopped);
        }
        let id = reg.subscriptions.len() as u32;
        let upstream = self.inner.endpoint.router.upstream.get().filter(|_| confirm);
        // Waiting before the subscription goes out: the answer cannot come first.
        let answer = upstream.map(|up| up.await_subscription(id));
        self.inner
            .endpoint
            .subscribe(
                self.inner.peer_id,
                &self.inner.mailbox,
                bus,
                prefix,
                id,
                overflow,
                all_platforms,
            )
            .map_err(|e| {
                if let Some(up) = upstream {
                    up.forget_subscription_wait(id);
                }
                match e {
                    SubscribeError::Topic(e) => ContextError::InvalidSubscription(e),
                    SubscribeError::Unauthorized(message) => ContextError::Unauthorized(message),
                }
            })?;
        reg.subscriptions.push(Some(handler));
        Ok(answer)
    }

    /// Removes this agent's subscriptions to exactly `prefix` on the default bus (static
    /// and run-time ones alike); returns how many were removed.
    pub fn unsubscribe(&self, prefix: &str) -> usize {
        self.remove_subscriptions(Some(""), Some(prefix))
    }

    /// Removes every subscription of this agent, on every bus; returns how many.
    pub fn unsubscribe_all(&self) -> usize {
        self.remove_subscriptions(None, None)
    }

    fn remove_subscriptions(&self, bus: Option<&str>, prefix: Option<&str>) -> usize {
        let mut reg = self.inner.registry.lock();
        let removed = self.inner.endpoint.unsubscribe(self.inner.peer_id, bus, prefix);
        for id in &removed {
            if let Some(slot) = reg.subscriptions.get_mut(*id as usize) {
                *slot = None;
            }
        }
        removed.len()
    }

    /// This agent's subscriptions as `(bus, prefix)`, sorted.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.inner.endpoint.router.peer_subscriptions(self.inner.peer_id)
    }

    /// Prepares an RPC call to `method` on `peer`; `.await` it for the reply.
    /// The deadline defaults to the platform's (30 s); set another with `.timeout(..)`.
    pub fn call(&self, peer: &str, method: &str, args: impl IntoArgs) -> RpcCall {
        self.inner.endpoint.call(peer, method, args)
    }

    /// Sends an RPC notification: no reply, errors in the handler are only logged.
    pub fn notify(&self, peer: &str, method: &str, args: impl IntoArgs) -> Result<(), RpcError> {
        self.inner.endpoint.notify(peer, method, args)
    }

    /// Checks that `peer` is alive and handling messages.
    pub async fn ping(&self, peer: &str) -> Result<(), RpcError> {
        self.inner.endpoint.ping(peer).await
    }

    /// The identities of every connected peer, sorted (VOLTTRON's `peerlist.list()`).
    pub fn peers(&self) -> Vec<Identity> {
        self.inner.endpoint.router.peers()
    }

    /// A platform fact: `instance-name`, `platform-version`, `addresses`, `local_address`,
    /// `message-bus`, `serverkey`. Unknown keys give `None`, as VOLTTRON's router does.
    pub fn query(&self, key: &str) -> Option<Value> {
        self.inner.endpoint.query(key)
    }

    /// The platform clock's current time (UTC).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.endpoint.clock.now()
    }

    /// The platform clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.endpoint.clock
    }

    /// Sleeps `duration` on the platform clock, for a task the agent spawned; on a test
    /// platform the task's work after waking counts as in flight (for `advance`/`settle`)
    /// until it drops the guard, so a virtual-clock test sees it finish before time moves on.
    #[cfg_attr(
        not(feature = "driver"),
        allow(dead_code, reason = "the driver's device tasks use it")
    )]
    pub(crate) async fn sleep_as_work(
        &self,
        duration: Duration,
    ) -> Option<crate::platform::mailbox::ActivityGuard> {
        let activity = self.inner.endpoint.router.activity.clone();
        self.clock().sleep_as_work(duration, activity).await
    }

    /// Runs `handler` once after `delay`.
    pub fn schedule_once<A: Agent>(
        &self,
        delay: Duration,
        handler: impl FnMut(&mut A, &AgentContext) + Send + 'static,
    ) -> Result<TimerId, ContextError> {
        self.add_dynamic_timer(delay, Repeat::Once, handler)
    }

    /// Runs `handler` once at `when` (immediately if it has passed).
    pub fn schedule_at<A: Agent>(
        &self,
        when: DateTime<Utc>,
        handler: impl FnMut(&mut A, &AgentContext) + Send + 'static,
    ) -> Result<TimerId, ContextError> {
        let delay = (when - self.now()).to_std().unwrap_or(Duration::ZERO);
        self.add_dynamic_timer(delay, Repeat::Once, handler)
    }

    /// Runs `handler` every `period`, first after one period. Missed runs are skipped.
    pub fn schedule_every<A: Agent>(
        &self,
        period: Duration,
        handler: impl FnMut(&mut A, &AgentContext) + Send + 'static,
    ) -> Result<TimerId, ContextError> {
        self.add_dynamic_timer(
            period,
            Repeat::Every(period.max(Duration::from_nanos(1))),
            handler,
        )
    }

    /// Runs `handler` at each minute matching the cron expression (UTC).
    pub fn schedule_cron<A: Agent>(
        &self,
        expression: &str,
        handler: impl FnMut(&mut A, &AgentContext) + Send + 'static,
    ) -> Result<TimerId, ContextError> {
        let schedule = CronSchedule::parse(expression)?;
        self.add_dynamic_timer(Duration::ZERO, Repeat::Cron(Arc::new(schedule)), handler)
    }

    fn add_dynamic_timer<A: Agent>(
        &self,
        first: Duration,
        repeat: Repeat,
        handler: impl FnMut(&mut A, &AgentContext) + Send + 'static,
    ) -> Result<TimerId, ContextError> {
        self.check_type::<A>()?;
        let boxed: DynTimerHandler<A> = Box::new(handler);
        self.add_timer(first, repeat, TimerHandler::Dynamic(Box::new(boxed)))
    }

    pub(crate) fn add_timer(
        &self,
        first: Duration,
        repeat: Repeat,
        handler: TimerHandler,
    ) -> Result<TimerId, ContextError> {
        let mut reg = self.inner.registry.lock();
        if reg.stopped {
            return Err(ContextError::Stopped);
        }
        let busy = Arc::new(AtomicBool::new(false));
        let once = matches!(repeat, Repeat::Once);
        let id = self
            .inner
            .endpoint
            .clock
            .schedule(first, repeat, self.inner.mailbox.clone(), busy.clone());
        reg.timers.insert(
            id,
            TimerRecord {
                handler: Some(handler),
                busy,
                once,
            },
        );
        Ok(id)
    }

    /// Cancels a timer made by one of the `schedule_*` methods (or a declared periodic or
    /// cron); returns whether it was still scheduled.
    pub fn cancel(&self, timer: TimerId) -> bool {
        let removed = self.inner.registry.lock().timers.remove(&timer).is_some();
        self.inner.endpoint.clock.cancel(timer) || removed
    }

    /// Asks the platform to stop this agent once the current handler returns: `on_stop`
    /// runs, then the agent leaves the bus.
    pub fn stop(&self) {
        if let Some(stop) = self.inner.stop.get() {
            stop();
        }
    }

    /// This agent's health (VOLTTRON's `health.get_status`).
    pub fn health(&self) -> Health {
        self.inner.health.lock().clone()
    }

    /// Sets this agent's health (VOLTTRON's `health.set_status`). A change is stamped with
    /// the platform clock and, if the heartbeat runs, published at once.
    pub fn set_health(&self, status: Status, context: Option<&str>) {
        let changed = {
            let mut health = self.inner.health.lock();
            let context = context.map(str::to_owned);
            if health.status == status && health.context == context {
                false
            } else {
                *health = Health::new(status, context, self.now());
                true
            }
        };
        if changed {
            if self.inner.descriptor.on_health {
                let health = crate::platform::mailbox::Envelope::Health(self.health());
                let _ = self.inner.mailbox.deliver(health);
            }
            if self.heartbeat().is_running() {
                self.publish_heartbeat();
            }
        }
    }

    /// Publishes an alert on `alerts/<AgentName>/<identity with . as _>` with an
    /// `alert_key` header (VOLTTRON's `health.send_alert`); returns how many subscribers
    /// it reached.
    pub fn send_alert(
        &self,
        key: &str,
        status: Status,
        context: Option<&str>,
    ) -> Result<usize, PublishError> {
        let topic = Topic::new(format!(
            "alerts/{}/{}",
            self.agent_name(),
            self.identity().replace('.', "_")
        ))?;
        let mut headers = Headers::new();
        headers.insert("alert_key".into(), Value::from(key));
        let mut message = Map::new();
        message.insert("status".into(), Value::from(status.to_string()));
        message.insert("context".into(), Value::from(context));
        message.insert("last_updated".into(), Value::from(self.now().to_rfc3339()));
        self.publish_with(topic, headers, Value::Map(message))
    }

    /// The agent's own writable directory, `$VOLTTRON_HOME/agents/<identity>/data`
    /// (created if missing), kept across reinstalls with `--force`; `None` on a platform
    /// without a home. An agent attached through the bridge gets the one of the home its
    /// platform launched it from (`VOLTTRON_HOME`).
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        let home = self.inner.endpoint.router.info.home.as_ref()?;
        let dir = home.join("agents").join(self.identity().as_str()).join("data");
        std::fs::create_dir_all(&dir).ok()?;
        Some(dir)
    }

    /// This agent's resource reservation and its latest CPU and memory use, as the
    /// platform's `control` service sampled them (`{"reservation": .., "usage": ..}`;
    /// nulls for an agent the control service did not launch).
    pub async fn resource_usage(&self) -> Result<Value, RpcError> {
        self.call(
            crate::services::control::IDENTITY,
            "agent_resources",
            (self.identity().as_str(),),
        )
        .await
    }

    /// The agent type's name (its struct name).
    pub fn agent_name(&self) -> &'static str {
        self.inner.descriptor.name
    }

    fn check_type<A: Agent>(&self) -> Result<(), ContextError> {
        if TypeId::of::<A>() == self.inner.agent_type {
            Ok(())
        } else {
            Err(ContextError::WrongAgentType {
                expected: std::any::type_name::<A>(),
                actual: self.inner.descriptor.name,
            })
        }
    }
}

impl std::fmt::Debug for AgentContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentContext")
            .field("identity", self.identity())
            .finish()
    }
}
