//! The bridge wire protocol: round trips of every frame kind, incremental decoding, and
//! typed errors for corrupt input.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};
use volttron::bridge::codec::{BincodeCodec, BodyError, Codec, FrameCodec, FrameError};
use volttron::bridge::frame::*;
use volttron::core::{Args, Identity, Map, Publication, RpcError, Topic, Value};

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Value::UInt),
        any::<f64>()
            .prop_filter("no NaN", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".{0,12}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            proptest::collection::btree_map(".{0,6}", inner, 0..4).prop_map(Value::Map),
        ]
    })
}

fn arb_map() -> impl Strategy<Value = Map> {
    proptest::collection::btree_map("[a-zA-Z-]{0,8}", arb_value(), 0..3)
}

fn arb_identity() -> impl Strategy<Value = Identity> {
    "[A-Za-z0-9_.-]{1,16}".prop_map(|s| Identity::new(s).unwrap())
}

fn arb_topic() -> impl Strategy<Value = Topic> {
    "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,3}".prop_map(|s| Topic::new(s).unwrap())
}

fn arb_args() -> impl Strategy<Value = Args> {
    (proptest::collection::vec(arb_value(), 0..3), arb_map())
        .prop_map(|(positional, named)| Args { positional, named })
}

fn arb_trace() -> impl Strategy<Value = Option<WireTrace>> {
    proptest::option::of(("[0-9a-f-]{0,60}", proptest::option::of(".{0,20}")).prop_map(
        |(traceparent, tracestate)| WireTrace {
            traceparent,
            tracestate,
        },
    ))
}

fn arb_rpc_error() -> impl Strategy<Value = RpcError> {
    let s = || ".{0,10}";
    prop_oneof![
        s().prop_map(|peer| RpcError::UnknownPeer { peer }),
        s().prop_map(|method| RpcError::MethodNotFound { method }),
        (s(), s()).prop_map(|(method, message)| RpcError::InvalidParams { method, message }),
        (s(), s(), s()).prop_map(|(method, message, kind)| RpcError::Remote {
            method,
            message,
            kind
        }),
        (s(), s(), any::<u64>(), 0..1_000_000_000u32).prop_map(|(peer, method, secs, nanos)| {
            RpcError::Timeout {
                peer,
                method,
                timeout: std::time::Duration::new(secs, nanos),
            }
        }),
        s().prop_map(|peer| RpcError::PeerStopped { peer }),
        s().prop_map(|message| RpcError::InvalidReply { message }),
        (s(), s()).prop_map(|(method, message)| RpcError::Unauthorized { method, message }),
    ]
}

