//! A real Modbus TCP device for the Modbus driver's tests and benchmark: pymodbus (pinned in
//! `.ci/python-requirements.txt`, in the venv `bash .ci/test` builds) running
//! `tests/support/modbus_server.py` as a child process on a free loopback port.
//!
//! | call | what it does |
//! |------|--------------|
//! | [`ModbusServer::start`] | writes the device's spec (tables, points; see the script) to a temporary file, starts the script with the venv's Python, waits for `listening` (at most [`START_DEADLINE`]); `Err` with the script's stderr when it fails (pymodbus not installed) |
//! | [`ModbusServer::next_write`] | the next write request the server served, `{"function", "address", "values"}`, or a panic after [`WRITE_DEADLINE`] |
//! | [`ModbusServer::stop`] | closes its stdin (the script exits) and waits for it |
//! | drop | kills it if still running |
//!
//! Tests include this file with `#[path = "../benches/workloads/pymodbus.rs"] mod pymodbus;`.

#![allow(dead_code, reason = "the tests and the perf example each use a part of it")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value as Json;

/// How long the script may take to bind its port.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long [`ModbusServer::next_write`] waits.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// How to get pymodbus where the tests look for it.
pub(crate) const INSTALL: &str =
    "bash .ci/test --setup-only (pymodbus is pinned in .ci/python-requirements.txt)";

/// The server script.
pub(crate) fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/modbus_server.py")
}

/// The venv's Python: `$VOLTTRON_TEST_PYTHON`, else `target/vip-venv/bin/python` of this
/// clone; `Err` (saying how to make it) when that is not a file or has no pymodbus ([`probe`]).
pub(crate) fn python() -> Result<PathBuf, String> {
    let path = std::env::var_os("VOLTTRON_TEST_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/vip-venv/bin/python"));
    if !path.is_file() {
        return Err(format!(
            "no Python venv at {}; make it with: {INSTALL}",
            path.display()
        ));
    }
    probe(&path)?;
    Ok(path)
}

/// `Ok` when `python` imports pymodbus; `Err` saying how to install it otherwise.
pub(crate) fn probe(python: &Path) -> Result<(), String> {
    let probe = Command::new(python)
        .args(["-c", "import pymodbus"])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !probe.status.success() {
        return Err(format!(
            "{} has no pymodbus ({}); install it with: {INSTALL}",
            python.display(),
            String::from_utf8_lossy(&probe.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    Ok(())
}

/// A pymodbus server as a child process; see the [module docs](self).
pub(crate) struct ModbusServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    lines: mpsc::Receiver<String>,
    _spec: tempfile::TempDir,
}

impl ModbusServer {
    /// Starts a server of `spec` with `python` on a free loopback port.
    pub(crate) fn start(python: &Path, spec: &Json) -> Result<ModbusServer, String> {
        Self::start_on(python, spec, free_port())
    }

    /// Starts a server of `spec` on `port` (a restart on the port of a stopped one).
    pub(crate) fn start_on(python: &Path, spec: &Json, port: u16) -> Result<ModbusServer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let spec_path = dir.path().join("spec.json");
        std::fs::write(&spec_path, spec.to_string()).map_err(|e| e.to_string())?;
        let mut child = Command::new(python)
            .arg(script())
            .arg(port.to_string())
            .arg(&spec_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", python.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // pymodbus logs deprecations and errors on stderr: kept for the failure message.
        let (err_tx, err_lines) = mpsc::channel();
        std::thread::spawn(move || {
            let text: Vec<String> = BufReader::new(stderr).lines().map_while(Result::ok).collect();
            let _ = err_tx.send(text.join("\n"));
        });
        match lines.recv_timeout(START_DEADLINE) {
            Ok(line) if line == format!("listening {port}") => Ok(ModbusServer {
                child,
                stdin,
                port,
                lines,
                _spec: dir,
            }),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_lines.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
                Err(format!(
                    "{} did not start on port {port} ({other:?}):\n{stderr}",
                    script().display()
                ))
            }
        }
    }

    /// Its port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The next write request it served.
    pub(crate) fn next_write(&self) -> Json {
        let line = self
            .lines
            .recv_timeout(WRITE_DEADLINE)
            .unwrap_or_else(|e| panic!("no write reached the server within {WRITE_DEADLINE:?}: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("server printed {line:?}: {e}"))
    }

    /// Writes it served that nobody took with [`next_write`](Self::next_write) yet.
    pub(crate) fn pending_writes(&self) -> Vec<Json> {
        self.lines
            .try_iter()
            .map(|line| serde_json::from_str(&line).unwrap_or(Json::String(line)))
            .collect()
    }

    /// Closes its stdin, so it exits, and waits for that.
    pub(crate) fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for ModbusServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback TCP port nothing listens on now (bound, then let go).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
