//! Frames: the header layout and the messages a bridge connection carries.
//!
//! Each [`Frame`] variant wraps a payload struct of the same name (`Frame::Hello(Hello)`),
//! and each has a [`FrameKind`] byte in the header. The body is the payload alone, without a
//! variant tag: the kind byte says which payload follows, so a router can reject or skip a
//! frame from its header.
//!
//! Frames that expect a reply carry a [`RequestId`] chosen by the sender; the reply (or an
//! [`ErrorFrame`]) echoes it.
//!
//! | request                        | reply                               |
//! |--------------------------------|-------------------------------------|
//! | [`Hello`]                      | [`Welcome`], or [`ErrorFrame`] with no request id |
//! | [`Ping`]                       | [`Pong`]                            |
//! | [`Query`]                      | [`QueryReply`]                      |
//! | [`PeerList`]                   | [`PeerListReply`]                   |
//! | [`Subscribe`], [`Unsubscribe`] | [`Ack`]                             |
//! | [`Publish`]                    | [`PublishAck`]                      |
//! | [`RpcRequest`]                 | [`RpcReply`]                        |
//! | [`RpcNotify`], [`PeerAdded`], [`PeerDropped`], [`Delivery`] | none   |
//!
//! Health traffic is ordinary pub/sub; configuration-store frames come later.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::{Args, Headers, Identity, Publication, RpcError, Topic, TraceContext, Value};
use crate::platform::backpressure::OverflowPolicy;

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"VTRN";

/// The protocol version this crate speaks (header bytes 4..6). Version 2 added the trace
/// context of [`RpcRequest`] and [`RpcNotify`].
pub const PROTOCOL_VERSION: u16 = 3;

/// Length of the fixed header, in bytes.
pub const HEADER_LEN: usize = 12;

/// The default maximum body length: 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// A request id chosen by the sender of a request and echoed by its reply.
pub type RequestId = u64;

/// A parsed frame header. See the [module docs](super) for the byte layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version.
    pub version: u16,
    /// The kind byte (not necessarily a known [`FrameKind`]).
    pub kind: u8,
    /// Flags; reserved, `0` in version 1.
    pub flags: u8,
    /// Body length in bytes.
    pub len: u32,
}

