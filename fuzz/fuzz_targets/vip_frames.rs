//! Fuzzes the VIP codec (`volttron::vip`, behind the `vip` feature) on what a ROUTER socket
//! could receive.
//!
//! Input layout: byte 0 is a separator; bytes 1.. split on it are the frames of one
//! multipart message (so any byte but the separator can appear in a frame, and the empty
//! frame is two separators in a row).
//!
//! Checks, besides "never panics" (in `volttron::__fuzz`):
//! * a message `frame::parse` accepts gives back exactly the frames it was parsed from;
//! * on every frame, and on bytes 1.. as one frame: what `json::parse` accepts writes back
//!   as ASCII text that parses to the same value; what `jsonrpc::parse` accepts re-encodes
//!   to a message that parses to the same elements; an invalid element's error response
//!   parses as an error response.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sep, rest)) = data.split_first() else {
        return;
    };
    volttron::__fuzz::vip_frame(rest);
    let frames: Vec<Vec<u8>> = rest.split(|&b| b == sep).map(<[u8]>::to_vec).collect();
    volttron::__fuzz::vip_frames(frames);
});
