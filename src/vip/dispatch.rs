//! What the listener does with each VIP message from a peer.
//!
//! Messages to the router (recipient `''`):
//!
//! | subsystem | operation | answer |
//! |-----------|-----------|--------|
//! | `hello` | `hello` | `welcome 1.0 <router> <identity>` (every hello, with its id) |
//! | `ping` | `ping ...` / `drop ...` | `pong ...`; a `pong` completes a ping the platform sent |
//! | `peerlist` | `list` | `listing <identities...>` |
//! | `query` | `<name>` | `'' <value>` (empty when unknown) |
//! | `agentstop` | — | the peer is dropped |
//! | `pubsub` | `subscribe`, `unsubscribe`, `synchronize`, `list`, `publish` | `request_response`, `list_response`; publications go through the routing table |
//! | `error`, `quit` | — | ignored |
//! | anything else | — | error 93 (protocol not supported) |
//!
//! Messages to a peer go through the routing table: `RPC` requests become calls (as the
//! sending peer, so `authz.json` applies), `RPC` responses complete the platform's calls
//! to this peer; `hello` and `ping` to another peer are answered for it. A recipient that
//! is not connected gets error 113 (unreachable).

use std::collections::HashSet;

use crate::core::{Headers, Map, Topic, Value};
use crate::core::{json, jsonrpc};
use crate::platform::backpressure::OverflowPolicy;
use crate::vip::frame::{self, Incoming};
use crate::vip::peer::VipPeer;
use crate::vip::server::Server;
use crate::vip::services;

/// Handles one message from a peer.
pub(crate) fn incoming(server: &mut Server, message: Incoming, user: Option<&str>, address: Option<&str>) {
    let rid = message.routing_id.clone();
    // A new connection under an admitted identity with another key is a new admission.
    if !server.is_admitted(&rid, user)
        && matches!(
            server.peers.get(&rid),
            Some(crate::vip::server::Slot::Admitted(_))
        )
    {
        server.drop_peer(&rid, "it reconnected with another key");
    }
    let is_hello = message.subsystem == b"hello" && message.recipient.is_empty();
    if matches!(server.peers.get(&rid), Some(crate::vip::server::Slot::Refused)) && !is_hello {
        server.transmit(frame::error_message(
            &rid,
            &message.msg_id,
            b"",
            crate::vip::UNAUTHORIZED,
            "this peer was refused; it must connect again",
            &message.recipient,
            &message.subsystem,
        ));
        return;
    }
    if server.admit(&rid, &message.msg_id, user, address).is_none() {
        return;
    }
    if message.recipient.is_empty() {
        to_router(server, message);
    } else {
        to_peer(server, message);
    }
}

fn reply(server: &mut Server, m: &Incoming, subsystem: &str, args: Vec<Vec<u8>>) {
    server.transmit(frame::outgoing(
        &m.routing_id,
        b"",
        b"",
        &m.msg_id,
        subsystem,
        args,
    ));
}

/// A publish or subscription `authz.json` (or the topic's form) refuses: error 13, so
/// the client's result fails instead of waiting forever.
fn refused(server: &mut Server, m: &Incoming, why: &str) {
    server.transmit(frame::error_message(
        &m.routing_id,
        &m.msg_id,
        b"",
        crate::vip::EACCES,
        why,
        b"",
        b"pubsub",
    ));
}

fn text(s: &str) -> Vec<u8> {
    json::to_latin1(s).unwrap_or_else(|_| s.as_bytes().to_vec())
}

fn op(m: &Incoming) -> &[u8] {
    m.args.first().map_or(&[][..], Vec::as_slice)
}

