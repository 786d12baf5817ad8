//! VIP multipart messages as bytes: what a ROUTER socket receives from a peer and sends back.
//!
//! Every frame is opaque bytes here: routing ids, identities and message ids are not assumed
//! to be UTF-8 (an agent replying to an RPC echoes a msg id it parsed as a float, as an 8-byte
//! packed double). Text is turned into frames as latin-1, the client's encoding.
//!
//! | frames (as the ROUTER sees them) | [`parse`] gives |
//! |----------------------------------|-----------------|
//! | `[rid, ""]` | [`Parsed::Probe`] (the client's "add peer" probe) |
//! | `[rid, RECIPIENT, "VIP1", USER, MSG_ID, SUBSYSTEM, ARG...]` | [`Parsed::Message`] |
//! | an empty `rid` | [`FrameError::EmptyRoutingId`] |
//! | any other list of fewer than 6 frames | [`FrameError::TooShort`] |
//! | a protocol frame other than `VIP1` | [`FrameError::BadProtocol`] |
//!
//! | to send | build with |
//! |---------|------------|
//! | `[dest, SENDER, "VIP1", USER, MSG_ID, SUBSYSTEM, ARG...]` | [`outgoing`] |
//! | `[dest, "", "VIP1", USER, MSG_ID, "error", ERRNO, MSG, PEER, SUBSYSTEM]` | [`error_message`] |
//! | an argument frame from text, a [`Value`], an integer, a bool | [`text_frame`], [`value_frame`], [`int_frame`], [`bool_frame`] |
//!
//! The client JSON-decodes every frame it receives ([`json::decode_frame`]), so integers go
//! as decimal text and bools as `true`/`false`, never packed binary as the client itself
//! sends them.

use crate::core::Value;
use crate::core::json;

/// The protocol frame of every VIP message.
pub(crate) const PROTOCOL: &[u8] = b"VIP1";

/// The subsystem of error messages.
pub(crate) const ERROR_SUBSYSTEM: &str = "error";

/// Errno: the recipient is not connected (the client raises `Unreachable`).
pub(crate) const EHOSTUNREACH: i64 = 113;

/// Errno: the recipient has no such subsystem (the client raises `UnknownSubsystem`).
pub(crate) const EPROTONOSUPPORT: i64 = 93;

/// A VIP message as a ROUTER socket receives it from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incoming {
    /// The sending peer's routing id (its VIP identity, as the socket reports it).
    pub(crate) routing_id: Vec<u8>,
    /// The identity the message is for; empty for the router itself.
    pub(crate) recipient: Vec<u8>,
    /// The USER frame; clients send it empty.
    pub(crate) user: Vec<u8>,
    /// The message id, echoed by replies. Arbitrary bytes.
    pub(crate) msg_id: Vec<u8>,
    /// The subsystem (`hello`, `pubsub`, `RPC`, ...).
    pub(crate) subsystem: Vec<u8>,
    /// The frames after the subsystem.
    pub(crate) args: Vec<Vec<u8>>,
}

impl Incoming {
    /// The frames again, as [`parse`] took them.
    pub(crate) fn into_frames(self) -> Vec<Vec<u8>> {
        let mut frames = Vec::with_capacity(6 + self.args.len());
        frames.push(self.routing_id);
        frames.push(self.recipient);
        frames.push(PROTOCOL.to_vec());
        frames.push(self.user);
        frames.push(self.msg_id);
        frames.push(self.subsystem);
        frames.extend(self.args);
        frames
    }
}

/// What [`parse`] made of a multipart message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// `[rid, ""]`: a peer announcing itself.
    Probe {
        /// The peer's routing id.
        routing_id: Vec<u8>,
    },
    /// A VIP message.
    Message(Incoming),
}

/// Why [`parse`] rejected a multipart message. The reference router drops such messages
/// without a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// Fewer than the 6 frames of a VIP message, and not a probe.
    #[error("too few frames for a VIP message: {frames} (at least 6)")]
    TooShort {
        /// How many frames arrived.
        frames: usize,
    },
    /// The protocol frame is not `VIP1`.
    #[error("not a VIP1 message: protocol frame {}", escape(found))]
    BadProtocol {
        /// The protocol frame received.
        found: Vec<u8>,
    },
    /// The routing id frame is empty.
    #[error("empty routing id")]
    EmptyRoutingId,
}

