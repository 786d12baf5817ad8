//! WebSockets: pub/sub for browsers and tools, VOLTTRON's `/vui/.../pubsub/<topic>`
//! stream, and the sockets agents register (`vip.web.register_websocket`).
//!
//! `GET /ws` (a token in `Authorization`, the `Bearer` cookie or `?access_token=`; the
//! `vui` capability) speaks JSON text frames:
//!
//! | client sends | server answers |
//! |--------------|----------------|
//! | `{"subscribe": "devices/hq/"}` | `{"subscribed": "devices/hq/"}`, then one `{"topic","sender","bus","headers","message"}` per publication |
//! | `{"unsubscribe": "devices/hq/"}` | `{"unsubscribed": "devices/hq/"}` |
//! | `{"publish": "topic", "message": m, "headers": {..}}` | `{"published": "topic", "subscribers": n}` |
//! | anything else, or a refused request | `{"error": "..."}` (a protected topic: the capability it needs) |
//!
//! Each socket has a mailbox of its own, filled by the router like an agent's: a client that
//! reads slower than the bus publishes loses its oldest queued publications (the default
//! overflow policy of agents) and never slows a publisher.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{Message, Session};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, watch};

use crate::auth::authz::TopicAccess;
use crate::core::{Identity, Map, Publication, Topic, Value};
use crate::platform::backpressure::OverflowPolicy;
use crate::platform::mailbox::{Envelope, Mailbox};
use crate::web::error::WebError;
use crate::web::state::{VUI, WebState};
use crate::web::token::Claims;

/// Publications taken from a socket's mailbox per drain step.
const BATCH: usize = 256;
/// Frames queued for one client of an agent's socket before new ones are dropped.
const AGENT_SOCKET_QUEUE: usize = 1024;

/// The sockets agents registered, and the switch that closes every socket at shutdown.
pub(crate) struct WsHub {
    agent_sockets: Mutex<HashMap<String, AgentSocket>>,
    next_client: AtomicU64,
    closing: watch::Sender<bool>,
}

struct AgentSocket {
    peer: Identity,
    clients: HashMap<u64, mpsc::Sender<String>>,
}

impl Default for WsHub {
    fn default() -> Self {
        WsHub {
            agent_sockets: Mutex::new(HashMap::new()),
            next_client: AtomicU64::new(1),
            closing: watch::channel(false).0,
        }
    }
}

impl WsHub {
    /// Registers `endpoint` for `peer`; false if another peer has it.
    pub(crate) fn register(&self, endpoint: &str, peer: &Identity) -> bool {
        let mut sockets = self.agent_sockets.lock();
        match sockets.get(endpoint) {
            Some(s) if s.peer != *peer => false,
            Some(_) => true,
            None => {
                sockets.insert(
                    endpoint.to_owned(),
                    AgentSocket {
                        peer: peer.clone(),
                        clients: HashMap::new(),
                    },
                );
                true
            }
        }
    }

    /// Removes `endpoint` (closing its clients); true if `peer` had it.
    pub(crate) fn unregister(&self, endpoint: &str, peer: &Identity) -> bool {
        let mut sockets = self.agent_sockets.lock();
        if sockets.get(endpoint).is_some_and(|s| s.peer == *peer) {
            sockets.remove(endpoint);
            true
        } else {
            false
        }
    }

    /// Removes every socket of `peer`.
    pub(crate) fn forget_peer(&self, peer: &Identity) {
        self.agent_sockets.lock().retain(|_, s| s.peer != *peer);
    }

    /// The peer owning `endpoint`.
    pub(crate) fn owner(&self, endpoint: &str) -> Option<Identity> {
        self.agent_sockets.lock().get(endpoint).map(|s| s.peer.clone())
    }

    /// Sends `text` to every client of `endpoint`; the number reached.
    pub(crate) fn send(&self, endpoint: &str, text: &str) -> usize {
        let sockets = self.agent_sockets.lock();
        sockets.get(endpoint).map_or(0, |s| {
            s.clients
                .values()
                .filter(|c| c.try_send(text.to_owned()).is_ok())
                .count()
        })
    }

    /// Closes every socket (at shutdown).
    pub(crate) fn close_all(&self) {
        let _ = self.closing.send(true);
    }

    fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// A socket's place on the bus: a mailbox and its subscriptions.
struct Subscriber {
    state: web::Data<WebState>,
    peer: u64,
    mailbox: Arc<Mailbox>,
    notify: Arc<Notify>,
    subscriptions: HashMap<String, u32>,
    next_id: u32,
    last: Option<Arc<Publication>>,
}

impl Subscriber {
    fn new(state: web::Data<WebState>) -> Subscriber {
        let router = &state.endpoint.router;
        let peer = router.next_peer_id();
        let mailbox = router.new_mailbox();
        let notify = Arc::new(Notify::new());
        {
            let notify = notify.clone();
            mailbox.set_waker(Box::new(move || notify.notify_one()));
        }
        Subscriber {
            state,
            peer,
            mailbox,
            notify,
            subscriptions: HashMap::new(),
            next_id: 1,
            last: None,
        }
    }

