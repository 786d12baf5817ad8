//! One VIP peer: a Python agent's place in the routing table, and the translation of
//! what the platform queues for it into VIP messages.
//!
//! | queued for the peer | VIP message sent |
//! |---------------------|------------------|
//! | a publication (once per publication, however many of its subscriptions match) | `pubsub publish <topic> {"sender","bus","headers","message"}` |
//! | an RPC request or notification | `RPC {"jsonrpc":"2.0","method","params","id"}`; the reply is matched by its JSON id |
//! | `config.update` from the configuration store | VOLTTRON 11's push: `{"*args":[action,name],"**kwargs":{"contents","trigger_callback"}}` |
//! | a ping | `ping ping`, answered by the client's `pong` |
//! | a peer joining or leaving | `peerlist add|drop <identity>` |

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::auth::KeyVerdict;
use crate::core::{Args, Identity, Publication, RpcError, Value};
use crate::core::{json, jsonrpc};
use crate::platform::endpoint::Endpoint;
use crate::platform::mailbox::{Envelope, Mailbox, PeerEvent};
use crate::platform::router::{Exports, PeerEntry};
use crate::vip::frame;
use crate::vip::server::Server;

/// How many recent publications a drain remembers, to send each once.
const RECENT: usize = 32;

/// An RPC request sent to the peer, waiting for its answer.
pub(crate) struct PendingCall {
    pub(crate) method: String,
    pub(crate) reply: oneshot::Sender<Result<Value, RpcError>>,
}

/// An admitted VIP peer.
pub(crate) struct VipPeer {
    pub(crate) identity: Identity,
    pub(crate) routing_id: Vec<u8>,
    /// The CURVE key it connected with (when auth is on).
    pub(crate) key: Option<String>,
    pub(crate) peer_id: u64,
    pub(crate) mailbox: Arc<Mailbox>,
    /// Sends as this peer.
    pub(crate) endpoint: Endpoint,
    /// Its subscriptions: (bus, prefix) → subscription id.
    pub(crate) subscriptions: HashMap<(String, String), u32>,
    next_subscription: u32,
    /// Requests sent to it, by JSON id.
    pub(crate) calls: HashMap<String, PendingCall>,
    /// Pings sent to it, by message id.
    pub(crate) pings: HashMap<Vec<u8>, oneshot::Sender<()>>,
    next_id: u64,
    /// The publications sent lately (a publication matching several subscriptions is
    /// queued once per subscription; VOLTTRON sends one copy per subscriber).
    recent: VecDeque<Arc<Publication>>,
}

/// Decides on a peer's first message and adds it to the routing table.
pub(crate) fn admit(
    server: &mut Server,
    routing_id: &[u8],
    user: Option<&str>,
    address: Option<&str>,
) -> Result<VipPeer, String> {
    let identity = Server::identity_of(routing_id)?;
    let ctx = server.ctx.clone();
    let key = user.filter(|u| !u.is_empty()).map(str::to_owned);
    if let Some(authority) = &ctx.authority {
        let Some(key) = &key else {
            return Err("this platform requires authentication: connect with a CURVE key".into());
        };
        let source = format!("vip:{}", address.unwrap_or("local"));
        match authority.verify_peer(identity.as_str(), key, &source) {
            KeyVerdict::Allowed => authority.record_success(&source),
            KeyVerdict::Pending => {
                authority.record_failure(&source);
                return Err(format!(
                    "the key for '{identity}' is not known; it is pending approval by an administrator"
                ));
            }
            KeyVerdict::Denied(reason) => {
                authority.record_failure(&source);
                return Err(reason);
            }
        }
    }
    let router = ctx.endpoint.router.clone();
    let peer_id = router.next_peer_id();
    let mailbox = router.mailbox_for(&identity);
    let entry = PeerEntry {
        id: peer_id,
        mailbox: mailbox.clone(),
        watches_peers: true,
        exports: Exports::Unknown,
    };
    router
        .add_peer(identity.clone(), entry)
        .map_err(|id| format!("identity '{id}' is already in use on this platform"))?;
    {
        let shared = server.shared.clone();
        let rid = routing_id.to_vec();
        mailbox.set_waker(Box::new(move || shared.ready(&rid)));
    }
    tracing::info!(identity = identity.as_str(), "vip: peer connected");
    Ok(VipPeer {
        endpoint: Endpoint {
            identity: identity.clone(),
            ..ctx.endpoint.clone()
        },
        identity,
        routing_id: routing_id.to_vec(),
        key,
        peer_id,
        mailbox,
        subscriptions: HashMap::new(),
        next_subscription: 1,
        calls: HashMap::new(),
        pings: HashMap::new(),
        next_id: 1,
        recent: VecDeque::with_capacity(RECENT),
    })
}

