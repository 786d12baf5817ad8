//! Web workloads: the web service (`volttron::web`) on loopback, against a bare actix-web
//! server in the same process as the baseline.
//!
//! - [`HelloServer`]: a bare actix-web handler answering `GET /hello` with `hello` (one
//!   worker, its own `System` on a thread of its own, as the web service runs on the
//!   platform's edge thread);
//! - [`HttpClient`]: a minimal blocking HTTP/1.1 client on one keep-alive
//!   `std::net::TcpStream` (`TCP_NODELAY`): writes a fixed request, reads one
//!   `Content-Length`-delimited response. Both round-trip figures use it, on a client thread;
//! - [`WebRig`]: a platform with auth on, the web service on `127.0.0.1:0`, a real web user
//!   (`vui` only; the `rpc-allow-list` opens `echo: echo`) logged in through
//!   `POST /authenticate`, and an in-process `#[volttron::agent]` [`Echo`]:
//!   [`WebRig::jsonrpc_rtts`] times `POST /jsonrpc` calls of `echo.echo`,
//!   [`WebRig::ws_run`] times publications (`platform.publish`) delivered to one `/ws`
//!   client (tungstenite, on a thread of its own, reading as fast as it can).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use volttron::prelude::*;
use volttron::web::{WebConfig, WebService, WebUsers};

/// How long any one step may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// The web user of the rig, and its password.
const USER: (&str, &str) = ("bench", "bench-password-1");

/// The JSON-RPC request timed.
pub(crate) const JSONRPC_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"echo.echo","params":["x"]}"#;

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

