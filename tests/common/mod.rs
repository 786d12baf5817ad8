//! The harness of the end-to-end tests that drive `volttron` and `vctl` as processes: a
//! temporary home, the platform process, `vctl` calls, and polling `status` against a
//! deadline (the platform and the agents are other processes); and the VOLTTRON 11 Python
//! venv that `bash .ci/test` builds ([`require_python`], [`require_schemathesis`]). Its
//! modules: [`browser`], a headless Chromium over WebDriver; [`logs`], the platform's JSON
//! log read back; [`web`], the web service of a platform process (users, address, tokens);
//! [`mosquitto`], a real MQTT 5 broker and its command-line clients (the same file as the
//! benchmarks' `workloads::mosquitto`); [`building`], the building data path's operator agent;
//! [`settle`], a wait for work the test platform's `settle` does not see.

// Each test file uses a part of it.
#![allow(dead_code)]

pub(crate) mod browser;
#[cfg(all(feature = "driver", feature = "actuator"))]
pub(crate) mod building;
#[cfg(feature = "simulation")]
pub(crate) mod influxdb;
pub(crate) mod logs;
#[path = "../../benches/workloads/mosquitto.rs"]
pub(crate) mod mosquitto;
pub(crate) mod settle;
#[cfg(feature = "simulation")]
pub(crate) mod simulation;
pub(crate) mod web;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// The example agent process `examples/NAME.rs`, built if missing.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    // Always (a no-op when fresh): a stale binary from an older protocol version fails
    // in ways that say nothing about the test.
    let status = Command::new(env!("CARGO"))
        .args(["build", "--example", name])
        .status()
        .unwrap();
    assert!(status.success());
    path
}

pub(crate) fn remote_agent_binary() -> PathBuf {
    example_binary("remote_agent")
}

/// The environment variable that names the VOLTTRON 11 venv's Python (`bash .ci/test`
/// sets it).
pub(crate) const ENV_PYTHON: &str = "VOLTTRON_TEST_PYTHON";

/// The Python of the VOLTTRON 11 venv that `bash .ci/test` builds (the pinned
/// `.ci/python-requirements.txt`): `$VOLTTRON_TEST_PYTHON` when set, else
/// `target/vip-venv/bin/python` in this clone; `None` unless that is a file.
pub(crate) fn python_venv() -> Option<PathBuf> {
    let path = match std::env::var_os(ENV_PYTHON).filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/vip-venv/bin/python"),
    };
    path.is_file().then_some(path)
}

/// A loopback TCP port nothing listens on now (bound, then let go), for a process under
/// test to bind.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this is CI (`CI=true`), where no test may skip for a missing component.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// [`python_venv`], for a test that needs it:
/// `let Some(python) = common::require_python("my_test") else { return };`.
/// When it is missing: under `CI=true` a panic that says how to install it; otherwise a
/// `skipped:` line naming `test`, and `None`.
pub(crate) fn require_python(test: &str) -> Option<PathBuf> {
    if let Some(python) = python_venv() {
        return Some(python);
    }
    let looked_at = match std::env::var_os(ENV_PYTHON).filter(|p| !p.is_empty()) {
        Some(path) => format!("${ENV_PYTHON}={} is not a file", Path::new(&path).display()),
        None => format!("${ENV_PYTHON} is unset and there is no target/vip-venv/bin/python"),
    };
    let why = format!("{test}: no VOLTTRON 11 Python venv ({looked_at}); install it with: bash .ci/test");
    assert!(!in_ci(), "{why}");
    println!("skipped: {why}");
    None
}

/// The `schemathesis` command of the venv of [`python_venv`] (`.ci/python-requirements.txt`
/// pins it), for a test that needs it, like [`require_python`]: under `CI=true` a panic that
/// says how to install it; otherwise a `skipped:` line naming `test`, and `None`.
pub(crate) fn require_schemathesis(test: &str) -> Option<PathBuf> {
    let python = require_python(test)?;
    let schemathesis = python.with_file_name("schemathesis");
    if schemathesis.is_file() {
        return Some(schemathesis);
    }
    let why = format!(
        "{test}: no {} (the venv predates its pin in .ci/python-requirements.txt); rebuild it with: bash .ci/test --setup-only",
        schemathesis.display()
    );
    assert!(!in_ci(), "{why}");
    println!("skipped: {why}");
    None
}

/// `benches/vip_client.py`, the VIP benchmark client on the VOLTTRON 11 client library.
pub(crate) fn vip_client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/vip_client.py")
}

pub(crate) struct Home {
    dir: tempfile::TempDir,
    /// The home: `dir` itself, or `dir/home` ([`nested`](Self::nested)).
    home: PathBuf,
}

