//! What every sender on the bus can do: publish, call, notify, ping, list peers, query.
//! Shared by [`AgentContext`](crate::AgentContext) and the [`Platform`](crate::Platform)
//! handle.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{Either, select};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::agent::PublishError;
use crate::agent::current_trace;
use crate::core::{
    Args, Headers, Identity, IntoArgs, RpcError, Topic, TopicError, TraceContext, Value, ValueError,
    from_value,
};
use crate::platform::backpressure::OverflowPolicy;
use crate::platform::clock::Clock;
use crate::platform::counters::Stopwatch;
use crate::platform::external::ExternalCall;
use crate::platform::mailbox::{Envelope, Mailbox, Request};
use crate::platform::router::Router;

/// Default RPC deadline, as VOLTTRON's `get(timeout=30)` convention.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// The version reported to `query("platform-version")`.
pub const PLATFORM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum SubscribeError {
    /// The prefix or pattern is not valid.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// `authz.json` protects topics this subscription could receive.
    #[error("{0}")]
    Unauthorized(String),
}

/// Whether `identity` is one of the platform's own (never subject to authorization):
/// the platform handle, its services, and `control.connection` (`vctl`, whose key only
/// the platform's user can read).
fn is_platform_identity(identity: &str) -> bool {
    identity == crate::platform::PLATFORM_IDENTITY
        || crate::services::control::is_control_connection(identity)
        || crate::services::is_service(identity)
}

#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) identity: Identity,
    pub(crate) router: Arc<Router>,
    pub(crate) clock: Clock,
    pub(crate) rpc_timeout: Duration,
    /// Sends for a plugged service that authorizes its own callers (the web service, for
    /// its users): not checked against `authz.json` again.
    pub(crate) trusted: bool,
}

impl Endpoint {
    /// Publishes as this endpoint's identity: authorized against `authz.json` when the
    /// platform has auth on, sent up the link in an agent attached through the bridge.
    pub(crate) fn publish(
        &self,
        bus: &str,
        topic: Topic,
        mut headers: Headers,
        message: Value,
    ) -> Result<usize, PublishError> {
        self.check_publish(&topic)?;
        if let Some(trace) = current_trace() {
            trace.write_headers(&mut headers);
        }
        if let Some(up) = self.router.upstream.get() {
            return up.publish(bus, topic, headers, message);
        }
        Ok(self.router.publish(&self.identity, bus, topic, headers, message))
    }