/// A minimal HTTP/1.1 client on one keep-alive connection (see the module docs).
pub(crate) struct HttpClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpClient {
    pub(crate) fn connect(addr: SocketAddr) -> HttpClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        HttpClient {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Writes `request` (a whole HTTP/1.1 request) and reads its response: the status and
    /// the body. The server must keep the connection open.
    pub(crate) fn round_trip(&mut self, request: &[u8]) -> (u16, &[u8]) {
        self.stream.write_all(request).expect("write request");
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk).expect("read response");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("an ASCII head");
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let mut length = None;
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
                assert!(
                    !(name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close")),
                    "the server closes the connection: {head}"
                );
            }
        }
        let length = length.unwrap_or_else(|| panic!("no Content-Length: {head}"));
        while self.buf.len() < head_end + length {
            let n = self.stream.read(&mut chunk).expect("read body");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(self.buf.len(), head_end + length, "one response per request");
        (status, &self.buf[head_end..])
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `n` round trips of `request` on `client`; each in microseconds, sorted. Every answer
/// must be `200` and the first must satisfy `check`.
fn round_trips(client: &mut HttpClient, request: &[u8], n: usize, check: impl Fn(&[u8])) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let (status, body) = client.round_trip(request);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
        if i == 0 {
            check(body);
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

/// The p50 and p99 of sorted `times`.
pub(crate) fn p50_p99(times: &[f64]) -> (f64, f64) {
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    (pct(0.50), pct(0.99))
}

/// A `POST /jsonrpc` of `body` with `token`.
fn jsonrpc_request(addr: SocketAddr, token: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /jsonrpc HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The JSON-RPC request of the breakdown: `web.peers`, answered by the web service itself.
const PEERS_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"web.peers","params":[]}"#;

// ---------------------------------------------------------------------------------------
// The baseline
// ---------------------------------------------------------------------------------------

/// A bare actix-web server in this process (see the module docs).
pub(crate) struct HelloServer {
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
}

const HELLO_REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

impl HelloServer {
    pub(crate) fn start() -> HelloServer {
        use actix_web::{App, HttpServer, web};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = std_mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server =
                    HttpServer::new(|| App::new().route("/hello", web::get().to(|| async { "hello" })))
                        .workers(1)
                        .disable_signals()
                        .listen(listener)
                        .expect("listen")
                        .run();
                tx.send(server.handle()).expect("handle");
                server.await.expect("serve");
            });
        });
        let handle = rx.recv_timeout(DEADLINE).expect("the server started");
        HelloServer {
            handle,
            thread: Some(thread),
            addr,
        }
    }

    /// `n` round trips on one new keep-alive connection (each run has its own: the server
    /// closes connections idle for its keep-alive, 5 s), on a client thread; sorted
    /// microseconds.
    pub(crate) fn rtts(&mut self, n: usize) -> Vec<f64> {
        let addr = self.addr;
        std::thread::spawn(move || {
            let mut client = HttpClient::connect(addr);
            round_trips(&mut client, HELLO_REQUEST, n, |b| assert_eq!(b, b"hello"))
        })
        .join()
        .expect("client thread")
    }

    pub(crate) fn shutdown(mut self) {
        futures::executor::block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The web service
// ---------------------------------------------------------------------------------------

/// Answers `echo`.
pub(crate) struct Echo;

#[volttron::agent]
impl Echo {
    /// Returns its argument.
    #[rpc]
    fn echo(&mut self, value: Value) -> Value {
        value
    }
}

/// A platform with the web service, a logged-in web user and the [`Echo`] agent.
pub(crate) struct WebRig {
    _home: tempfile::TempDir,
    pub(crate) platform: Platform,
    addr: SocketAddr,
    token: String,
    jsonrpc_request: Vec<u8>,
    peers_request: Vec<u8>,
    ws: Option<WsClient>,
}

/// The `/ws` client's thread: told to count, it reports what it counted up to the end
/// marker, and when the marker came.
struct WsClient {
    go: std_mpsc::Sender<()>,
    done: mpsc::UnboundedReceiver<(u64, Instant)>,
}

/// Topic prefix the `/ws` client subscribes to.
const WS_PREFIX: &str = "bench/ws/";

/// One `/ws` run: what the client counted, in how long.
pub(crate) struct WsRun {
    pub(crate) received: u64,
    pub(crate) published: u64,
    pub(crate) elapsed: Duration,
}

impl WebRig {
    pub(crate) async fn start() -> WebRig {
        let home = tempfile::tempdir().expect("home");
        let mut users = WebUsers::load(WebUsers::path_in(home.path())).expect("users");
        users
            .add(USER.0, USER.1, &["vui".to_owned()], false)
            .expect("add user");
        let config = WebConfig::new("http://127.0.0.1:0")
            .expect("config")
            .rpc_allow_list("echo: echo".parse().expect("allow list"));
        let platform = Platform::builder()
            .home(home.path())
            .auth(true)
            .service(WebService::new(config))
            .start()
            .await
            .expect("platform");
        platform.spawn("echo", Echo).await.expect("echo");
        let deadline = Instant::now() + DEADLINE;
        let address = loop {
            match platform
                .call("platform.web", "get_bind_web_address", ())
                .returning::<String>()
                .await
            {
                Ok(a) => break a,
                Err(e) => {
                    assert!(Instant::now() < deadline, "platform.web did not answer: {e}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let addr: SocketAddr = address
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("an http:// address: {address}"));
        let token = tokio::task::spawn_blocking(move || {
            let mut client = HttpClient::connect(addr);
            let body = format!(r#"{{"username":"{}","password":"{}"}}"#, USER.0, USER.1);
            let request = format!(
                "POST /authenticate HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let (status, body) = client.round_trip(request.as_bytes());
            assert_eq!(status, 200, "login: {}", String::from_utf8_lossy(body));
            let v: serde_json::Value = serde_json::from_slice(body).expect("login JSON");
            v["access_token"].as_str().expect("an access token").to_owned()
        })
        .await
        .expect("login");
        let echo_request = jsonrpc_request(addr, &token, JSONRPC_BODY);
        let peers_request = jsonrpc_request(addr, &token, PEERS_BODY);
        WebRig {
            _home: home,
            platform,
            addr,
            token,
            jsonrpc_request: echo_request,
            peers_request,
            ws: None,
        }
    }

    /// `n` JSON-RPC calls of `echo.echo` on one new keep-alive connection (as
    /// [`HelloServer::rtts`]), on a client thread; sorted microseconds.
    pub(crate) async fn jsonrpc_rtts(&mut self, n: usize) -> Vec<f64> {
        let request = self.jsonrpc_request.clone();
        self.rtts(request, n, |v| {
            assert_eq!(v["result"], "x", "echo.echo answers its argument: {v}")
        })
        .await
    }

    /// As [`jsonrpc_rtts`](Self::jsonrpc_rtts) with `web.peers`, which the web service
    /// answers itself (no agent, no hop to an agent thread).
    pub(crate) async fn jsonrpc_peers_rtts(&mut self, n: usize) -> Vec<f64> {
        let request = self.peers_request.clone();
        self.rtts(request, n, |v| assert!(v["result"].is_array(), "web.peers: {v}"))
            .await
    }

    /// `n` calls of `echo.echo("x")` from the platform handle on this (the driver's) thread:
    /// the hop to the agent's thread and back, without HTTP; sorted microseconds.
    pub(crate) async fn handle_call_rtts(&self, n: usize) -> Vec<f64> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let v = self.platform.call("echo", "echo", ("x",)).await.expect("echo");
            times.push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(v, Value::from("x"));
        }
        times.sort_by(f64::total_cmp);
        times
    }

    async fn rtts(&mut self, request: Vec<u8>, n: usize, check: fn(&serde_json::Value)) -> Vec<f64> {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || {
            let mut client = HttpClient::connect(addr);
            round_trips(&mut client, &request, n, |body| {
                check(&serde_json::from_slice(body).expect("JSON-RPC response"));
            })
        })
        .await
        .expect("client thread")
    }

    /// Connects the `/ws` client (once) and subscribes it to [`WS_PREFIX`].
    async fn ws_client(&mut self) -> &mut WsClient {
        if self.ws.is_none() {
            use tungstenite::client::IntoClientRequest;
            let mut request = format!("ws://{}/ws", self.addr)
                .into_client_request()
                .expect("request");
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", self.token).parse().expect("header"),
            );
            let addr = self.addr;
            let (go, go_rx) = std_mpsc::channel::<()>();
            let (done_tx, done) = mpsc::unbounded_channel();
            let (ready_tx, ready) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
                let (mut socket, _) = tungstenite::client(request, stream).expect("upgrade /ws");
                socket
                    .send(tungstenite::Message::text(format!(
                        r#"{{"subscribe":"{WS_PREFIX}"}}"#
                    )))
                    .expect("subscribe");
                let answer = socket.read().expect("subscribed");
                let answer = answer.to_text().expect("text");
                assert!(answer.contains("subscribed"), "{answer}");
                ready_tx.send(()).expect("ready");
                let end = format!(r#""topic":"{WS_PREFIX}end""#);
                while go_rx.recv().is_ok() {
                    let mut got = 0u64;
                    loop {
                        let m = socket.read().expect("a publication");
                        let Ok(text) = m.to_text() else { continue };
                        if text.contains(&end) {
                            let _ = done_tx.send((got, Instant::now()));
                            break;
                        }
                        if got == 0 {
                            let v: serde_json::Value = serde_json::from_str(text).expect("a JSON frame");
                            assert_eq!(v["topic"], format!("{WS_PREFIX}data"), "{v}");
                        }
                        got += 1;
                    }
                }
                let _ = socket.close(None);
            });
            tokio::time::timeout(DEADLINE, ready)
                .await
                .expect("the /ws client subscribed in time")
                .expect("the /ws client subscribed");
            self.ws = Some(WsClient { go, done });
        }
        self.ws.as_mut().expect("client")
    }

    /// The platform publishes `n` small messages (`platform.publish` of `i` on
    /// `bench/ws/data`, yielding every [`CHUNK`](super::CHUNK)), then an end marker (the
    /// newest publication, so a mailbox dropping oldest keeps it); the `/ws` client counts
    /// what reaches it until the marker.
    pub(crate) async fn ws_run(&mut self, n: u64) -> WsRun {
        let platform = self.platform.clone();
        let ws = self.ws_client().await;
        ws.go.send(()).expect("the /ws client runs");
        let topic = Topic::new(format!("{WS_PREFIX}data")).expect("topic");
        let start = Instant::now();
        let mut reached = 0;
        let mut i = 0;
        while i < n {
            let end = (i + super::CHUNK).min(n);
            for k in i..end {
                reached += platform.publish(&topic, k).expect("publish");
            }
            i = end;
            tokio::task::yield_now().await;
        }
        platform
            .publish(&format!("{WS_PREFIX}end")[..], Value::Null)
            .expect("end marker");
        assert_eq!(
            reached as u64, n,
            "every publication reaches the socket's mailbox"
        );
        let (received, at) = tokio::time::timeout(DEADLINE, ws.done.recv())
            .await
            .expect("the end marker in time")
            .expect("the /ws client is running");
        WsRun {
            received,
            published: n,
            elapsed: at - start,
        }
    }

    pub(crate) async fn shutdown(mut self) {
        drop(self.ws.take());
        self.platform.shutdown().await;
    }
}
