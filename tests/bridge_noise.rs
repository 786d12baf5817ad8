//! Bridge encryption through the public API: the Noise XX handshake over in-memory and Unix
//! socket streams, the encrypted stream (bulk data, batched small writes, tampering,
//! truncation), hostile handshake input, and the key files behind it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use volttron::auth::keys::*;
use volttron::bridge::noise::*;

const LIMIT: Duration = Duration::from_secs(10);

fn keys() -> KeyPair {
    KeyPair::generate().unwrap()
}

/// Runs both handshakes concurrently over `c` and `s`.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut S,
    s: &mut S,
    client: &KeyPair,
    server: &KeyPair,
    expected: Option<&PublicKey>,
) -> (Result<NoiseSession, NoiseError>, Result<NoiseSession, NoiseError>) {
    let both = async { tokio::join!(client_handshake(c, client, expected), server_handshake(s, server)) };
    tokio::time::timeout(LIMIT, both)
        .await
        .expect("the handshake hung")
}

async fn streams() -> (NoiseStream<DuplexStream>, NoiseStream<DuplexStream>) {
    let (mut c, mut s) = tokio::io::duplex(64 * 1024);
    let (ck, sk) = (keys(), keys());
    let (client, server) = handshake(&mut c, &mut s, &ck, &sk, Some(&sk.public)).await;
    (client.unwrap().into_stream(c), server.unwrap().into_stream(s))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

#[tokio::test]
async fn handshake_over_duplex_learns_both_static_keys() {
    let (mut c, mut s) = tokio::io::duplex(64 * 1024);
    let (ck, sk) = (keys(), keys());
    let (client, server) = handshake(&mut c, &mut s, &ck, &sk, Some(&sk.public)).await;
    let (client, server) = (client.unwrap(), server.unwrap());
    assert_eq!(client.remote_key(), &sk.public);
    assert_eq!(server.remote_key(), &ck.public);
    assert_eq!(client.handshake_hash(), server.handshake_hash());
    assert_eq!(client.into_stream(c).remote_key(), &sk.public);
}

#[tokio::test]
async fn handshake_without_pinning_accepts_any_server() {
    let (mut c, mut s) = tokio::io::duplex(64 * 1024);
    let (ck, sk) = (keys(), keys());
    let (client, server) = handshake(&mut c, &mut s, &ck, &sk, None).await;
    assert_eq!(client.unwrap().remote_key(), &sk.public);
    assert_eq!(server.unwrap().remote_key(), &ck.public);
}

#[tokio::test]
async fn handshake_and_data_over_a_unix_socket_pair() {
    let (mut c, mut s) = tokio::net::UnixStream::pair().unwrap();
    let (ck, sk) = (keys(), keys());
    let (client, server) = handshake(&mut c, &mut s, &ck, &sk, Some(&sk.public)).await;
    let (client, server) = (client.unwrap(), server.unwrap());
    assert_eq!(client.remote_key(), &sk.public);
    assert_eq!(server.remote_key(), &ck.public);
    let (mut client, mut server) = (client.into_stream(c), server.into_stream(s));

    let big = pattern(1 << 20);
    let expected = big.clone();
    let reader = tokio::spawn(async move {
        let mut got = vec![0u8; expected.len()];
        server.read_exact(&mut got).await.unwrap();
        assert!(got == expected, "1 MiB arrived intact");
        server.write_all(b"ack").await.unwrap();
        server.shutdown().await.unwrap();
        server
    });
    client.write_all(&big).await.unwrap();
    client.flush().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(LIMIT, client.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"ack");
    tokio::time::timeout(LIMIT, reader).await.unwrap().unwrap();
}

#[tokio::test]
async fn one_mebibyte_in_one_write_both_ways() {
    let (mut client, mut server) = streams().await;
    let big = pattern(1 << 20);
    let (to_server, to_client) = (big.clone(), big.iter().rev().copied().collect::<Vec<_>>());
    let expected_by_client = to_client.clone();
    let server_task = tokio::spawn(async move {
        let (mut rd, mut wr) = tokio::io::split(&mut server);
        let write = async {
            wr.write_all(&to_client).await.unwrap();
            wr.flush().await.unwrap();
        };
        let read = async {
            let mut got = vec![0u8; to_server.len()];
            rd.read_exact(&mut got).await.unwrap();
            got == to_server
        };
        tokio::join!(write, read).1
    });
    let (mut rd, mut wr) = tokio::io::split(&mut client);
    let write = async {
        wr.write_all(&big).await.unwrap();
        wr.flush().await.unwrap();
    };
    let read = async {
        let mut got = vec![0u8; expected_by_client.len()];
        rd.read_exact(&mut got).await.unwrap();
        got == expected_by_client
    };
    let ((), client_ok) = tokio::time::timeout(LIMIT, async { tokio::join!(write, read) })
        .await
        .unwrap();
    assert!(client_ok, "the client received the server's mebibyte intact");
    assert!(
        server_task.await.unwrap(),
        "the server received the client's mebibyte intact"
    );
}

/// Counts the writes and flushes that reach the underlying stream.
struct Counting<S> {
    inner: S,
    writes: usize,
    flushes: usize,
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if poll.is_ready() {
            self.writes += 1;
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flushes += 1;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[tokio::test]
async fn ten_thousand_small_writes_one_flush_few_syscalls() {
    let (mut c, mut s) = tokio::io::duplex(4 << 20);
    let (ck, sk) = (keys(), keys());
    let (client, server) = handshake(&mut c, &mut s, &ck, &sk, None).await;
    let mut client = client.unwrap().into_stream(Counting {
        inner: c,
        writes: 0,
        flushes: 0,
    });
    let mut server = server.unwrap().into_stream(s);

    let mut expected = Vec::new();
    for i in 0..10_000u32 {
        let frame = format!("frame {i};");
        client.write_all(frame.as_bytes()).await.unwrap();
        expected.extend_from_slice(frame.as_bytes());
    }
    client.flush().await.unwrap();
    let (writes, flushes) = (client.get_ref().writes, client.get_ref().flushes);
    // ~109 KB of plaintext: two records, written together by the flush.
    assert!(writes <= 2, "{writes} writes to the socket for one batch");
    assert_eq!(flushes, 1);
    assert_eq!(client.buffered_write_len(), 0);

    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(LIMIT, server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == expected);

    // And back, the same way.
    for i in 0..10_000u32 {
        server.write_all(&i.to_be_bytes()).await.unwrap();
    }
    server.flush().await.unwrap();
    let mut back = vec![0u8; 40_000];
    tokio::time::timeout(LIMIT, client.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    for (i, chunk) in back.chunks(4).enumerate() {
        assert_eq!(u32::from_be_bytes(chunk.try_into().unwrap()), i as u32);
    }
}

#[tokio::test]
async fn wrong_serverkey_fails_the_client_and_the_server() {
    for unix in [false, true] {
        let (ck, sk, other) = (keys(), keys(), keys());
        let (client, server) = if unix {
            let (mut c, mut s) = tokio::net::UnixStream::pair().unwrap();
            handshake(&mut c, &mut s, &ck, &sk, Some(&other.public)).await
        } else {
            let (mut c, mut s) = tokio::io::duplex(64 * 1024);
            handshake(&mut c, &mut s, &ck, &sk, Some(&other.public)).await
        };
        match client {
            Err(NoiseError::ServerKeyMismatch { expected, actual }) => {
                assert_eq!(expected, other.public);
                assert_eq!(actual, sk.public);
            }
            other => panic!("expected ServerKeyMismatch, got {other:?}"),
        }
        // The client hung up before message 3; the server never learns the client's key.
        assert!(matches!(server, Err(NoiseError::Closed)), "{server:?}");
    }
}

#[tokio::test]
async fn tampered_ciphertext_fails_the_read() {
    let (mut c, mut s) = tokio::io::duplex(64 * 1024);
    let (ck, sk) = (keys(), keys());
    let (client, server) = handshake(&mut c, &mut s, &ck, &sk, None).await;
    let mut client = client.unwrap().into_stream(c);
    client.write_all(b"open the damper to 40%").await.unwrap();
    client.flush().await.unwrap();

    // Take the record off the wire, flip one ciphertext byte, and deliver it to the server's
    // session over a fresh pipe.
    let mut record = vec![0u8; 2 + 22 + 16];
    s.read_exact(&mut record).await.unwrap();
    record[10] ^= 0x01;
    let (mut feed, pipe) = tokio::io::duplex(1024);
    feed.write_all(&record).await.unwrap();
    let mut server = server.unwrap().into_stream(pipe);
    let mut buf = [0u8; 64];
    let err = server.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // Reading again does not skip the bad record.
    assert_eq!(
        server.read(&mut buf).await.unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
}

#[tokio::test]
async fn tampered_length_prefix_fails_the_read() {
    let (mut client, mut server) = streams().await;
    // Straight onto the pipe: a length larger than what follows, then EOF.
    client
        .get_mut()
        .write_all(&[0x01, 0x00, 0xde, 0xad])
        .await
        .unwrap();
    client.get_mut().shutdown().await.unwrap();
    let err = server.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn clean_eof_after_whole_records_is_eof() {
    let (mut client, mut server) = streams().await;
    client.write_all(b"last words").await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
}

/// Feeds `input` to `server_handshake`, closes the write side, and returns the outcome.
async fn feed_server(input: &[u8]) -> Result<NoiseSession, NoiseError> {
    let (mut peer, mut s) = tokio::io::duplex(256 * 1024);
    peer.write_all(input).await.unwrap();
    peer.shutdown().await.unwrap();
    let sk = keys();
    let result = tokio::time::timeout(LIMIT, server_handshake(&mut s, &sk)).await;
    drop(peer);
    result.expect("server_handshake hung on closed input")
}

#[tokio::test]
async fn garbage_and_truncated_handshakes_fail() {
    assert!(matches!(feed_server(b"").await, Err(NoiseError::Closed)));
    assert!(matches!(feed_server(&[0]).await, Err(NoiseError::Closed)));
    assert!(matches!(
        feed_server(&[0, 32, 1, 2, 3]).await,
        Err(NoiseError::Closed)
    ));
    assert!(matches!(feed_server(&[0, 0]).await, Err(NoiseError::Snow(_))));
    assert!(matches!(
        feed_server(&[0, 5, 1, 2, 3, 4, 5]).await,
        Err(NoiseError::Snow(_))
    ));
    // "GE" reads as a length of 18245 bytes, which never arrive.
    assert!(matches!(
        feed_server(b"GET / HTTP/1.1\r\n\r\n").await,
        Err(NoiseError::Closed)
    ));
    // A plausible first message, then nothing: the server answers and waits for message 3.
    let mut first = vec![0, 32];
    first.extend_from_slice(&[7u8; 32]);
    assert!(matches!(feed_server(&first).await, Err(NoiseError::Closed)));
    // ... then a garbage third message.
    first.extend_from_slice(&[0, 64]);
    first.extend_from_slice(&[9u8; 64]);
    assert!(matches!(feed_server(&first).await, Err(NoiseError::Snow(_))));
    // The client's real first message, truncated.
    let (mut c, mut s) = tokio::io::duplex(64 * 1024);
    let ck = keys();
    let client = tokio::spawn(async move { client_handshake(&mut c, &ck, None).await });
    let mut real = vec![0u8; 2 + 32];
    s.read_exact(&mut real).await.unwrap();
    drop(s);
    assert!(client.await.unwrap().is_err());
    assert!(matches!(feed_server(&real[..20]).await, Err(NoiseError::Closed)));
}

#[tokio::test]
async fn the_client_fails_on_a_garbage_server() {
    let (mut c, mut s) = tokio::io::duplex(64 * 1024);
    s.write_all(&[0, 96]).await.unwrap();
    s.write_all(&[0xAB; 96]).await.unwrap();
    let ck = keys();
    let result = tokio::time::timeout(LIMIT, client_handshake(&mut c, &ck, None))
        .await
        .unwrap();
    assert!(matches!(result, Err(NoiseError::Snow(_))), "{result:?}");
}

fn arb_handshake_input() -> impl Strategy<Value = Vec<u8>> {
    let any_bytes = proptest::collection::vec(any::<u8>(), 0..512);
    // A well-formed first message (any 32 bytes are an ephemeral key), then anything.
    let after_first = (proptest::array::uniform32(any::<u8>()), any_bytes.clone()).prop_map(|(e, rest)| {
        let mut v = vec![0, 32];
        v.extend_from_slice(&e);
        v.extend_from_slice(&rest);
        v
    });
    // Two length-prefixed messages of plausible sizes.
    let framed = (
        proptest::collection::vec(any::<u8>(), 0..80),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(a, b)| {
            let mut v = (a.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(&a);
            v.extend_from_slice(&(b.len() as u16).to_be_bytes());
            v.extend_from_slice(&b);
            v
        });
    prop_oneof![any_bytes, after_first, framed]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn server_handshake_never_panics_or_hangs(input in arb_handshake_input()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result = rt.block_on(feed_server(&input));
        prop_assert!(result.is_err(), "garbage completed a handshake");
    }
}

// ---------------------------------------------------------------------------------------------
// Key files

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn credentials_round_trip_with_private_modes() {
    let home = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(home.path());
    assert_eq!(store.dir(), home.path().join("credentials_store"));
    assert_eq!(store.load("platform.driver").unwrap(), None);
    assert_eq!(store.public_key("platform.driver").unwrap(), None);

    let created = store.load_or_create("platform.driver").unwrap();
    assert_eq!(store.load_or_create("platform.driver").unwrap(), created);
    assert_eq!(
        CredentialStore::new(home.path()).load("platform.driver").unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.public_key("platform.driver").unwrap(), Some(created.public));

    let path = store.path("platform.driver").unwrap();
    assert_eq!(path, home.path().join("credentials_store/platform.driver.json"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // VOLTTRON 11's credentials form.
    assert_eq!(json["identity"], "platform.driver");
    assert_eq!(json["publickey"], created.public.to_string());
    assert_eq!(json["secretkey"], created.secret.to_base64());
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        // Traversable, so that agents can read credentials_store/platform.json.
        assert_eq!(mode(store.dir()), 0o711);
    }

    let replacement = keys();
    store.store("platform.driver", &replacement).unwrap();
    assert_eq!(store.load("platform.driver").unwrap(), Some(replacement));
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    assert!(store.remove("platform.driver").unwrap());
    assert!(!store.remove("platform.driver").unwrap());
    assert_eq!(store.load("platform.driver").unwrap(), None);
}

#[test]
fn a_volttron_written_key_file_loads() {
    let home = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(home.path());
    let keys = keys();
    std::fs::create_dir_all(store.dir()).unwrap();
    // Compact, extra field, as another writer might produce it.
    let text = format!(
        r#"{{"secret":"{}","public":"{}","comment":"x"}}"#,
        keys.secret.to_base64(),
        keys.public
    );
    std::fs::write(store.path("listener").unwrap(), text).unwrap();
    assert_eq!(store.load("listener").unwrap(), Some(keys));
}

#[test]
fn malformed_key_files_are_typed_errors_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(home.path());
    std::fs::create_dir_all(store.dir()).unwrap();
    let good = keys();
    let path = store.path("a").unwrap();
    let cases = [
        "not json".to_string(),
        "{".to_string(),
        "[]".to_string(),
        String::new(),
        format!(r#"{{"public": "{}"}}"#, good.public),
        format!(
            r#"{{"public": "short", "secret": "{}"}}"#,
            good.secret.to_base64()
        ),
        format!(
            r#"{{"public": "{}", "secret": "{}"}}"#,
            good.public,
            "*".repeat(43)
        ),
        format!(r#"{{"public": "{}", "secret": 7}}"#, good.public),
    ];
    for text in cases {
        std::fs::write(&path, &text).unwrap();
        for result in [store.load("a").map(|_| ()), store.load_or_create("a").map(|_| ())] {
            let err = result.unwrap_err();
            assert!(matches!(err, KeyError::Malformed { .. }), "{text:?}: {err:?}");
            assert_eq!(err.path(), Some(path.as_path()));
            assert!(err.to_string().contains("a.json"), "{err}");
        }
        // Never overwritten.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    std::fs::write(PlatformKey::path_in(home.path()), "{}").unwrap();
    let err = PlatformKey::load_or_create(home.path()).unwrap_err();
    assert!(err.to_string().contains("keystore.json"), "{err}");

    std::fs::write(home.path().join("known_hosts"), "[1, 2]").unwrap();
    let err = KnownHosts::load(home.path()).unwrap_err();
    assert!(matches!(err, KeyError::Malformed { .. }));
    assert!(err.to_string().contains("known_hosts"), "{err}");
}

#[test]
fn key_text_errors_are_typed() {
    assert!(matches!(
        "abc".parse::<PublicKey>(),
        Err(KeyError::WrongLength { length: 3 })
    ));
    assert!(matches!(
        "$".repeat(43).parse::<PublicKey>(),
        Err(KeyError::BadBase64 { .. })
    ));
    let keys = keys();
    let text = serde_json::to_string(&keys.public).unwrap();
    assert_eq!(text, format!("\"{}\"", keys.public));
    assert_eq!(serde_json::from_str::<PublicKey>(&text).unwrap(), keys.public);
    assert!(serde_json::from_str::<PublicKey>("\"nope\"").is_err());
    assert_eq!(format!("{:?}", keys.secret), "SecretKey(<redacted>)");
}

#[test]
fn path_escaping_identities_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(home.path());
    for identity in ["", ".", "..", "../keystore", "a/b", "/etc/passwd", "a\0b", "a\\b"] {
        for result in [
            store.path(identity).map(|_| ()),
            store.load(identity).map(|_| ()),
            store.load_or_create(identity).map(|_| ()),
            store.store(identity, &keys()),
            store.remove(identity).map(|_| ()),
            store.public_key(identity).map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(KeyError::InvalidIdentity { .. })),
                "{identity:?}: {result:?}"
            );
        }
    }
    assert!(!home.path().join("keystore.json").exists());
    assert!(store.path("platform.agent-1_x").is_ok());
}

#[test]
fn platform_key_is_created_once_and_is_the_serverkey() {
    let home = tempfile::tempdir().unwrap();
    assert!(PlatformKey::load(home.path()).unwrap().is_none());
    let created = PlatformKey::load_or_create(home.path()).unwrap();
    assert_eq!(created.path(), home.path().join("keystore.json"));
    assert_eq!(created.serverkey(), created.key_pair().public);
    let loaded = PlatformKey::load(home.path()).unwrap().unwrap();
    assert_eq!(loaded.key_pair(), created.key_pair());
    assert_eq!(
        PlatformKey::load_or_create(home.path()).unwrap().serverkey(),
        created.serverkey()
    );
    #[cfg(unix)]
    assert_eq!(mode(created.path()), 0o600);
    let derived = KeyPair::from_secret(created.key_pair().secret.clone()).unwrap();
    assert_eq!(&derived, created.key_pair());
}

#[test]
fn known_hosts_persist_across_reload() {
    let home = tempfile::tempdir().unwrap();
    let mut hosts = KnownHosts::load(home.path()).unwrap();
    assert!(hosts.is_empty());
    let (a, b) = (keys().public, keys().public);
    hosts.add("tcp://192.168.1.10:22916", a).unwrap();
    hosts.add("192.168.1.11:22916", b).unwrap();
    assert_eq!(hosts.get("192.168.1.10:22916"), Some(a));

    let mut reloaded = KnownHosts::load(home.path()).unwrap();
    assert_eq!(reloaded.len(), 2);
    assert_eq!(reloaded.get("tcp://192.168.1.10:22916"), Some(a));
    assert_eq!(reloaded.get("192.168.1.11:22916"), Some(b));
    assert_eq!(reloaded.get("192.168.1.12:22916"), None);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("known_hosts")).unwrap()).unwrap();
    assert_eq!(json["192.168.1.10:22916"], a.to_string());
    #[cfg(unix)]
    assert_eq!(mode(reloaded.path()), 0o600);

    // Replacing and removing persist too.
    reloaded.add("192.168.1.10:22916", b).unwrap();
    assert!(reloaded.remove("192.168.1.11:22916").unwrap());
    let again = KnownHosts::load(home.path()).unwrap();
    assert_eq!(again.iter().collect::<Vec<_>>(), [("192.168.1.10:22916", b)]);
}

#[tokio::test]
async fn keys_from_files_drive_a_handshake() {
    let home = tempfile::tempdir().unwrap();
    let platform = PlatformKey::load_or_create(home.path()).unwrap();
    let agent = CredentialStore::new(home.path())
        .load_or_create("listener")
        .unwrap();
    let mut hosts = KnownHosts::load(home.path()).unwrap();
    hosts.add("ipc://@/run/vip.socket", platform.serverkey()).unwrap();
    let pinned = KnownHosts::load(home.path())
        .unwrap()
        .get("ipc://@/run/vip.socket")
        .unwrap();

    let (mut c, mut s) = tokio::net::UnixStream::pair().unwrap();
    let (client, server) = handshake(&mut c, &mut s, &agent, platform.key_pair(), Some(&pinned)).await;
    assert_eq!(client.unwrap().remote_key(), &platform.serverkey());
    assert_eq!(server.unwrap().remote_key(), &agent.public);
}
