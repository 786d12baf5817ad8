//! The VOLTTRON 11 Python side the VIP tests run against: the venv `bash .ci/test` builds
//! (`common::require_python`), and `benches/vip_client.py` on its client library, as far
//! as it runs without a VIP server: its arguments, and a clean failure when it cannot
//! connect.
//!
//! Without the venv these tests skip with a printed reason; under `CI=true` they fail
//! and say how to install it.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Home, require_python, vip_client_script};

/// 43-character URL-safe base64 CURVE keys, as VOLTTRON writes them (any 32 bytes serve:
/// these tests never complete a handshake).
const PUBLIC: &str = "-yBFao-02f4jSG2St9wBJktwlbrfBClOc5i94gcsUXY";
const SECRET: &str = "ASZLcJW63wQpTnOYveIHLFF2m8DlCi9UeZ7D6A0yV3w";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the bench client as `identity` against `home` with `extra` arguments.
fn vip_client(python: &Path, home: &Path, extra: &[&str]) -> Output {
    Command::new(python)
        .arg(vip_client_script())
        .arg("--home")
        .arg(home)
        .args(["--identity", "bench"])
        .arg(format!("--publickey={PUBLIC}"))
        .arg(format!("--secretkey={SECRET}"))
        .arg(format!("--serverkey={PUBLIC}"))
        .args(["--publish", "3", "--topic", "bench/t", "--rpc", "3"])
        .args(["--peer", "echo", "--method", "echo"])
        .args(extra)
        .output()
        .unwrap()
}

/// The client library imports, its ZeroMQ core is there, and pyzmq has CURVE (libzmq
/// built with libsodium).
#[test]
fn the_venv_has_the_volttron_client_with_curve() {
    let Some(python) = require_python("the_venv_has_the_volttron_client_with_curve") else {
        return;
    };
    let out = Command::new(&python)
        .args([
            "-c",
            "import volttron.client.vip.agent, volttron.messagebus.zmq.zmq_core, zmq; \
             print(zmq.has('curve'), zmq.zmq_version(), zmq.__version__)",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("True "), "no CURVE: {stdout}");
    assert!(stdout.trim_end().ends_with(" 25.1.2"), "pyzmq pinned: {stdout}");
}

/// `--help` lists the arguments; a bad one exits 2 with argparse's reason.
#[test]
fn the_bench_client_parses_its_arguments() {
    let Some(python) = require_python("the_bench_client_parses_its_arguments") else {
        return;
    };
    let help = Command::new(&python)
        .arg(vip_client_script())
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success(), "{help:?}");
    let usage = text(&help.stdout);
    for arg in [
        "--home",
        "--identity",
        "--publickey",
        "--secretkey",
        "--serverkey",
        "--address",
        "--publish",
        "--topic",
        "--rpc",
        "--peer",
        "--method",
        "--timeout",
    ] {
        assert!(usage.contains(arg), "{arg} missing from: {usage}");
    }
    let home = Home::with_config("");
    for (extra, reason) in [
        (&["--publish", "many"][..], "--publish: invalid count value"),
        (&["--rpc", "-1"], "--rpc"),
        (&["--args", "{}"], "not a JSON list"),
        (&["--timeout", "0"], "not a positive number"),
    ] {
        let out = vip_client(&python, home.path(), extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
        assert!(
            text(&out.stderr).contains(reason),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
}

/// Nothing listening on the home's VIP socket: exit 1 at once, one line naming the
/// address the library derived from the home.
#[test]
fn the_bench_client_fails_cleanly_without_a_server() {
    let Some(python) = require_python("the_bench_client_fails_cleanly_without_a_server") else {
        return;
    };
    let home = Home::with_config("");
    let out = vip_client(&python, home.path(), &["--timeout", "30"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = text(&out.stderr);
    let real = home.path().canonicalize().unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "vip_client: cannot connect to ipc://@{}/run/vip.socket as bench: nothing listens there",
            real.display()
        )
    );
}

/// Something listens but never speaks VIP (no CURVE handshake, no welcome): exit 1 after
/// `--timeout`, one line saying so.
#[test]
fn the_bench_client_gives_up_after_its_timeout() {
    let Some(python) = require_python("the_bench_client_gives_up_after_its_timeout") else {
        return;
    };
    let home = Home::with_config("");
    let real = home.path().canonicalize().unwrap();
    let name = format!("{}/run/vip.socket", real.display());
    let _silent = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let started = Instant::now();
    let out = vip_client(&python, home.path(), &["--timeout", "2"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "vip_client: cannot connect to ipc://@{name} as bench: no welcome within 2 s \
             (server down, or the CURVE keys refused?)"
        )
    );
    assert!(took >= Duration::from_secs(2), "gave up early: {took:?}");
    assert!(took < Duration::from_secs(20), "not bounded: {took:?}");
}
