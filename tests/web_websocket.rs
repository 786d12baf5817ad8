//! WebSocket pub/sub of the web service, with a real WebSocket client (tungstenite) and a
//! real HTTP client (ureq) against a platform serving on loopback, auth on:
//!
//! * `GET /ws` opens with a token in `Authorization` or `?access_token=`, and without one
//!   (or with a bad one, or without the `vui` capability) the upgrade is refused;
//! * a socket subscribes to a prefix and receives `{"topic","sender","bus","headers",
//!   "message"}` for what in-process agents and `platform.publish` publish, and only that;
//!   it publishes to in-process subscribers; unsubscribing stops deliveries;
//! * `authz.json`'s protected topics: a web user without the capability is answered
//!   `{"error":...}` for subscribe and publish, and one whose groups hold it is not;
//! * VOLTTRON's stream `GET /vui/platforms/<instance>/pubsub/<topic>` sends each message
//!   alone, as JSON;
//! * a client that never reads does not hold up a publisher of 50,000 messages, and its
//!   mailbox keeps the newest;
//! * a socket that closes (cleanly, or by dropping the connection) leaves the bus.
//!
//! Every wait is on an observable condition with a deadline.
#![cfg(feature = "web")]

use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use volttron::prelude::*;
use volttron::web::{WebConfig, WebService, WebUsers};

const DEADLINE: Duration = Duration::from_secs(20);

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn password(user: &str) -> String {
    format!("pw-{user}-secret")
}

/// A platform with auth on and the web service on an ephemeral loopback port.
struct Site {
    _home: tempfile::TempDir,
    platform: Platform,
    /// `http://127.0.0.1:PORT`
    base: String,
    http: ureq::Agent,
}

impl Site {
    /// `users` are `(name, groups)`; `authz` goes to `authz.json` when given.
    fn start(authz: Option<&str>, users: &[(&str, &[&str])], mailbox: Option<usize>) -> Site {
        let home = tempfile::tempdir().unwrap();
        if let Some(authz) = authz {
            std::fs::write(home.path().join("authz.json"), authz).unwrap();
        }
        let mut file = WebUsers::load(WebUsers::path_in(home.path())).unwrap();
        for (name, groups) in users {
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            file.add(name, &password(name), &groups, false).unwrap();
        }
        let web = WebService::new(WebConfig::new("http://127.0.0.1:0").unwrap());
        let mut builder = Platform::builder().home(home.path()).auth(true).service(web);
        if let Some(capacity) = mailbox {
            builder = builder.mailbox_capacity(capacity);
        }
        let platform = block(builder.start()).unwrap();
        let base = web_address(&platform);
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(DEADLINE))
            .build()
            .into();
        Site {
            _home: home,
            platform,
            base,
            http,
        }
    }

    /// An access token of `user`, from `POST /authenticate`.
    fn login(&self, user: &str) -> String {
        let mut r = self
            .http
            .post(format!("{}/authenticate", self.base))
            .send_json(json!({"username": user, "password": password(user)}))
            .unwrap();
        let body = r.body_mut().read_to_string().unwrap();
        assert_eq!(r.status(), 200, "login of {user}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Opens `path` as a WebSocket, with `token` in `Authorization` when given.
    fn try_connect(&self, path: &str, token: Option<&str>) -> Result<Ws, tungstenite::Error> {
        let mut request = self.ws_url(path).into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        }
        // The read timeout is set before the handshake, so that a server that never
        // answers the upgrade fails the test instead of hanging it.
        let stream = TcpStream::connect(self.base.trim_start_matches("http://")).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let (ws, response) =
            tungstenite::client(request, MaybeTlsStream::Plain(stream)).map_err(|e| match e {
                tungstenite::HandshakeError::Failure(e) => e,
                tungstenite::HandshakeError::Interrupted(_) => panic!("{path}: no answer to the upgrade"),
            })?;
        assert_eq!(response.status(), 101);
        Ok(ws)
    }

    fn connect(&self, path: &str, token: Option<&str>) -> Ws {
        self.try_connect(path, token)
            .unwrap_or_else(|e| panic!("opening {path}: {e}"))
    }

    fn shutdown(self) {
        block(self.platform.shutdown());
    }
}