    fn subscribe(&mut self, claims: &Claims, prefix: &str) -> Result<(), String> {
        if self.subscriptions.contains_key(prefix) {
            return Ok(());
        }
        self.state
            .check_topic(claims, TopicAccess::Subscribe, prefix)
            .map_err(|e| e.to_string())?;
        let id = self.next_id;
        self.next_id += 1;
        self.state
            .endpoint
            .subscribe(
                self.peer,
                &self.mailbox,
                "",
                prefix,
                id,
                OverflowPolicy::DropOldest,
                false,
            )
            .map_err(|e| e.to_string())?;
        self.subscriptions.insert(prefix.to_owned(), id);
        Ok(())
    }

    fn unsubscribe(&mut self, prefix: &str) -> bool {
        if self.subscriptions.remove(prefix).is_none() {
            return false;
        }
        self.state.endpoint.unsubscribe(self.peer, Some(""), Some(prefix));
        true
    }

    /// Sends what the mailbox holds; false if the client went away.
    async fn drain(&mut self, session: &mut Session, message_only: bool) -> bool {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            batch.clear();
            self.mailbox.take_batch(BATCH, &mut batch);
            for envelope in batch.drain(..) {
                if let Envelope::Publication { publication, .. } = envelope {
                    // A publication matching several subscriptions is sent once.
                    let repeat = self.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &publication));
                    if !repeat {
                        let text = if message_only {
                            serde_json::to_string(&publication.message)
                        } else {
                            serde_json::to_string(&publication_json(&publication))
                        };
                        self.last = Some(publication);
                        if let Ok(text) = text
                            && session.text(text).await.is_err()
                        {
                            self.mailbox.handled();
                            return false;
                        }
                    }
                }
                self.mailbox.handled();
            }
            if !self.mailbox.finish_drain() {
                return true;
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.state.endpoint.unsubscribe(self.peer, None, None);
        // Only publications are queued for a socket: nobody waits for them.
        let _ = self.mailbox.close();
    }
}

/// A publication as a socket receives it.
pub(crate) fn publication_json(p: &Publication) -> Value {
    let mut m = Map::new();
    m.insert("topic".into(), Value::from(p.topic.as_str()));
    m.insert("sender".into(), Value::from(p.sender.as_str()));
    m.insert("bus".into(), Value::from(p.bus.as_str()));
    m.insert("headers".into(), Value::Map(p.headers.clone()));
    m.insert("message".into(), p.message.clone());
    Value::Map(m)
}

fn reply(pairs: serde_json::Value) -> String {
    pairs.to_string()
}

/// `GET /ws`.
pub(crate) async fn pubsub_socket(
    state: web::Data<WebState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let claims = state.require(&req, VUI)?;
    let (response, session, stream) =
        actix_ws::handle(&req, body).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let stream = stream.max_frame_size(state.config.max_body.min(16 << 20));
    let sub = Subscriber::new(state.clone());
    actix_web::rt::spawn(serve_socket(state, sub, session, stream, Some(claims)));
    Ok(response)
}