impl Header {
    /// The header as it goes on the wire, magic included.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&self.version.to_be_bytes());
        b[6] = self.kind;
        b[7] = self.flags;
        b[8..12].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    /// Reads the fields of a header without validating them. The magic is not checked.
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            version: u16::from_be_bytes([b[4], b[5]]),
            kind: b[6],
            flags: b[7],
            len: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

macro_rules! frames {
    ($( $(#[$doc:meta])* $name:ident ( $payload:ident ) = $code:literal, )*) => {
        /// The kind byte of a frame header: which payload the body holds.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum FrameKind {
            $( $(#[$doc])* $name = $code, )*
        }

        impl FrameKind {
            /// Every kind, in kind-byte order.
            pub const ALL: &'static [FrameKind] = &[$(FrameKind::$name),*];

            /// The kind for a header byte, if it is one this version knows.
            pub fn from_u8(byte: u8) -> Option<FrameKind> {
                match byte {
                    $( $code => Some(FrameKind::$name), )*
                    _ => None,
                }
            }

            /// The header byte.
            pub fn as_u8(self) -> u8 {
                self as u8
            }

            /// The kind's name, e.g. `"RpcRequest"`.
            pub fn name(self) -> &'static str {
                match self {
                    $( FrameKind::$name => stringify!($name), )*
                }
            }
        }

        /// One message on a bridge connection.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Frame {
            $( $(#[$doc])* $name($payload), )*
        }

        impl Frame {
            /// This frame's kind.
            pub fn kind(&self) -> FrameKind {
                match self {
                    $( Frame::$name(_) => FrameKind::$name, )*
                }
            }

            /// Serializes the payload alone (no variant tag): what a body codec writes.
            pub fn serialize_body<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Frame::$name(p) => p.serialize(serializer), )*
                }
            }

            /// Deserializes the payload of a frame of `kind`: the inverse of
            /// [`serialize_body`](Frame::serialize_body).
            pub fn deserialize_body<'de, D: Deserializer<'de>>(
                kind: FrameKind,
                deserializer: D,
            ) -> Result<Frame, D::Error> {
                match kind {
                    $( FrameKind::$name => $payload::deserialize(deserializer).map(Frame::$name), )*
                }
            }
        }

        $(
            impl From<$payload> for Frame {
                fn from(p: $payload) -> Frame {
                    Frame::$name(p)
                }
            }
        )*
    };
}

frames! {
    /// Agent → platform, first frame: who I am.
    Hello(Hello) = 1,
    /// Platform → agent: the hello was accepted.
    Welcome(Welcome) = 2,
    /// Either way: are you alive?
    Ping(Ping) = 3,
    /// The reply to [`Ping`].
    Pong(Pong) = 4,
    /// Agent → platform: a platform property (VIP `query`), e.g. `instance-name`.
    Query(Query) = 5,
    /// The reply to [`Query`].
    QueryReply(QueryReply) = 6,
    /// Agent → platform: which peers are connected (VIP `peerlist list`)?
    PeerList(PeerList) = 7,
    /// The reply to [`PeerList`].
    PeerListReply(PeerListReply) = 8,
    /// Platform → agent: a peer joined (VIP `peerlist add`).
    PeerAdded(PeerAdded) = 9,
    /// Platform → agent: a peer left (VIP `peerlist drop`).
    PeerDropped(PeerDropped) = 10,
    /// Agent → platform: subscribe to a prefix or pattern.
    Subscribe(Subscribe) = 11,
    /// Agent → platform: remove subscriptions.
    Unsubscribe(Unsubscribe) = 12,
    /// The reply to [`Subscribe`] and [`Unsubscribe`].
    Ack(Ack) = 13,
    /// Agent → platform: publish a message.
    Publish(Publish) = 14,
    /// The reply to [`Publish`]: how many subscriptions it reached.
    PublishAck(PublishAck) = 15,
    /// Platform → agent: a publication matching one of its subscriptions.
    Delivery(Delivery) = 16,
    /// Either way: call a method and expect an [`RpcReply`].
    RpcRequest(RpcRequest) = 17,
    /// The reply to [`RpcRequest`].
    RpcReply(RpcReply) = 18,
    /// Either way: call a method and expect no reply.
    RpcNotify(RpcNotify) = 19,
    /// Either way: a request failed, or the connection is about to be closed.
    Error(ErrorFrame) = 20,
}

/// Payload of [`Frame::Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The highest protocol version the agent speaks.
    pub version: u16,
    /// The identity the agent wants on the bus. When the link authenticated a key (the
    /// Noise handshake), the platform checks that the key may use this identity.
    pub identity: Identity,
    /// The RPC methods the agent exports, with their parameter names: the platform
    /// applies `authz.json` argument restrictions by name to positional arguments too.
    pub exports: Vec<RpcExport>,
}

/// One RPC method an agent exports, in [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcExport {
    /// The method's name.
    pub name: String,
    /// Its parameter names, in order.
    pub params: Vec<String>,
}

/// Payload of [`Frame::Welcome`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version the connection will use.
    pub version: u16,
    /// The platform's instance name.
    pub instance_name: String,
    /// The identity the agent was registered under.
    pub identity: Identity,
}

/// Payload of [`Frame::Ping`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed by the [`Pong`].
    pub id: RequestId,
    /// The peer to ping through the platform (VOLTTRON's `vip.ping(peer)`); `None` pings
    /// the other end of the link itself.
    pub peer: Option<Identity>,
}

/// Payload of [`Frame::Pong`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The [`Ping`]'s id.
    pub id: RequestId,
}