fn to_router(server: &mut Server, m: Incoming) {
    match m.subsystem.as_slice() {
        b"hello" => {
            if op(&m) == b"hello" {
                let args = vec![
                    b"welcome".to_vec(),
                    b"1.0".to_vec(),
                    crate::vip::ROUTER_ID.as_bytes().to_vec(),
                    m.routing_id.clone(),
                ];
                reply(server, &m, "hello", args);
            }
        }
        b"ping" => match op(&m) {
            b"pong" => {
                if let Some(peer) = peer(server, &m.routing_id)
                    && let Some(tx) = peer.pings.remove(&m.msg_id)
                {
                    let _ = tx.send(());
                }
            }
            // VOLTTRON's client sends `drop` where it means `ping` (a client bug).
            _ => {
                let mut args = m.args.clone();
                if args.is_empty() {
                    args.push(Vec::new());
                }
                args[0] = b"pong".to_vec();
                reply(server, &m, "ping", args);
            }
        },
        b"peerlist" => {
            if op(&m) == b"list" {
                let mut args = vec![b"listing".to_vec()];
                args.extend(services::listing(&server.ctx).into_iter().map(|p| text(&p)));
                reply(server, &m, "peerlist", args);
            } else {
                reply(
                    server,
                    &m,
                    "peerlist",
                    vec![b"error".to_vec(), b"unknown operation".to_vec()],
                );
            }
        }
        b"query" => {
            let name = json::latin1(op(&m));
            let value = services::query(&server.ctx, &name);
            let frame = match value {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => text(&s),
                Some(other) => frame::value_frame(&other),
            };
            reply(server, &m, "query", vec![Vec::new(), frame]);
        }
        b"agentstop" => server.drop_peer(&m.routing_id, "it sent agentstop"),
        b"pubsub" => pubsub(server, m),
        b"error" | b"quit" => {}
        other => {
            let subsystem = other.to_vec();
            server.transmit(frame::error_message(
                &m.routing_id,
                &m.msg_id,
                b"",
                frame::EPROTONOSUPPORT,
                "Protocol not supported",
                b"",
                &subsystem,
            ));
        }
    }
}

fn peer<'a>(server: &'a mut Server, rid: &[u8]) -> Option<&'a mut VipPeer> {
    match server.peers.get_mut(rid) {
        Some(crate::vip::server::Slot::Admitted(p)) => Some(p),
        _ => None,
    }
}

