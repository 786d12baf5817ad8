//! VOLTTRON 11's own Python agents, from PyPI, unchanged, on this platform beside Rust
//! agents: the listener, the platform driver with a fake device, the SQLite historian,
//! and VOLTTRON's client library (`benches/vip_client.py`) as an agent of the test's own.
//!
//! They need the venv that `bash .ci/test` builds (`target/vip-venv`, or
//! `$VOLTTRON_TEST_PYTHON`) with the pinned packages of `.ci/python-requirements.txt`;
//! without it a test says so and returns, and under `CI=true` it fails.
#![cfg(feature = "vip")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use volttron::auth::keys::{CredentialStore, KeyPair};
use volttron::prelude::*;
use volttron::vip::VipService;

/// How long any one thing may take (Python agents take about a second to import).
const DEADLINE: Duration = Duration::from_secs(60);

/// Forwards what it hears to the test: publications under its prefixes, peer events.
struct Watcher {
    publications: mpsc::UnboundedSender<Publication>,
    peers: mpsc::UnboundedSender<PeerEvent>,
}

#[volttron::agent]
impl Watcher {
    #[subscribe("heartbeat/")]
    fn heartbeat(&mut self, msg: &Publication) {
        let _ = self.publications.send(msg.clone());
    }

    #[subscribe("devices/")]
    fn devices(&mut self, msg: &Publication) {
        let _ = self.publications.send(msg.clone());
    }

    #[subscribe("from/python")]
    fn python_messages(&mut self, msg: &Publication) {
        let _ = self.publications.send(msg.clone());
    }

    #[on_peerlist]
    fn peer(&mut self, _ctx: &AgentContext, event: &PeerEvent) {
        let _ = self.peers.send(event.clone());
    }

    /// Called by the Python client.
    #[rpc]
    fn echo(&mut self, value: Value) -> Value {
        value
    }
}

struct Site {
    work: tempfile::TempDir,
    platform: Platform,
    publications: mpsc::UnboundedReceiver<Publication>,
    peers: mpsc::UnboundedReceiver<PeerEvent>,
    python: PathBuf,
}

impl Site {
    fn home(&self) -> PathBuf {
        self.work.path().join("home")
    }

    fn venv(&self) -> PathBuf {
        self.python.parent().and_then(Path::parent).unwrap().to_owned()
    }

    /// Runs vctl against the site (Python agents go into the prebuilt venv).
    async fn ok(&self, args: &[&str]) -> String {
        let out = {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let home = self.home();
            let venv = self.venv();
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_vctl"))
                    .arg("--volttron-home")
                    .arg(home)
                    .args(["-t", "60"])
                    .args(&args)
                    .env("VOLTTRON_PYTHON_ENV", venv)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        };
        assert!(
            out.status.success(),
            "vctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            log_tail()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The next publication on `topic` (others are skipped).
    async fn publication(&mut self, topic: &str) -> Publication {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.publications.recv()).await {
                Ok(Some(p)) if p.topic.as_str() == topic => return p,
                Ok(Some(_)) => {}
                _ => panic!("no publication on {topic} within {DEADLINE:?}\n{}", log_tail()),
            }
        }
    }

    /// Waits for `event` (others are skipped).
    async fn peer_event(&mut self, event: PeerEvent) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.peers.recv()).await {
                Ok(Some(e)) if e == event => return,
                Ok(Some(_)) => {}
                _ => panic!("no {event:?} within {DEADLINE:?}\n{}", log_tail()),
            }
        }
    }

    async fn shutdown(self) {
        self.platform.shutdown().await;
    }
}