impl VipPeer {
    /// A fresh subscription id.
    pub(crate) fn next_subscription(&mut self) -> u32 {
        let id = self.next_subscription;
        self.next_subscription = self.next_subscription.wrapping_add(1).max(1);
        id
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Turns up to `max` queued envelopes into messages; true if more are waiting.
    pub(crate) fn drain(&mut self, max: usize, out: &mut Vec<Vec<Vec<u8>>>) -> bool {
        let mut batch = Vec::with_capacity(max.min(64));
        self.mailbox.take_batch(max, &mut batch);
        for envelope in batch {
            if let Some(message) = self.envelope_message(envelope) {
                out.push(message);
            }
            self.mailbox.handled();
        }
        self.mailbox.finish_drain()
    }

    fn envelope_message(&mut self, envelope: Envelope) -> Option<Vec<Vec<u8>>> {
        let rid = self.routing_id.clone();
        match envelope {
            Envelope::Publication { publication, .. } => {
                if self.recent.iter().any(|p| Arc::ptr_eq(p, &publication)) {
                    return None;
                }
                if self.recent.len() == RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back(publication.clone());
                Some(delivery(&rid, &publication))
            }
            Envelope::Request(request) => {
                let request = *request;
                let args = if request.method == crate::agent::config::UPDATE_METHOD {
                    config_push(request.args)
                } else {
                    request.args
                };
                let sender = request.sender.as_str().as_bytes().to_vec();
                let body = match request.reply {
                    Some(reply) => {
                        let id = format!("vip.{}", self.next_id());
                        let body = jsonrpc::request(&Value::from(id.as_str()), &request.method, &args);
                        self.calls.insert(
                            id,
                            PendingCall {
                                method: request.method,
                                reply,
                            },
                        );
                        body
                    }
                    None => jsonrpc::notification(&request.method, &args),
                };
                let msg_id = format!("rpc.{}", self.next_id()).into_bytes();
                Some(frame::outgoing(
                    &rid,
                    &sender,
                    &sender,
                    &msg_id,
                    "RPC",
                    vec![frame::value_frame(&body)],
                ))
            }
            Envelope::Ping(reply) => {
                let msg_id = format!("ping.{}", self.next_id()).into_bytes();
                self.pings.insert(msg_id.clone(), reply);
                Some(frame::outgoing(
                    &rid,
                    b"",
                    b"",
                    &msg_id,
                    "ping",
                    vec![b"ping".to_vec()],
                ))
            }
            Envelope::Peer(event) => {
                let (op, peer) = match &event {
                    PeerEvent::Added(p) => ("add", p),
                    PeerEvent::Dropped(p) => ("drop", p),
                };
                Some(frame::outgoing(
                    &rid,
                    b"",
                    b"",
                    b"",
                    "peerlist",
                    vec![op.as_bytes().to_vec(), peer.as_str().as_bytes().to_vec()],
                ))
            }
            // Timers, health and link events belong to in-process hosts.
            _ => None,
        }
    }

    /// The peer left: out of the routing table, its queue and calls failed.
    pub(crate) fn close(self) {
        self.endpoint.router.remove_peer(&self.identity, self.peer_id);
        for envelope in self.mailbox.close() {
            envelope.refuse(&self.identity);
        }
        // Dropping the senders fails the waiting callers with `PeerStopped`.
    }
}

/// A publication as VIP delivers it to one subscriber.
pub(crate) fn delivery(rid: &[u8], p: &Publication) -> Vec<Vec<u8>> {
    let sender = p.sender.as_str().as_bytes();
    let mut body = crate::core::Map::new();
    body.insert("sender".into(), Value::from(p.sender.as_str()));
    body.insert("bus".into(), Value::from(p.bus.as_str()));
    body.insert("headers".into(), Value::Map(p.headers.clone()));
    body.insert("message".into(), p.message.clone());
    frame::outgoing(
        rid,
        sender,
        sender,
        b"",
        "pubsub",
        vec![
            b"publish".to_vec(),
            json::to_latin1(p.topic.as_str()).unwrap_or_else(|_| p.topic.as_str().as_bytes().to_vec()),
            frame::value_frame(&Value::Map(body)),
        ],
    )
}

/// The configuration store's `(action, name, contents[, trigger_callback])` as VOLTTRON
/// 11's `config.update` parameters.
fn config_push(args: Args) -> Args {
    let mut positional = args.positional.into_iter();
    let action = positional.next().unwrap_or(Value::Null);
    let name = positional.next().unwrap_or(Value::Null);
    let contents = positional.next().unwrap_or(Value::Null);
    let trigger = positional.next().unwrap_or(Value::Bool(true));
    let mut out = Args::new().arg(action.clone()).arg(name);
    if action.as_str() != Some("DELETE") && action.as_str() != Some("DELETE_ALL") {
        out = out.kwarg("contents", contents);
    }
    out.kwarg("trigger_callback", trigger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_pushes_take_volttron_11s_shape() {
        let a = config_push(Args::new().arg("NEW").arg("config").arg(Value::from(1)));
        assert_eq!(a.positional, vec![Value::from("NEW"), Value::from("config")]);
        assert_eq!(a.named["contents"], Value::from(1));
        assert_eq!(a.named["trigger_callback"], Value::from(true));
        let d = config_push(Args::new().arg("DELETE").arg("x").arg(Value::Null).arg(false));
        assert!(!d.named.contains_key("contents"));
        assert_eq!(d.named["trigger_callback"], Value::from(false));
    }
}
