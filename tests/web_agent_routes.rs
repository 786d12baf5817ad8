//! Agents' web routes, with a real HTTP client (ureq) and a real WebSocket client
//! (tungstenite) against a platform serving on loopback, auth on:
//!
//! * `#[route(GET, ..)]` / `#[route(POST, ..)]` on an in-process agent: a serde value is
//!   `200` JSON, a `WebResponse` its status, headers and body, an `Err` a `500`; a wrong
//!   method on a served path is `405`, an unknown path `404`; `POST` needs a token and
//!   `GET` does not; the agent sees the web user (never the token or cookies); the routes
//!   go when the agent stops (`AgentRef::stop`, `Platform::stop_agent`);
//! * a bridged agent in its own process (`examples/web_route_agent.rs`) serves its routes
//!   while attached, and they go when the process exits;
//! * VOLTTRON's way: `platform.web.register_endpoint(endpoint, res_type)` called from
//!   `on_start`, answered by the agent's `route.callback(env, data)`: the WSGI-style env
//!   (without `HTTP_AUTHORIZATION` and `HTTP_COOKIE`), `jsonrpc` and `raw` answers;
//!   `register_path_route` serves files under its root and nothing outside it;
//!   `register_websocket` with `client.opened` / `client.message` / `client.closed` and
//!   `websocket_send`; reserved and taken paths refused; `unregister_all_agent_routes`.
//!
//! VOLTTRON 11's Python agents are not exercised here: the volttron-core of the pinned venv
//! ships `subsystems/web.py` but does not give agents a `vip.web` subsystem.
//!
//! Every wait is on an observable condition with a deadline.
#![cfg(feature = "web")]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use volttron::agent::route::{WebRequest, WebResponse};
use volttron::auth::keys::CredentialStore;
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

/// An HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, self.text())
    }
}

/// A platform with auth on and the web service on an ephemeral loopback port; the web user
/// `operator` (groups `vui`).
struct Site {
    home: tempfile::TempDir,
    platform: Platform,
    /// `http://127.0.0.1:PORT`
    base: String,
    http: ureq::Agent,
}

