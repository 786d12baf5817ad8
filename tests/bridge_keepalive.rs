//! Link keepalive: a link whose other end went silent without closing it (a dead host) is
//! noticed on both ends.
//!
//! * Platform side: a peer that said hello and then neither sends nor answers anything is
//!   pinged, then dropped after three silent keepalive intervals; a peer that answers
//!   the pings stays.
//! * Agent side: a "platform" that welcomes the agent and then goes silent is presumed
//!   gone; the agent reconnects (its `#[on_disconnected]` runs and it connects again).
//!
//! A short keepalive (100 ms) keeps the test fast; every wait is on an event with a
//! deadline.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::codec::{Encoder, FramedRead};
use volttron::bridge::BridgeAddress;
use volttron::bridge::codec::FrameCodec;
use volttron::bridge::frame::*;
use volttron::prelude::*;
use volttron::remote::Remote;

const KEEPALIVE: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(10);

struct Peer {
    frames: FramedRead<tokio::net::unix::OwnedReadHalf, FrameCodec>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl Peer {
    async fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        FrameCodec::default().encode(&frame, &mut buf).unwrap();
        let _ = self.write.write_all(&buf).await;
    }

    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(DEADLINE, self.frames.next())
            .await
            .expect("a frame or EOF in time")
            .and_then(|r| r.ok())
    }
}

fn split(stream: tokio::net::UnixStream) -> Peer {
    let (r, w) = stream.into_split();
    Peer {
        frames: FramedRead::new(r, FrameCodec::default()),
        write: w,
    }
}

async fn hello(path: &std::path::Path, identity: &str) -> Peer {
    let mut peer = split(tokio::net::UnixStream::connect(path).await.unwrap());
    peer.send(Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        identity: Identity::new(identity).unwrap(),
        exports: Vec::new(),
    }))
    .await;
    assert!(matches!(peer.next().await, Some(Frame::Welcome(_))));
    peer
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_pings_a_silent_peer_then_drops_it_and_keeps_one_that_answers() {
    let home = tempfile::tempdir().unwrap();
    let platform = Platform::builder()
        .home(home.path())
        .agent_threads(1)
        .link_keepalive(KEEPALIVE)
        .start()
        .await
        .unwrap();
    let BridgeAddress::Unix(path) = platform.addresses().remove(0) else {
        panic!("a unix socket")
    };

    // One that answers every ping, for the whole test.
    let mut alive = hello(&path, "alive").await;
    let answering = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(frame) = alive.next().await {
            if let Frame::Ping(Ping { id, peer: None }) = frame {
                pings += 1;
                alive.send(Frame::Pong(Pong { id })).await;
            }
        }
        pings
    });

    // One that goes silent: a host that died with the connection open.
    let mut silent = hello(&path, "silent").await;
    let since = Instant::now();
    wait_until("the silent peer is dropped", || {
        !platform.peers().iter().any(|p| p.as_str() == "silent")
    })
    .await;
    let took = since.elapsed();
    assert!(
        took >= KEEPALIVE * 3,
        "dropped after {took:?}, before three silent intervals"
    );
    // It was pinged (twice) before the platform gave up, then the link was closed.
    let mut pings = 0;
    while let Some(frame) = silent.next().await {
        if matches!(frame, Frame::Ping(Ping { peer: None, .. })) {
            pings += 1;
        }
    }
    assert_eq!(pings, 2, "pinged after one and two silent intervals");
    assert_eq!(
        platform.counters().bridge_keepalive_closes,
        1,
        "counted as a keepalive close"
    );

    // The answering peer outlived several keepalive rounds.
    tokio::time::sleep(KEEPALIVE * 6).await;
    assert!(platform.peers().iter().any(|p| p.as_str() == "alive"));
    platform.shutdown().await;
    assert!(
        answering.await.unwrap() >= 3,
        "pinged while idle, kept while answering"
    );
}

/// Tells the test when its link goes down and comes back.
struct Watcher {
    events: mpsc::UnboundedSender<&'static str>,
}

#[volttron::agent]
impl Watcher {
    #[on_connected]
    fn up(&mut self) {
        let _ = self.events.send("connected");
    }

    #[on_disconnected]
    fn down(&mut self) {
        let _ = self.events.send("disconnected");
    }
}

