//! Bridge workloads: a platform listening on a Unix socket (and TCP), remote agents
//! attached through it from this process (each with its own local runtime, a real socket
//! between), and the raw connection handshake.
//!
//! - [`BridgeRig`]: a platform, a remote [`RemotePublisher`] and a remote [`RemoteSink`];
//!   [`BridgeRig::pubsub_run`] times one remote-to-remote stream of 200-byte payloads;
//!   [`BridgeRig::rpc_run`] times `echo` calls from the platform handle to the remote sink;
//! - [`connect_uds`] / [`connect_tcp_noise`]: hello to welcome on a fresh connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio_util::codec::{Encoder, FramedRead};
use volttron::auth::keys::KeyPair;
use volttron::bridge::BridgeAddress;
use volttron::bridge::codec::FrameCodec;
use volttron::bridge::frame::{Frame, Hello, PROTOCOL_VERSION};
use volttron::bridge::noise::client_handshake;
use volttron::prelude::*;
use volttron::remote::{Remote, RemoteAgent};

/// Payload size of the remote-to-remote stream, in bytes.
pub(crate) const PAYLOAD: usize = 200;

/// Publishes the stream when told to.
pub(crate) struct RemotePublisher;

#[volttron::agent]
impl RemotePublisher {
    /// Publishes `n` payloads on `bench/data`, then one on `bench/end`; yields to the
    /// executor between chunks and whenever the link's buffer is full.
    #[rpc]
    async fn stream(&mut self, ctx: &AgentContext, n: u64) -> u64 {
        let payload = Value::from("x".repeat(PAYLOAD));
        let topic = Topic::new("bench/data").expect("topic");
        let mut sent = 0;
        while sent < n {
            match ctx.publish(&topic, payload.clone()) {
                Ok(_) => sent += 1,
                Err(PublishError::LinkFull { .. }) => tokio::task::yield_now().await,
                Err(e) => panic!("publish failed: {e}"),
            }
            if sent % super::CHUNK == 0 {
                tokio::task::yield_now().await;
            }
        }
        while let Err(PublishError::LinkFull { .. }) = ctx.publish("bench/end", sent) {
            tokio::task::yield_now().await;
        }
        sent
    }
}

/// What the sink reports at the end marker: payloads counted, and when.
type Done = oneshot::Sender<(u64, Instant)>;

/// Counts payloads until the end marker (the newest publication is never the one a full
/// mailbox drops, so the marker always arrives).
pub(crate) struct RemoteSink {
    count: u64,
    done: Arc<Mutex<Option<Done>>>,
}

#[volttron::agent]
impl RemoteSink {
    #[subscribe("bench/")]
    fn on_data(&mut self, msg: &Publication) {
        if msg.topic.as_str() == "bench/end" {
            if let Some(done) = self.done.lock().take() {
                let _ = done.send((self.count, Instant::now()));
            }
            self.count = 0;
        } else {
            self.count += 1;
        }
    }

    #[rpc]
    fn echo(&mut self, x: u64) -> u64 {
        x
    }
}

/// A platform with a remote publisher and a remote sink.
pub(crate) struct BridgeRig {
    pub(crate) platform: Platform,
    _home: tempfile::TempDir,
    publisher: RemoteAgent,
    sink: RemoteAgent,
    done: Arc<Mutex<Option<Done>>>,
}

impl BridgeRig {
    pub(crate) async fn start() -> BridgeRig {
        let home = tempfile::tempdir().expect("tempdir");
        let platform = Platform::builder()
            .home(home.path())
            .services(false)
            .listen("tcp://127.0.0.1:0".parse().expect("address"))
            .start()
            .await
            .expect("platform");
        let socket = unix_address(&platform);
        let done = Arc::new(Mutex::new(None));
        let sink = Remote::new(socket.clone())
            .identity("bench.sink")
            .start(RemoteSink {
                count: 0,
                done: done.clone(),
            })
            .await
            .expect("sink attaches");
        let publisher = Remote::new(socket)
            .identity("bench.publisher")
            .start(RemotePublisher)
            .await
            .expect("publisher attaches");
        BridgeRig {
            platform,
            _home: home,
            publisher,
            sink,
            done,
        }
    }