impl Site {
    fn start() -> Site {
        let home = tempfile::tempdir().unwrap();
        let mut users = WebUsers::load(WebUsers::path_in(home.path())).unwrap();
        users
            .add("operator", &password("operator"), &["vui".to_owned()], false)
            .unwrap();
        let web = WebService::new(WebConfig::new("http://127.0.0.1:0").unwrap());
        let platform = block(
            Platform::builder()
                .home(home.path())
                .auth(true)
                .service(web)
                .start(),
        )
        .unwrap();
        let base = web_address(&platform);
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(DEADLINE))
            .build()
            .into();
        Site {
            home,
            platform,
            base,
            http,
        }
    }

    fn login(&self) -> String {
        let r = self.request(
            "POST",
            "/authenticate",
            None,
            Some((
                "application/json",
                &json!({"username": "operator", "password": password("operator")}).to_string(),
            )),
            &[],
        );
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// `method path` with a token, a `(content type, body)` and extra headers.
    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let response = match body {
            Some((content_type, body)) => self.http.run(
                builder
                    .header("Content-Type", content_type)
                    .body(body.to_owned())
                    .unwrap(),
            ),
            None => self.http.run(builder.body(()).unwrap()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response.body_mut().read_to_vec().unwrap();
        Reply {
            status: response.status().as_u16(),
            headers,
            body,
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request("GET", path, token, None, &[])
    }

    /// GETs `path` until it answers `status` (a route appearing or going away).
    fn wait_status(&self, path: &str, status: u16) -> Reply {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let r = self.get(path, None);
            if r.status == status {
                return r;
            }
            assert!(Instant::now() < deadline, "{path} never answered {status}: {r:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_connect(&self, path: &str, token: Option<&str>) -> Result<Ws, tungstenite::Error> {
        let url = format!("{}{path}", self.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().unwrap();
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

    fn shutdown(self) {
        block(self.platform.shutdown());
    }
}

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

fn refused_status(site: &Site, path: &str, token: Option<&str>) -> u16 {
    match site.try_connect(path, token) {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{path}: expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("{path}: the upgrade was accepted"),
    }
}

fn next_text(ws: &mut Ws) -> String {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return t.as_str().to_owned(),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("expected a text frame, got {other:?}"),
            Err(e) => panic!("no frame within {DEADLINE:?}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// #[route] on an in-process agent

struct Hvac {
    zones: Vec<String>,
    requests: mpsc::Sender<WebRequest>,
}

impl Hvac {
    fn new(requests: mpsc::Sender<WebRequest>) -> Hvac {
        Hvac {
            zones: Vec::new(),
            requests,
        }
    }
}

#[volttron::agent]
impl Hvac {
    #[route(GET, "/hvac/summary")]
    fn summary(&mut self) -> serde_json::Value {
        json!({"zones": self.zones.len(), "names": self.zones})
    }

    #[route(POST, "/hvac/zones")]
    fn add_zone(&mut self, request: WebRequest) -> WebResponse {
        let _ = self.requests.send(request.clone());
        match request.json::<String>() {
            Ok(name) => {
                self.zones.push(name);
                WebResponse::json(201, &self.zones).header("x-zone-count", self.zones.len().to_string())
            }
            Err(e) => WebResponse::text(400, format!("expected a zone name: {e}")),
        }
    }

    #[route(GET, "/hvac/whoami")]
    fn whoami(&mut self, request: WebRequest) -> serde_json::Value {
        let _ = self.requests.send(request.clone());
        json!({"user": request.user})
    }

    #[route(GET, "/hvac/compressor")]
    fn compressor(&mut self) -> Result<serde_json::Value, String> {
        Err("the compressor is offline".into())
    }
}

fn seen(rx: &mpsc::Receiver<WebRequest>) -> WebRequest {
    rx.recv_timeout(DEADLINE).expect("the agent saw the request")
}

#[test]
fn declared_routes_answer_by_their_return_and_leave_with_the_agent() {
    let site = Site::start();
    let (tx, requests) = mpsc::channel();
    let hvac = block(site.platform.spawn("hvac", Hvac::new(tx.clone()))).unwrap();
    let token = site.login();

    // A serde value: 200 JSON; no token needed for GET.
    let r = site.get("/hvac/summary", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("content-type").unwrap().starts_with("application/json"),
        "{r:?}"
    );
    assert_eq!(r.json(), json!({"zones": 0, "names": []}));

    // POST needs a token when auth is on, and the agent is not asked without one.
    let body = Some(("application/json", "\"north\""));
    let r = site.request("POST", "/hvac/zones", None, body, &[]);
    assert_eq!(r.status, 401, "{r:?}");
    let r = site.request("POST", "/hvac/zones", Some("forged"), body, &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(requests.try_recv().is_err(), "the agent saw a refused request");

    // A WebResponse: its status, headers and body; the agent sees the request and the user,
    // never the token or the cookies.
    let r = site.request(
        "POST",
        "/hvac/zones?site=hq&floor=2",
        Some(&token),
        body,
        &[("Cookie", "Bearer=secret-cookie"), ("X-Trace", "t-1")],
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("x-zone-count"), Some("1"), "{r:?}");
    assert_eq!(r.json(), json!(["north"]));
    let request = seen(&requests);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hvac/zones");
    assert_eq!(request.query, "site=hq&floor=2");
    assert_eq!(request.query_param("site").as_deref(), Some("hq"));
    assert_eq!(request.body, "\"north\"");
    assert_eq!(request.user.as_deref(), Some("operator"));
    assert_eq!(request.headers.get("x-trace"), Some(&Value::from("t-1")));
    assert!(
        !request.headers.contains_key("authorization"),
        "{:?}",
        request.headers
    );
    assert!(!request.headers.contains_key("cookie"), "{:?}", request.headers);
    let r = site.request(
        "POST",
        "/hvac/zones",
        Some(&token),
        Some(("text/plain", "{")),
        &[],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.text().starts_with("expected a zone name"), "{r:?}");
    seen(&requests);
    assert_eq!(site.get("/hvac/summary", None).json()["zones"], 1);

    // GET: anonymous without a token, the user with one.
    assert_eq!(site.get("/hvac/whoami", None).json(), json!({"user": null}));
    assert_eq!(seen(&requests).user, None);
    assert_eq!(
        site.get("/hvac/whoami", Some(&token)).json(),
        json!({"user": "operator"})
    );

    // An Err is a 500 carrying its text.
    let r = site.get("/hvac/compressor", None);
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r.text().contains("the compressor is offline"), "{r:?}");

    // A wrong method on a served path is 405; an unknown path 404.
    let r = site.request("DELETE", "/hvac/summary", Some(&token), None, &[]);
    assert_eq!(r.status, 405, "{r:?}");
    let r = site.request(
        "PUT",
        "/hvac/zones",
        Some(&token),
        Some(("application/json", "1")),
        &[],
    );
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(site.get("/hvac/zones", Some(&token)).status, 405);
    assert_eq!(site.get("/hvac/nothing", None).status, 404);
    assert_eq!(site.get("/hvac", None).status, 404);

    // Stopped, its routes are gone.
    block(hvac.stop());
    assert_eq!(site.get("/hvac/summary", None).status, 404);
    let r = site.request("POST", "/hvac/zones", Some(&token), body, &[]);
    assert_eq!(r.status, 404, "{r:?}");

    // And the same through Platform::stop_agent.
    block(site.platform.spawn("hvac.2", Hvac::new(tx))).unwrap();
    assert_eq!(site.get("/hvac/summary", None).json()["zones"], 0);
    assert!(block(site.platform.stop_agent("hvac.2")));
    assert_eq!(site.get("/hvac/summary", None).status, 404);
    site.shutdown();
}

// ---------------------------------------------------------------------------------------
// #[route] on a bridged agent in its own process

/// The example binary (built here if `cargo test` did not build it).
fn web_route_agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("web_route_agent");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "web_route_agent"])
            .status()
            .unwrap();
        assert!(status.success(), "building the example failed");
    }
    path
}

/// Kills the child if the test fails first.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_peer(platform: &Platform, identity: &str, present: bool) {
    let deadline = Instant::now() + DEADLINE;
    while platform.peers().iter().any(|p| p.as_str() == identity) != present {
        assert!(
            Instant::now() < deadline,
            "{identity} {} the peers: {:?}",
            if present { "never joined" } else { "never left" },
            platform.peers()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn launch(site: &Site, identity: &str) -> Child {
    CredentialStore::new(site.home.path())
        .load_or_create(identity)
        .unwrap();
    let child = Command::new(web_route_agent_binary())
        .env("AGENT_VIP_IDENTITY", identity)
        .env("VOLTTRON_HOME", site.home.path())
        .env("RUST_LOG", "warn")
        .env_remove("VOLTTRON_PLATFORM_ADDRESS")
        .env_remove("AGENT_CREDENTIALS")
        .env_remove("AGENT_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("launch examples/web_route_agent");
    Child(child)
}

#[test]
fn a_bridged_agent_serves_its_routes_while_its_process_is_attached() {
    let site = Site::start();
    let token = site.login();
    assert_eq!(site.get("/remote/hello", None).status, 404);

    let mut child = launch(&site, "web.remote");
    wait_peer(&site.platform, "web.remote", true);
    let r = site.get("/remote/hello?name=campus", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"identity": "web.remote", "greeting": "hello campus"})
    );
    let r = site.request("POST", "/remote/echo", None, Some(("text/plain", "hi")), &[]);
    assert_eq!(r.status, 401, "{r:?}");
    let r = site.request(
        "POST",
        "/remote/echo",
        Some(&token),
        Some(("text/plain", "over the bridge")),
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "over the bridge");
    assert_eq!(r.header("x-web-user"), Some("operator"), "{r:?}");
    assert_eq!(site.get("/remote/echo", None).status, 405);

    // Killed, the process leaves, and its routes with it.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    wait_peer(&site.platform, "web.remote", false);
    site.wait_status("/remote/hello", 404);

    // Asked to stop, the same.
    let mut child = launch(&site, "web.remote.2");
    wait_peer(&site.platform, "web.remote.2", true);
    let r = site.wait_status("/remote/hello", 200);
    assert_eq!(r.json()["identity"], "web.remote.2");
    let stopped: bool = block(site.platform.call("web.remote.2", "stop_agent", ()).returning()).unwrap();
    assert!(stopped);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    wait_peer(&site.platform, "web.remote.2", false);
    site.wait_status("/remote/hello", 404);
    site.shutdown();
}

// ---------------------------------------------------------------------------------------
// VOLTTRON's register_endpoint, register_path_route, register_websocket

/// An agent using `platform.web` as VOLTTRON's `vip.web` does; it reports what it is asked.
struct Legacy {
    events: mpsc::Sender<serde_json::Value>,
}

const RAW_BODY: &[u8] = b"\x00\x01binary\xffbody";

#[volttron::agent]
impl Legacy {
    #[on_start]
    async fn start(&mut self, ctx: &AgentContext) {
        let mut outcomes = Vec::new();
        for (endpoint, res_type) in [
            ("/legacy/json", "jsonrpc"),
            ("/legacy/list", "jsonrpc"),
            ("/legacy/raw", "raw"),
        ] {
            let outcome = ctx
                .call("platform.web", "register_endpoint", (endpoint, res_type))
                .await;
            outcomes.push(json!([
                endpoint,
                outcome.map(|_| "ok".to_owned()).unwrap_or_else(|e| e.to_string())
            ]));
        }
        let _ = self
            .events
            .send(json!({"event": "started", "outcomes": outcomes}));
    }

    /// VOLTTRON's endpoint callback.
    #[rpc(name = "route.callback")]
    fn callback(&mut self, env: serde_json::Value, data: serde_json::Value) -> serde_json::Value {
        let _ = self
            .events
            .send(json!({"event": "callback", "env": env, "data": data}));
        match env["PATH_INFO"].as_str() {
            Some("/legacy/list") => json!([
                "201 Created",
                "made it",
                [["Content-Type", "text/plain"], ["X-Legacy", "yes"]]
            ]),
            Some("/legacy/raw") => json!([
                202,
                base64::engine::general_purpose::STANDARD.encode(RAW_BODY),
                [["Content-Type", "application/octet-stream"]]
            ]),
            _ => json!({"echo": data, "method": env["REQUEST_METHOD"]}),
        }
    }

    #[rpc(name = "client.opened")]
    fn opened(&mut self, from: String, endpoint: String) -> bool {
        let _ = self
            .events
            .send(json!({"event": "opened", "from": from, "endpoint": endpoint}));
        endpoint != "/legacy/ws-refusing"
    }

    #[rpc(name = "client.message")]
    async fn message(&mut self, ctx: &AgentContext, endpoint: String, message: String) -> Result<(), String> {
        let _ = self
            .events
            .send(json!({"event": "message", "endpoint": endpoint, "message": message}));
        ctx.call(
            "platform.web",
            "websocket_send",
            (endpoint.as_str(), format!("echo: {message}")),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    #[rpc(name = "client.closed")]
    fn closed(&mut self, endpoint: String) {
        let _ = self.events.send(json!({"event": "closed", "endpoint": endpoint}));
    }

    /// Calls `platform.web`'s `method` as this agent (the test's way to register more).
    #[rpc]
    async fn web(&mut self, ctx: &AgentContext, method: String, args: Vec<Value>) -> Result<Value, String> {
        ctx.call("platform.web", &method, args)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Calls `platform.web.<method>(args)` as `agent`.
fn web_call(site: &Site, agent: &str, method: &str, args: Vec<Value>) -> Result<Value, String> {
    block(
        site.platform
            .call(agent, "web", (method, args))
            .returning::<Value>(),
    )
    .map_err(|e| e.to_string())
}

/// The next event `kind` of the agent (others before it are skipped).
fn event(rx: &mpsc::Receiver<serde_json::Value>, kind: &str) -> serde_json::Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if e["event"] == kind => return e,
            Ok(_) => {}
            Err(_) => panic!("no {kind} event within {DEADLINE:?}"),
        }
    }
}

fn legacy_site() -> (Site, mpsc::Receiver<serde_json::Value>) {
    let site = Site::start();
    let (tx, rx) = mpsc::channel();
    block(site.platform.spawn("legacy", Legacy { events: tx })).unwrap();
    let started = event(&rx, "started");
    assert_eq!(
        started["outcomes"],
        json!([
            ["/legacy/json", "ok"],
            ["/legacy/list", "ok"],
            ["/legacy/raw", "ok"]
        ]),
        "{started}"
    );
    (site, rx)
}

#[test]
fn endpoints_get_volttrons_env_and_answer_by_their_res_type() {
    let (site, events) = legacy_site();
    let token = site.login();

    // jsonrpc: a value is JSON; a JSON body arrives parsed, with the env.
    let r = site.request(
        "POST",
        "/legacy/json?a=1&b=two",
        Some(&token),
        Some(("application/json", r#"{"setpoint": 72}"#)),
        &[("Cookie", "session=abc"), ("User-Agent", "web-test/1")],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("content-type").unwrap().starts_with("application/json"),
        "{r:?}"
    );
    assert_eq!(r.json(), json!({"echo": {"setpoint": 72}, "method": "POST"}));
    let call = event(&events, "callback");
    let env = &call["env"];
    assert_eq!(call["data"], json!({"setpoint": 72}), "{call}");
    assert_eq!(env["PATH_INFO"], "/legacy/json", "{env}");
    assert_eq!(env["REQUEST_METHOD"], "POST", "{env}");
    assert_eq!(env["QUERY_STRING"], "a=1&b=two", "{env}");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1", "{env}");
    assert_eq!(env["CONTENT_TYPE"], "application/json", "{env}");
    assert_eq!(env["HTTP_USER_AGENT"], "web-test/1", "{env}");
    assert_eq!(env["REMOTE_USER"], "operator", "{env}");
    assert_eq!(env["wsgi.url_scheme"], "http", "{env}");
    assert!(env["SERVER_PROTOCOL"].is_string(), "{env}");
    let port = site.base.rsplit(':').next().unwrap();
    assert_eq!(env["HTTP_HOST"], format!("127.0.0.1:{port}"), "{env}");
    for secret in ["HTTP_AUTHORIZATION", "HTTP_COOKIE"] {
        assert!(env.get(secret).is_none(), "{secret} passed on: {env}");
    }
    let text = env.to_string();
    assert!(!text.contains(&token) && !text.contains("session=abc"), "{env}");

    // A body that is not JSON arrives as text; a GET needs no token and has no user.
    let r = site.request(
        "POST",
        "/legacy/json",
        Some(&token),
        Some(("application/x-www-form-urlencoded", "a=1&b=2")),
        &[],
    );
    assert_eq!(r.json(), json!({"echo": "a=1&b=2", "method": "POST"}));
    assert_eq!(event(&events, "callback")["data"], "a=1&b=2");
    let r = site.get("/legacy/json", None);
    assert_eq!(r.json(), json!({"echo": "", "method": "GET"}));
    let env = event(&events, "callback")["env"].clone();
    assert!(env.get("REMOTE_USER").is_none(), "{env}");
    // Other methods need a token.
    let r = site.request("POST", "/legacy/json", None, Some(("application/json", "1")), &[]);
    assert_eq!(r.status, 401, "{r:?}");

    // jsonrpc's [status, content, headers].
    let r = site.get("/legacy/list", None);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.text(), "made it");
    assert_eq!(r.header("content-type"), Some("text/plain"), "{r:?}");
    assert_eq!(r.header("x-legacy"), Some("yes"), "{r:?}");

    // raw: [status, base64 body, headers].
    let r = site.get("/legacy/raw", None);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body, RAW_BODY);
    assert_eq!(
        r.header("content-type"),
        Some("application/octet-stream"),
        "{r:?}"
    );

    // Exact paths only.
    assert_eq!(site.get("/legacy/json/more", None).status, 404);
    assert_eq!(site.get("/legacy", None).status, 404);

    // Listed.
    let routes: Vec<(String, String, String, String)> =
        block(site.platform.call("platform.web", "list_routes", ()).returning()).unwrap();
    for path in ["/legacy/json", "/legacy/list", "/legacy/raw"] {
        assert!(
            routes.contains(&("endpoint".into(), "*".into(), path.into(), "legacy".into())),
            "{path} not in {routes:?}"
        );
    }
    site.shutdown();
}

#[test]
fn path_routes_serve_files_under_their_root_and_nothing_outside_it() {
    let (site, _events) = legacy_site();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("www");
    std::fs::create_dir_all(root.join("files/sub")).unwrap();
    std::fs::write(root.join("files/report.txt"), "the report").unwrap();
    std::fs::write(root.join("files/sub/page.html"), "<p>page</p>").unwrap();
    std::fs::write(work.path().join("secret.txt"), "outside the root").unwrap();
    std::os::unix::fs::symlink(work.path().join("secret.txt"), root.join("files/link.txt")).unwrap();

    let root_text = root.display().to_string();
    web_call(
        &site,
        "legacy",
        "register_path_route",
        vec![Value::from("^/files/"), Value::from(root_text.as_str())],
    )
    .unwrap();
    // The full request path is looked up under the root, as VOLTTRON does.
    let r = site.get("/files/report.txt", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "the report");
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{r:?}"
    );
    let r = site.get("/files/sub/page.html", None);
    assert_eq!(r.text(), "<p>page</p>");
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{r:?}"
    );

    // Nothing outside the root: `..`, encoded or not, and links out of it.
    for escape in [
        "/files/../../secret.txt",
        "/files/sub/../../../secret.txt",
        "/files/%2e%2e/%2e%2e/secret.txt",
        "/files/link.txt",
    ] {
        let r = site.get(escape, None);
        assert_eq!(r.status, 404, "{escape}: {r:?}");
        assert!(!r.text().contains("outside the root"), "{escape}: {r:?}");
    }
    assert_eq!(site.get("/files/missing.txt", None).status, 404);
    assert_eq!(site.get("/files/sub", None).status, 404);
    // Paths the regex does not match are not looked up.
    assert_eq!(site.get("/other/report.txt", None).status, 404);

    // Roots that cannot be served.
    for bad in [
        "/",
        "/no/such/dir",
        &root.join("files/report.txt").display().to_string(),
    ] {
        let e = web_call(
            &site,
            "legacy",
            "register_path_route",
            vec![Value::from("^/x/"), Value::from(bad)],
        )
        .unwrap_err();
        assert!(!e.is_empty(), "{bad}");
    }
    let e = web_call(
        &site,
        "legacy",
        "register_path_route",
        vec![Value::from("^/x/(unclosed"), Value::from(root_text.as_str())],
    )
    .unwrap_err();
    assert!(e.contains("invalid regex"), "{e}");
    site.shutdown();
}

#[test]
fn agent_websockets_open_talk_and_close_through_the_agent() {
    let (site, events) = legacy_site();
    let token = site.login();
    assert_eq!(
        web_call(
            &site,
            "legacy",
            "register_websocket",
            vec![Value::from("/legacy/ws")]
        )
        .unwrap(),
        Value::Null
    );
    web_call(
        &site,
        "legacy",
        "register_websocket",
        vec![Value::from("/legacy/ws-refusing")],
    )
    .unwrap();

    // A token is needed (auth on), and the agent is not asked without one.
    assert_eq!(refused_status(&site, "/legacy/ws", None), 401);
    // The agent may refuse a client.
    assert_eq!(refused_status(&site, "/legacy/ws-refusing", Some(&token)), 403);
    let e = event(&events, "opened");
    assert_eq!(e["endpoint"], "/legacy/ws-refusing", "{e}");

    let mut ws = site.try_connect("/legacy/ws", Some(&token)).unwrap();
    let e = event(&events, "opened");
    assert_eq!(
        e,
        json!({"event": "opened", "from": "127.0.0.1", "endpoint": "/legacy/ws"})
    );

    // client.message, answered with websocket_send.
    ws.send(Message::text("hello agent")).unwrap();
    let e = event(&events, "message");
    assert_eq!(e["endpoint"], "/legacy/ws", "{e}");
    assert_eq!(e["message"], "hello agent", "{e}");
    assert_eq!(next_text(&mut ws), "echo: hello agent");

    // websocket_send on the agent's own: text as is, other values as JSON; how many got it.
    let n = web_call(
        &site,
        "legacy",
        "websocket_send",
        vec![Value::from("/legacy/ws"), Value::from("pushed")],
    )
    .unwrap();
    assert_eq!(n, Value::from(1));
    assert_eq!(next_text(&mut ws), "pushed");
    web_call(
        &site,
        "legacy",
        "websocket_send",
        vec![Value::from("/legacy/ws"), Value::from(json!({"temp": 70}))],
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&next_text(&mut ws)).unwrap(),
        json!({"temp": 70})
    );
    // Nobody else may send on it.
    block(site.platform.spawn(
        "other",
        Legacy {
            events: mpsc::channel().0,
        },
    ))
    .unwrap();
    let e = web_call(
        &site,
        "other",
        "websocket_send",
        vec![Value::from("/legacy/ws"), Value::from("intruding")],
    )
    .unwrap_err();
    assert!(e.contains("not a socket of other"), "{e}");
    let e = web_call(
        &site,
        "other",
        "register_websocket",
        vec![Value::from("/legacy/ws")],
    )
    .unwrap_err();
    assert!(e.contains("registered by another agent"), "{e}");

    // client.closed when the client leaves.
    ws.close(None).unwrap();
    let e = event(&events, "closed");
    assert_eq!(e["endpoint"], "/legacy/ws", "{e}");
    let n = web_call(
        &site,
        "legacy",
        "websocket_send",
        vec![Value::from("/legacy/ws"), Value::from("nobody")],
    )
    .unwrap();
    assert_eq!(n, Value::from(0));

    // Unregistered, the socket is gone.
    assert_eq!(
        web_call(
            &site,
            "legacy",
            "unregister_websocket",
            vec![Value::from("/legacy/ws")]
        )
        .unwrap(),
        Value::from(true)
    );
    assert_eq!(refused_status(&site, "/legacy/ws", Some(&token)), 404);
    site.shutdown();
}

#[test]
fn reserved_and_taken_paths_are_refused_and_unregister_all_removes_everything() {
    let (site, events) = legacy_site();
    let token = site.login();
    for reserved in [
        "/vui/x",
        "/vui",
        "/authenticate",
        "/jsonrpc",
        "/ws",
        "/discovery/x",
        "/openapi.json",
        "/",
        "no-slash",
    ] {
        let e = web_call(
            &site,
            "legacy",
            "register_endpoint",
            vec![Value::from(reserved), Value::from("jsonrpc")],
        )
        .unwrap_err();
        assert!(
            e.contains("own routes") || e.contains("starts with `/`"),
            "{reserved}: {e}"
        );
        let e = web_call(&site, "legacy", "register_websocket", vec![Value::from(reserved)]).unwrap_err();
        assert!(!e.is_empty());
    }
    // The service's own routes still answer as before.
    assert_eq!(site.get("/vui/x", Some(&token)).status, 404);
    assert!(
        !events.try_iter().any(|e| e["event"] == "callback"),
        "the agent was asked for a reserved path"
    );
    let e = web_call(
        &site,
        "legacy",
        "register_endpoint",
        vec![Value::from("/legacy/bad"), Value::from("xml")],
    )
    .unwrap_err();
    assert!(e.contains("unknown res_type"), "{e}");

    // Another agent cannot take an endpoint.
    block(site.platform.spawn(
        "other",
        Legacy {
            events: mpsc::channel().0,
        },
    ))
    .unwrap();
    let e = web_call(
        &site,
        "other",
        "register_endpoint",
        vec![Value::from("/legacy/json"), Value::from("jsonrpc")],
    )
    .unwrap_err();
    assert!(e.contains("registered by legacy"), "{e}");

    // unregister_all_agent_routes: endpoints, path routes and sockets of the caller go.
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("files")).unwrap();
    std::fs::write(work.path().join("files/a.txt"), "a").unwrap();
    web_call(
        &site,
        "legacy",
        "register_path_route",
        vec![
            Value::from("^/files/"),
            Value::from(work.path().display().to_string()),
        ],
    )
    .unwrap();
    web_call(
        &site,
        "legacy",
        "register_websocket",
        vec![Value::from("/legacy/ws")],
    )
    .unwrap();
    web_call(
        &site,
        "other",
        "register_endpoint",
        vec![Value::from("/other/json"), Value::from("jsonrpc")],
    )
    .unwrap();
    assert_eq!(site.get("/legacy/json", None).status, 200);
    assert_eq!(site.get("/files/a.txt", None).text(), "a");
    let removed = web_call(&site, "legacy", "unregister_all_agent_routes", vec![]).unwrap();
    assert_eq!(removed, Value::from(4), "three endpoints and a path route");
    for path in ["/legacy/json", "/legacy/list", "/legacy/raw", "/files/a.txt"] {
        assert_eq!(site.get(path, None).status, 404, "{path}");
    }
    assert_eq!(refused_status(&site, "/legacy/ws", Some(&token)), 404);
    // The other agent's stay.
    assert_eq!(site.get("/other/json", None).status, 200);
    let routes: Vec<(String, String, String, String)> =
        block(site.platform.call("platform.web", "list_routes", ()).returning()).unwrap();
    assert!(routes.iter().all(|r| r.3 != "legacy"), "{routes:?}");
    // Registered again, it serves again; the agent leaving removes them too.
    web_call(
        &site,
        "legacy",
        "register_endpoint",
        vec![Value::from("/legacy/json"), Value::from("jsonrpc")],
    )
    .unwrap();
    assert_eq!(site.get("/legacy/json", None).status, 200);
    assert!(block(site.platform.stop_agent("legacy")));
    site.wait_status("/legacy/json", 404);
    site.shutdown();
}