fn arb_overflow() -> impl Strategy<Value = Option<Overflow>> {
    proptest::option::of(prop_oneof![
        Just(Overflow::DropOldest),
        Just(Overflow::DropNewest),
        Just(Overflow::Disconnect)
    ])
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let id = any::<u64>;
    let s = || ".{0,12}";
    prop_oneof![
        (
            any::<u16>(),
            arb_identity(),
            proptest::collection::vec((s(), proptest::collection::vec(s(), 0..3)), 0..3)
        )
            .prop_map(|(version, identity, exports)| Frame::from(Hello {
                version,
                identity,
                exports: exports
                    .into_iter()
                    .map(|(name, params)| RpcExport { name, params })
                    .collect(),
            })),
        (any::<u16>(), s(), arb_identity()).prop_map(|(version, instance_name, identity)| Frame::from(
            Welcome {
                version,
                instance_name,
                identity
            }
        )),
        (id(), proptest::option::of(arb_identity())).prop_map(|(id, peer)| Frame::from(Ping { id, peer })),
        id().prop_map(|id| Frame::from(Pong { id })),
        (id(), s()).prop_map(|(id, key)| Frame::from(Query { id, key })),
        (id(), proptest::option::of(arb_value()))
            .prop_map(|(id, value)| Frame::from(QueryReply { id, value })),
        id().prop_map(|id| Frame::from(PeerList { id })),
        (id(), proptest::collection::vec(arb_identity(), 0..4))
            .prop_map(|(id, peers)| Frame::from(PeerListReply { id, peers })),
        arb_identity().prop_map(|peer| Frame::from(PeerAdded { peer })),
        arb_identity().prop_map(|peer| Frame::from(PeerDropped { peer })),
        (id(), s(), s(), arb_overflow(), any::<bool>()).prop_map(
            |(id, bus, prefix, overflow, all_platforms)| {
                Frame::from(Subscribe {
                    id,
                    bus,
                    prefix,
                    overflow,
                    all_platforms,
                })
            }
        ),
        (id(), proptest::option::of(s()), proptest::option::of(s()))
            .prop_map(|(id, bus, prefix)| Frame::from(Unsubscribe { id, bus, prefix })),
        id().prop_map(|id| Frame::from(Ack { id })),
        (id(), s(), arb_topic(), arb_map(), arb_value()).prop_map(|(id, bus, topic, headers, message)| {
            Frame::from(Publish {
                id,
                bus,
                topic,
                headers,
                message,
            })
        }),
        (id(), id()).prop_map(|(id, reached)| Frame::from(PublishAck { id, reached })),
        (id(), arb_identity(), s(), arb_topic(), arb_map(), arb_value()).prop_map(
            |(subscription, sender, bus, topic, headers, message)| Frame::from(Delivery {
                subscription,
                publication: Publication {
                    sender,
                    bus,
                    topic,
                    headers,
                    message,
                    origin: None,
                },
            })
        ),
        (
            id(),
            arb_identity(),
            s(),
            arb_args(),
            arb_trace(),
            proptest::option::of(s())
        )
            .prop_map(|(id, peer, method, args, trace, platform)| {
                Frame::from(RpcRequest {
                    id,
                    peer,
                    method,
                    args,
                    trace,
                    platform,
                })
            }),
        (
            id(),
            prop_oneof![arb_value().prop_map(Ok), arb_rpc_error().prop_map(Err)]
        )
            .prop_map(|(id, result)| Frame::from(RpcReply { id, result })),
        (arb_identity(), s(), arb_args(), arb_trace()).prop_map(|(peer, method, args, trace)| {
            Frame::from(RpcNotify {
                peer,
                method,
                args,
                trace,
            })
        }),
        (proptest::option::of(id()), any::<u16>(), s()).prop_map(|(request_id, code, message)| Frame::from(
            ErrorFrame {
                request_id,
                code: ErrorCode::from(code),
                message
            }
        )),
    ]
}

fn encode(frames: &[Frame]) -> BytesMut {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    for f in frames {
        codec.encode(f, &mut buf).unwrap();
    }
    buf
}

/// Decodes until `Ok(None)` or an error; returns the frames and the final result.
fn decode_all(codec: &mut FrameCodec, buf: &mut BytesMut) -> (Vec<Frame>, Result<(), FrameError>) {
    let mut out = Vec::new();
    loop {
        match codec.decode(buf) {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return (out, Ok(())),
            Err(e) => return (out, Err(e)),
        }
    }
}

fn header(version: u16, kind: u8, flags: u8, len: u32) -> BytesMut {
    BytesMut::from(
        &Header {
            version,
            kind,
            flags,
            len,
        }
        .to_bytes()[..],
    )
}

fn sample() -> Vec<Frame> {
    vec![
        Hello {
            version: PROTOCOL_VERSION,
            identity: Identity::new("listener").unwrap(),
            exports: vec![RpcExport {
                name: "set_point".into(),
                params: vec!["point".into(), "value".into()],
            }],
        }
        .into(),
        Ping { id: 7, peer: None }.into(),
        Publish {
            id: 8,
            bus: String::new(),
            topic: Topic::new("devices/a/b/all").unwrap(),
            headers: Map::new(),
            message: Value::from(vec![1.5, -2.0]),
        }
        .into(),
        RpcReply {
            id: 9,
            result: Err(RpcError::MethodNotFound { method: "x".into() }),
        }
        .into(),
    ]
}

#[test]
fn kinds_are_distinct_and_match_frames() {
    for (i, k) in FrameKind::ALL.iter().enumerate() {
        assert_eq!(FrameKind::from_u8(k.as_u8()), Some(*k));
        assert_eq!(k.as_u8() as usize, i + 1);
    }
    assert_eq!(FrameKind::from_u8(0), None);
    assert_eq!(Frame::from(Ping { id: 1, peer: None }).kind(), FrameKind::Ping);
}

