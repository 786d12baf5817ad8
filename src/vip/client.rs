//! A small blocking VIP client: what a VOLTTRON 11 agent's connection does, from Rust.
//!
//! For tests, benchmarks and tools that talk to a VIP router (this platform's listener,
//! or VOLTTRON's own platform) the way VOLTTRON's Python agents do: a DEALER socket whose
//! routing id is the identity, CURVE with the agent's keys and the platform's serverkey,
//! `hello` before anything else.
//!
//! ```no_run
//! use std::time::Duration;
//! use volttron::auth::keys::KeyPair;
//! use volttron::vip::client::VipClient;
//!
//! let keys = KeyPair::generate().unwrap();
//! let serverkey = "19urqQqRqlmoOlGbrAHMTeo1Y6-hy19h12IkWsh8vjo".parse().unwrap();
//! let mut c = VipClient::connect("ipc://@/srv/volttron/run/vip.socket", "probe", &keys, &serverkey).unwrap();
//! c.subscribe("devices/").unwrap();
//! let n = c.publish("devices/campus/b1/all", &serde_json::json!({"t": 21.5}).into()).unwrap();
//! let reply = c.call("platform.health", "get_platform_health", &volttron::Args::new(), Duration::from_secs(4));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::auth::keys::{KeyPair, PublicKey};
use crate::core::{Args, Map, RpcError, Value};
use crate::core::{json, jsonrpc};

/// How long [`VipClient::connect`] waits for the welcome.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong talking to a router.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A ZeroMQ call failed.
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The router answered with a VIP error frame.
    #[error("VIP error {code}: {message}")]
    Vip {
        /// The errno (113 unreachable, 93 unknown subsystem, -32001 unauthorized, ...).
        code: i64,
        /// Its text.
        message: String,
    },
    /// The call failed at the callee.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The answer was not what VIP sends.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// A message received that was not the answer being waited for.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The sender (`""` for the router).
    pub peer: String,
    /// Its message id (a reply, such as a `pong`, carries it back).
    pub msg_id: Vec<u8>,
    /// The subsystem.
    pub subsystem: String,
    /// The arguments, each decoded as VOLTTRON's client decodes frames.
    pub args: Vec<Value>,
}

/// One message as received: `[SENDER, VIP1, USER, MSG_ID, SUBSYSTEM, ARGS...]`.
struct RawMessage {
    peer: String,
    msg_id: Vec<u8>,
    subsystem: String,
    args: Vec<Vec<u8>>,
}

/// A connection to a VIP router. See the module docs.
pub struct VipClient {
    socket: zmq::Socket,
    _context: zmq::Context,
    identity: String,
    next_id: u64,
    /// Messages that arrived while waiting for an answer.
    backlog: VecDeque<Received>,
    /// How long `peers`, `subscribe` and `publish` wait for their answer.
    timeout: Duration,
}

impl std::fmt::Debug for VipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VipClient")
            .field("identity", &self.identity)
            .finish()
    }
}