/// The web service's address, once `platform.web` answers.
fn web_address(platform: &Platform) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match block(
            platform
                .call("platform.web", "get_bind_web_address", ())
                .returning::<String>(),
        ) {
            Ok(address) => return address,
            Err(e) => {
                assert!(Instant::now() < deadline, "platform.web never answered: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The HTTP status an upgrade of `path` was refused with.
fn refused_status(site: &Site, path: &str, token: Option<&str>) -> u16 {
    match site.try_connect(path, token) {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{path}: expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("{path}: the upgrade was accepted"),
    }
}

fn send(ws: &mut Ws, v: serde_json::Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// The next text frame as JSON (pings are skipped; nothing within the deadline fails).
fn next(ws: &mut Ws) -> serde_json::Value {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("expected a text frame, got {other:?}"),
            Err(e) => panic!("no frame within {DEADLINE:?}: {e}"),
        }
    }
}

/// Sends a control message and returns the answer.
fn ask(ws: &mut Ws, v: serde_json::Value) -> serde_json::Value {
    send(ws, v);
    next(ws)
}

/// Forwards what it hears under `from/web/` and `devices/` to the test.
struct Sink {
    heard: mpsc::Sender<Publication>,
}

#[volttron::agent]
impl Sink {
    #[subscribe("from/web/")]
    fn web_publication(&mut self, msg: &Publication) {
        let _ = self.heard.send(msg.clone());
    }

    #[subscribe("devices/")]
    fn devices(&mut self, msg: &Publication) {
        let _ = self.heard.send(msg.clone());
    }
}

/// Publishes on request, as itself.
struct Source;

#[volttron::agent]
impl Source {
    #[rpc]
    fn emit(&mut self, ctx: &AgentContext, topic: String, value: Value) -> Result<usize, String> {
        ctx.publish(topic.as_str(), value).map_err(|e| e.to_string())
    }
}

fn heard(rx: &mpsc::Receiver<Publication>) -> Publication {
    rx.recv_timeout(DEADLINE).expect("a publication in time")
}

fn json_of(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn a_socket_subscribes_receives_publishes_and_unsubscribes() {
    let site = Site::start(None, &[("viewer", &["vui"])], None);
    let (tx, rx) = mpsc::channel();
    block(site.platform.spawn("sink", Sink { heard: tx })).unwrap();
    block(site.platform.spawn("source", Source)).unwrap();
    let token = site.login("viewer");
    let mut ws = site.connect("/ws", Some(&token));

    assert_eq!(
        ask(&mut ws, json!({"subscribe": "campus/hq/"})),
        json!({"subscribed": "campus/hq/"})
    );
    // Subscribing twice is harmless, and delivers once.
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "campus/hq/"})),
        json!({"subscribed": "campus/hq/"})
    );
    // platform.publish reaches the socket (and counts it).
    let n = site
        .platform
        .publish("campus/hq/rtu1", json!({"temp": 21.5}))
        .unwrap();
    assert_eq!(n, 1);
    let p = next(&mut ws);
    assert_eq!(p["topic"], "campus/hq/rtu1", "{p}");
    assert_eq!(p["bus"], "", "{p}");
    assert_eq!(p["message"], json!({"temp": 21.5}), "{p}");
    assert!(p["headers"].is_object(), "{p}");
    assert!(p["sender"].is_string(), "{p}");
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{p}");

    // Another prefix is not delivered: the next frame is the later matching one.
    site.platform.publish("campus/annex/rtu9", 1).unwrap();
    let n: usize = block(
        site.platform
            .call("source", "emit", ("campus/hq/rtu2", Value::from("from an agent")))
            .returning(),
    )
    .unwrap();
    assert_eq!(n, 1);
    let p = next(&mut ws);
    assert_eq!(p["topic"], "campus/hq/rtu2", "{p}");
    assert_eq!(p["sender"], "source", "{p}");
    assert_eq!(p["message"], "from an agent", "{p}");

    // Publishing from the socket reaches the in-process subscriber.
    let answer = ask(
        &mut ws,
        json!({"publish": "from/web/x", "message": {"a": [1, 2]}, "headers": {"origin": "browser"}}),
    );
    assert_eq!(answer, json!({"published": "from/web/x", "subscribers": 1}));
    let got = heard(&rx);
    assert_eq!(got.topic.as_str(), "from/web/x");
    assert_eq!(got.sender.as_str(), "platform.web");
    assert_eq!(json_of(&got.message), json!({"a": [1, 2]}));
    assert_eq!(
        got.headers.get("origin").map(json_of),
        Some(json!("browser")),
        "{:?}",
        got.headers
    );

    // Unsubscribed, nothing more arrives: nobody counts, and the next frame is the reply
    // to a later request.
    assert_eq!(
        ask(&mut ws, json!({"unsubscribe": "campus/hq/"})),
        json!({"unsubscribed": "campus/hq/"})
    );
    assert_eq!(site.platform.publish("campus/hq/rtu1", 2).unwrap(), 0);
    let answer = ask(&mut ws, json!({"unsubscribe": "campus/hq/"}));
    assert_eq!(answer["unsubscribe"], "campus/hq/", "{answer}");
    assert!(answer["error"].is_string(), "{answer}");

    // Malformed requests are answered with an error, and the socket stays usable.
    for bad in [
        json!("not an object"),
        json!({"subscribe": 3}),
        json!({"publish": "x", "headers": [1]}),
        json!({"hello": "there"}),
    ] {
        let answer = ask(&mut ws, bad.clone());
        assert!(answer["error"].is_string(), "{bad} -> {answer}");
    }
    ws.send(Message::text("{not json")).unwrap();
    assert!(next(&mut ws)["error"].is_string());
    let answer = ask(&mut ws, json!({"publish": "from/web/y", "message": 3}));
    assert_eq!(answer["published"], "from/web/y");
    assert_eq!(heard(&rx).topic.as_str(), "from/web/y");
    site.shutdown();
}