impl Home {
    /// A fresh home, with this `[volttron]` config file (if not empty).
    pub(crate) fn with_config(config: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            home: dir.path().to_owned(),
            dir,
        };
        home.write_config(config);
        home
    }

    /// A fresh home at `<temporary directory>/home`, the temporary directory of mode
    /// `parent_mode` (`0o700`: as a home in root's home directory is, for other users).
    pub(crate) fn nested(config: &str, parent_mode: u32) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            home: dir.path().join("home"),
            dir,
        };
        std::fs::create_dir(&home.home).unwrap();
        std::fs::set_permissions(
            home.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(parent_mode),
        )
        .unwrap();
        home.write_config(config);
        home
    }

    fn write_config(&self, config: &str) {
        if !config.is_empty() {
            std::fs::write(self.path().join("config"), config).unwrap();
        }
    }

    /// The directory the home is in: [`path`](Self::path) itself, or its parent for a
    /// [`nested`](Self::nested) one.
    pub(crate) fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `name` in the home's directory; returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// [`write`](Self::write)s an executable script (mode 0755).
    pub(crate) fn write_script(&self, name: &str, script: &str) -> PathBuf {
        let path = self.write(name, script);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    }

    pub(crate) fn path(&self) -> &Path {
        &self.home
    }

    pub(crate) fn vctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vctl"))
            .arg("--volttron-home")
            .arg(self.path())
            .args(["-t", "20"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs vctl; panics with its stderr unless it succeeds; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.vctl(args);
        assert!(
            out.status.success(),
            "vctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs vctl; expects a failure; returns its one-line reason.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.vctl(args);
        assert!(!out.status.success(), "vctl {args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        err
    }

    pub(crate) fn status(&self) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    pub(crate) fn agent(&self, identity: &str) -> Option<Value> {
        self.status().into_iter().find(|a| a["identity"] == identity)
    }

    /// `vctl install PROGRAM --vip-identity IDENTITY --start`, then waits until its
    /// process runs.
    pub(crate) fn install_started(&self, program: &Path, identity: &str) -> Value {
        self.ok(&[
            "install",
            program.to_str().unwrap(),
            "--vip-identity",
            identity,
            "--start",
        ]);
        self.wait_for(identity, "running", |a| pid(a).is_some())
    }

    /// Polls `status` until `f` holds for the agent (or panics at the deadline).
    pub(crate) fn wait_for(&self, identity: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(a) = self.agent(identity)
                && f(&a)
            {
                return a;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{identity}: {what}: {:?}\nplatform log:\n{}",
                self.agent(identity),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A bridge connection to the running platform as `identity`, an ordinary agent:
    /// `vctl auth add IDENTITY` makes and approves its key pair (unlike `vctl`'s
    /// `control.connection`, its calls are checked against `authz.json`).
    pub(crate) async fn connect_as(&self, identity: &str) -> volttron::remote::Connection {
        self.ok(&["auth", "add", identity]);
        let keys = volttron::auth::keys::CredentialStore::new(self.path())
            .load(identity)
            .unwrap()
            .unwrap();
        let serverkey = volttron::auth::keys::PlatformKey::public_key(self.path())
            .unwrap()
            .unwrap();
        volttron::remote::Remote::new(volttron::bridge::BridgeAddress::Unix(
            self.path().join("run/vip.socket"),
        ))
        .identity(identity)
        .credentials(keys)
        .serverkey(serverkey)
        .connect_timeout(DEADLINE)
        .connect()
        .await
        .unwrap()
    }

    /// Where the platform logs (shown when a wait times out).
    pub(crate) fn log_path(&self) -> PathBuf {
        self.path().join("volttron.log")
    }

    /// The last lines of the platform's log.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub(crate) fn start_platform(&self) -> PlatformProcess {
        self.start_platform_with(&[])
    }

    /// [`start_platform`](Self::start_platform) with more `volttron` flags.
    pub(crate) fn start_platform_with(&self, flags: &[&str]) -> PlatformProcess {
        let child = PlatformProcess(
            Command::new(env!("CARGO_BIN_EXE_volttron"))
                .arg("--volttron-home")
                .arg(self.path())
                .arg("-l")
                .arg(self.log_path())
                .args(flags)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        while self.vctl(&["peerlist"]).status.code() != Some(0) {
            assert!(start.elapsed() < DEADLINE, "the platform did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }
}

/// The platform process: killed (with its agents, which notice their parent is gone) if
/// the test fails before shutting it down.
pub(crate) struct PlatformProcess(pub(crate) Child);

impl Drop for PlatformProcess {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub(crate) fn pid(a: &Value) -> Option<u64> {
    a["pid"].as_u64()
}

/// Waits for the platform process to exit after `vctl shutdown --platform`.
pub(crate) fn platform_wait(mut platform: PlatformProcess) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = platform.0.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "the platform did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything this test binary logs, as text: installs a global `tracing` subscriber
/// (debug level, no colours) writing into a buffer on first use. Agents' output is logged
/// from reader threads, so a test reads it here rather than from its own output.
pub(crate) fn captured_log() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        buffer
    })
    .clone()
}

/// What [`captured_log`] holds so far.
pub(crate) fn log_text() -> String {
    String::from_utf8_lossy(&captured_log().lock().unwrap()).into_owned()
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
