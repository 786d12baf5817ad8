//! Runs the `vip_frames` fuzz target's checks (`volttron::__fuzz`) in `cargo test`: over the
//! committed seeds in `fuzz/seeds/vip_frames/`, and over random frames.
#![cfg(feature = "vip")]

use proptest::prelude::*;

/// What the fuzz target does with one input: byte 0 separates the frames in bytes 1...
fn run(data: &[u8]) {
    let Some((&sep, rest)) = data.split_first() else {
        return;
    };
    volttron::__fuzz::vip_frame(rest);
    volttron::__fuzz::vip_frames(rest.split(|&b| b == sep).map(<[u8]>::to_vec).collect());
}

#[test]
fn seeds_pass_the_fuzz_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/vip_frames");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the seeds directory") {
        let path = entry.expect("a seed").path();
        run(&std::fs::read(&path).expect("read a seed"));
        n += 1;
    }
    assert!(n >= 5, "only {n} seeds in {}", dir.display());
}

fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        r#"[\[\]{}",:0-9eE+\-. NaIfinty\\u]{0,48}"#.prop_map(String::into_bytes),
        Just(br#"{"jsonrpc":"2.0","method":"m","params":{"*args":[1],"**kwargs":{}},"id":"1.5"}"#.to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_messages_pass_the_fuzz_checks(frames in proptest::collection::vec(json_ish(), 0..8), vip in any::<bool>()) {
        let mut frames = frames;
        if vip && frames.len() >= 3 {
            frames[2] = b"VIP1".to_vec();
        }
        volttron::__fuzz::vip_frames(frames);
    }

    #[test]
    fn random_rpc_elements_pass_the_fuzz_checks(
        parts in proptest::collection::vec(prop_oneof![
            Just(r#""jsonrpc":"2.0""#), Just(r#""method":"m""#), Just(r#""id":"1""#), Just(r#""id":null"#),
            Just(r#""params":[1,NaN]"#), Just(r#""params":{"*args":[],"**kwargs":{"k":1}}"#),
            Just(r#""params":5"#), Just(r#""result":-Infinity"#), Just(r#""error":{"code":1,"message":"m","data":[1]}"#),
            Just(r#""error":{"code":-32000,"message":"m"}"#), Just(r#""error":3"#), Just(r#""jsonrpc":"1.0""#),
        ], 0..6),
        batch in any::<bool>(),
    ) {
        let element = format!("{{{}}}", parts.join(","));
        let text = if batch { format!("[{element},{element}]") } else { element };
        volttron::__fuzz::vip_frame(text.as_bytes());
    }
}