/// Payload of [`Frame::Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Echoed by the reply.
    pub id: RequestId,
    /// The property, e.g. `"instance-name"`.
    pub key: String,
}

/// Payload of [`Frame::QueryReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryReply {
    /// The [`Query`]'s id.
    pub id: RequestId,
    /// The property's value; `None` for an unknown key.
    pub value: Option<Value>,
}

/// Payload of [`Frame::PeerList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerList {
    /// Echoed by the reply.
    pub id: RequestId,
}

/// Payload of [`Frame::PeerListReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerListReply {
    /// The [`PeerList`]'s id.
    pub id: RequestId,
    /// The connected peers, sorted.
    pub peers: Vec<Identity>,
}

/// Payload of [`Frame::PeerAdded`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAdded {
    /// The peer that joined.
    pub peer: Identity,
}

/// Payload of [`Frame::PeerDropped`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDropped {
    /// The peer that left.
    pub peer: Identity,
}

/// The wire form of [`OverflowPolicy`]: what happens to a publication that arrives while
/// the subscriber's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Overflow {
    /// [`OverflowPolicy::DropOldest`].
    DropOldest,
    /// [`OverflowPolicy::DropNewest`].
    DropNewest,
    /// [`OverflowPolicy::Disconnect`].
    Disconnect,
}

impl From<OverflowPolicy> for Overflow {
    fn from(p: OverflowPolicy) -> Overflow {
        match p {
            OverflowPolicy::DropOldest => Overflow::DropOldest,
            OverflowPolicy::DropNewest => Overflow::DropNewest,
            OverflowPolicy::Disconnect => Overflow::Disconnect,
        }
    }
}

impl From<Overflow> for OverflowPolicy {
    fn from(o: Overflow) -> OverflowPolicy {
        match o {
            Overflow::DropOldest => OverflowPolicy::DropOldest,
            Overflow::DropNewest => OverflowPolicy::DropNewest,
            Overflow::Disconnect => OverflowPolicy::Disconnect,
        }
    }
}

/// Payload of [`Frame::Subscribe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// Request id, and the subscription's id: [`Delivery`] frames for it carry this id.
    pub id: RequestId,
    /// The bus; `""` is the default bus.
    pub bus: String,
    /// A VOLTTRON prefix, or an MQTT-style pattern (`+`/`#` levels).
    pub prefix: String,
    /// The overflow policy; `None` for the platform's default.
    pub overflow: Option<Overflow>,
    /// Also publications from the other platforms of a federation (protocol 3).
    pub all_platforms: bool,
}

/// Payload of [`Frame::Unsubscribe`] (VOLTTRON's `unsubscribe(prefix, bus)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// Echoed by the [`Ack`].
    pub id: RequestId,
    /// The bus; `None` for every bus.
    pub bus: Option<String>,
    /// The prefix or pattern; `None` for every subscription on the bus.
    pub prefix: Option<String>,
}

/// Payload of [`Frame::Ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The acknowledged request's id.
    pub id: RequestId,
}

/// Payload of [`Frame::Publish`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publish {
    /// Echoed by the [`PublishAck`].
    pub id: RequestId,
    /// The bus; `""` is the default bus.
    pub bus: String,
    /// The topic.
    pub topic: Topic,
    /// Headers.
    pub headers: Headers,
    /// The message.
    pub message: Value,
}

/// Payload of [`Frame::PublishAck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishAck {
    /// The [`Publish`]'s id.
    pub id: RequestId,
    /// How many subscriptions the publication reached (VOLTTRON's publish result).
    pub reached: u64,
}

/// Payload of [`Frame::Delivery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The id of the [`Subscribe`] that matched.
    pub subscription: RequestId,
    /// The publication.
    pub publication: Publication,
}