    /// Streams `n` payloads remote to remote; returns (delivered per second, delivered).
    pub(crate) async fn pubsub_run(&self, n: u64) -> (f64, u64) {
        let (tx, rx) = oneshot::channel();
        *self.done.lock() = Some(tx);
        let start = Instant::now();
        let sent: u64 = self
            .platform
            .call("bench.publisher", "stream", (n,))
            .timeout(Duration::from_secs(120))
            .returning()
            .await
            .expect("stream");
        assert_eq!(sent, n);
        let (delivered, at) = tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .expect("end marker in time")
            .expect("sink alive");
        (
            delivered as f64 / at.duration_since(start).as_secs_f64(),
            delivered,
        )
    }

    /// `n` sequential `echo` calls from the platform handle to the remote sink; returns
    /// (p50, p99) in microseconds.
    pub(crate) async fn rpc_run(&self, n: usize) -> (f64, f64) {
        let mut rtts = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let t = Instant::now();
            let x: u64 = self
                .platform
                .call("bench.sink", "echo", (i,))
                .returning()
                .await
                .expect("echo");
            rtts.push(t.elapsed().as_nanos() as f64 / 1000.0);
            assert_eq!(x, i);
        }
        rtts.sort_by(f64::total_cmp);
        (rtts[n / 2], rtts[n * 99 / 100])
    }

    pub(crate) fn tcp_address(&self) -> BridgeAddress {
        self.platform
            .addresses()
            .into_iter()
            .find(|a| matches!(a, BridgeAddress::Tcp(_)))
            .expect("listens on TCP")
    }

    pub(crate) fn unix_address(&self) -> BridgeAddress {
        unix_address(&self.platform)
    }

    pub(crate) async fn shutdown(self) {
        self.publisher.shutdown().await;
        self.sink.shutdown().await;
        self.platform.shutdown().await;
    }
}

fn unix_address(platform: &Platform) -> BridgeAddress {
    platform
        .addresses()
        .into_iter()
        .find(|a| matches!(a, BridgeAddress::Unix(_)))
        .expect("listens on the Unix socket")
}

/// Sends a hello on `stream` and reads frames until the welcome.
async fn hello_welcome<S>(stream: S, identity: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut buf = BytesMut::new();
    FrameCodec::default()
        .encode(
            &Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                identity: Identity::new(identity).expect("identity"),
                exports: Vec::new(),
            }),
            &mut buf,
        )
        .expect("encode");
    write.write_all(&buf).await.expect("write hello");
    write.flush().await.expect("flush hello");
    let mut frames = FramedRead::new(read, FrameCodec::default());
    match frames.next().await {
        Some(Ok(Frame::Welcome(_))) => {}
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// Milliseconds from connect to welcome on the Unix socket (no handshake).
pub(crate) async fn connect_uds(address: &BridgeAddress, identity: &str) -> f64 {
    let BridgeAddress::Unix(path) = address else {
        panic!("a Unix address")
    };
    let t = Instant::now();
    let stream = tokio::net::UnixStream::connect(path).await.expect("connect");
    hello_welcome(stream, identity).await;
    t.elapsed().as_secs_f64() * 1000.0
}

/// Milliseconds from connect to welcome over TCP: Noise XX handshake, then hello.
pub(crate) async fn connect_tcp_noise(address: &BridgeAddress, keys: &KeyPair, identity: &str) -> f64 {
    let BridgeAddress::Tcp(addr) = address else {
        panic!("a TCP address")
    };
    let t = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let session = client_handshake(&mut stream, keys, None)
        .await
        .expect("handshake");
    hello_welcome(session.into_stream(stream), identity).await;
    t.elapsed().as_secs_f64() * 1000.0
}
