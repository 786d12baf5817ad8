//! Encoding frames: the body [`Codec`], [`BincodeCodec`], and [`FrameCodec`] for
//! `tokio_util::codec::{FramedRead, FramedWrite}`.
//!
//! [`FrameCodec`] decodes incrementally: a partial header or body yields `Ok(None)` and the
//! bytes stay buffered. The header is validated as soon as it is complete (the magic as soon
//! as its first byte arrives), and the body length is checked against the maximum frame size
//! *before* any room is reserved for the body, so a hostile length costs nothing.
//!
//! After a [`FrameError::Body`] the stream is still in sync (the frame's bytes were consumed)
//! and the connection may answer with an [`ErrorFrame`](super::frame::ErrorFrame) and go on;
//! after any other error the bytes are left in the buffer and the connection should be closed.
//!
//! The encoder appends header and body to the one destination buffer, so a writer can
//! encode a batch of frames and flush them with a single write.

use bytes::{Buf, BufMut, BytesMut};
use serde::Deserialize;
use tokio_util::codec::{Decoder, Encoder};

use super::frame::{
    DEFAULT_MAX_FRAME, ErrorCode, Frame, FrameKind, HEADER_LEN, Header, MAGIC, PROTOCOL_VERSION,
};

/// Why a body did not encode or decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The payload did not serialize.
    #[error("cannot encode a {kind} body: {message}")]
    Encode {
        /// The frame's kind.
        kind: &'static str,
        /// The serializer's message.
        message: String,
    },
    /// The bytes are not a valid payload of that kind (including an invalid identity or
    /// topic inside it).
    #[error("cannot decode a {kind} body: {message}")]
    Decode {
        /// The header's kind.
        kind: &'static str,
        /// The deserializer's message.
        message: String,
    },
    /// The payload decoded but did not use the whole body.
    #[error("{kind} body has {extra} trailing bytes")]
    TrailingBytes {
        /// The header's kind.
        kind: &'static str,
        /// Bytes left over.
        extra: usize,
    },
}

/// Encodes and decodes frame bodies (payloads without a kind tag). Swappable: the header
/// and framing do not depend on it.
pub trait Codec {
    /// Appends the body of `frame` to `out`.
    fn encode_body(&self, frame: &Frame, out: &mut BytesMut) -> Result<(), BodyError>;

    /// Decodes a whole body whose header said `kind`.
    fn decode_body(&self, kind: FrameKind, body: &[u8]) -> Result<Frame, BodyError>;
}

/// The default body codec: bincode 2 (`standard()` configuration) through serde, in which
/// [`Value`](crate::core::Value) uses its tagged binary form.
///
/// Decoding is hardened against hostile bodies: a length prefix may not claim more memory
/// than a bound derived from the body's size (bincode would otherwise allocate it before
/// noticing the body is short), and [`Value`](crate::core::Value), the only recursive type a
/// frame carries, refuses to nest deeper than
/// [`MAX_BINARY_DEPTH`](crate::core::value::MAX_BINARY_DEPTH) (the decoder recurses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BincodeCodec;

struct BodyRef<'a>(&'a Frame);

impl serde::Serialize for BodyRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_body(s)
    }
}

fn decode_limited<const LIMIT: usize>(kind: FrameKind, body: &[u8]) -> Result<Frame, BodyError> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let mut decoder = bincode::serde::BorrowedSerdeDecoder::from_slice(body, config, ());
    let decode_err = |e: &dyn std::fmt::Display| BodyError::Decode {
        kind: kind.name(),
        message: e.to_string(),
    };
    let frame = Frame::deserialize_body(kind, decoder.as_deserializer()).map_err(|e| decode_err(&e))?;
    // Anything left after the payload is an error; probing one more byte finds out without
    // access to the reader's position.
    match u8::deserialize(decoder.as_deserializer()) {
        Err(bincode::error::DecodeError::UnexpectedEnd { .. }) => Ok(frame),
        Err(e) => Err(decode_err(&e)),
        Ok(_) => {
            let mut extra = 1;
            while u8::deserialize(decoder.as_deserializer()).is_ok() {
                extra += 1;
            }
            Err(BodyError::TrailingBytes {
                kind: kind.name(),
                extra,
            })
        }
    }
}

impl Codec for BincodeCodec {
    fn encode_body(&self, frame: &Frame, out: &mut BytesMut) -> Result<(), BodyError> {
        let mut w = out.writer();
        bincode::serde::encode_into_std_write(BodyRef(frame), &mut w, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| BodyError::Encode {
                kind: frame.kind().name(),
                message: e.to_string(),
            })
    }

