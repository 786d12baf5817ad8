//! The VIP listener against a VIP client written in Rust (`volttron::vip::client`): the
//! router's built-ins, pub/sub and RPC with in-process agents both ways, authentication,
//! and malformed input. The real Python agents are in `vip_python_agents.rs`.
#![cfg(feature = "vip")]

use std::time::Duration;

use volttron::auth::keys::{CredentialStore, KeyPair};
use volttron::prelude::*;
use volttron::vip::VipService;
use volttron::vip::client::{ClientError, VipClient};

const T: Duration = Duration::from_secs(10);

/// Records what it receives; answers `add`.
#[derive(Default)]
struct Recorder {
    seen: Option<tokio::sync::mpsc::UnboundedSender<Publication>>,
    peers: Option<tokio::sync::mpsc::UnboundedSender<PeerEvent>>,
}

impl Recorder {
    /// One that sends what it receives to the receiver returned.
    fn seeing() -> (Recorder, tokio::sync::mpsc::UnboundedReceiver<Publication>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = Recorder {
            seen: Some(tx),
            ..Default::default()
        };
        (recorder, rx)
    }
}

#[volttron::agent]
impl Recorder {
    #[on_peerlist]
    fn on_peer(&mut self, _ctx: &AgentContext, event: &PeerEvent) {
        if let Some(tx) = &self.peers {
            let _ = tx.send(event.clone());
        }
    }

    #[subscribe("from/python")]
    fn on_message(&mut self, msg: &Publication) {
        if let Some(tx) = &self.seen {
            let _ = tx.send(msg.clone());
        }
    }

    #[rpc]
    fn add(&mut self, a: i64, b: i64) -> i64 {
        a + b
    }

    #[rpc]
    fn who(&mut self, caller: Caller) -> String {
        caller.to_string()
    }
}

struct Site {
    _home: tempfile::TempDir,
    platform: Platform,
    address: String,
    store: CredentialStore,
}

async fn site(auth: bool) -> Site {
    let home = tempfile::tempdir().unwrap();
    let platform = Platform::builder()
        .home(home.path())
        .auth(auth)
        .service(VipService::new().listen("tcp://127.0.0.1:0"))
        .start()
        .await
        .unwrap();
    let address = VipService::ipc_address(home.path()).unwrap();
    let store = CredentialStore::new(home.path());
    Site {
        _home: home,
        platform,
        address,
        store,
    }
}

impl Site {
    /// Connects as `identity` with the key the platform knows for it (made if missing).
    fn connect(&self, identity: &str) -> Result<VipClient, ClientError> {
        let keys = self.store.load_or_create(identity).unwrap();
        self.connect_with(identity, &keys)
    }

    fn connect_with(&self, identity: &str, keys: &KeyPair) -> Result<VipClient, ClientError> {
        VipClient::connect(&self.address, identity, keys, &self.platform.serverkey().unwrap())
    }
}

/// Runs blocking client code off the test's runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[volttron::test]
async fn a_vip_peer_joins_the_routing_table_and_leaves_on_agentstop() {
    let s = site(true).await;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let recorder = Recorder {
        peers: Some(tx),
        ..Default::default()
    };
    s.platform.spawn("recorder", recorder).await.unwrap();
    let mut c = s.connect("probe").unwrap();
    assert_eq!(
        events.recv().await,
        Some(PeerEvent::Added("probe".parse().unwrap()))
    );
    let (mut c, peers) = blocking(move || {
        let p = c.peers().unwrap();
        (c, p)
    })
    .await;
    assert!(peers.contains(&"recorder".to_owned()), "{peers:?}");
    assert!(peers.contains(&"probe".to_owned()), "{peers:?}");
    assert!(peers.contains(&"platform.config_store".to_owned()), "{peers:?}");
    // Nothing is protected: platform.auth is left out, so clients skip their per-publish check.
    assert!(!peers.contains(&"platform.auth".to_owned()), "{peers:?}");
    assert!(s.platform.peers().iter().any(|p| p.as_str() == "probe"));
    c.send("", "agentstop", b"1", vec![b"probe".to_vec()]).unwrap();
    assert_eq!(
        events.recv().await,
        Some(PeerEvent::Dropped("probe".parse().unwrap()))
    );
    assert!(!s.platform.peers().iter().any(|p| p.as_str() == "probe"));
    s.platform.shutdown().await;
}

