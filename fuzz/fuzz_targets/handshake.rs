//! Fuzzes `server_handshake` with hostile client bytes over a `tokio::io::duplex` pair.
//!
//! Input layout: byte 0 picks the mode (modulo 3), bytes 1.. are `rest`:
//! * 0 — raw: the client sends `rest`, then shuts down its write side;
//! * 1 — after message 1: the client sends a genuine message 1 (made with `snow`), then
//!   `rest`, then shuts down, so the fuzzer works on message 3 and what follows;
//! * 2 — tampered message 3: a genuine client runs messages 1 and 2, XORs its genuine
//!   message 3 (length prefix included) with the start of `rest`, sends it followed by the
//!   remainder of `rest`, then shuts down.
//!
//! The handshake must return within 1 s (a timeout panics) and never panic. In modes 0 and 1
//! it must fail (the client cannot know the server's ephemeral key); in mode 2 it must
//! succeed, with the client's static key, exactly when message 3 arrived unmodified (bytes
//! after message 3 are not the handshake's business).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;
use volttron::auth::keys::KeyPair;
use volttron::bridge::noise::{NOISE_PARAMS, PROLOGUE, server_handshake};

const LIMIT: Duration = Duration::from_secs(1);

/// Length prefix plus the message: 2 + 32, and 2 + 64.
const MSG1_LEN: usize = 2 + 32;
const MSG3_LEN: usize = 2 + 64;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

fn server_keys() -> &'static KeyPair {
    static KEYS: OnceLock<KeyPair> = OnceLock::new();
    KEYS.get_or_init(|| KeyPair::generate().expect("a server key pair"))
}

fn client_keys() -> &'static KeyPair {
    static KEYS: OnceLock<KeyPair> = OnceLock::new();
    KEYS.get_or_init(|| KeyPair::generate().expect("a client key pair"))
}

fn initiator() -> snow::HandshakeState {
    snow::Builder::new(NOISE_PARAMS.parse().expect("valid Noise params"))
        .local_private_key(client_keys().secret.as_bytes())
        .prologue(PROLOGUE)
        .build_initiator()
        .expect("a Noise initiator")
}

/// Writes the initiator's next message (empty payload) with its length prefix into `out`.
fn write_message(state: &mut snow::HandshakeState, out: &mut Vec<u8>) {
    let mut buf = [0u8; 256];
    let n = state.write_message(&[], &mut buf).expect("a handshake message");
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&buf[..n]);
}

/// A genuine message 1, made once.
fn genuine_first_message() -> &'static [u8] {
    static MSG1: OnceLock<Vec<u8>> = OnceLock::new();
    MSG1.get_or_init(|| {
        let mut out = Vec::new();
        write_message(&mut initiator(), &mut out);
        assert_eq!(out.len(), MSG1_LEN);
        out
    })
}

/// Sends `bytes`, shuts down the write side, and reads until the server hangs up. Write
/// errors (the server stopped reading and went away) are fine.
async fn send_and_drain(client: &mut DuplexStream, bytes: &[u8]) {
    if client.write_all(bytes).await.is_ok() {
        let _ = client.shutdown().await;
    }
    let mut sink = Vec::new();
    let _ = client.read_to_end(&mut sink).await;
}

/// Mode 2. Returns whether message 3 went out unmodified (`None` if the client gave up
/// before sending it).
async fn tampering_client(client: &mut DuplexStream, rest: &[u8]) -> Option<bool> {
    let mut state = initiator();
    let mut msg1 = Vec::new();
    write_message(&mut state, &mut msg1);
    let mut msg2 = [0u8; 2 + 96];
    let ok = client.write_all(&msg1).await.is_ok() && client.read_exact(&mut msg2).await.is_ok();
    assert!(ok, "the server did not answer a genuine message 1");
    assert_eq!(u16::from_be_bytes([msg2[0], msg2[1]]), 96, "message 2 length");
    let mut payload = [0u8; 96];
    state
        .read_message(&msg2[2..], &mut payload)
        .expect("the client rejects the server's genuine message 2");
    let mut msg3 = Vec::new();
    write_message(&mut state, &mut msg3);
    assert_eq!(msg3.len(), MSG3_LEN);
    let (mask, tail) = rest.split_at(rest.len().min(MSG3_LEN));
    for (b, m) in msg3.iter_mut().zip(mask) {
        *b ^= m;
    }
    let untouched = mask.iter().all(|&m| m == 0);
    msg3.extend_from_slice(tail);
    send_and_drain(client, &msg3).await;
    Some(untouched)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mode = mode % 3;
    let rt = runtime();
    let keys = server_keys();
    rt.block_on(async {
        let (mut client, mut server) = tokio::io::duplex(256 * 1024);
        let server_side = async move {
            let result = server_handshake(&mut server, keys).await;
            // Hang up so the client's read (and any blocked write) ends.
            drop(server);
            result
        };
        let client_side = async {
            match mode {
                0 => {
                    send_and_drain(&mut client, rest).await;
                    None
                }
                1 => {
                    let mut bytes = genuine_first_message().to_vec();
                    bytes.extend_from_slice(rest);
                    send_and_drain(&mut client, &bytes).await;
                    None
                }
                _ => tampering_client(&mut client, rest).await,
            }
        };
        let (result, untouched) =
            tokio::time::timeout(LIMIT, async { tokio::join!(server_side, client_side) })
                .await
                .unwrap_or_else(|_| panic!("the handshake hung (mode {mode}, {} bytes)", rest.len()));
        match (result, untouched) {
            (Err(e), Some(true)) => panic!("a genuine message 3 failed the handshake: {e}"),
            (Err(_), _) => {}
            (Ok(session), Some(true)) => assert_eq!(
                session.remote_key(),
                &client_keys().public,
                "the handshake completed with the wrong client key"
            ),
            (Ok(session), untouched) => panic!(
                "hostile input completed a handshake (mode {mode}, message 3 untouched: {untouched:?}); \
                 remote key {:?}",
                session.remote_key()
            ),
        }
    });
});