/// At most 16 bytes of `bytes`, escaped for a message.
fn escape(bytes: &[u8]) -> String {
    let shown = bytes.get(..16).unwrap_or(bytes);
    let mut s = format!("\"{}\"", shown.escape_ascii());
    if bytes.len() > shown.len() {
        s.push_str(&format!(" ({} bytes)", bytes.len()));
    }
    s
}

/// Splits a multipart message received on the ROUTER socket. Never panics.
pub(crate) fn parse(frames: Vec<Vec<u8>>) -> Result<Parsed, FrameError> {
    let n = frames.len();
    let mut it = frames.into_iter();
    let Some(routing_id) = it.next() else {
        return Err(FrameError::TooShort { frames: 0 });
    };
    if routing_id.is_empty() {
        return Err(FrameError::EmptyRoutingId);
    }
    if n < 6 {
        if n == 2 && it.next().is_some_and(|f| f.is_empty()) {
            return Ok(Parsed::Probe { routing_id });
        }
        return Err(FrameError::TooShort { frames: n });
    }
    // `n >= 6`: the five `unwrap_or_default`s never default.
    let recipient = it.next().unwrap_or_default();
    let protocol = it.next().unwrap_or_default();
    if protocol != PROTOCOL {
        return Err(FrameError::BadProtocol { found: protocol });
    }
    let user = it.next().unwrap_or_default();
    let msg_id = it.next().unwrap_or_default();
    let subsystem = it.next().unwrap_or_default();
    Ok(Parsed::Message(Incoming {
        routing_id,
        recipient,
        user,
        msg_id,
        subsystem,
        args: it.collect(),
    }))
}

/// A message to send on the ROUTER socket: `[dest, sender, "VIP1", user, msg_id, subsystem,
/// args...]`. `dest` is the receiving peer's routing id; `sender` is what it sees as the
/// peer the message came from (empty for the router). `subsystem` is ASCII (all VIP
/// subsystem names are); it goes as its bytes.
pub(crate) fn outgoing(
    dest: &[u8],
    sender: &[u8],
    user: &[u8],
    msg_id: &[u8],
    subsystem: &str,
    args: Vec<Vec<u8>>,
) -> Vec<Vec<u8>> {
    debug_assert!(
        subsystem.is_ascii(),
        "VIP subsystem names are ASCII: {subsystem:?}"
    );
    let mut frames = Vec::with_capacity(6 + args.len());
    frames.push(dest.to_vec());
    frames.push(sender.to_vec());
    frames.push(PROTOCOL.to_vec());
    frames.push(user.to_vec());
    frames.push(msg_id.to_vec());
    frames.push(subsystem.as_bytes().to_vec());
    frames.extend(args);
    frames
}

/// A VIP error message from the router: `[dest, "", "VIP1", user, msg_id, "error", errnum,
/// errmsg, peer, subsystem]`, exactly 4 args. The client matches it to a pending request by
/// `msg_id` and raises the exception for `errnum` ([`EHOSTUNREACH`], 11 (again),
/// [`EPROTONOSUPPORT`]; `-32001` makes it exit). `errmsg` goes as [`text_frame`].
pub(crate) fn error_message(
    dest: &[u8],
    msg_id: &[u8],
    user: &[u8],
    errnum: i64,
    errmsg: &str,
    peer: &[u8],
    subsystem: &[u8],
) -> Vec<Vec<u8>> {
    outgoing(
        dest,
        b"",
        user,
        msg_id,
        ERROR_SUBSYSTEM,
        vec![
            int_frame(errnum),
            text_frame(errmsg),
            peer.to_vec(),
            subsystem.to_vec(),
        ],
    )
}

/// `s` as a frame, latin-1 encoded as the client expects. A character above U+00FF (which
/// the Python client could not have sent either) becomes `?`, like Python's
/// `encode("latin-1", "replace")`; use [`json::to_latin1`] to refuse it instead. Note that
/// the client JSON-decodes the frame: text that is valid JSON (`123`, `true`) arrives as
/// that value, not as a string; send such values with [`value_frame`] when their type
/// matters.
pub(crate) fn text_frame(s: &str) -> Vec<u8> {
    s.chars()
        .map(|ch| u8::try_from(u32::from(ch)).unwrap_or(b'?'))
        .collect()
}