#[volttron::test]
async fn router_built_ins_answer_as_volttrons_router() {
    let s = site(true).await;
    let mut c = s.connect("probe").unwrap();
    let serverkey = s.platform.serverkey().unwrap().to_string();
    blocking(move || {
        let pong = c
            .ask("", "ping", vec![b"ping".to_vec(), b"x".to_vec()], T)
            .unwrap();
        assert_eq!(pong, vec![Value::from("pong"), Value::from("x")]);
        let q = c.ask("", "query", vec![b"instance-name".to_vec()], T).unwrap();
        assert_eq!(q[1], Value::from("volttron1"));
        let q = c.ask("", "query", vec![b"serverkey".to_vec()], T).unwrap();
        assert_eq!(q[1], Value::from(serverkey.as_str()));
        let q = c.ask("", "query", vec![b"message-bus".to_vec()], T).unwrap();
        assert_eq!(q[1], Value::from("zmq"));
        let q = c.ask("", "query", vec![b"no-such-thing".to_vec()], T).unwrap();
        assert_eq!(q[1], Value::from(""));
        match c.ask("", "no_such_subsystem", vec![], T) {
            Err(ClientError::Vip { code: 93, .. }) => {}
            other => panic!("{other:?}"),
        }
        match c.ask("nobody", "RPC", vec![b"{}".to_vec()], T) {
            Err(ClientError::Vip { code: 113, .. }) => {}
            other => panic!("{other:?}"),
        }
        // A second hello is welcomed too (clients send two).
        let w = c.ask("", "hello", vec![b"hello".to_vec()], T).unwrap();
        assert_eq!(w[0], Value::from("welcome"));
        assert_eq!(w[3], Value::from("probe"));
    })
    .await;
    s.platform.shutdown().await;
}

#[volttron::test]
async fn pubsub_flows_both_ways_with_volttrons_prefix_semantics() {
    let s = site(true).await;
    let (recorder, mut seen) = Recorder::seeing();
    s.platform.spawn("recorder", recorder).await.unwrap();
    let mut c = s.connect("probe").unwrap();
    let (mut c, reached) = blocking(move || {
        // Overlapping prefixes: VOLTTRON sends one copy per subscriber.
        c.subscribe("devices").unwrap();
        c.subscribe("dev").unwrap();
        let n = c
            .publish("from/python/x", &serde_json::json!({"v": 1.5}).into())
            .unwrap();
        (c, n)
    })
    .await;
    assert_eq!(reached, 1);
    let got = seen.recv().await.unwrap();
    assert_eq!(got.sender.as_str(), "probe");
    assert_eq!(got.message["v"], Value::from(1.5));
    // String prefixes: `devices` matches `devicesX/...` as in VOLTTRON.
    assert_eq!(s.platform.publish("devices/campus/b1/all", 7).unwrap(), 1);
    assert_eq!(s.platform.publish("devicesX/y", 8).unwrap(), 1);
    blocking(move || {
        for want in [7, 8] {
            let m = c.next_message(T).unwrap().expect("a delivery");
            assert_eq!(m.subsystem, "pubsub");
            assert_eq!(m.args[0], Value::from("publish"));
            assert_eq!(m.args[2]["message"], Value::from(want));
            assert_eq!(m.args[2]["sender"], Value::from("platform"));
        }
        // Only one copy of each, although two prefixes match.
        assert!(c.next_message(Duration::from_millis(200)).unwrap().is_none());
    })
    .await;
    s.platform.shutdown().await;
}