/// A platform with auth, the control service and the VIP listener, a Rust watcher
/// agent, and `authz` as `authz.json` (when not empty).
async fn site(authz: &str) -> Option<Site> {
    let python = common::require_python("vip_python_agents")?;
    common::captured_log();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    if !authz.is_empty() {
        std::fs::write(home.join("authz.json"), authz).unwrap();
    }
    // vctl's key, as the `volttron` binary makes it.
    CredentialStore::new(&home)
        .load_or_create(volttron::services::control::CONTROL_CONNECTION)
        .unwrap();
    let platform = Platform::builder()
        .home(&home)
        .auth(true)
        .control(true)
        .agent_stop_grace(Duration::from_secs(2))
        .agent_restart(volttron::control::restart::RestartPolicy {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(1),
            limit: 3,
            period: Duration::from_secs(60),
        })
        .service(VipService::new())
        .start()
        .await
        .unwrap();
    let (ptx, publications) = mpsc::unbounded_channel();
    let (etx, peers) = mpsc::unbounded_channel();
    platform
        .spawn(
            "rust.watcher",
            Watcher {
                publications: ptx,
                peers: etx,
            },
        )
        .await
        .unwrap();
    Some(Site {
        work,
        platform,
        publications,
        peers,
        python,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_from_pypi_hears_rust_agents_and_they_hear_it() {
    let Some(mut s) = site("").await else { return };
    s.ok(&[
        "install",
        "volttron-listener==2.0.0rc3",
        "--vip-identity",
        "listener",
        "--start",
    ])
    .await;
    s.peer_event(PeerEvent::Added("listener".parse().unwrap())).await;
    // Its heartbeat (every 5 s, the first at start) reaches a Rust agent.
    let beat = s.publication("heartbeat/listener").await;
    assert_eq!(beat.sender.as_str(), "listener");
    assert_eq!(beat.message, Value::from("GOOD"));
    assert!(beat.headers.contains_key("TimeStamp"), "{:?}", beat.headers);
    // A Rust publication reaches it (once it has subscribed: the count says so), and the
    // listener logs every message it hears (its JSON record's text, as a log line).
    let deadline = Instant::now() + DEADLINE;
    while s
        .platform
        .publish("rust/hello", serde_json::json!({"from": "rust"}))
        .unwrap()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the listener never subscribed\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_log("the listener's log of a Rust publication", |log| {
        log.contains("Sender: platform:, Bus: , Topic: rust/hello")
    })
    .await;
    // platform.health knows it.
    let health: serde_json::Value = s
        .platform
        .call("platform.health", "get_platform_health", ())
        .returning()
        .await
        .unwrap();
    assert_eq!(health["listener"]["connected"], true, "{health}");
    assert_eq!(health["listener"]["peer"], "listener", "{health}");
    assert_eq!(health["listener"]["service_agent"], false, "{health}");
    // VOLTTRON 11's heartbeat is the bare status string; the service may not have taken
    // the first one yet.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let health: serde_json::Value = s
            .platform
            .call("platform.health", "get_platform_health", ())
            .returning()
            .await
            .unwrap();
        if health["listener"]["message"] == "GOOD" {
            assert_eq!(health["listener"]["status"], "GOOD", "{health}");
            break;
        }
        assert!(Instant::now() < deadline, "no heartbeat in {health}");
        s.publication("heartbeat/listener").await;
    }
    // Killed without a word, it is dropped at once and restarted by the crash monitor.
    let pid = agent_pid(&s, "listener").await;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    s.peer_event(PeerEvent::Dropped("listener".parse().unwrap()))
        .await;
    s.peer_event(PeerEvent::Added("listener".parse().unwrap())).await;
    s.publication("heartbeat/listener").await;
    assert_ne!(agent_pid(&s, "listener").await, pid);
    s.ok(&["stop", "listener"]).await;
    s.peer_event(PeerEvent::Dropped("listener".parse().unwrap()))
        .await;
    s.shutdown().await;
}

/// The pid of a running agent, from `vctl status --json`.
async fn agent_pid(s: &Site, identity: &str) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let out = s.ok(&["--json", "status"]).await;
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        if let Some(pid) = list
            .iter()
            .find(|a| a["identity"] == identity)
            .and_then(|a| a["pid"].as_u64())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "{identity} has no pid: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `benches/vip_client.py` (VOLTTRON's client library) as `identity` with `keys`.
async fn python_client(s: &Site, identity: &str, keys: &KeyPair, extra: &[&str]) -> Output {
    let script = common::vip_client_script();
    let mut command = Command::new(&s.python);
    command
        .arg(script)
        .arg("--home")
        .arg(s.home())
        .arg("--identity")
        .arg(identity)
        .arg(format!("--publickey={}", keys.public))
        .arg(format!("--secretkey={}", keys.secret.to_base64()))
        .args(extra);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volttrons_client_calls_rust_is_refused_a_protected_topic_and_waits_for_approval() {
    let authz = r#"{"protected_topics": {"publish": {"rust/secret": ["write_secret"]}}}"#;
    let Some(mut s) = site(authz).await else { return };
    let store = CredentialStore::new(&s.home());
    let keys = store.load_or_create("py.client").unwrap();
    // Publishes and calls a Rust agent.
    let out = python_client(
        &s,
        "py.client",
        &keys,
        &[
            "--publish",
            "3",
            "--topic",
            "from/python/x",
            "--rpc",
            "5",
            "--peer",
            "rust.watcher",
            "--method",
            "echo",
            "--args",
            "[42]",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["rpc_n"], 5, "{report}");
    let p = s.publication("from/python/x").await;
    assert_eq!(p.sender.as_str(), "py.client");
    // A protected topic: the client asks platform.auth (listed, since topics are
    // protected), is told no, and never sends it.
    let out = python_client(
        &s,
        "py.client",
        &keys,
        &[
            "--publish",
            "1",
            "--topic",
            "rust/secret",
            "--rpc",
            "0",
            "--peer",
            "rust.watcher",
            "--method",
            "echo",
            "--timeout",
            "5",
        ],
    )
    .await;
    assert!(!out.status.success(), "a protected publish went through");
    assert_eq!(
        s.platform
            .call("platform.auth", "get_authorization_pending", ())
            .returning::<Vec<serde_json::Value>>()
            .await
            .unwrap()
            .len(),
        0
    );
    // An unknown key: refused, pending; approved, it connects.
    let stranger = KeyPair::generate().unwrap();
    let out = python_client(
        &s,
        "py.stranger",
        &stranger,
        &[
            "--publish",
            "0",
            "--topic",
            "x",
            "--rpc",
            "0",
            "--peer",
            "rust.watcher",
            "--method",
            "echo",
            "--timeout",
            "10",
        ],
    )
    .await;
    assert!(!out.status.success());
    let pending: Vec<serde_json::Value> = s
        .platform
        .call("platform.auth", "get_authorization_pending", ())
        .returning()
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["identity"], "py.stranger");
    s.ok(&["auth", "approve", "py.stranger"]).await;
    let out = python_client(
        &s,
        "py.stranger",
        &stranger,
        &[
            "--publish",
            "1",
            "--topic",
            "from/python/approved",
            "--rpc",
            "1",
            "--peer",
            "rust.watcher",
            "--method",
            "echo",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.publication("from/python/approved").await;
    s.shutdown().await;
}

const FAKE_CSV: &str = "Volttron Point Name,Units,Units Details,Writable,Starting Value,Type,Notes\n\
SampleWritableFloat1,PPM,1000 (default),TRUE,10,float,Setpoint\n\
SampleLong1,Enumeration,1 through 13,FALSE,50,int,Status\n\
SampleBool1,On / Off,on/off,FALSE,TRUE,boolean,Status\n";

const FAKE_DEVICE: &str = r#"{"driver_config": {"remote_id": "fake1"}, "driver_type": "fake",
  "registry_config": "config://fake.csv", "interval": 1, "all_publish_interval": 1,
  "publish_depth_first_all": true}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_driver_and_the_sqlite_historian_serve_rust_agents() {
    let Some(mut s) = site("").await else { return };
    let dir = s.work.path().to_owned();
    std::fs::write(dir.join("fake.csv"), FAKE_CSV).unwrap();
    std::fs::write(dir.join("fake.json"), FAKE_DEVICE).unwrap();
    std::fs::write(dir.join("fake2.json"), FAKE_DEVICE.replace("fake1", "fake2")).unwrap();
    std::fs::write(
        dir.join("historian.json"),
        r#"{"connection": {"type": "sqlite", "params": {"database": "historian.sqlite"}}}"#,
    )
    .unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    s.ok(&[
        "config",
        "store",
        "platform.driver",
        "fake.csv",
        &path("fake.csv"),
        "--csv",
    ])
    .await;
    s.ok(&[
        "config",
        "store",
        "platform.driver",
        "devices/campus/building/fake",
        &path("fake.json"),
        "--json",
    ])
    .await;
    s.ok(&["install", "volttron-platform-driver==2.0.0rc9", "--start"])
        .await;
    s.ok(&[
        "install",
        "volttron-sqlite-historian==2.0.0rc5",
        "--vip-identity",
        "platform.historian",
        "--agent-config",
        &path("historian.json"),
        "--start",
    ])
    .await;
    // The driver publishes the device; a Rust agent hears it.
    let all = s.publication("devices/campus/building/fake/all").await;
    assert_eq!(all.sender.as_str(), "platform.driver");
    assert_eq!(
        all.message[0]["SampleWritableFloat1"],
        Value::from(10.0),
        "{:?}",
        all.message
    );
    // A Rust agent reads, writes and scrapes through the driver's RPC.
    let driver = "platform.driver";
    let v: f64 = s
        .platform
        .call(
            driver,
            "get_point",
            ("campus/building/fake", "SampleWritableFloat1"),
        )
        .returning()
        .await
        .unwrap();
    assert_eq!(v, 10.0);
    let set: f64 = s
        .platform
        .call(
            driver,
            "set_point",
            ("campus/building/fake", "SampleWritableFloat1", 42.5),
        )
        .returning()
        .await
        .unwrap();
    assert_eq!(set, 42.5);
    let scraped: serde_json::Value = s
        .platform
        .call(driver, "scrape_all", ("campus/building/fake",))
        .returning()
        .await
        .unwrap();
    assert_eq!(
        scraped["devices/campus/building/fake/SampleWritableFloat1"], 42.5,
        "{scraped}"
    );
    // A device stored while the driver runs reaches it as VOLTTRON 11's `config.update`
    // push (`*args`/`**kwargs`), and it starts scraping that device too (a device added
    // live publishes `/multi` only: the driver's own behaviour).
    s.ok(&[
        "config",
        "store",
        "platform.driver",
        "devices/campus/building/fake2",
        &path("fake2.json"),
        "--json",
    ])
    .await;
    let second = s.publication("devices/campus/building/fake2/multi").await;
    assert_eq!(second.sender.as_str(), "platform.driver");
    // The historian stores the driver's publications; a Rust agent queries them.
    s.peer_event(PeerEvent::Added("platform.historian".parse().unwrap()))
        .await;
    let deadline = Instant::now() + DEADLINE;
    let values = loop {
        let answer: serde_json::Value = s
            .platform
            .call(
                "platform.historian",
                "query",
                ("campus/building/fake/SampleWritableFloat1",),
            )
            .returning()
            .await
            .unwrap();
        let values = answer["values"].as_array().cloned().unwrap_or_default();
        // Two scrapes stored, one of them after the write (the first may come before).
        if values.iter().any(|row| row[1] == 42.5) && values.len() >= 2 {
            break values;
        }
        assert!(
            Instant::now() < deadline,
            "the historian has {answer}\n{}",
            log_tail()
        );
        // The next scrape comes within the device's interval.
        s.publication("devices/campus/building/fake/all").await;
    };
    assert!(values.len() >= 2, "{values:?}");
    s.shutdown().await;
}

// --- the platform's log, captured -------------------------------------------------------

fn log_tail() -> String {
    let text = common::log_text();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

async fn wait_for_log(what: &str, f: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f(&common::log_text()) {
        assert!(
            Instant::now() < deadline,
            "{what}: not in the log\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