/// Runs one pub/sub socket until the client leaves or the service stops: the mailbox's
/// publications out (whole, or with `control` absent the message alone), and with `control`
/// the client's requests answered as that user's.
async fn serve_socket(
    state: web::Data<WebState>,
    mut sub: Subscriber,
    mut session: Session,
    mut stream: actix_ws::MessageStream,
    control: Option<Claims>,
) {
    let mut closing = state.hub.closing();
    loop {
        tokio::select! {
            _ = sub.notify.notified() => {
                if !sub.drain(&mut session, control.is_none()).await {
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    // VOLTTRON's topic stream ignores what its clients send.
                    if let Some(claims) = &control {
                        let answer = self::control(&state, claims, &mut sub, &text);
                        if session.text(answer).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = closing.changed() => break,
        }
    }
    let _ = session.close(None).await;
}

/// Answers one control message of `/ws`.
fn control(state: &WebState, claims: &Claims, sub: &mut Subscriber, text: &str) -> String {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(text) else {
        return reply(serde_json::json!({"error": "expected a JSON object"}));
    };
    if let Some(prefix) = m.get("subscribe") {
        let Some(prefix) = prefix.as_str() else {
            return reply(serde_json::json!({"error": "subscribe: expected a topic prefix"}));
        };
        return match sub.subscribe(claims, prefix) {
            Ok(()) => reply(serde_json::json!({"subscribed": prefix})),
            Err(e) => reply(serde_json::json!({"error": e, "subscribe": prefix})),
        };
    }
    if let Some(prefix) = m.get("unsubscribe").and_then(|p| p.as_str()) {
        return if sub.unsubscribe(prefix) {
            reply(serde_json::json!({"unsubscribed": prefix}))
        } else {
            reply(serde_json::json!({"error": "not subscribed", "unsubscribe": prefix}))
        };
    }
    if let Some(topic) = m.get("publish") {
        let Some(topic) = topic.as_str() else {
            return reply(serde_json::json!({"error": "publish: expected a topic"}));
        };
        let message: Value = m
            .get("message")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or(Value::Null);
        let headers = match m
            .get("headers")
            .map(|h| serde_json::from_value::<Value>(h.clone()))
        {
            None => Map::new(),
            Some(Ok(Value::Map(h))) => h,
            Some(_) => return reply(serde_json::json!({"error": "headers must be an object"})),
        };
        return match publish(state, claims, topic, headers, message) {
            Ok(n) => reply(serde_json::json!({"published": topic, "subscribers": n})),
            Err(e) => reply(serde_json::json!({"error": e.to_string(), "publish": topic})),
        };
    }
    reply(serde_json::json!({"error": "expected subscribe, unsubscribe or publish"}))
}

/// Publishes for a web user, by its capabilities.
pub(crate) fn publish(
    state: &WebState,
    claims: &Claims,
    topic: &str,
    headers: Map,
    message: Value,
) -> Result<usize, WebError> {
    let topic = Topic::new(topic).map_err(|e| WebError::BadRequest(e.to_string()))?;
    state.check_topic(claims, TopicAccess::Publish, topic.as_str())?;
    state
        .endpoint
        .publish("", topic, headers, message)
        .map_err(|e| WebError::Internal(e.to_string()))
}

/// `GET /vui/platforms/<p>/pubsub/<topic>` upgraded: VOLTTRON's stream of the messages
/// (alone, as JSON) published under `topic`; client frames are ignored, as VOLTTRON does.
pub(crate) async fn topic_stream(
    state: web::Data<WebState>,
    req: HttpRequest,
    body: web::Payload,
    claims: Claims,
    topic: String,
) -> Result<HttpResponse, WebError> {
    let mut sub = Subscriber::new(state.clone());
    sub.subscribe(&claims, &topic).map_err(WebError::Forbidden)?;
    let (response, session, stream) =
        actix_ws::handle(&req, body).map_err(|e| WebError::BadRequest(e.to_string()))?;
    actix_web::rt::spawn(serve_socket(state, sub, session, stream, None));
    Ok(response)
}

/// An upgrade to a socket an agent registered: `client.opened(address, endpoint)` first
/// (a `false` answer refuses the client), then `client.message(endpoint, text)` per frame
/// and `client.closed(endpoint)` at the end; the agent writes with `websocket_send`.
pub(crate) async fn agent_socket(
    state: web::Data<WebState>,
    req: HttpRequest,
    body: web::Payload,
    endpoint: String,
    peer: Identity,
) -> Result<HttpResponse, WebError> {
    let from = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let opened = state
        .call(
            peer.as_str(),
            "client.opened",
            crate::core::Args::new().arg(from.as_str()).arg(endpoint.as_str()),
        )
        .await;
    if matches!(opened, Ok(Value::Bool(false))) {
        return Err(WebError::Forbidden(format!("{peer} refused the connection")));
    }
    let (response, mut session, mut stream) =
        actix_ws::handle(&req, body).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let (tx, mut rx) = mpsc::channel::<String>(AGENT_SOCKET_QUEUE);
    let id = state.hub.next_client.fetch_add(1, Ordering::Relaxed);
    if let Some(socket) = state.hub.agent_sockets.lock().get_mut(&endpoint) {
        socket.clients.insert(id, tx);
    }
    actix_web::rt::spawn(async move {
        let mut closing = state.hub.closing();
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(text) => {
                        if session.text(text).await.is_err() {
                            break;
                        }
                    }
                    // The agent unregistered the socket, or stopped.
                    None => break,
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        let args = crate::core::Args::new().arg(endpoint.as_str()).arg(text.to_string());
                        let _ = state.endpoint.notify(peer.as_str(), "client.message", args);
                    }
                    Some(Ok(Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                _ = closing.changed() => break,
            }
        }
        if let Some(socket) = state.hub.agent_sockets.lock().get_mut(&endpoint) {
            socket.clients.remove(&id);
        }
        let _ = state.endpoint.notify(
            peer.as_str(),
            "client.closed",
            crate::core::Args::new().arg(endpoint.as_str()),
        );
        let _ = session.close(None).await;
    });
    Ok(response)
}
