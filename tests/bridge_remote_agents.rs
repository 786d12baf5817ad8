//! Agents attached through the socket bridge see and are seen exactly like in-process ones:
//! peer list, pub/sub and RPC both ways, duplicate identities refused with an error frame,
//! dead links dropped within a second, reconnection after a platform restart.
//!
//! These run a real-clock platform on a Unix socket in a temporary home, with the remote
//! agents in this process (their own local runtime, a real socket between). Every wait is
//! on an explicit event (a reply, a message on a channel) with a deadline.

use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::codec::{Encoder, FramedRead};
use volttron::bridge::BridgeAddress;
use volttron::bridge::codec::FrameCodec;
use volttron::bridge::frame::*;
use volttron::prelude::*;
use volttron::remote::{Remote, RemoteError};

const DEADLINE: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, limit: Duration, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {limit:?}"))
}

async fn platform(home: &std::path::Path) -> Platform {
    Platform::builder()
        .home(home)
        .agent_threads(1)
        .hello_timeout(Duration::from_millis(500))
        .start()
        .await
        .expect("platform starts")
}

fn socket(p: &Platform) -> BridgeAddress {
    p.addresses()
        .into_iter()
        .next()
        .expect("listens on the default socket")
}

/// An in-process agent.
struct Local {
    heard: mpsc::UnboundedSender<String>,
}

#[volttron::agent]
impl Local {
    #[rpc]
    fn double(&mut self, x: i64) -> i64 {
        x * 2
    }

    #[subscribe("from_remote/")]
    fn on_remote(&mut self, msg: &Publication) {
        let _ = self
            .heard
            .send(format!("{} {} {}", msg.sender, msg.topic, msg.message));
    }

    #[on_peerlist]
    fn peers(&mut self, event: &PeerEvent) {
        let _ = self.heard.send(format!("{event:?}"));
    }
}

/// The agent that runs out of process.
struct Meter {
    events: mpsc::UnboundedSender<String>,
}

#[volttron::agent]
impl Meter {
    #[subscribe("to_remote/")]
    fn on_local(&mut self, msg: &Publication) {
        let _ = self
            .events
            .send(format!("{} {} {}", msg.sender, msg.topic, msg.message));
    }

    #[rpc]
    fn triple(&mut self, x: i64) -> i64 {
        x * 3
    }

    /// Calls the in-process agent from the remote one.
    #[rpc]
    async fn ask_local(&mut self, ctx: &AgentContext, x: i64) -> Result<i64, RpcError> {
        ctx.call("local", "double", (x,)).returning().await
    }

    #[rpc]
    fn emit(&mut self, ctx: &AgentContext, topic: String, value: i64) -> Result<(), String> {
        ctx.publish(topic.as_str(), value)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[rpc]
    fn facts(&mut self, ctx: &AgentContext) -> (Value, Vec<String>) {
        let peers = ctx.peers().iter().map(|p| p.to_string()).collect();
        (ctx.query("instance-name").unwrap_or_default(), peers)
    }

    #[rpc]
    async fn ping_local(&mut self, ctx: &AgentContext) -> Result<(), RpcError> {
        ctx.ping("local").await
    }

    #[on_peerlist]
    fn peers(&mut self, event: &PeerEvent) {
        let _ = self.events.send(format!("{event:?}"));
    }

    #[on_connected]
    fn up(&mut self) {
        let _ = self.events.send("connected".into());
    }

    #[on_disconnected]
    fn down(&mut self) {
        let _ = self.events.send("disconnected".into());
    }
}

async fn expect(rx: &mut mpsc::UnboundedReceiver<String>, wanted: &str) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let got = rx.recv().await.expect("sender alive");
            if got == wanted {
                return;
            }
            seen.push(got);
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "event {wanted:?} not within {DEADLINE:?}; saw {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_and_local_agents_see_each_other_alike() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let (local_tx, mut local_rx) = mpsc::unbounded_channel();
    p.spawn("local", Local { heard: local_tx }).await.unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let remote = Remote::new(socket(&p))
        .identity("remote.meter")
        .start(Meter { events: tx })
        .await
        .expect("remote agent attaches");
    expect(&mut rx, "connected").await;
    // The in-process agent saw it join, as it would an in-process one.
    expect(&mut local_rx, "Added(\"remote.meter\")").await;
    assert!(p.peers().iter().any(|i| i.as_str() == "remote.meter"));
    assert!(
        p.subscriptions("to_remote/")
            .iter()
            .any(|s| s.peer.as_str() == "remote.meter"),
        "the remote subscription is in the platform's table"
    );