#[volttron::test]
async fn rpc_goes_both_ways_with_volttrons_shapes() {
    let s = site(true).await;
    s.platform.spawn("recorder", Recorder::default()).await.unwrap();
    let mut c = s.connect("probe").unwrap();
    let mut c = blocking(move || {
        assert_eq!(
            c.call("recorder", "add", &Args::new().arg(2).arg(3), T).unwrap(),
            Value::from(5)
        );
        assert_eq!(
            c.call("recorder", "add", &Args::new().kwarg("a", 2).kwarg("b", 5), T)
                .unwrap(),
            Value::from(7)
        );
        assert_eq!(
            c.call("recorder", "add", &Args::new().arg(1).kwarg("b", 1), T)
                .unwrap(),
            Value::from(2)
        );
        assert_eq!(
            c.call("recorder", "who", &Args::new(), T).unwrap(),
            Value::from("probe")
        );
        match c.call("recorder", "nope", &Args::new(), T) {
            Err(ClientError::Rpc(RpcError::MethodNotFound { method })) => assert_eq!(method, "nope"),
            other => panic!("{other:?}"),
        }
        // VOLTTRON 11's services: the store answers under its own name.
        let stores = c
            .call("platform.config_store", "list_stores", &Args::new(), T)
            .unwrap();
        assert_eq!(stores, Value::List(vec![]));
        // A batch: two requests and a notification; one answer array, in order, and
        // nothing for the notification.
        let batch = serde_json::json!([
            {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": "a"},
            {"jsonrpc": "2.0", "method": "add", "params": {"a": 5, "b": 5}},
            {"jsonrpc": "2.0", "method": "nope", "id": 7},
        ]);
        let reply = c
            .ask("recorder", "RPC", vec![serde_json::to_vec(&batch).unwrap()], T)
            .unwrap();
        let answers = reply[0].as_list().expect("an array").to_vec();
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert_eq!(answers[0]["id"], Value::from("a"));
        assert_eq!(answers[0]["result"], Value::from(3));
        assert_eq!(answers[1]["id"], Value::from(7));
        assert_eq!(answers[1]["error"]["code"], Value::from(-32601));
        assert_eq!(
            answers[1]["error"]["data"]["detail"],
            Value::from("method 'nope' is not implemented")
        );
        c
    })
    .await;
    // The platform calls the VIP peer; the client answers.
    let answer = tokio::spawn({
        let p = s.platform.clone();
        async move { p.call("probe", "double", (21,)).returning::<i64>().await }
    });
    let c = blocking(move || {
        let m = c.next_message(T).unwrap().expect("a request");
        assert_eq!(m.subsystem, "RPC");
        assert_eq!(m.args[0]["method"], Value::from("double"));
        assert_eq!(m.args[0]["params"], Value::List(vec![Value::from(21)]));
        c.reply(&m, Value::from(42)).unwrap();
        c
    })
    .await;
    assert_eq!(answer.await.unwrap().unwrap(), 42);
    // The platform pings the VIP peer; the client's pong (to the router, with the ping's
    // id, as VOLTTRON's client answers) completes it.
    let ping = tokio::spawn({
        let p = s.platform.clone();
        async move { p.ping("probe").await }
    });
    let mut c = blocking(move || {
        let mut c = c;
        let m = c.next_message(T).unwrap().expect("a ping");
        assert_eq!(m.subsystem, "ping");
        assert_eq!(m.args[0], Value::from("ping"));
        c.send("", "ping", &m.msg_id, vec![b"pong".to_vec()]).unwrap();
        c
    })
    .await;
    ping.await.unwrap().unwrap();
    // A notification from the platform arrives without an id (no answer expected).
    s.platform.notify("probe", "note", (1,)).unwrap();
    blocking(move || {
        let m = c.next_message(T).unwrap().expect("a notification");
        assert_eq!(m.args[0]["method"], Value::from("note"));
        assert!(m.args[0].get("id").is_none(), "{:?}", m.args[0]);
    })
    .await;
    s.platform.shutdown().await;
}

#[volttron::test]
async fn keys_are_checked_against_the_identity_and_unknown_ones_wait_for_approval() {
    let s = site(true).await;
    // A key the platform does not know: refused with "unauthorized", and pending.
    let stranger = KeyPair::generate().unwrap();
    match s.connect_with("stranger", &stranger) {
        Err(ClientError::Vip {
            code: -32001,
            message,
        }) => assert!(message.contains("pending"), "{message}"),
        other => panic!("{other:?}"),
    }
    let pending: Vec<serde_json::Value> = s
        .platform
        .call("platform.auth", "get_authorization_pending", ())
        .returning()
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["identity"], "stranger");
    // Another identity's key: refused, not pending.
    s.store.load_or_create("victim").unwrap();
    match s.connect_with("victim", &stranger) {
        Err(ClientError::Vip { code: -32001, .. }) => {}
        other => panic!("{other:?}"),
    }
    // Approved, the same key connects.
    let _: serde_json::Value = s
        .platform
        .call("platform.auth", "approve_authorization", ("stranger",))
        .returning()
        .await
        .unwrap();
    let c = s.connect_with("stranger", &stranger).unwrap();
    assert_eq!(c.identity(), "stranger");
    // An identity already on the platform is refused (VOLTTRON only times out, #610).
    s.platform.spawn("recorder", Recorder::default()).await.unwrap();
    match s.connect("recorder") {
        Err(ClientError::Vip {
            code: -32001,
            message,
        }) => assert!(message.contains("already in use"), "{message}"),
        other => panic!("{other:?}"),
    }
    s.platform.shutdown().await;
}

