//! VIP workloads: a platform with the VIP listener (auth on, CURVE), an in-process Rust
//! sink, and VIP clients: Rust ones (`volttron::vip::client`) and VOLTTRON 11's own
//! Python client library (`benches/vip_client.py` in the venv of `bash .ci/test`).
//!
//! - [`VipRig::rust_stream`]: a Rust VIP client publishes 200-byte payloads through the
//!   listener to another Rust VIP client (a window of unanswered publishes, as the bridge
//!   stream keeps its link buffer full); delivered / elapsed;
//! - [`VipRig::rust_rpc`]: a Rust VIP client calls the in-process sink's `echo`;
//! - [`VipRig::python`]: `vip_client.py` publishes to the sink (each publish waited for, as
//!   VOLTTRON's agents do) and calls its `echo`;
//! - [`VipRig::listener_start_ms`]: from the control service's `start_agent` (what `vctl
//!   start` sends) to the first heartbeat of VOLTTRON's listener agent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use volttron::auth::keys::CredentialStore;
use volttron::prelude::*;
use volttron::vip::VipService;
use volttron::vip::client::VipClient;

/// Payload size of the Rust stream, in bytes (as the bridge stream's).
const PAYLOAD: usize = 200;

/// Unanswered publishes the Rust publisher keeps in flight.
const WINDOW: u64 = 512;

/// How long any one step may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// Counts what reaches it; answers `echo`; tells of listener heartbeats.
struct VipSink {
    count: Arc<AtomicU64>,
    heartbeats: mpsc::UnboundedSender<Instant>,
}

#[volttron::agent]
impl VipSink {
    #[subscribe("bench/python")]
    fn on_python(&mut self, _msg: &Publication) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    #[subscribe("heartbeat/listener")]
    fn on_heartbeat(&mut self, _msg: &Publication) {
        let _ = self.heartbeats.send(Instant::now());
    }

    #[rpc]
    fn echo(&mut self, value: Value) -> Value {
        value
    }
}

/// The platform, its home, and the sink.
pub(crate) struct VipRig {
    home: tempfile::TempDir,
    platform: Platform,
    address: String,
    /// Publications the sink counted from the Python client.
    python_count: Arc<AtomicU64>,
    heartbeats: mpsc::UnboundedReceiver<Instant>,
}

/// What `vip_client.py` measured.
pub(crate) struct PythonFigures {
    pub(crate) publish_msgs_per_s: f64,
    pub(crate) rpc_rtt_p50_us: f64,
}

impl VipRig {
    /// A platform with auth, the control service and the VIP listener, and the sink.
    pub(crate) async fn start() -> VipRig {
        let home = tempfile::tempdir().expect("home");
        CredentialStore::new(home.path())
            .load_or_create(volttron::services::control::CONTROL_CONNECTION)
            .expect("vctl key");
        let platform = Platform::builder()
            .home(home.path())
            .auth(true)
            .control(true)
            .agent_stop_grace(Duration::from_secs(5))
            .service(VipService::new())
            .start()
            .await
            .expect("platform");
        let python_count = Arc::new(AtomicU64::new(0));
        let (tx, heartbeats) = mpsc::unbounded_channel();
        platform
            .spawn(
                "sink",
                VipSink {
                    count: python_count.clone(),
                    heartbeats: tx,
                },
            )
            .await
            .expect("sink");
        let address = VipService::ipc_address(home.path()).expect("address");
        VipRig {
            home,
            platform,
            address,
            python_count,
            heartbeats,
        }
    }

    fn client(&self, identity: &str) -> VipClient {
        let keys = CredentialStore::new(self.home.path())
            .load_or_create(identity)
            .expect("keys");
        VipClient::connect(
            &self.address,
            identity,
            &keys,
            &self.platform.serverkey().expect("serverkey"),
        )
        .expect("connect")
    }

    /// One stream of `n` payloads from one Rust VIP client to another; msgs/s delivered.
    pub(crate) async fn rust_stream(&self, n: u64) -> f64 {
        let mut publisher = self.client("bench.vpub");
        let mut subscriber = self.client("bench.vsub");
        tokio::task::spawn_blocking(move || {
            subscriber.subscribe("bench/vip/").expect("subscribe");
            let counter = std::thread::spawn(move || {
                let mut got = 0u64;
                loop {
                    let m = subscriber
                        .next_message(DEADLINE)
                        .expect("receive")
                        .expect("a delivery");
                    match m.args.get(1).and_then(Value::as_str) {
                        Some("bench/vip/data") => got += 1,
                        Some("bench/vip/end") => return (got, Instant::now()),
                        _ => {}
                    }
                }
            });
            let body = serde_json::to_vec(&serde_json::json!({
                "bus": "", "headers": {}, "message": "x".repeat(PAYLOAD)
            }))
            .expect("json");
            let start = Instant::now();
            let mut acked = 0u64;
            for i in 0..n {
                let id = format!("p{i}");
                publisher
                    .send(
                        "",
                        "pubsub",
                        id.as_bytes(),
                        vec![b"publish".to_vec(), b"bench/vip/data".to_vec(), body.clone()],
                    )
                    .expect("send");
                while i + 1 - acked >= WINDOW {
                    publisher
                        .next_message(DEADLINE)
                        .expect("receive")
                        .expect("an answer");
                    acked += 1;
                }
            }
            while acked < n {
                publisher
                    .next_message(DEADLINE)
                    .expect("receive")
                    .expect("an answer");
                acked += 1;
            }
            publisher.publish("bench/vip/end", &Value::Null).expect("end");
            let (got, end) = counter.join().expect("counter");
            got as f64 / (end - start).as_secs_f64()
        })
        .await
        .expect("stream")
    }