/// Payload of [`Frame::RpcRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcRequest {
    /// Echoed by the [`RpcReply`].
    pub id: RequestId,
    /// The callee when an agent sends it; the caller when the platform sends it.
    pub peer: Identity,
    /// The method name.
    pub method: String,
    /// The arguments.
    pub args: Args,
    /// The caller's W3C trace context, if it was traced.
    pub trace: Option<WireTrace>,
    /// The platform of the callee when it is another platform of a federation
    /// (`RpcCall::on_platform`; protocol 3); `None` for this platform.
    pub platform: Option<String>,
}

/// A W3C trace context on the wire (see [`crate::core::trace`]): carried as text, checked
/// where it is used (an invalid one is dropped, as W3C says, never fails the frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTrace {
    /// The `traceparent`.
    pub traceparent: String,
    /// The `tracestate`, if any.
    pub tracestate: Option<String>,
}

impl WireTrace {
    /// The context of `trace`, if any, for a frame.
    pub fn of(trace: Option<&TraceContext>) -> Option<WireTrace> {
        trace.map(|t| WireTrace {
            traceparent: t.traceparent().to_owned(),
            tracestate: t.tracestate().map(str::to_owned),
        })
    }

    /// The checked context of a frame's `trace`; an invalid one is dropped.
    pub fn context(trace: Option<&WireTrace>) -> Option<TraceContext> {
        let t = trace?;
        TraceContext::received(&t.traceparent, t.tracestate.as_deref())
    }
}

/// Payload of [`Frame::RpcReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcReply {
    /// The [`RpcRequest`]'s id.
    pub id: RequestId,
    /// The method's result.
    pub result: Result<Value, RpcError>,
}

/// Payload of [`Frame::RpcNotify`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcNotify {
    /// The callee when an agent sends it; the caller when the platform sends it.
    pub peer: Identity,
    /// The method name.
    pub method: String,
    /// The arguments.
    pub args: Args,
    /// The caller's W3C trace context, if it was traced.
    pub trace: Option<WireTrace>,
}

/// Payload of [`Frame::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// The failed request's id; `None` when the error is about the connection (a bad
    /// [`Hello`], an undecodable frame).
    pub request_id: Option<RequestId>,
    /// What went wrong.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

/// The code of an [`ErrorFrame`]. Sent as a `u16`; unknown codes survive as
/// [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
pub enum ErrorCode {
    /// `1`: no peer with that identity is connected (VIP `EHOSTUNREACH`).
    UnreachablePeer,
    /// `2`: a frame kind or subsystem the receiver does not handle.
    UnknownFrame,
    /// `3`: missing or wrong credentials, or a request the peer may not make.
    Unauthorized,
    /// `4`: a frame above the receiver's maximum size.
    TooLarge,
    /// `5`: another peer already has the identity asked for in [`Hello`].
    DuplicateIdentity,
    /// `6`: a protocol version the receiver does not speak.
    BadVersion,
    /// `7`: a frame that does not decode (bad magic, flags or body).
    Malformed,
    /// Any other code. Converting from a known number gives the named variant instead.
    Other(u16),
}

impl From<u16> for ErrorCode {
    fn from(n: u16) -> ErrorCode {
        match n {
            1 => ErrorCode::UnreachablePeer,
            2 => ErrorCode::UnknownFrame,
            3 => ErrorCode::Unauthorized,
            4 => ErrorCode::TooLarge,
            5 => ErrorCode::DuplicateIdentity,
            6 => ErrorCode::BadVersion,
            7 => ErrorCode::Malformed,
            n => ErrorCode::Other(n),
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(c: ErrorCode) -> u16 {
        match c {
            ErrorCode::UnreachablePeer => 1,
            ErrorCode::UnknownFrame => 2,
            ErrorCode::Unauthorized => 3,
            ErrorCode::TooLarge => 4,
            ErrorCode::DuplicateIdentity => 5,
            ErrorCode::BadVersion => 6,
            ErrorCode::Malformed => 7,
            ErrorCode::Other(n) => n,
        }
    }
}