    /// [`publish`](Self::publish), answered by the platform: through the bridge, a round
    /// trip for the count of subscribers reached or the refusal; in-process, at once.
    pub(crate) fn publish_confirmed(
        &self,
        bus: &str,
        topic: Topic,
        mut headers: Headers,
        message: Value,
    ) -> impl std::future::Future<Output = Result<usize, PublishError>> + Send + 'static {
        use futures::future::{Either, ready};
        if let Some(trace) = current_trace() {
            trace.write_headers(&mut headers);
        }
        // In-process the answer is known now; through the bridge it is awaited.
        let Some(up) = self.router.upstream.get() else {
            return Either::Left(ready(self.publish(bus, topic, headers, message)));
        };
        match self
            .check_publish(&topic)
            .and_then(|()| up.publish_confirmed(bus, topic, headers, message))
        {
            Err(e) => Either::Left(ready(Err(e))),
            Ok(answer) => {
                Either::Right(async move { answer.await.unwrap_or(Err(PublishError::NotConnected)) })
            }
        }
    }

    /// Checks `authz.json`'s publish protection for this endpoint's identity.
    fn check_publish(&self, topic: &Topic) -> Result<(), PublishError> {
        match self.authority() {
            Some(auth) => auth.check_publish(&self.identity, topic.as_str()).map_err(|e| {
                self.router.refused();
                PublishError::Unauthorized(e.to_string())
            }),
            None => Ok(()),
        }
    }

    /// The authority that checks this endpoint's requests, if any (the platform's own
    /// identities are not checked).
    fn authority(&self) -> Option<&Arc<crate::auth::Authority>> {
        self.router
            .auth
            .get()
            .filter(|_| !self.trusted && !is_platform_identity(&self.identity))
    }

    /// Subscribes the peer `peer` (this endpoint's identity) whose mailbox is `mailbox`.
    #[allow(
        clippy::too_many_arguments,
        reason = "one subscription's parts, passed through"
    )]
    pub(crate) fn subscribe(
        &self,
        peer: u64,
        mailbox: &Arc<Mailbox>,
        bus: &str,
        prefix: &str,
        id: u32,
        overflow: OverflowPolicy,
        all_platforms: bool,
    ) -> Result<(), SubscribeError> {
        if let Some(auth) = self.authority() {
            auth.check_subscribe(&self.identity, prefix).map_err(|e| {
                self.router.refused();
                SubscribeError::Unauthorized(e.to_string())
            })?;
        }
        self.router
            .subscribe(peer, mailbox, bus, prefix, id, overflow, all_platforms)?;
        if let Some(up) = self.router.upstream.get() {
            up.subscribe(id, bus, prefix, overflow, all_platforms);
        }
        Ok(())
    }

    /// Removes subscriptions of `peer`; returns the ids removed.
    pub(crate) fn unsubscribe(&self, peer: u64, bus: Option<&str>, prefix: Option<&str>) -> Vec<u32> {
        let removed = self.router.unsubscribe(peer, bus, prefix);
        if let Some(up) = self.router.upstream.get()
            && !removed.is_empty()
        {
            up.unsubscribe(bus, prefix, &removed);
        }
        removed
    }

    pub(crate) fn call(&self, peer: &str, method: &str, args: impl IntoArgs) -> RpcCall {
        RpcCall {
            endpoint: self.clone(),
            peer: peer.to_owned(),
            method: method.to_owned(),
            args: args.into_args(),
            timeout: self.rpc_timeout,
            trace: current_trace(),
            platform: None,
        }
    }

    pub(crate) fn notify(&self, peer: &str, method: &str, args: impl IntoArgs) -> Result<(), RpcError> {
        self.notify_traced(peer, method, args, current_trace())
    }

    /// [`notify`](Self::notify) as part of `trace`.
    pub(crate) fn notify_traced(
        &self,
        peer: &str,
        method: &str,
        args: impl IntoArgs,
        trace: Option<TraceContext>,
    ) -> Result<(), RpcError> {
        let args = args.into_args().map_err(|e| invalid_args(method, e))?;
        if let Some(auth) = self.authority() {
            let params = self.router.param_names(peer, method);
            auth.check_call(&self.identity, peer, method, &args, &params)
                .inspect_err(|_| self.router.refused())?;
        }
        if let Some(up) = self.router.upstream.get() {
            return up.notify(peer, method, args, trace);
        }
        let mailbox = self.router.mailbox(peer).ok_or_else(|| RpcError::UnknownPeer {
            peer: peer.to_owned(),
        })?;
        mailbox.cells.called();
        mailbox
            .deliver(Envelope::Request(Box::new(Request {
                sender: self.identity.clone(),
                method: method.to_owned(),
                args,
                reply: None,
                trace,
            })))
            .map_err(|_| RpcError::PeerStopped {
                peer: peer.to_owned(),
            })
    }

    pub(crate) async fn ping(&self, peer: &str) -> Result<(), RpcError> {
        let stopped = || RpcError::PeerStopped {
            peer: peer.to_owned(),
        };
        let rx = if let Some(up) = self.router.upstream.get() {
            up.ping(peer)?
        } else {
            let mailbox = self.router.mailbox(peer).ok_or_else(|| RpcError::UnknownPeer {
                peer: peer.to_owned(),
            })?;
            let (tx, rx) = oneshot::channel();
            mailbox.deliver(Envelope::Ping(tx)).map_err(|_| stopped())?;
            rx
        };
        let sleep = self.clock.sleep(self.rpc_timeout);
        match select(rx, sleep).await {
            Either::Left((r, _)) => r.map_err(|_| stopped()),
            Either::Right(_) => Err(RpcError::Timeout {
                peer: peer.to_owned(),
                method: "ping".into(),
                timeout: self.rpc_timeout,
            }),
        }
    }

    pub(crate) fn query(&self, key: &str) -> Option<Value> {
        if let Some(up) = self.router.upstream.get() {
            return up.query(key);
        }
        Some(match key {
            "instance-name" => Value::from(self.router.info.instance_name.as_str()),
            "platform-version" => Value::from(PLATFORM_VERSION),
            "addresses" => Value::List(
                self.router
                    .info
                    .addresses
                    .iter()
                    .map(|a| Value::from(a.as_str()))
                    .collect(),
            ),
            "local_address" => Value::from(
                self.router
                    .info
                    .addresses
                    .first()
                    .map_or("inproc://vip", |a| a.as_str()),
            ),
            "message-bus" => Value::from("volttron-rs"),
            "serverkey" => self
                .router
                .info
                .serverkey
                .as_deref()
                .map_or(Value::Null, Value::from),
            _ => return None,
        })
    }
}

fn invalid_args(method: &str, e: ValueError) -> RpcError {
    RpcError::InvalidParams {
        method: method.to_owned(),
        message: format!("arguments do not serialize: {e}"),
    }
}

/// An RPC call being prepared; `.await` it to send and wait for the reply.
///
/// ```no_run
/// # async fn demo(ctx: &volttron::AgentContext) -> Result<(), volttron::RpcError> {
/// use std::time::Duration;
/// let reply = ctx.call("thermostat", "set_point", (21.5,)).timeout(Duration::from_secs(5)).await?;
/// let typed: f64 = ctx.call("thermostat", "get_point", ()).returning().await?;
/// # let _ = (reply, typed); Ok(()) }
/// ```
#[must_use = "an RPC call does nothing until awaited"]
pub struct RpcCall {
    endpoint: Endpoint,
    peer: String,
    method: String,
    args: Result<Args, ValueError>,
    timeout: Duration,
    trace: Option<TraceContext>,
    platform: Option<String>,
}