#[volttron::test]
async fn malformed_messages_close_nothing_but_themselves() {
    let s = site(true).await;
    let (recorder, mut seen) = Recorder::seeing();
    s.platform.spawn("recorder", recorder).await.unwrap();
    let mut c = s.connect("probe").unwrap();
    blocking(move || {
        for garbage in [
            vec![b"".to_vec()],
            vec![
                b"".to_vec(),
                b"VIP2".to_vec(),
                b"".to_vec(),
                b"1".to_vec(),
                b"hello".to_vec(),
            ],
            vec![
                b"recorder".to_vec(),
                b"VIP1".to_vec(),
                b"".to_vec(),
                b"2".to_vec(),
                b"RPC".to_vec(),
                b"{not json".to_vec(),
            ],
            vec![
                b"recorder".to_vec(),
                b"VIP1".to_vec(),
                b"".to_vec(),
                b"3".to_vec(),
                b"RPC".to_vec(),
            ],
            vec![
                b"".to_vec(),
                b"VIP1".to_vec(),
                b"".to_vec(),
                b"4".to_vec(),
                b"pubsub".to_vec(),
                b"publish".to_vec(),
            ],
            vec![
                b"".to_vec(),
                b"VIP1".to_vec(),
                b"".to_vec(),
                vec![0xff, 0x00, 0xfe],
                b"pubsub".to_vec(),
                b"subscribe".to_vec(),
                b"[1,2".to_vec(),
            ],
        ] {
            c.send_raw(garbage).unwrap();
        }
        // Python's JSON: NaN and big integers arrive as floats, not as an error.
        let body =
            br#"{"bus":"","headers":{},"message":{"x":NaN,"big":123456789012345678901234567890}}"#.to_vec();
        c.send(
            "",
            "pubsub",
            b"5",
            vec![b"publish".to_vec(), b"from/python/nan".to_vec(), body],
        )
        .unwrap();
        // Still served.
        let w = c.ask("", "hello", vec![b"hello".to_vec()], T).unwrap();
        assert_eq!(w[0], Value::from("welcome"));
    })
    .await;
    // The first delivery is that one: none of the garbage was published.
    let got = seen.recv().await.unwrap();
    assert!(got.message["x"].as_f64().unwrap().is_nan());
    assert!(got.message["big"].as_f64().unwrap() > 1e29);
    s.platform.shutdown().await;
}

#[volttron::test]
async fn a_message_over_the_limit_is_not_delivered_and_the_listener_serves_on() {
    let home = tempfile::tempdir().unwrap();
    let platform = Platform::builder()
        .home(home.path())
        .auth(true)
        .service(VipService::new().max_message(4096))
        .start()
        .await
        .unwrap();
    let (recorder, mut seen) = Recorder::seeing();
    platform.spawn("recorder", recorder).await.unwrap();
    let store = CredentialStore::new(home.path());
    let keys = store.load_or_create("probe").unwrap();
    let address = VipService::ipc_address(home.path()).unwrap();
    let serverkey = platform.serverkey().unwrap();
    blocking(move || {
        let mut c = VipClient::connect(&address, "probe", &keys, &serverkey).unwrap();
        let big = Value::from("x".repeat(8192));
        c.set_timeout(Duration::from_secs(1));
        // libzmq drops the connection that sent it: no answer, no delivery.
        assert!(c.publish("from/python/big", &big).is_err());
        drop(c);
        // A new connection is served.
        let mut c = VipClient::connect(&address, "probe", &keys, &serverkey).unwrap();
        assert_eq!(c.publish("from/python/small", &Value::from(1)).unwrap(), 1);
    })
    .await;
    let first = seen.recv().await.unwrap();
    assert_eq!(first.topic.as_str(), "from/python/small");
    platform.shutdown().await;
}

#[volttron::test]
async fn platform_auth_is_listed_when_topics_are_protected() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("authz.json"),
        r#"{"protected_topics": {"publish": {"secret": ["write_secret"]}}}"#,
    )
    .unwrap();
    let platform = Platform::builder()
        .home(home.path())
        .auth(true)
        .service(VipService::new())
        .start()
        .await
        .unwrap();
    let keys = CredentialStore::new(home.path()).load_or_create("probe").unwrap();
    let address = VipService::ipc_address(home.path()).unwrap();
    let serverkey = platform.serverkey().unwrap();
    let peers = blocking(move || {
        let mut c = VipClient::connect(&address, "probe", &keys, &serverkey).unwrap();
        // VOLTTRON's client asks platform.auth before each publish only when it sees it.
        let peers = c.peers().unwrap();
        // And the platform refuses the publish itself too (error 13, not silence).
        match c.publish("secret/x", &Value::from(1)) {
            Err(ClientError::Vip { code: 13, .. }) => {}
            other => panic!("{other:?}"),
        }
        peers
    })
    .await;
    assert!(peers.contains(&"platform.auth".to_owned()), "{peers:?}");
    platform.shutdown().await;
}