/// Plays a platform: welcomes each connection and answers its peer-list request and its
/// first ping, then (the first connection) goes silent, or (later ones) answers pings.
async fn fake_platform(listener: tokio::net::UnixListener, connections: mpsc::UnboundedSender<usize>) {
    let mut n = 0;
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        n += 1;
        let _ = connections.send(n);
        let silent = n == 1;
        tokio::spawn(async move {
            let mut peer = split(stream);
            let mut identity = None;
            // The agent's first ping is its start-up barrier: answered, so that it counts
            // itself connected; the silent platform "dies" right after.
            let mut answered = 0;
            while let Some(frame) = peer.next().await {
                match frame {
                    Frame::Hello(h) => {
                        identity = Some(h.identity.clone());
                        peer.send(Frame::Welcome(Welcome {
                            version: PROTOCOL_VERSION,
                            instance_name: "fake".into(),
                            identity: h.identity,
                        }))
                        .await;
                    }
                    Frame::PeerList(PeerList { id }) => {
                        peer.send(Frame::PeerListReply(PeerListReply {
                            id,
                            peers: identity.iter().cloned().collect(),
                        }))
                        .await;
                    }
                    Frame::Ping(Ping { id, peer: None }) if !silent || answered == 0 => {
                        answered += 1;
                        peer.send(Frame::Pong(Pong { id })).await
                    }
                    // The silent platform: reads on (the connection stays open) and
                    // answers nothing more.
                    _ => {}
                }
            }
        });
    }
}

async fn next(events: &mut mpsc::UnboundedReceiver<&'static str>) -> Option<&'static str> {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("a link event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_platform_went_silent_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vip.socket");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (conn_tx, mut connections) = mpsc::unbounded_channel();
    tokio::spawn(fake_platform(listener, conn_tx));

    let (tx, mut events) = mpsc::unbounded_channel();
    let agent = Remote::new(BridgeAddress::Unix(path))
        .identity("watcher")
        .keepalive(KEEPALIVE)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .start(Watcher { events: tx })
        .await
        .unwrap();
    assert_eq!(connections.recv().await, Some(1));
    assert_eq!(next(&mut events).await, Some("connected"));
    let since = Instant::now();
    assert_eq!(next(&mut events).await, Some("disconnected"));
    assert!(since.elapsed() >= KEEPALIVE * 3, "{:?}", since.elapsed());
    assert_eq!(
        tokio::time::timeout(DEADLINE, connections.recv()).await.unwrap(),
        Some(2),
        "it connected again"
    );
    assert_eq!(next(&mut events).await, Some("connected"));
    // The second platform answers pings: the link stays up for many intervals.
    let quiet = tokio::time::timeout(KEEPALIVE * 8, events.recv()).await;
    assert!(quiet.is_err(), "no further link change: {quiet:?}");
    agent.shutdown().await;
}

/// Echoes what it is sent.
struct Echo;

#[volttron::agent]
impl Echo {
    #[rpc]
    fn echo(&mut self, text: String) -> String {
        text
    }
}

#[volttron::test]
async fn replies_to_a_peer_that_stopped_reading_are_dropped_once_its_outbox_is_full_and_counted() {
    let home = tempfile::tempdir().unwrap();
    let platform = Platform::builder()
        .home(home.path())
        .agent_threads(1)
        .start()
        .await
        .unwrap();
    platform.spawn("echo", Echo).await.unwrap();
    let BridgeAddress::Unix(path) = platform.addresses().remove(0) else {
        panic!("a unix socket")
    };
    // Asks for 48 replies of 1 MiB each and never reads them: the socket's buffers fill,
    // then the 32 MiB outbox.
    let mut peer = hello(&path, "stalled").await;
    let text = "x".repeat(1 << 20);
    for id in 0..48 {
        peer.send(Frame::RpcRequest(RpcRequest {
            id,
            peer: Identity::new("echo").unwrap(),
            method: "echo".into(),
            args: Args::new().arg(text.as_str()),
            trace: None,
            platform: None,
        }))
        .await;
    }
    wait_until("a reply found the outbox full", || {
        platform.counters().bridge_outbox_full >= 1
    })
    .await;
    drop(peer);
    platform.shutdown().await;
}