    // RPC platform -> remote, remote -> in-process (through the platform), ping both ways.
    let six: i64 = p.call("remote.meter", "triple", (2,)).returning().await.unwrap();
    assert_eq!(six, 6);
    let ten: i64 = p
        .call("remote.meter", "ask_local", (5,))
        .returning()
        .await
        .unwrap();
    assert_eq!(ten, 10);
    p.ping("remote.meter").await.unwrap();
    p.call("remote.meter", "ping_local", ()).await.unwrap();
    let missing = p.call("remote.meter", "nope", ()).await.unwrap_err();
    assert!(matches!(missing, RpcError::MethodNotFound { .. }), "{missing:?}");

    // Pub/sub both ways.
    p.publish("to_remote/reading", 7).unwrap();
    expect(&mut rx, "platform to_remote/reading 7").await;
    p.call("remote.meter", "emit", ("from_remote/temp", 21))
        .await
        .unwrap();
    expect(&mut local_rx, "remote.meter from_remote/temp 21").await;

    // Query and peer list from the remote side; peer events reach it.
    let (instance, peers): (String, Vec<String>) =
        p.call("remote.meter", "facts", ()).returning().await.unwrap();
    assert_eq!(instance, "volttron1");
    assert!(peers.contains(&"local".to_owned()), "{peers:?}");
    assert!(
        peers.contains(&"remote.meter".to_owned()),
        "as in-process, the list includes itself"
    );
    let (late_tx, _late_rx) = mpsc::unbounded_channel();
    p.spawn("late", Local { heard: late_tx }).await.unwrap();
    expect(&mut rx, "Added(\"late\")").await;
    p.stop_agent("late").await;
    expect(&mut rx, "Dropped(\"late\")").await;

    // The remote agent stops: it leaves the platform like any agent.
    remote.shutdown().await;
    expect(&mut local_rx, "Dropped(\"remote.meter\")").await;
    assert!(p.subscriptions("to_remote/").is_empty());
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_identity_is_refused_with_an_error_frame() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    p.spawn("taken", Local { heard: tx }).await.unwrap();

