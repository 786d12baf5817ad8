//! What the web service's HTTP tests share: a platform with a home, auth on and the web
//! service on a free loopback port; web users; a real HTTP client (ureq) that reports every
//! status instead of failing on 4xx; logins; and polling with a deadline.
//!
//! The tests are plain `#[test]`s: the platform runs on its own threads, so the blocking
//! HTTP client may block the test's thread, and the platform's futures are driven with
//! `futures::executor::block_on`.

// Each test file uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use volttron::web::{WebConfig, WebService, WebUsers};
use volttron::{Platform, PlatformBuilder};

/// How long anything observable may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// The password every test user gets.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn block_on<F: std::future::IntoFuture>(f: F) -> F::Output {
    futures::executor::block_on(f.into_future())
}

/// Polls `f` until it gives `Some`, or panics with `what` at the deadline.
pub(crate) fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP client that answers every status (4xx and 5xx are not errors), with TLS trusting
/// `extra_root` (DER) when given.
pub(crate) fn client(extra_root: Option<&[u8]>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)));
    if let Some(der) = extra_root {
        let cert = ureq::tls::Certificate::from_der(der).to_owned();
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    ureq::Agent::new_with_config(config.build())
}

/// An answer: status, headers (names lower case) and body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub(crate) fn json(&self) -> Json {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {:?}", self.status, self.body))
    }

    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status, showing the body otherwise; returns self.
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }
}

/// A request to send.
pub(crate) struct Req<'a> {
    http: &'a ureq::Agent,
    method: &'a str,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl<'a> Req<'a> {
    pub(crate) fn new(http: &'a ureq::Agent, method: &'a str, url: String) -> Req<'a> {
        Req {
            http,
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub(crate) fn token(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A JSON body.
    pub(crate) fn json(self, v: &Json) -> Self {
        self.body("application/json", serde_json::to_vec(v).unwrap())
    }

    pub(crate) fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = Some(body.into());
        self
    }

    pub(crate) fn send(self) -> Reply {
        let mut b = ureq::http::Request::builder().method(self.method).uri(&self.url);
        for (n, v) in &self.headers {
            b = b.header(n, v);
        }
        let result = match self.body {
            Some(body) => self.http.run(b.body(body).unwrap()),
            None => self.http.run(b.body(()).unwrap()),
        };
        let mut r = result.unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.url));
        let headers = r
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: r.status().as_u16(),
            headers,
            body,
        }
    }
}

/// A login's tokens.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

/// A web service to talk to: where, and the client.
pub(crate) struct Site {
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub(crate) base: String,
    pub(crate) http: ureq::Agent,
}

impl Site {
    pub(crate) fn new(base: impl Into<String>) -> Site {
        Site {
            base: base.into(),
            http: client(None),
        }
    }

    /// The socket address served.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        let hostport = self.base.split_once("://").unwrap().1;
        hostport.trim_end_matches('/').parse().unwrap()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn req<'a>(&'a self, method: &'a str, path: &str) -> Req<'a> {
        Req::new(&self.http, method, self.url(path))
    }

    pub(crate) fn get(&self, path: &str, token: &str) -> Reply {
        self.req("GET", path).token(token).send()
    }

    /// `POST /authenticate` with JSON credentials.
    pub(crate) fn authenticate(&self, user: &str, password: &str) -> Reply {
        self.req("POST", "/authenticate")
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
    }