/// `value` as a frame of JSON text ([`json::to_vec`]); the client reads back the same value
/// (a [`Value::String`] with quotes, so `"123"` stays a string).
pub(crate) fn value_frame(value: &Value) -> Vec<u8> {
    json::to_vec(value)
}

/// An integer as decimal text: the client reads it back as an `int`.
pub(crate) fn int_frame(n: i64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// A bool as `true` or `false`: the client reads it back as a `bool`.
pub(crate) fn bool_frame(b: bool) -> Vec<u8> {
    if b { b"true".to_vec() } else { b"false".to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn probe() {
        assert_eq!(
            parse(frames(&[b"listener", b""])),
            Ok(Parsed::Probe {
                routing_id: b"listener".to_vec()
            })
        );
        assert_eq!(
            parse(frames(&[b"listener", b"x"])),
            Err(FrameError::TooShort { frames: 2 })
        );
        assert_eq!(parse(frames(&[b"", b""])), Err(FrameError::EmptyRoutingId));
    }

    #[test]
    fn too_short() {
        assert_eq!(parse(vec![]), Err(FrameError::TooShort { frames: 0 }));
        assert_eq!(parse(frames(&[b"a"])), Err(FrameError::TooShort { frames: 1 }));
        assert_eq!(
            parse(frames(&[b"a", b"", b"VIP1", b"", b"1"])),
            Err(FrameError::TooShort { frames: 5 })
        );
        assert_eq!(
            FrameError::TooShort { frames: 5 }.to_string(),
            "too few frames for a VIP message: 5 (at least 6)"
        );
    }

    #[test]
    fn bad_protocol_and_empty_rid() {
        assert_eq!(
            parse(frames(&[b"a", b"", b"VIP2", b"", b"1", b"hello"])),
            Err(FrameError::BadProtocol {
                found: b"VIP2".to_vec()
            })
        );
        assert_eq!(
            parse(frames(&[b"a", b"", b"vip1", b"", b"1", b"hello"])),
            Err(FrameError::BadProtocol {
                found: b"vip1".to_vec()
            }),
            "case matters"
        );
        assert_eq!(
            parse(frames(&[b"", b"", b"VIP1", b"", b"1", b"hello"])),
            Err(FrameError::EmptyRoutingId)
        );
        let e = FrameError::BadProtocol {
            found: b"\xff\x00zzzzzzzzzzzzzzzzzzzz".to_vec(),
        };
        assert_eq!(
            e.to_string(),
            r#"not a VIP1 message: protocol frame "\xff\x00zzzzzzzzzzzzzz" (22 bytes)"#
        );
    }

    #[test]
    fn message() {
        let got = parse(frames(&[
            b"listener",
            b"",
            b"VIP1",
            b"",
            b"connect.hello.0",
            b"hello",
            b"hello",
        ]));
        assert_eq!(
            got,
            Ok(Parsed::Message(Incoming {
                routing_id: b"listener".to_vec(),
                recipient: vec![],
                user: vec![],
                msg_id: b"connect.hello.0".to_vec(),
                subsystem: b"hello".to_vec(),
                args: vec![b"hello".to_vec()],
            }))
        );
        // Exactly 6 frames: no args.
        let Ok(Parsed::Message(m)) = parse(frames(&[b"a", b"b", b"VIP1", b"u", b"m", b"RPC"])) else {
            panic!("a 6-frame message");
        };
        assert!(m.args.is_empty());
        assert_eq!(m.recipient, b"b");
    }

    #[test]
    fn binary_ids_round_trip() {
        // An RPC reply's msg id: a packed double, not UTF-8.
        let msg_id = 1796586285.8733369f64.to_le_bytes().to_vec();
        let rid = vec![0x00, 0xff, 0x80, b'x'];
        let input = vec![
            rid.clone(),
            b"platform.driver".to_vec(),
            b"VIP1".to_vec(),
            vec![0xc3, 0x28],
            msg_id.clone(),
            b"RPC".to_vec(),
            b"{}".to_vec(),
            vec![],
        ];
        let Ok(Parsed::Message(m)) = parse(input.clone()) else {
            panic!("binary ids parse");
        };
        assert_eq!(m.routing_id, rid);
        assert_eq!(m.msg_id, msg_id);
        assert_eq!(m.args, vec![b"{}".to_vec(), vec![]]);
        assert_eq!(m.into_frames(), input);
    }

    #[test]
    fn outgoing_layout() {
        let out = outgoing(
            b"listener",
            b"platform.driver",
            b"platform.driver",
            b"\x01\x02",
            "RPC",
            vec![b"{}".to_vec()],
        );
        assert_eq!(
            out,
            frames(&[
                b"listener",
                b"platform.driver",
                b"VIP1",
                b"platform.driver",
                b"\x01\x02",
                b"RPC",
                b"{}"
            ])
        );
        // What we send, a peer's ROUTER would parse back.
        let Ok(Parsed::Message(m)) = parse(out) else {
            panic!("outgoing parses");
        };
        assert_eq!(m.subsystem, b"RPC");
        assert_eq!(m.recipient, b"platform.driver");
    }

    #[test]
    fn error_frames() {
        let out = error_message(
            b"listener",
            b"7.1",
            b"",
            EHOSTUNREACH,
            "Host is unreachable",
            b"nobody",
            b"RPC",
        );
        assert_eq!(
            out,
            frames(&[
                b"listener",
                b"",
                b"VIP1",
                b"",
                b"7.1",
                b"error",
                b"113",
                b"Host is unreachable",
                b"nobody",
                b"RPC",
            ])
        );
        assert_eq!(out.len() - 6, 4, "exactly 4 args");
        assert_eq!(
            error_message(
                b"a",
                b"",
                b"",
                EPROTONOSUPPORT,
                "Protocol not supported",
                b"",
                b"foo"
            )[6],
            b"93"
        );
        assert_eq!(error_message(b"a", b"", b"", -32001, "", b"", b"")[6], b"-32001");
        // The client decodes the errno frame to an int.
        assert_eq!(json::decode_frame(&out[6]), Value::Int(113));
    }

    #[test]
    fn arg_frames() {
        assert_eq!(text_frame("welcome"), b"welcome");
        assert_eq!(text_frame("café"), b"caf\xe9");
        assert_eq!(text_frame("a€b"), b"a?b");
        assert_eq!(text_frame(""), b"");
        assert_eq!(int_frame(0), b"0");
        assert_eq!(int_frame(-7), b"-7");
        assert_eq!(bool_frame(true), b"true");
        assert_eq!(bool_frame(false), b"false");
        assert_eq!(value_frame(&Value::from("123")), br#""123""#);
        assert_eq!(value_frame(&Value::List(vec![Value::Int(1)])), b"[1]");
        // How the client reads them back.
        assert_eq!(json::decode_frame(&int_frame(42)), Value::Int(42));
        assert_eq!(json::decode_frame(&bool_frame(true)), Value::Bool(true));
        assert_eq!(json::decode_frame(&text_frame("café")), Value::from("café"));
        assert_eq!(
            json::decode_frame(&value_frame(&Value::from("123"))),
            Value::from("123")
        );
        assert_eq!(
            json::decode_frame(&text_frame("123")),
            Value::Int(123),
            "the quirk"
        );
    }

    proptest! {
        #[test]
        fn prop_parse_never_panics(fs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..10)) {
            let _ = parse(fs);
        }

        #[test]
        fn prop_messages_round_trip(
            rid in proptest::collection::vec(any::<u8>(), 1..8),
            head in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 4),
            args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..5),
        ) {
            let mut input = vec![rid, head[0].clone(), PROTOCOL.to_vec()];
            input.extend(head[1..].iter().cloned());
            input.extend(args);
            match parse(input.clone()) {
                Ok(Parsed::Message(m)) => prop_assert_eq!(m.into_frames(), input),
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn prop_int_frames_decode(n in any::<i64>()) {
            prop_assert_eq!(json::decode_frame(&int_frame(n)), Value::Int(n));
        }
    }
}