fn arg_value(m: &Incoming, i: usize) -> Value {
    m.args
        .get(i)
        .map(|a| json::parse(a).unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}

/// The prefixes a `subscribe` or `unsubscribe` names: a string or a list of strings.
fn prefixes(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::List(l) => l.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn pubsub(server: &mut Server, m: Incoming) {
    let rid = m.routing_id.clone();
    match op(&m) {
        b"subscribe" => {
            let body = arg_value(&m, 1);
            let bus = body["bus"].as_str().unwrap_or("").to_owned();
            let all_platforms = body["all_platforms"].as_bool().unwrap_or(false);
            let mut refusal = None;
            if let Some(peer) = peer(server, &rid) {
                for prefix in prefixes(&body["prefix"]) {
                    if let Err(e) = subscribe(peer, &bus, &prefix, all_platforms) {
                        refusal = Some(e);
                    }
                }
            }
            match refusal {
                None => reply(
                    server,
                    &m,
                    "pubsub",
                    vec![b"request_response".to_vec(), frame::bool_frame(true)],
                ),
                Some(e) => refused(server, &m, &e),
            }
        }
        b"unsubscribe" => {
            let body = arg_value(&m, 1);
            if let (Some(peer), Value::Map(platforms)) = (peer(server, &rid), &body) {
                for spec in platforms.values() {
                    let bus = spec["bus"].as_str().unwrap_or("").to_owned();
                    let all = spec["prefix"].is_null();
                    let wanted = prefixes(&spec["prefix"]);
                    let gone: Vec<(String, String)> = peer
                        .subscriptions
                        .keys()
                        .filter(|(b, p)| *b == bus && (all || wanted.contains(p)))
                        .cloned()
                        .collect();
                    for key in gone {
                        unsubscribe(peer, &key);
                    }
                }
            }
            reply(
                server,
                &m,
                "pubsub",
                vec![b"request_response".to_vec(), frame::bool_frame(true)],
            );
        }
        b"synchronize" => {
            // ['synchronize', 'connected', {"subscriptions": {platform: {bus: [prefix..]}}}]
            let body = arg_value(&m, 2);
            let mut wanted: HashSet<(String, String)> = HashSet::new();
            if let Value::Map(platforms) = &body["subscriptions"] {
                for buses in platforms.values() {
                    if let Value::Map(buses) = buses {
                        for (bus, list) in buses {
                            for prefix in prefixes(list) {
                                wanted.insert((bus.clone(), prefix));
                            }
                        }
                    }
                }
            }
            if let Some(peer) = peer(server, &rid) {
                let stale: Vec<(String, String)> = peer
                    .subscriptions
                    .keys()
                    .filter(|k| !wanted.contains(*k))
                    .cloned()
                    .collect();
                for key in stale {
                    unsubscribe(peer, &key);
                }
                for (bus, prefix) in wanted {
                    if let Err(e) = subscribe(peer, &bus, &prefix, false) {
                        tracing::info!(
                            identity = peer.identity.as_str(),
                            "vip: subscription refused: {e}"
                        );
                    }
                }
            }
        }
        b"list" => {
            let body = arg_value(&m, 1);
            let listing = match peer(server, &rid) {
                Some(peer) => list(peer, &body),
                None => Vec::new(),
            };
            reply(
                server,
                &m,
                "pubsub",
                vec![
                    b"list_response".to_vec(),
                    frame::value_frame(&Value::List(listing)),
                ],
            );
        }
        b"publish" => publish(server, m),
        _ => reply(
            server,
            &m,
            "pubsub",
            vec![b"error".to_vec(), b"unknown operation".to_vec()],
        ),
    }
}

/// Subscribes the peer (idempotent: VOLTTRON's clients subscribe again on every
/// reconnect and sometimes twice at start). With `all_platforms`, publications from the
/// other platforms of a federation match it too.
fn subscribe(peer: &mut VipPeer, bus: &str, prefix: &str, all_platforms: bool) -> Result<(), String> {
    let key = (bus.to_owned(), prefix.to_owned());
    if peer.subscriptions.contains_key(&key) {
        return Ok(());
    }
    let id = peer.next_subscription();
    peer.endpoint
        .subscribe(
            peer.peer_id,
            &peer.mailbox,
            bus,
            prefix,
            id,
            OverflowPolicy::default(),
            all_platforms,
        )
        .map_err(|e| e.to_string())?;
    peer.subscriptions.insert(key, id);
    Ok(())
}

fn unsubscribe(peer: &mut VipPeer, key: &(String, String)) {
    if let Some(id) = peer.subscriptions.remove(key) {
        peer.endpoint
            .router
            .unsubscribe_id(peer.peer_id, &key.0, &key.1, id);
    }
}

/// `pubsub list`: `[[bus, prefix, is_member], ...]`.
fn list(peer: &VipPeer, body: &Value) -> Vec<Value> {
    let prefix = body["prefix"].as_str().unwrap_or("");
    let subscribed = body["subscribed"].as_bool().unwrap_or(true);
    let reverse = body["reverse"].as_bool().unwrap_or(false);
    let bus = body["bus"].as_str();
    let mut out = Vec::new();
    for info in peer.endpoint.router.subscriptions("") {
        let member = info.peer == peer.identity;
        if subscribed && !member {
            continue;
        }
        if bus.is_some_and(|b| b != info.bus) {
            continue;
        }
        let matches = if reverse {
            prefix.starts_with(&info.subscription)
        } else {
            info.subscription.starts_with(prefix)
        };
        if matches {
            out.push(Value::List(vec![
                Value::from(info.bus),
                Value::from(info.subscription),
                Value::from(member),
            ]));
        }
    }
    out.dedup();
    out
}

fn publish(server: &mut Server, m: Incoming) {
    let rid = m.routing_id.clone();
    let topic = json::latin1(m.args.get(1).map_or(&[][..], Vec::as_slice));
    let body = arg_value(&m, 2);
    let bus = body["bus"].as_str().unwrap_or("").to_owned();
    let headers: Headers = match &body["headers"] {
        Value::Map(h) => h.clone(),
        _ => Map::new(),
    };
    let message = body.get("message").cloned().unwrap_or(Value::Null);
    let result = match (Topic::new(&topic), peer(server, &rid)) {
        (Err(e), _) => Err(format!("invalid topic {topic:?}: {e}")),
        (_, None) => return,
        (Ok(topic), Some(peer)) => peer
            .endpoint
            .publish(&bus, topic, headers, message)
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(count) => reply(
            server,
            &m,
            "pubsub",
            vec![b"request_response".to_vec(), count.to_string().into_bytes()],
        ),
        Err(e) => refused(server, &m, &e),
    }
}

fn to_peer(server: &mut Server, m: Incoming) {
    let recipient = json::latin1(&m.recipient);
    match m.subsystem.as_slice() {
        b"RPC" => rpc(server, m, recipient),
        b"hello" if op(&m) == b"hello" => {
            if services::reachable(&server.ctx, &recipient) {
                let args = vec![
                    b"welcome".to_vec(),
                    b"1.0".to_vec(),
                    text(&recipient),
                    m.routing_id.clone(),
                ];
                server.transmit(frame::outgoing(
                    &m.routing_id,
                    &m.recipient,
                    b"",
                    &m.msg_id,
                    "hello",
                    args,
                ));
            } else {
                unreachable(server, &m);
            }
        }
        b"ping" if op(&m) != b"pong" => {
            if services::reachable(&server.ctx, &recipient) {
                let mut args = m.args.clone();
                args[0] = b"pong".to_vec();
                server.transmit(frame::outgoing(
                    &m.routing_id,
                    &m.recipient,
                    b"",
                    &m.msg_id,
                    "ping",
                    args,
                ));
            } else {
                unreachable(server, &m);
            }
        }
        _ => {
            if services::reachable(&server.ctx, &recipient) {
                let subsystem = m.subsystem.clone();
                server.transmit(frame::error_message(
                    &m.routing_id,
                    &m.msg_id,
                    b"",
                    frame::EPROTONOSUPPORT,
                    "Protocol not supported",
                    &m.recipient,
                    &subsystem,
                ));
            } else {
                unreachable(server, &m);
            }
        }
    }
}

fn unreachable(server: &mut Server, m: &Incoming) {
    server.transmit(frame::error_message(
        &m.routing_id,
        &m.msg_id,
        b"",
        frame::EHOSTUNREACH,
        "No route to host",
        &m.recipient,
        &m.subsystem,
    ));
}

fn rpc(server: &mut Server, m: Incoming, recipient: String) {
    let Some(body) = m.args.first() else {
        return;
    };
    let (items, batch) = match jsonrpc::parse(body) {
        Ok(parsed) => parsed,
        Err(e) => {
            let fault = jsonrpc::Fault::parse_error(&e);
            let reply = jsonrpc::response_err(&Value::Null, &fault);
            send_rpc_reply(server.shared.as_ref(), &m, json::to_vec(&reply));
            return;
        }
    };
    let Some(caller) = peer(server, &m.routing_id).map(|p| p.endpoint.clone()) else {
        return;
    };
    // Answers go back to whoever called this peer; requests need a callee.
    let asks = items
        .iter()
        .any(|i| !matches!(i, Ok(jsonrpc::RpcMessage::Response { .. })));
    if asks && !services::reachable(&server.ctx, &recipient) {
        return unreachable(server, &m);
    }
    let mut pending = Vec::new();
    for item in items {
        match item {
            Ok(jsonrpc::RpcMessage::Request { id, method, args }) => {
                pending.push(services::call(&server.ctx, &caller, &recipient, id, method, args));
            }
            Ok(jsonrpc::RpcMessage::Response { id, result }) => {
                let key = id_key(&id);
                if let Some(peer) = peer(server, &m.routing_id)
                    && let Some(call) = peer.calls.remove(&key)
                {
                    let _ = call.reply.send(result.map_err(|f| f.to_rpc_error(&call.method)));
                }
            }
            Err(invalid) => {
                let reply = jsonrpc::response_err(&invalid.id.unwrap_or(Value::Null), &invalid.fault);
                pending.push(Box::pin(futures::future::ready(Some(reply))));
            }
        }
    }
    if pending.is_empty() {
        return;
    }
    let shared = server.shared.clone();
    let answer = async move {
        let replies: Vec<Value> = futures::future::join_all(pending)
            .await
            .into_iter()
            .flatten()
            .collect();
        if replies.is_empty() {
            return;
        }
        let body = if batch {
            Value::List(replies)
        } else {
            replies.into_iter().next().unwrap_or(Value::Null)
        };
        send_rpc_reply(&shared, &m, json::to_vec(&body));
    };
    server.pending.push(Box::pin(answer));
}

/// The text a JSON-RPC id is matched by.
pub(crate) fn id_key(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_json_string(),
    }
}

fn send_rpc_reply(shared: &crate::vip::server::Shared, m: &Incoming, body: Vec<u8>) {
    shared.send(frame::outgoing(
        &m.routing_id,
        &m.recipient,
        b"",
        &m.msg_id,
        "RPC",
        vec![body],
    ));
}