    /// Logs `user` in with [`PASSWORD`].
    #[track_caller]
    pub(crate) fn login(&self, user: &str) -> Tokens {
        let r = self.authenticate(user, PASSWORD).expect(200);
        let v = r.json();
        Tokens {
            access: v["access_token"].as_str().unwrap().to_owned(),
            refresh: v["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// Adds (or replaces) a web user of `home` with [`PASSWORD`], by the library API (as `vctl
/// web user add` does).
pub(crate) fn add_user(home: &Path, name: &str, groups: &[&str]) {
    let mut users = WebUsers::load(WebUsers::path_in(home)).unwrap();
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    users.add(name, PASSWORD, &groups, true).unwrap();
}

/// A running platform with the web service.
pub(crate) struct Web {
    pub(crate) platform: Platform,
    pub(crate) site: Site,
    home: tempfile::TempDir,
}

impl std::ops::Deref for Web {
    type Target = Site;

    fn deref(&self) -> &Site {
        &self.site
    }
}

/// How to start one.
pub(crate) struct WebSetup {
    pub(crate) service: WebService,
    /// Runs on the home before the platform starts (files the platform reads at start).
    pub(crate) prepare: Box<dyn FnOnce(&Path)>,
    /// Adjusts the platform builder (it already has the home, auth on and the service).
    pub(crate) tune: Box<dyn FnOnce(PlatformBuilder) -> PlatformBuilder>,
    /// A certificate (DER) the client trusts, for `https://`.
    pub(crate) trust: Option<Vec<u8>>,
    pub(crate) home: Option<tempfile::TempDir>,
}

impl WebSetup {
    pub(crate) fn new(config: WebConfig) -> WebSetup {
        WebSetup::service(WebService::new(config))
    }

    pub(crate) fn service(service: WebService) -> WebSetup {
        WebSetup {
            service,
            prepare: Box::new(|_| {}),
            tune: Box::new(|b| b),
            trust: None,
            home: None,
        }
    }

    pub(crate) fn prepare(mut self, f: impl FnOnce(&Path) + 'static) -> Self {
        self.prepare = Box::new(f);
        self
    }

    pub(crate) fn tune(mut self, f: impl FnOnce(PlatformBuilder) -> PlatformBuilder + 'static) -> Self {
        self.tune = Box::new(f);
        self
    }

    pub(crate) fn trust(mut self, der: Vec<u8>) -> Self {
        self.trust = Some(der);
        self
    }

    /// Uses this (already prepared) home.
    pub(crate) fn home(mut self, home: tempfile::TempDir) -> Self {
        self.home = Some(home);
        self
    }

    pub(crate) fn start(self) -> Web {
        let home = self.home.unwrap_or_else(|| tempfile::tempdir().unwrap());
        (self.prepare)(home.path());
        let builder = Platform::builder()
            .home(home.path())
            .instance_name("webtest")
            .auth(true)
            .service(self.service);
        let platform = block_on((self.tune)(builder).start()).expect("the platform starts");
        let base = wait_until("platform.web answers get_bind_web_address", || {
            block_on(
                platform
                    .call("platform.web", "get_bind_web_address", ())
                    .timeout(Duration::from_secs(5))
                    .returning::<String>(),
            )
            .ok()
        });
        Web {
            platform,
            site: Site {
                base,
                http: client(self.trust.as_deref()),
            },
            home,
        }
    }
}

impl Web {
    /// A platform with `config`, no preparation.
    pub(crate) fn start(config: WebConfig) -> Web {
        WebSetup::new(config).start()
    }

    /// The default config: loopback, any port.
    pub(crate) fn config() -> WebConfig {
        WebConfig::new("http://127.0.0.1:0").unwrap()
    }

    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn users_file(&self) -> PathBuf {
        WebUsers::path_in(self.home())
    }

    /// Adds a web user with [`PASSWORD`] (the library API, as `vctl web user add` does).
    pub(crate) fn add_user(&self, name: &str, groups: &[&str]) {
        add_user(self.home(), name, groups);
    }

    pub(crate) fn remove_user(&self, name: &str) {
        let mut users = WebUsers::load(self.users_file()).unwrap();
        users.remove(name).unwrap();
    }

    /// Adds `user` with `groups` and logs it in: its access token.
    pub(crate) fn user_token(&self, user: &str, groups: &[&str]) -> String {
        self.add_user(user, groups);
        self.login(user).access
    }

    /// Waits until `identity` is a peer.
    pub(crate) fn wait_peer(&self, identity: &str) {
        wait_until(&format!("{identity} connected"), || {
            self.platform
                .peers()
                .iter()
                .any(|p| p.as_str() == identity)
                .then_some(())
        });
    }

    pub(crate) fn shutdown(self) {
        block_on(self.platform.shutdown());
    }
}

/// Whether any secret shows in `text`: password hashes, the hash field, the secret key.
pub(crate) fn assert_no_secrets(text: &str, secret_key: Option<&str>) {
    assert!(!text.contains("hashed_password"), "{text}");
    assert!(!text.contains("$argon2"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    if let Some(k) = secret_key {
        assert!(!text.contains(k), "{text}");
    }
}

/// What a [`Thermo`] saw: the publications it heard, the calls of `bump`.
#[derive(Clone, Default)]
pub(crate) struct Probe {
    pub(crate) heard: std::sync::Arc<std::sync::Mutex<Vec<(String, Json)>>>,
    pub(crate) bumps: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Probe {
    pub(crate) fn heard(&self) -> Vec<(String, Json)> {
        self.heard.lock().unwrap().clone()
    }

    pub(crate) fn bumps(&self) -> usize {
        self.bumps.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until it heard `n` publications; returns them.
    pub(crate) fn wait_heard(&self, n: usize) -> Vec<(String, Json)> {
        wait_until(&format!("{n} publications heard"), || {
            let h = self.heard();
            (h.len() >= n).then_some(h)
        })
    }
}

/// An in-process agent with RPC methods, subscribed to `devices/`.
pub(crate) struct Thermo {
    pub(crate) probe: Probe,
}

#[volttron::agent]
impl Thermo {
    /// `a + b`.
    #[rpc]
    fn add(&mut self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// The temperature.
    #[rpc]
    fn get_temp(&mut self) -> f64 {
        21.5
    }

    /// Echoes the set point.
    #[rpc]
    fn set_point(&mut self, value: f64) -> f64 {
        value
    }

    /// Always fails with `reason`.
    #[rpc]
    fn fail(&mut self, reason: String) -> Result<(), String> {
        Err(reason)
    }

    /// Counts its calls.
    #[rpc]
    fn bump(&mut self) -> usize {
        self.probe.bumps.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// The `traceparent` current in this handler, if any.
    #[rpc]
    fn trace(&mut self) -> Option<String> {
        volttron::agent::current_trace().map(|t| t.traceparent().to_owned())
    }

    /// A method worth protecting.
    #[rpc]
    fn poke(&mut self) -> &'static str {
        "poked"
    }

    #[subscribe("devices/")]
    fn on_device(&mut self, msg: &volttron::prelude::Publication) {
        let message = serde_json::to_value(&msg.message).unwrap_or(Json::Null);
        self.probe
            .heard
            .lock()
            .unwrap()
            .push((msg.topic.to_string(), message));
    }
}

impl Web {
    /// Spawns a [`Thermo`] as `identity`; what it sees.
    pub(crate) fn thermo(&self, identity: &str) -> Probe {
        let probe = Probe::default();
        block_on(self.platform.spawn(identity, Thermo { probe: probe.clone() })).unwrap();
        self.wait_peer(identity);
        probe
    }
}