#[test]
fn header_layout() {
    let buf = encode(&[Ping { id: 1, peer: None }.into()]);
    assert_eq!(&buf[0..4], b"VTRN");
    assert_eq!(&buf[4..6], &[0, 3]);
    assert_eq!(buf[6], FrameKind::Ping.as_u8());
    assert_eq!(buf[7], 0);
    assert_eq!(
        u32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize,
        buf.len() - HEADER_LEN
    );
}

#[test]
fn stream_fed_byte_by_byte() {
    let frames = sample();
    let bytes = encode(&frames);
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in bytes.iter() {
        buf.put_u8(*b);
        if let Some(f) = codec.decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
    assert!(buf.is_empty());
}

#[test]
fn truncated_frame_waits_until_complete() {
    let bytes = encode(&sample()[2..3]);
    let mut codec = FrameCodec::default();
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert!(codec.decode(&mut buf).unwrap().is_none(), "cut at {cut}");
        assert_eq!(buf.len(), cut, "nothing consumed at {cut}");
    }
    let mut buf = bytes.clone();
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(sample()[2].clone()));
}

#[test]
fn bad_magic() {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    assert!(matches!(codec.decode(&mut buf), Err(FrameError::BadMagic { got }) if got == b"GET "));
    // Detected from the first wrong byte, before a full header.
    let mut buf = BytesMut::from(&b"VX"[..]);
    assert!(matches!(codec.decode(&mut buf), Err(FrameError::BadMagic { .. })));
    let mut buf = encode(&[Ping { id: 1, peer: None }.into()]);
    buf[3] = b'X';
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, FrameError::BadMagic { .. }));
    assert_eq!(err.code(), Some(ErrorCode::Malformed));
}

#[test]
fn wrong_version() {
    // Versions 1 (before trace contexts) and 2 (before federation) and a future one are
    // all refused.
    for old in [1, 2] {
        let mut buf = header(old, FrameKind::Ping.as_u8(), 0, 1);
        assert!(matches!(
            FrameCodec::default().decode(&mut buf),
            Err(FrameError::UnsupportedVersion { got, .. }) if got == old
        ));
    }
    let mut buf = header(4, FrameKind::Ping.as_u8(), 0, 1);
    let err = FrameCodec::default().decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        FrameError::UnsupportedVersion {
            got: 4,
            supported: PROTOCOL_VERSION
        }
    ));
    assert_eq!(err.code(), Some(ErrorCode::BadVersion));
}

#[test]
fn reserved_flags() {
    let mut buf = header(PROTOCOL_VERSION, FrameKind::Ping.as_u8(), 0x80, 1);
    assert!(matches!(
        FrameCodec::default().decode(&mut buf),
        Err(FrameError::ReservedFlags { flags: 0x80 })
    ));
}

#[test]
fn oversized_length_is_rejected_from_the_header() {
    let mut buf = header(PROTOCOL_VERSION, FrameKind::Publish.as_u8(), 0, u32::MAX);
    let cap = buf.capacity();
    let err = FrameCodec::default().decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, FrameError::TooLarge { len, max } if len == u32::MAX as usize && max == DEFAULT_MAX_FRAME)
    );
    assert_eq!(err.code(), Some(ErrorCode::TooLarge));
    assert_eq!(buf.capacity(), cap, "no room reserved for the body");

    let mut small = FrameCodec::default().with_max_frame(16);
    assert_eq!(small.max_frame(), 16);
    let mut buf = header(PROTOCOL_VERSION, FrameKind::Ping.as_u8(), 0, 17);
    assert!(matches!(
        small.decode(&mut buf),
        Err(FrameError::TooLarge { len: 17, max: 16 })
    ));
    // The encoder refuses too, and leaves the buffer as it was.
    let mut out = BytesMut::from(&b"x"[..]);
    let big = Frame::from(Query {
        id: 1,
        key: "k".repeat(64),
    });
    assert!(matches!(
        small.encode(&big, &mut out),
        Err(FrameError::TooLarge { max: 16, .. })
    ));
    assert_eq!(&out[..], b"x");
}

#[test]
fn unknown_kind() {
    for kind in [0u8, 21, 255] {
        let mut buf = header(PROTOCOL_VERSION, kind, 0, 0);
        let err = FrameCodec::default().decode(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::UnknownKind { kind: k } if k == kind));
        assert_eq!(err.code(), Some(ErrorCode::UnknownFrame));
    }
}