    fn decode_body(&self, kind: FrameKind, body: &[u8]) -> Result<Frame, BodyError> {
        // bincode allocates a string's bytes from its length prefix before reading them; the
        // limit (the smallest bucket holding the body) bounds that allocation. A valid body
        // never claims more than its own length.
        const K: usize = 1024;
        match body.len() {
            n if n <= 64 * K => decode_limited::<{ 64 * K }>(kind, body),
            n if n <= 4 * K * K => decode_limited::<{ 4 * K * K }>(kind, body),
            n if n <= 64 * K * K => decode_limited::<{ 64 * K * K }>(kind, body),
            _ => decode_limited::<{ u32::MAX as usize }>(kind, body),
        }
    }
}

/// Why [`FrameCodec`] could not decode or encode a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream does not start with [`MAGIC`] (not a bridge peer, or out of sync).
    #[error("bad magic {got:?}: not a VOLTTRON bridge frame")]
    BadMagic {
        /// The (up to four) bytes found instead.
        got: Vec<u8>,
    },
    /// The header's protocol version is not the one this side speaks.
    #[error("unsupported protocol version {got}; this side speaks {supported}")]
    UnsupportedVersion {
        /// The header's version.
        got: u16,
        /// The version this crate speaks.
        supported: u16,
    },
    /// The header's reserved flags byte is not zero.
    #[error("reserved header flags {flags:#04x} are set")]
    ReservedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// The header's kind byte names no frame kind of this version.
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// The body is longer than the maximum frame size.
    #[error("frame body of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The body length (from the header when decoding).
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The body did not decode (the frame was consumed) or encode.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The transport failed.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// The [`ErrorCode`] to report to the peer before closing, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            FrameError::BadMagic { .. } | FrameError::ReservedFlags { .. } | FrameError::Body(_) => {
                Some(ErrorCode::Malformed)
            }
            FrameError::UnsupportedVersion { .. } => Some(ErrorCode::BadVersion),
            FrameError::UnknownKind { .. } => Some(ErrorCode::UnknownFrame),
            FrameError::TooLarge { .. } => Some(ErrorCode::TooLarge),
            FrameError::Io(_) => None,
        }
    }
}

/// A `tokio_util` [`Decoder`] and [`Encoder`] of [`Frame`]s: header plus a body in codec `C`.
#[derive(Debug, Clone)]
pub struct FrameCodec<C = BincodeCodec> {
    max_frame: usize,
    codec: C,
}

impl Default for FrameCodec<BincodeCodec> {
    fn default() -> Self {
        FrameCodec::new(BincodeCodec)
    }
}

impl<C: Codec> FrameCodec<C> {
    /// A frame codec with body codec `codec` and the [`DEFAULT_MAX_FRAME`] limit.
    pub fn new(codec: C) -> Self {
        FrameCodec {
            max_frame: DEFAULT_MAX_FRAME,
            codec,
        }
    }

    /// Sets the largest body accepted or sent, in bytes (capped at `u32::MAX`, the most a
    /// header can express).
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame.min(u32::MAX as usize);
        self
    }

    /// The largest body accepted or sent, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The body codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Validates a complete header; returns the kind and body length.
    fn check_header(&self, bytes: &[u8; HEADER_LEN]) -> Result<(FrameKind, usize), FrameError> {
        let h = Header::from_bytes(bytes);
        if h.version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion {
                got: h.version,
                supported: PROTOCOL_VERSION,
            });
        }
        if h.flags != 0 {
            return Err(FrameError::ReservedFlags { flags: h.flags });
        }
        let kind = FrameKind::from_u8(h.kind).ok_or(FrameError::UnknownKind { kind: h.kind })?;
        let len = h.len as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        Ok((kind, len))
    }
}

impl<C: Codec> Decoder for FrameCodec<C> {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let seen = src.len().min(MAGIC.len());
        if src[..seen] != MAGIC[..seen] {
            return Err(FrameError::BadMagic {
                got: src[..seen].to_vec(),
            });
        }
        let Some(header) = src
            .get(..HEADER_LEN)
            .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
        else {
            return Ok(None);
        };
        let (kind, len) = self.check_header(header)?;
        let total = HEADER_LEN + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let body = src.split_to(len);
        Ok(Some(self.codec.decode_body(kind, &body)?))
    }
}

impl<C: Codec> Encoder<&Frame> for FrameCodec<C> {
    type Error = FrameError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let start = dst.len();
        dst.put_slice(&[0u8; HEADER_LEN]);
        if let Err(e) = self.codec.encode_body(frame, dst) {
            dst.truncate(start);
            return Err(e.into());
        }
        let len = dst.len() - start - HEADER_LEN;
        if len > self.max_frame {
            dst.truncate(start);
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        let header = Header {
            version: PROTOCOL_VERSION,
            kind: frame.kind().as_u8(),
            flags: 0,
            // `max_frame <= u32::MAX`, so this does not truncate.
            len: len as u32,
        };
        dst[start..start + HEADER_LEN].copy_from_slice(&header.to_bytes());
        Ok(())
    }
}

impl<C: Codec> Encoder<Frame> for FrameCodec<C> {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&frame, dst)
    }
}
