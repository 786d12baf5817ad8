//! The socket bridge for out-of-process agents: a framed, versioned wire protocol.
//!
//! An agent in another process speaks to the platform over a byte stream (TCP, a Unix
//! socket) as a sequence of frames. Each frame is a fixed 12-byte header followed by a body:
//!
//! | bytes  | field    | meaning                                                        |
//! |--------|----------|----------------------------------------------------------------|
//! | 0..4   | magic    | `b"VTRN"` ([`frame::MAGIC`])                                   |
//! | 4..6   | version  | protocol version, `u16` big-endian ([`frame::PROTOCOL_VERSION`]) |
//! | 6      | kind     | [`frame::FrameKind`] as a byte                                 |
//! | 7      | flags    | reserved, must be `0` in version 1                             |
//! | 8..12  | length   | body length in bytes, `u32` big-endian                         |
//! | 12..   | body     | the kind's payload, encoded by a [`codec::Codec`] (bincode)     |
//!
//! * [`frame`]: the header constants, the [`Frame`](frame::Frame) enum and its payloads.
//! * [`codec`]: the body [`Codec`](codec::Codec) trait, [`BincodeCodec`](codec::BincodeCodec),
//!   and [`FrameCodec`](codec::FrameCodec), a `tokio_util` decoder/encoder that enforces the
//!   maximum frame size from the header, before the body is buffered.

pub mod address;
pub mod codec;
pub mod frame;
pub mod keepalive;
pub(crate) mod link;
pub mod noise;
pub mod server;

pub use address::{AddressError, BridgeAddress};
