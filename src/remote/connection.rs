//! [`Connection`]: a client of a platform with no agent code of its own (what `vctl` is):
//! calls, publishes and subscriptions over the bridge, under one identity.

use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use super::{Remote, RemoteAgent, RemoteError};
use crate::agent::{AgentContext, ContextError, IntoTopic, PublishError};
use crate::core::{Identity, IntoArgs, Publication, RpcError, Value};
use crate::platform::RpcCall;

/// The agent behind a [`Connection`]: it only hands its context out.
pub(crate) struct ConnectionAgent {
    ctx: Arc<OnceLock<AgentContext>>,
}

#[crate::agent]
impl ConnectionAgent {
    #[on_setup]
    fn setup(&mut self, ctx: &AgentContext) {
        let _ = self.ctx.set(ctx.clone());
    }
}

/// A live connection to a platform, made by [`Remote::connect`]: a client with no agent
/// code of its own (what `vctl` is), calling, publishing and subscribing under one identity.
pub struct Connection {
    agent: RemoteAgent,
    ctx: AgentContext,
}

impl Remote {
    /// Connects as a client with no agent code: [`Connection::call`], `publish`,
    /// `subscribe`. Refused identities and unreachable platforms are errors at once (no
    /// retries beyond the connect timeout).
    pub async fn connect(self) -> Result<Connection, RemoteError> {
        let slot = Arc::new(OnceLock::new());
        let agent = self.start(ConnectionAgent { ctx: slot.clone() }).await?;
        let ctx = slot.get().cloned().expect("on_setup ran before start returned");
        Ok(Connection { agent, ctx })
    }
}

impl Connection {
    /// The identity connected under.
    pub fn identity(&self) -> &Identity {
        self.agent.identity()
    }

    /// Whether the link is up (it reconnects by itself).
    pub fn is_connected(&self) -> bool {
        self.agent.is_connected()
    }

    /// Prepares an RPC call; `.await` it for the reply.
    pub fn call(&self, peer: &str, method: &str, args: impl IntoArgs) -> RpcCall {
        self.ctx.call(peer, method, args)
    }

    /// Calls `peer.method` and answers its reply as JSON, or the error as text that names
    /// the method (`platform.alerts.ack: ...`): what a command-line tool prints.
    pub async fn call_json(
        &self,
        peer: &str,
        method: &str,
        args: impl IntoArgs,
    ) -> Result<serde_json::Value, String> {
        self.call(peer, method, args)
            .await
            .map(serde_json::Value::from)
            .map_err(|e| format!("{peer}.{method}: {e}"))
    }

    /// Publishes on the default bus.
    pub fn publish(&self, topic: impl IntoTopic, message: impl Into<Value>) -> Result<usize, PublishError> {
        self.ctx.publish(topic, message)
    }

    /// Publishes and waits for the platform's answer: how many subscribers it reached, or
    /// its refusal (see [`AgentContext::publish_confirmed`]).
    pub async fn publish_confirmed(
        &self,
        topic: impl IntoTopic,
        message: impl Into<Value>,
    ) -> Result<usize, PublishError> {
        self.ctx.publish_confirmed(topic, message).await
    }

    /// Subscribes to `prefix` (or an MQTT-style pattern); publications arrive on the
    /// returned channel, in order, until the connection is closed.
    pub fn subscribe(&self, prefix: &str) -> Result<mpsc::UnboundedReceiver<Arc<Publication>>, ContextError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.ctx
            .subscribe::<ConnectionAgent>(prefix, move |_, _, publication| {
                let _ = tx.send(Arc::new(publication.clone()));
            })?;
        Ok(rx)
    }

    /// [`subscribe`](Self::subscribe) to the publications of every platform federated
    /// with this one too (see [`AgentContext::subscribe_all_platforms`](crate::AgentContext::subscribe_all_platforms)).
    pub fn subscribe_all_platforms(
        &self,
        prefix: &str,
    ) -> Result<mpsc::UnboundedReceiver<Arc<Publication>>, ContextError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.ctx
            .subscribe_all_platforms::<ConnectionAgent>(prefix, move |_, _, publication| {
                let _ = tx.send(Arc::new(publication.clone()));
            })?;
        Ok(rx)
    }

    /// Pings `peer` through the platform.
    pub async fn ping(&self, peer: &str) -> Result<(), RpcError> {
        self.ctx.ping(peer).await
    }

    /// The platform's peers, as last mirrored (itself included).
    pub fn peers(&self) -> Vec<Identity> {
        self.ctx.peers()
    }

    /// A platform fact: `instance-name`, `platform-version`, `addresses`, ...
    pub fn query(&self, key: &str) -> Option<Value> {
        self.ctx.query(key)
    }

    /// Closes the link.
    pub async fn close(self) {
        self.agent.shutdown().await;
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("identity", self.identity())
            .field("connected", &self.is_connected())
            .finish()
    }
}