    /// `n` calls of the sink's `echo` from a Rust VIP client; the median round trip, µs.
    pub(crate) async fn rust_rpc(&self, n: usize) -> f64 {
        let mut caller = self.client("bench.vcall");
        tokio::task::spawn_blocking(move || {
            let mut times = Vec::with_capacity(n);
            for i in 0..n {
                let t = Instant::now();
                caller
                    .call("sink", "echo", &Args::new().arg(i as i64), DEADLINE)
                    .expect("echo");
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        })
        .await
        .expect("rpc")
    }

    /// `vip_client.py` with VOLTTRON's client library: `publishes` to the sink, `calls`
    /// of its `echo`. `None` (and why, on stderr) without the venv.
    pub(crate) async fn python(&self, publishes: u64, calls: u64) -> Option<PythonFigures> {
        let python = python()?;
        let keys = CredentialStore::new(self.home.path())
            .load_or_create("bench.client")
            .expect("keys");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/vip_client.py");
        let mut command = Command::new(python);
        command
            .arg(script)
            .arg("--home")
            .arg(self.home.path())
            .args(["--identity", "bench.client"])
            .arg(format!("--publickey={}", keys.public))
            .arg(format!("--secretkey={}", keys.secret.to_base64()))
            .args(["--publish", &publishes.to_string(), "--topic", "bench/python"])
            .args([
                "--rpc",
                &calls.to_string(),
                "--peer",
                "sink",
                "--method",
                "echo",
                "--args",
                "[1]",
            ]);
        let out = tokio::task::spawn_blocking(move || command.output().expect("vip_client.py"))
            .await
            .expect("python");
        assert!(
            out.status.success(),
            "vip_client.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("vip_client.py's JSON line");
        Some(PythonFigures {
            publish_msgs_per_s: report["publish_msgs_per_s"].as_f64().unwrap_or(f64::NAN),
            rpc_rtt_p50_us: report["rpc_rtt_p50_us"].as_f64().unwrap_or(f64::NAN),
        })
    }

    /// Waits (up to [`DEADLINE`]) until the sink has counted `expected` publications from
    /// the Python client; returns its count.
    pub(crate) async fn python_delivered(&self, expected: u64) -> u64 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let n = self.python_count.load(Ordering::Relaxed);
            if n >= expected || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Installs VOLTTRON's listener from the venv (already there: pip has nothing to do).
    /// False (and why, on stderr) without the venv.
    pub(crate) async fn install_listener(&self) -> bool {
        use volttron::home::python::{PackageSource, PythonEnv};
        let Some(python) = python() else { return false };
        let venv = python.parent().and_then(Path::parent).expect("venv").to_owned();
        let package = tokio::task::spawn_blocking(move || {
            PythonEnv::open(&venv)
                .expect("venv")
                .install_package(
                    &PackageSource::Requirement("volttron-listener==2.0.0rc3".into()),
                    false,
                )
                .expect("the listener")
        })
        .await
        .expect("install");
        let args = Args::new()
            .kwarg("source", "")
            .kwarg("identity", "listener")
            .kwarg("name", package.distribution.agent_name())
            .kwarg("python", volttron::to_value(&package.program).expect("program"));
        self.platform
            .call(volttron::services::control::IDENTITY, "install_agent", args)
            .await
            .expect("install_agent");
        true
    }

    /// From `start_agent("listener")` to its first heartbeat, ms; then stops it.
    pub(crate) async fn listener_start_ms(&mut self) -> f64 {
        let control = volttron::services::control::IDENTITY;
        while self.heartbeats.try_recv().is_ok() {}
        let start = Instant::now();
        self.platform
            .call(control, "start_agent", ("listener",))
            .timeout(DEADLINE)
            .await
            .expect("start_agent");
        let beat = tokio::time::timeout(DEADLINE, self.heartbeats.recv())
            .await
            .expect("a heartbeat in time")
            .expect("the sink is running");
        let ms = (beat - start).as_secs_f64() * 1e3;
        self.platform
            .call(control, "stop_agent", ("listener",))
            .timeout(DEADLINE)
            .await
            .expect("stop_agent");
        ms
    }

    pub(crate) async fn shutdown(self) {
        self.platform.shutdown().await;
    }
}

/// The venv python of `bash .ci/test` (`$VOLTTRON_TEST_PYTHON`, else `target/vip-venv`).
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("VOLTTRON_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/vip-venv/bin/python"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: vip.python/vip.listener figures: no venv at {} (make it with: bash .ci/test --setup-only)",
            path.display()
        );
        None
    }
}