#[test]
fn garbage_body_is_a_body_error_and_the_stream_stays_in_sync() {
    let mut buf = header(PROTOCOL_VERSION, FrameKind::PeerAdded.as_u8(), 0, 3);
    buf.put_slice(&[2, b'a', b' ']); // identity "a " is invalid
    buf.extend_from_slice(&encode(&[Ping { id: 5, peer: None }.into()]));
    let mut codec = FrameCodec::default();
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::Body(BodyError::Decode {
                kind: "PeerAdded",
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Ping { id: 5, peer: None }.into())
    );

    // Truncated payload, trailing bytes, and a string whose length prefix is huge.
    let mut buf = header(PROTOCOL_VERSION, FrameKind::Query.as_u8(), 0, 1);
    buf.put_u8(3);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::Body(BodyError::Decode { .. }))
    ));
    let mut buf = header(PROTOCOL_VERSION, FrameKind::Ping.as_u8(), 0, 4);
    buf.put_slice(&[1, 0, 0, 0]); // id 1, no peer, then two stray bytes
    assert!(matches!(
        codec.decode(&mut buf),
        Err(FrameError::Body(BodyError::TrailingBytes { extra: 2, .. }))
    ));
    let mut buf = header(PROTOCOL_VERSION, FrameKind::Query.as_u8(), 0, 10);
    buf.put_slice(&[1, 253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(codec.decode(&mut buf), Err(FrameError::Body(_))));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // A Query reply whose value is a list nested 100_000 deep: tag 7 (List), length 1, ...
    let mut body = vec![1u8, 1]; // id 1, Some
    for _ in 0..100_000 {
        body.extend_from_slice(&[7, 1]);
    }
    body.push(0); // innermost Null
    let mut buf = header(
        PROTOCOL_VERSION,
        FrameKind::QueryReply.as_u8(),
        0,
        body.len() as u32,
    );
    buf.extend_from_slice(&body);
    let err = FrameCodec::default().decode(&mut buf).unwrap_err();
    assert!(err.to_string().contains("nest deeper"), "{err}");

    // Moderate nesting is fine.
    let mut v = Value::Null;
    for _ in 0..60 {
        v = Value::List(vec![v]);
    }
    let f = Frame::from(QueryReply {
        id: 1,
        value: Some(v),
    });
    let mut buf = encode(std::slice::from_ref(&f));
    assert_eq!(FrameCodec::default().decode(&mut buf).unwrap(), Some(f));
}

#[test]
fn error_codes_round_trip_as_numbers() {
    for n in 0..=20u16 {
        assert_eq!(u16::from(ErrorCode::from(n)), n);
    }
    assert_eq!(ErrorCode::from(4), ErrorCode::TooLarge);
    assert_eq!(ErrorCode::from(999), ErrorCode::Other(999));
}

#[test]
fn body_codec_is_usable_directly() {
    let f = Frame::from(PublishAck { id: 3, reached: 2 });
    let mut body = BytesMut::new();
    BincodeCodec.encode_body(&f, &mut body).unwrap();
    assert_eq!(&body[..], &[3, 2], "no variant tag in the body");
    assert_eq!(BincodeCodec.decode_body(FrameKind::PublishAck, &body).unwrap(), f);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_frame_round_trips(frame in arb_frame()) {
        let mut buf = encode(std::slice::from_ref(&frame));
        let mut codec = FrameCodec::default();
        prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn streams_split_anywhere(frames in proptest::collection::vec(arb_frame(), 1..5), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&frames);
        let cut = cut.index(bytes.len() + 1);
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&bytes[..cut]);
        let (mut got, r) = decode_all(&mut codec, &mut buf);
        prop_assert!(r.is_ok());
        buf.extend_from_slice(&bytes[cut..]);
        let (rest, r) = decode_all(&mut codec, &mut buf);
        prop_assert!(r.is_ok());
        got.extend(rest);
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_all(&mut codec, &mut buf);
    }

    #[test]
    fn arbitrary_bodies_never_panic(kind in 1u8..=20, body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut buf = header(PROTOCOL_VERSION, kind, 0, body.len() as u32);
        buf.extend_from_slice(&body);
        let mut codec = FrameCodec::default();
        let _ = decode_all(&mut codec, &mut buf);
    }
}
