//! Fuzzes `FrameCodec` as a `tokio_util::codec::Decoder`.
//!
//! Input layout: byte 0 chooses how the rest is split into chunks (0: one chunk; `n > 0`:
//! pseudo-random chunk sizes in `1..=n` from a generator seeded with `n`, so 1 feeds the
//! stream byte by byte); bytes 1.. are the stream.
//!
//! Checks, besides "never panics":
//! * every decoded frame re-encodes and decodes back to an equal frame;
//! * `Ok(None)` leaves the buffer untouched, and a frame or a body error consumes bytes;
//! * the chunked decode yields the same frames and errors as decoding the whole stream at
//!   once (the split must not matter);
//! * after `FrameError::Body` decoding goes on (the stream is documented to stay in sync);
//!   after any other error it stops.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};
use volttron::bridge::codec::{BodyError, FrameCodec, FrameError};
use volttron::bridge::frame::Frame;

/// What one `decode` call produced (the final `Ok(None)` is implied).
#[derive(Debug)]
enum Event {
    Frame(Frame),
    Body(BodyError),
    /// Any other error, by variant (`BadMagic`'s bytes depend on how much has arrived).
    Fatal(String),
}

fn fatal_name(e: &FrameError) -> String {
    match e {
        FrameError::BadMagic { .. } => "BadMagic".into(),
        other => format!("{other:?}"),
    }
}

fn encode(frame: &Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    FrameCodec::default()
        .encode(frame, &mut buf)
        .unwrap_or_else(|e| panic!("a decoded frame does not re-encode: {e}\nframe: {frame:?}"));
    buf
}

/// Equal frames; a frame holding a NaN is not equal to itself, so frames that are not
/// reflexively equal are compared by their encodings instead.
#[allow(clippy::eq_op)] // `a != a` is the NaN test.
fn same_frame(a: &Frame, b: &Frame) -> bool {
    a == b || (a != a && encode(a) == encode(b))
}

/// Re-encodes `frame` and checks it decodes back to an equal frame, consuming everything.
fn check_round_trip(frame: &Frame) {
    let mut buf = encode(frame);
    let encoded = buf.clone();
    let back = FrameCodec::default().decode(&mut buf);
    match back {
        Ok(Some(back)) => {
            assert!(
                same_frame(frame, &back),
                "round trip changed the frame\n decoded: {frame:?}\n   again: {back:?}\n encoding: {:02x?}",
                &encoded[..]
            );
            assert!(
                buf.is_empty(),
                "{} bytes left after a re-encoded frame",
                buf.len()
            );
        }
        other => panic!(
            "a re-encoded frame does not decode: {other:?}\n frame: {frame:?}\n encoding: {:02x?}",
            &encoded[..]
        ),
    }
}

/// Decodes what `src` holds; appends what happens to `events`. Returns `false` once a
/// fatal error ends the stream.
fn drain(codec: &mut FrameCodec, src: &mut BytesMut, events: &mut Vec<Event>) -> bool {
    loop {
        let before = src.len();
        match codec.decode(src) {
            Ok(Some(frame)) => {
                assert!(src.len() < before, "a frame consumed no bytes");
                check_round_trip(&frame);
                events.push(Event::Frame(frame));
            }
            Ok(None) => {
                assert_eq!(src.len(), before, "Ok(None) consumed bytes");
                return true;
            }
            Err(FrameError::Body(e)) => {
                assert!(src.len() < before, "a body error consumed no bytes");
                events.push(Event::Body(e));
            }
            Err(e) => {
                events.push(Event::Fatal(fatal_name(&e)));
                return false;
            }
        }
    }
}

fn decode_chunks(stream: &[u8], chunks: impl Iterator<Item = usize>) -> Vec<Event> {
    let mut codec = FrameCodec::default();
    let mut src = BytesMut::new();
    let mut events = Vec::new();
    let mut rest = stream;
    for n in chunks {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        src.extend_from_slice(chunk);
        if !drain(&mut codec, &mut src, &mut events) {
            break;
        }
    }
    events
}

/// Chunk sizes in `1..=max` from a xorshift generator seeded with `max`.
fn chunk_sizes(max: u8) -> impl Iterator<Item = usize> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(max);
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        1 + (state % u64::from(max)) as usize
    })
}

fn same_events(a: &[Event], b: &[Event]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Event::Frame(x), Event::Frame(y)) => same_frame(x, y),
            (Event::Body(x), Event::Body(y)) => x == y,
            (Event::Fatal(x), Event::Fatal(y)) => x == y,
            _ => false,
        })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let whole = decode_chunks(stream, std::iter::once(stream.len().max(1)));
    if split != 0 {
        let chunked = decode_chunks(stream, chunk_sizes(split));
        assert!(
            same_events(&whole, &chunked),
            "the chunk split changed the outcome\n   whole: {whole:?}\n chunked: {chunked:?}"
        );
    }
});