#[test]
fn the_upgrade_needs_a_token_with_the_vui_capability() {
    let site = Site::start(None, &[("viewer", &["vui"]), ("outsider", &["reports"])], None);
    assert_eq!(refused_status(&site, "/ws", None), 401);
    assert_eq!(refused_status(&site, "/ws", Some("not-a-token")), 401);
    assert_eq!(refused_status(&site, "/ws?access_token=forged", None), 401);
    let outsider = site.login("outsider");
    assert_eq!(refused_status(&site, "/ws", Some(&outsider)), 403);

    // The token in the query, as browsers must send it.
    let token = site.login("viewer");
    let mut ws = site.connect(&format!("/ws?access_token={token}"), None);
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "q/"})),
        json!({"subscribed": "q/"})
    );
    assert_eq!(site.platform.publish("q/1", "by query").unwrap(), 1);
    assert_eq!(next(&mut ws)["message"], "by query");
    site.shutdown();
}

const PROTECTED: &str = r#"{
  "protected_topics": {
    "publish": { "devices/actuators": ["actuate"] },
    "subscribe": { "secrets": ["read_secrets"] }
  }
}"#;

#[test]
fn protected_topics_need_the_capability_in_the_users_groups() {
    let site = Site::start(
        Some(PROTECTED),
        &[
            ("viewer", &["vui"]),
            ("operator", &["vui", "actuate", "read_secrets"]),
            ("root", &["admin"]),
        ],
        None,
    );
    let (tx, rx) = mpsc::channel();
    block(site.platform.spawn("sink", Sink { heard: tx })).unwrap();

    let viewer = site.login("viewer");
    let mut ws = site.connect("/ws", Some(&viewer));
    for prefix in ["secrets/vault", "secrets", "", "sec"] {
        let answer = ask(&mut ws, json!({"subscribe": prefix}));
        assert_eq!(answer["subscribe"], prefix, "{answer}");
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("{answer}"));
        assert!(error.contains("read_secrets"), "{error}");
    }
    let answer = ask(
        &mut ws,
        json!({"publish": "devices/actuators/rtu1", "message": 1}),
    );
    assert_eq!(answer["publish"], "devices/actuators/rtu1", "{answer}");
    let error = answer["error"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(error.contains("actuate"), "{error}");
    // Refused means not sent: the sink's next publication is a later, open one.
    let answer = ask(&mut ws, json!({"publish": "devices/open/rtu1", "message": 2}));
    assert_eq!(answer["published"], "devices/open/rtu1", "{answer}");
    assert_eq!(heard(&rx).topic.as_str(), "devices/open/rtu1");
    // Open topics stay open to it.
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "public/"})),
        json!({"subscribed": "public/"})
    );

    let operator = site.login("operator");
    let mut ws = site.connect("/ws", Some(&operator));
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "secrets/"})),
        json!({"subscribed": "secrets/"})
    );
    assert_eq!(site.platform.publish("secrets/vault", "s3cret").unwrap(), 1);
    let p = next(&mut ws);
    assert_eq!(
        (p["topic"].as_str(), &p["message"]),
        (Some("secrets/vault"), &json!("s3cret"))
    );
    let answer = ask(
        &mut ws,
        json!({"publish": "devices/actuators/rtu1", "message": 3}),
    );
    assert_eq!(
        answer,
        json!({"published": "devices/actuators/rtu1", "subscribers": 1})
    );
    let got = heard(&rx);
    assert_eq!(got.topic.as_str(), "devices/actuators/rtu1");
    assert_eq!(json_of(&got.message), json!(3));

    // `admin` holds every capability.
    let root = site.login("root");
    let mut ws = site.connect("/ws", Some(&root));
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "secrets/"})),
        json!({"subscribed": "secrets/"})
    );
    let answer = ask(
        &mut ws,
        json!({"publish": "devices/actuators/rtu2", "message": 4}),
    );
    assert_eq!(answer["published"], "devices/actuators/rtu2", "{answer}");
    assert_eq!(heard(&rx).topic.as_str(), "devices/actuators/rtu2");
    site.shutdown();
}