    let (tx, _rx) = mpsc::unbounded_channel();
    let err = Remote::new(socket(&p))
        .identity("taken")
        .start(Meter { events: tx })
        .await
        .unwrap_err();
    match err {
        RemoteError::Refused { code, message } => {
            assert_eq!(code, ErrorCode::DuplicateIdentity);
            assert!(message.contains("already in use"), "{message}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    p.shutdown().await;
}

/// A hand-driven client: the platform's view of a bridged peer, frame by frame.
struct RawClient {
    frames: FramedRead<tokio::net::unix::OwnedReadHalf, FrameCodec>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl RawClient {
    async fn connect(addr: &BridgeAddress) -> RawClient {
        let BridgeAddress::Unix(path) = addr else {
            panic!("unix address")
        };
        let stream = tokio::net::UnixStream::connect(path).await.unwrap();
        let (r, w) = stream.into_split();
        RawClient {
            frames: FramedRead::new(r, FrameCodec::default()),
            write: w,
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        FrameCodec::default().encode(&frame, &mut buf).unwrap();
        self.write.write_all(&buf).await.unwrap();
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        // The platform may already have closed the link; that is what some tests want.
        let _ = self.write.write_all(bytes).await;
    }

    async fn next(&mut self) -> Option<Frame> {
        within("a frame or EOF", DEADLINE, self.frames.next())
            .await
            .and_then(|r| r.ok())
    }

    async fn hello(addr: &BridgeAddress, identity: &str) -> RawClient {
        let mut c = RawClient::connect(addr).await;
        c.send(Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            identity: Identity::new(identity).unwrap(),
            exports: Vec::new(),
        }))
        .await;
        match c.next().await {
            Some(Frame::Welcome(w)) => assert_eq!(w.identity.as_str(), identity),
            other => panic!("expected a welcome, got {other:?}"),
        }
        c
    }

    /// Reads until the platform closes the link; returns the last error frame seen.
    async fn until_closed(&mut self) -> Option<ErrorFrame> {
        let mut last = None;
        while let Some(frame) = self.next().await {
            if let Frame::Error(e) = frame {
                last = Some(e);
            }
        }
        last
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_hello_gets_an_explicit_error_frame() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let addr = socket(&p);
    let _first = RawClient::hello(&addr, "dup").await;
    let mut second = RawClient::connect(&addr).await;
    second
        .send(Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            identity: Identity::new("dup").unwrap(),
            exports: Vec::new(),
        }))
        .await;
    let e = second
        .until_closed()
        .await
        .expect("an error frame before the close");
    assert_eq!(e.code, ErrorCode::DuplicateIdentity);
    assert_eq!(e.request_id, None);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_link_drops_the_peer_and_its_subscriptions_within_a_second() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    p.spawn("local", Local { heard: tx }).await.unwrap();
    let addr = socket(&p);
    let mut c = RawClient::hello(&addr, "doomed").await;
    c.send(Frame::Subscribe(Subscribe {
        id: 1,
        bus: String::new(),
        prefix: "devices".into(),
        overflow: None,
        all_platforms: false,
    }))
    .await;
    assert_eq!(c.next().await, Some(Frame::Ack(Ack { id: 1 })));
    expect(&mut rx, "Added(\"doomed\")").await;
    assert_eq!(p.subscriptions("devices").len(), 1);

    // The process dies: its socket closes, mid-frame for good measure.
    c.send_raw(&MAGIC).await;
    drop(c);
    within(
        "peerlist drop",
        Duration::from_secs(1),
        expect(&mut rx, "Dropped(\"doomed\")"),
    )
    .await;
    assert!(p.subscriptions("devices").is_empty());
    assert!(!p.peers().iter().any(|i| i.as_str() == "doomed"));
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_on_a_dead_remote_fail_at_once() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let addr = socket(&p);
    let mut c = RawClient::hello(&addr, "silent").await;
    let call = tokio::spawn({
        let p = p.clone();
        async move { p.call("silent", "anything", ()).await }
    });
    match c.next().await {
        Some(Frame::RpcRequest(r)) => assert_eq!(r.method, "anything"),
        other => panic!("expected the request, got {other:?}"),
    }
    drop(c);
    let result = within("the failed call", Duration::from_secs(1), call)
        .await
        .unwrap();
    assert!(matches!(result, Err(RpcError::PeerStopped { .. })), "{result:?}");
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_agent_reconnects_after_the_platform_restarts() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let addr = socket(&p);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let remote = Remote::new(addr.clone())
        .identity("survivor")
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .start(Meter { events: tx })
        .await
        .unwrap();
    expect(&mut rx, "connected").await;
    p.shutdown().await;
    expect(&mut rx, "disconnected").await;
    assert!(!remote.is_connected());

    let p = platform(home.path()).await;
    expect(&mut rx, "connected").await;
    assert!(remote.is_connected());
    // Subscriptions were sent again, and RPC reaches it.
    p.publish("to_remote/again", 1).unwrap();
    expect(&mut rx, "platform to_remote/again 1").await;
    let x: i64 = p.call("survivor", "triple", (3,)).returning().await.unwrap();
    assert_eq!(x, 9);
    remote.shutdown().await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_that_connection() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let addr = socket(&p);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let remote = Remote::new(addr.clone())
        .identity("bystander")
        .start(Meter { events: tx })
        .await
        .unwrap();
    expect(&mut rx, "connected").await;

    // Garbage instead of a hello.
    let mut c = RawClient::connect(&addr).await;
    c.send_raw(b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(c.until_closed().await.map(|e| e.code), Some(ErrorCode::Malformed));

    // A header announcing a body larger than the maximum: refused from the header.
    let mut c = RawClient::hello(&addr, "big").await;
    let header = Header {
        version: PROTOCOL_VERSION,
        kind: FrameKind::Publish.as_u8(),
        flags: 0,
        len: u32::MAX,
    };
    c.send_raw(&header.to_bytes()).await;
    assert_eq!(c.until_closed().await.map(|e| e.code), Some(ErrorCode::TooLarge));

    // A frame only the platform sends.
    let mut c = RawClient::hello(&addr, "confused").await;
    c.send(Frame::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        instance_name: "x".into(),
        identity: Identity::new("confused").unwrap(),
    }))
    .await;
    assert_eq!(
        c.until_closed().await.map(|e| e.code),
        Some(ErrorCode::UnknownFrame)
    );

    // A body that does not decode.
    let mut c = RawClient::hello(&addr, "garbled").await;
    let header = Header {
        version: PROTOCOL_VERSION,
        kind: FrameKind::Publish.as_u8(),
        flags: 0,
        len: 3,
    };
    c.send_raw(&header.to_bytes()).await;
    c.send_raw(&[0xff, 0xff, 0xff]).await;
    assert_eq!(c.until_closed().await.map(|e| e.code), Some(ErrorCode::Malformed));

    // A second hello.
    let mut c = RawClient::hello(&addr, "twice").await;
    c.send(Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        identity: Identity::new("twice").unwrap(),
        exports: Vec::new(),
    }))
    .await;
    assert_eq!(
        c.until_closed().await.map(|e| e.code),
        Some(ErrorCode::UnknownFrame)
    );

    // A client that connects and says nothing is closed after the hello timeout.
    let mut c = RawClient::connect(&addr).await;
    assert!(
        within("the hello timeout", Duration::from_secs(5), c.frames.next())
            .await
            .is_none(),
        "nothing but a close"
    );

    // The well-behaved remote agent was not disturbed.
    let x: i64 = p.call("bystander", "triple", (1,)).returning().await.unwrap();
    assert_eq!(x, 3);
    for gone in ["big", "confused", "garbled", "twice"] {
        assert!(
            !p.peers().iter().any(|i| i.as_str() == gone),
            "{gone} was dropped"
        );
    }
    remote.shutdown().await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_stop_the_platform_serving() {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    // Each connection costs this process two descriptors (both ends live here).
    let n = 1000.min(limit.saturating_sub(200) / 2);
    if n < 1000 {
        println!("open-file limit {limit}: testing {n} idle connections instead of 1000");
    }
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let addr = socket(&p);
    let mut idle = Vec::with_capacity(n);
    for i in 0..n {
        idle.push(RawClient::hello(&addr, &format!("idle.{i}")).await);
    }
    let peers = p.peers();
    assert_eq!(
        peers.iter().filter(|i| i.as_str().starts_with("idle.")).count(),
        n
    );
    assert!(p.bridge_connections() >= n, "{} open", p.bridge_connections());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let remote = Remote::new(addr.clone())
        .identity("busy")
        .start(Meter { events: tx })
        .await
        .unwrap();
    expect(&mut rx, "connected").await;
    for i in 0..100 {
        let x: i64 = p.call("busy", "triple", (i,)).returning().await.unwrap();
        assert_eq!(x, 3 * i);
    }
    drop(idle);
    remote.shutdown().await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_agent_code_calls_publishes_and_subscribes() {
    let home = tempfile::tempdir().unwrap();
    let p = platform(home.path()).await;
    let (tx, mut heard) = mpsc::unbounded_channel();
    p.spawn("local", Local { heard: tx }).await.unwrap();
    let conn = Remote::new(socket(&p))
        .identity("control.connection")
        .connect()
        .await
        .unwrap();
    let four: i64 = conn.call("local", "double", (2,)).returning().await.unwrap();
    assert_eq!(four, 4);
    let mut stream = conn.subscribe("status/").unwrap();
    // The subscription is in force once the platform answers a call made after it.
    conn.ping("local").await.unwrap();
    p.publish("status/zone1", "ok").unwrap();
    let got = within("a publication", DEADLINE, stream.recv()).await.unwrap();
    assert_eq!(got.topic.as_str(), "status/zone1");
    conn.publish("from_remote/cli", 1).unwrap();
    expect(&mut heard, "control.connection from_remote/cli 1").await;
    assert!(conn.peers().iter().any(|i| i.as_str() == "local"));
    conn.close().await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_platform_can_host_bridged_agents() {
    let tp = volttron::testing::TestPlatform::builder()
        .bridge(true)
        .start()
        .await;
    let addr = tp.addresses().into_iter().next().expect("listens on its socket");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let remote = Remote::new(addr)
        .identity("bridged")
        .start(Meter { events: tx })
        .await
        .unwrap();
    expect(&mut rx, "connected").await;
    let six: i64 = tp.call("bridged", "triple", (2,)).returning().await.unwrap();
    assert_eq!(six, 6);
    remote.shutdown().await;
}