impl VipClient {
    /// Connects as `identity` with `keys`, checking the router's `serverkey`, and waits
    /// for the welcome.
    pub fn connect(
        address: &str,
        identity: &str,
        keys: &KeyPair,
        serverkey: &PublicKey,
    ) -> Result<Self, ClientError> {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::DEALER)?;
        socket.set_identity(identity.as_bytes())?;
        socket.set_linger(0)?;
        socket.set_sndhwm(6000)?;
        socket.set_rcvhwm(6000)?;
        socket.set_curve_serverkey(serverkey.as_bytes())?;
        socket.set_curve_publickey(keys.public.as_bytes())?;
        socket.set_curve_secretkey(keys.secret.as_bytes())?;
        socket.connect(address)?;
        let mut client = VipClient {
            socket,
            _context: context,
            identity: identity.to_owned(),
            next_id: 1,
            backlog: VecDeque::new(),
            timeout: WELCOME_TIMEOUT,
        };
        let args = client.request("", "hello", vec![b"hello".to_vec()], WELCOME_TIMEOUT)?;
        match args.first().and_then(Value::as_str) {
            Some("welcome") => Ok(client),
            _ => Err(ClientError::Unexpected(format!("{args:?} to hello"))),
        }
    }

    /// How long [`peers`](Self::peers), [`subscribe`](Self::subscribe) and
    /// [`publish`](Self::publish) wait for their answer (default 10 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The identity connected as.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn next_msg_id(&mut self) -> Vec<u8> {
        let id = format!("c.{}", self.next_id);
        self.next_id += 1;
        id.into_bytes()
    }

    /// Sends `[peer, VIP1, user, msg_id, subsystem, args...]`.
    pub fn send(
        &mut self,
        peer: &str,
        subsystem: &str,
        msg_id: &[u8],
        args: Vec<Vec<u8>>,
    ) -> Result<(), ClientError> {
        let mut frames: Vec<Vec<u8>> = vec![
            peer.as_bytes().to_vec(),
            crate::vip::frame::PROTOCOL.to_vec(),
            Vec::new(),
            msg_id.to_vec(),
            subsystem.as_bytes().to_vec(),
        ];
        frames.extend(args);
        self.socket.send_multipart(frames, 0)?;
        Ok(())
    }

    /// Sends raw frames as they are (to test a router with malformed input).
    pub fn send_raw(&mut self, frames: Vec<Vec<u8>>) -> Result<(), ClientError> {
        self.socket.send_multipart(frames, 0)?;
        Ok(())
    }

    /// Receives one message.
    fn recv(&mut self, timeout: Duration) -> Result<Option<RawMessage>, ClientError> {
        let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        if self.socket.poll(zmq::POLLIN, ms)? == 0 {
            return Ok(None);
        }
        let frames = self.socket.recv_multipart(0)?;
        // [SENDER, VIP1, USER, MSG_ID, SUBSYSTEM, ARGS...]
        if frames.len() < 5 || frames[1] != crate::vip::frame::PROTOCOL {
            return Err(ClientError::Unexpected(format!("{} frames", frames.len())));
        }
        let mut it = frames.into_iter();
        let peer = json::latin1(&it.next().unwrap_or_default());
        let _protocol = it.next();
        let _user = it.next();
        let msg_id = it.next().unwrap_or_default();
        let subsystem = json::latin1(&it.next().unwrap_or_default());
        Ok(Some(RawMessage {
            peer,
            msg_id,
            subsystem,
            args: it.collect(),
        }))
    }

    /// Sends a request and waits for the message with its id; others are kept for
    /// [`next_message`](Self::next_message).
    fn request(
        &mut self,
        peer: &str,
        subsystem: &str,
        args: Vec<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ClientError> {
        let msg_id = self.next_msg_id();
        self.send(peer, subsystem, &msg_id, args)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(RawMessage {
                peer: from,
                msg_id: id,
                subsystem: sub,
                args,
            }) = self.recv(left)?
            else {
                return Err(ClientError::Timeout(timeout));
            };
            let values: Vec<Value> = args.iter().map(|a| json::decode_frame(a)).collect();
            if id == msg_id {
                if sub == "error" {
                    return Err(vip_error(&values));
                }
                return Ok(values);
            }
            self.backlog.push_back(Received {
                peer: from,
                msg_id: id,
                subsystem: sub,
                args: values,
            });
        }
    }

    /// The next message not yet taken (a publication, a call to this client, ...).
    pub fn next_message(&mut self, timeout: Duration) -> Result<Option<Received>, ClientError> {
        if let Some(m) = self.backlog.pop_front() {
            return Ok(Some(m));
        }
        Ok(self.recv(timeout)?.map(|m| Received {
            peer: m.peer,
            msg_id: m.msg_id,
            subsystem: m.subsystem,
            args: m.args.iter().map(|a| json::decode_frame(a)).collect(),
        }))
    }

    /// A raw request to the router or a peer, answered by the frames of its reply.
    pub fn ask(
        &mut self,
        peer: &str,
        subsystem: &str,
        args: Vec<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ClientError> {
        self.request(peer, subsystem, args, timeout)
    }

    /// `peerlist list`.
    pub fn peers(&mut self) -> Result<Vec<String>, ClientError> {
        let args = self.request("", "peerlist", vec![b"list".to_vec()], self.timeout)?;
        Ok(args
            .iter()
            .skip(1)
            .map(|v| v.as_str().map_or_else(|| v.to_json_string(), str::to_owned))
            .collect())
    }

    /// Subscribes to a prefix on the default bus.
    pub fn subscribe(&mut self, prefix: &str) -> Result<(), ClientError> {
        let mut body = Map::new();
        body.insert("prefix".into(), Value::from(prefix));
        body.insert("bus".into(), Value::from(""));
        body.insert("all_platforms".into(), Value::from(false));
        self.request(
            "",
            "pubsub",
            vec![b"subscribe".to_vec(), json::to_vec(&Value::Map(body))],
            self.timeout,
        )?;
        Ok(())
    }

    /// Publishes and waits for the count of subscribers reached.
    pub fn publish(&mut self, topic: &str, message: &Value) -> Result<u64, ClientError> {
        let mut body = Map::new();
        body.insert("bus".into(), Value::from(""));
        body.insert("headers".into(), Value::Map(Map::new()));
        body.insert("message".into(), message.clone());
        let topic = json::to_latin1(topic).map_err(|e| ClientError::Unexpected(e.to_string()))?;
        let args = self.request(
            "",
            "pubsub",
            vec![b"publish".to_vec(), topic, json::to_vec(&Value::Map(body))],
            self.timeout,
        )?;
        match args.get(1) {
            Some(Value::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            other => Err(ClientError::Unexpected(format!("publish answered {other:?}"))),
        }
    }

    /// Calls `peer.method(args)` and waits up to `timeout`.
    pub fn call(
        &mut self,
        peer: &str,
        method: &str,
        args: &Args,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let id = Value::from(format!("{}.{}", self.identity, self.next_id));
        let body = jsonrpc::request(&id, method, args);
        let reply = self.request(peer, "RPC", vec![json::to_vec(&body)], timeout)?;
        let first = reply.into_iter().next().unwrap_or(Value::Null);
        let text = json::to_vec(&first);
        let (items, _) = jsonrpc::parse(&text).map_err(|e| ClientError::Unexpected(e.to_string()))?;
        match items.into_iter().next() {
            Some(Ok(jsonrpc::RpcMessage::Response { result, .. })) => {
                result.map_err(|f| ClientError::Rpc(f.to_rpc_error(method)))
            }
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Answers a call received with [`next_message`](Self::next_message) (`args[0]` of
    /// an `RPC` message): replies `result` to its id.
    pub fn reply(&mut self, to: &Received, result: Value) -> Result<(), ClientError> {
        let request = to.args.first().cloned().unwrap_or(Value::Null);
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let body = jsonrpc::response_ok(&id, result);
        let msg_id = self.next_msg_id();
        self.send(&to.peer, "RPC", &msg_id, vec![json::to_vec(&body)])
    }
}

fn vip_error(args: &[Value]) -> ClientError {
    let code = match args.first() {
        Some(Value::Int(n)) => *n,
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let message = args.get(1).and_then(Value::as_str).unwrap_or("").to_owned();
    ClientError::Vip { code, message }
}