#[test]
fn the_vui_topic_stream_sends_each_message_alone() {
    let site = Site::start(
        Some(PROTECTED),
        &[("viewer", &["vui"]), ("outsider", &["reports"])],
        None,
    );
    let instance = site.platform.instance_name().to_owned();
    let token = site.login("viewer");
    let path = format!("/vui/platforms/{instance}/pubsub/devices/hq/rtu1");

    assert_eq!(refused_status(&site, &path, None), 401);
    let outsider = site.login("outsider");
    assert_eq!(refused_status(&site, &path, Some(&outsider)), 403);
    let secret = format!("/vui/platforms/{instance}/pubsub/secrets/vault");
    assert_eq!(refused_status(&site, &secret, Some(&token)), 403);
    let elsewhere = "/vui/platforms/no-such-instance/pubsub/devices/hq/rtu1";
    assert_eq!(refused_status(&site, elsewhere, Some(&token)), 404);

    let mut ws = site.connect(&path, Some(&token));
    // The subscription is made before the upgrade is answered.
    assert_eq!(
        site.platform
            .publish("devices/hq/rtu1", json!({"temp": 20, "unit": "C"}))
            .unwrap(),
        1
    );
    site.platform.publish("devices/hq/rtu2", "elsewhere").unwrap();
    site.platform.publish("devices/hq/rtu1/fan", "under it").unwrap();
    assert_eq!(next(&mut ws), json!({"temp": 20, "unit": "C"}));
    assert_eq!(next(&mut ws), json!("under it"));
    // Client frames are ignored, as VOLTTRON does.
    send(&mut ws, json!({"subscribe": "devices/hq/rtu2"}));
    site.platform
        .publish("devices/hq/rtu2", "still elsewhere")
        .unwrap();
    site.platform
        .publish("devices/hq/rtu1", json!([1, 2, 3]))
        .unwrap();
    assert_eq!(next(&mut ws), json!([1, 2, 3]));

    // A plain GET (no upgrade) is told what to do.
    let mut r = site
        .http
        .get(format!("{}{path}", site.base))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 400, "{}", r.body_mut().read_to_string().unwrap());
    site.shutdown();
}