impl RpcCall {
    /// Calls the agent on the federated platform `instance` (VOLTTRON's
    /// `external_platform=`), through the federation service; this platform's own name
    /// makes it a local call. Without a federation, or when that platform is down or not
    /// allowed, it fails at once with [`RpcError::Unreachable`]; a platform that leaves,
    /// or a broker that goes, fails the calls in flight the same way.
    pub fn on_platform(mut self, instance: &str) -> Self {
        self.platform = Some(instance.to_owned());
        self
    }

    /// [`on_platform`](Self::on_platform), if `instance` is given (a bridged agent's call).
    pub(crate) fn on_platform_opt(mut self, instance: Option<String>) -> Self {
        self.platform = instance;
        self
    }

    /// Sends the request as part of `trace` (a W3C trace context). Default: the trace of
    /// what the calling handler handles, if it was traced (see [`crate::core::trace`]).
    pub fn trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    /// Sets the deadline (default 30 s, or the platform's configured default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the call and converts the reply to `T`.
    pub async fn returning<T: DeserializeOwned>(self) -> Result<T, RpcError> {
        let v = self.await?;
        from_value(v).map_err(|e| RpcError::InvalidReply {
            message: e.to_string(),
        })
    }

    /// Sends the request now and returns the future of its reply (the deadline starts now).
    fn send(self) -> Result<impl Future<Output = Result<Value, RpcError>> + Send + 'static, RpcError> {
        let RpcCall {
            endpoint,
            peer,
            method,
            args,
            timeout,
            trace,
            platform,
        } = self;
        let args = args.map_err(|e| invalid_args(&method, e))?;
        // This platform's own name is a local call; another goes to the federation (the
        // callee's platform authorizes it), from a bridged agent through its platform.
        let platform = platform.filter(|p| *p != endpoint.router.info.instance_name);
        if let Some(auth) = endpoint.authority().filter(|_| platform.is_none()) {
            let params = endpoint.router.param_names(&peer, &method);
            auth.check_call(&endpoint.identity, &peer, &method, &args, &params)
                .inspect_err(|_| endpoint.router.refused())?;
        }
        // Inside a span factory, the call is a span of its own, child of the caller's.
        let (trace, span) =
            crate::agent::trace_scope::continued(trace, |f, t| f.call(&endpoint.identity, &peer, &method, t));
        let mut callee = None;
        let rx = if let Some(up) = endpoint.router.upstream.get() {
            up.call(&peer, &method, args, trace, platform)?
        } else if let Some(platform) = platform {
            let Some(external) = endpoint.router.external.get() else {
                return Err(RpcError::Unreachable {
                    platform,
                    reason: "this platform is not federated with any other".into(),
                });
            };
            let call = ExternalCall {
                sender: endpoint.identity.clone(),
                peer: peer.clone(),
                method: method.clone(),
                args,
                trace,
                timeout,
            };
            external.call(&platform, call)?
        } else {
            let Some(mailbox) = endpoint.router.mailbox(&peer) else {
                return Err(RpcError::UnknownPeer { peer });
            };
            let sampled = mailbox.cells.called();
            let watch = Stopwatch::start(sampled, endpoint.router.instrumentation.get().is_some());
            let (tx, rx) = oneshot::channel();
            let request = Envelope::Request(Box::new(Request {
                sender: endpoint.identity.clone(),
                method: method.clone(),
                args,
                reply: Some(tx),
                trace,
            }));
            if mailbox.deliver(request).is_err() {
                return Err(RpcError::PeerStopped { peer });
            }
            callee = Some((mailbox, watch));
            rx
        };
        let sleep = endpoint.clock.sleep(timeout);
        let router = endpoint.router;
        Ok(async move {
            let _span = span;
            let result = match select(rx, sleep).await {
                Either::Left((Ok(reply), _)) => reply,
                Either::Left((Err(_), _)) => Err(RpcError::PeerStopped { peer: peer.clone() }),
                Either::Right(_) => Err(RpcError::Timeout {
                    peer: peer.clone(),
                    method,
                    timeout,
                }),
            };
            if let Some((mailbox, watch)) = callee {
                if let Err(e) = &result {
                    mailbox.cells.failed(e);
                }
                if let (Some(elapsed), Some(i)) = (watch.elapsed(), router.instrumentation()) {
                    i.rpc_round_trip(&peer, elapsed);
                }
            }
            result
        })
    }
}

/// `.await` (or `.into_future()`) sends the request at once; the returned future
/// resolves to the reply.
impl IntoFuture for RpcCall {
    type Output = Result<Value, RpcError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        match self.send() {
            Ok(reply) => Box::pin(reply),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

impl std::fmt::Debug for RpcCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcCall")
            .field("peer", &self.peer)
            .field("method", &self.method)
            .field("timeout", &self.timeout)
            .field("platform", &self.platform)
            .finish()
    }
}