#[test]
fn a_client_that_never_reads_neither_slows_the_publisher_nor_keeps_old_messages() {
    const TOTAL: u64 = 50_000;
    const CAPACITY: usize = 1_000;
    let site = Site::start(None, &[("viewer", &["vui"])], Some(CAPACITY));
    block(site.platform.spawn("source", Source)).unwrap();
    let token = site.login("viewer");
    let mut ws = site.connect("/ws", Some(&token));
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "flood/"})),
        json!({"subscribed": "flood/"})
    );

    // Messages of about 1 kB, so that 50 MB cannot hide in the sockets' buffers.
    let padding = "x".repeat(1_000);
    let started = Instant::now();
    for n in 0..TOTAL {
        let reached = site
            .platform
            .publish("flood/x", json!({"n": n, "pad": padding}))
            .unwrap();
        assert_eq!(reached, 1, "publication {n}: the socket was dropped");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "publishing {TOTAL} to a client that does not read took {took:?}"
    );
    // The platform still answers while the socket's backlog is pending.
    let n: usize = block(
        site.platform
            .call("source", "emit", ("flood/x", json!({"n": TOTAL, "pad": ""})))
            .returning(),
    )
    .unwrap();
    assert_eq!(n, 1);

    // Now read: everything up to the last, in order, with the oldest dropped.
    let mut received = Vec::new();
    loop {
        let p = next(&mut ws);
        let n = p["message"]["n"].as_u64().unwrap();
        if let Some(last) = received.last() {
            assert!(n > *last, "{n} after {last}");
        }
        received.push(n);
        if n == TOTAL {
            break;
        }
    }
    let count = received.len() as u64;
    assert!(
        count < TOTAL / 2,
        "{count} of {TOTAL} arrived: the mailbox kept more than its capacity"
    );
    // The newest half-capacity all arrived.
    let newest: Vec<u64> = (TOTAL - CAPACITY as u64 / 2..=TOTAL).collect();
    assert!(
        received.ends_with(&newest),
        "the newest messages are missing: the last received are {:?}",
        &received[received.len().saturating_sub(10)..]
    );
    site.shutdown();
}

/// Publishes on `topic` until nobody is subscribed any more (with a deadline).
fn wait_unsubscribed(platform: &Platform, topic: &str) {
    let deadline = Instant::now() + DEADLINE;
    while platform.publish(topic, "anyone?").unwrap() != 0 {
        assert!(
            Instant::now() < deadline,
            "{topic} still has a subscriber after the socket closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_closed_socket_leaves_the_bus() {
    let site = Site::start(None, &[("viewer", &["vui"])], None);
    let token = site.login("viewer");

    // Closed with the close handshake.
    let mut ws = site.connect("/ws", Some(&token));
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "gone/clean/"})),
        json!({"subscribed": "gone/clean/"})
    );
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "gone/also/"})),
        json!({"subscribed": "gone/also/"})
    );
    assert_eq!(site.platform.publish("gone/clean/x", 1).unwrap(), 1);
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(e) => panic!("closing: {e}"),
        }
    }
    wait_unsubscribed(&site.platform, "gone/clean/x");
    wait_unsubscribed(&site.platform, "gone/also/x");

    // Dropped without a word: the TCP connection ends.
    let mut ws = site.connect("/ws", Some(&token));
    assert_eq!(
        ask(&mut ws, json!({"subscribe": "gone/abrupt/"})),
        json!({"subscribed": "gone/abrupt/"})
    );
    assert_eq!(site.platform.publish("gone/abrupt/x", 1).unwrap(), 1);
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }
    drop(ws);
    wait_unsubscribed(&site.platform, "gone/abrupt/x");
    assert!(
        site.platform.subscriptions("gone/").is_empty(),
        "{:?}",
        site.platform.subscriptions("gone/")
    );
    site.shutdown();
}
