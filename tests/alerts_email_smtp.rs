//! The e-mail sink against a real SMTP server on loopback: aiosmtpd (PyPI, pinned in
//! `.ci/python-requirements.txt`, in the venv `bash .ci/test` builds), with a login. The
//! alert is raised by an agent, routed by rules from the config store, and sent by lettre
//! on the service's delivery thread.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::{Value as Json, json};
use volttron::alerts::{AlertsService, IDENTITY};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

/// An SMTP server that prints each message it accepts as a JSON line, and accepts the
/// login volttron / s3cret over plain SMTP (a relay on loopback).
const SERVER: &str = r#"
import json, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = getattr(session, "auth_data", None)
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "login": login.decode() if isinstance(login, bytes) else None,
            "data": envelope.content.decode("utf8", "replace"),
        }), flush=True)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"volttron" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]),
                        authenticator=authenticator, auth_require_tls=False)
controller.start()
print("READY", flush=True)
sys.stdin.read()
controller.stop()
"#;

/// The venv's Python with aiosmtpd, for this test: under `CI=true` a panic that says how
/// to install it; otherwise a `skipped:` line and `None`.
fn require_aiosmtpd(test: &str) -> Option<PathBuf> {
    let python = common::require_python(test)?;
    let found = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(python);
    }
    let why = format!(
        "{test}: {} has no aiosmtpd (the venv predates its pin in .ci/python-requirements.txt); rebuild it with: bash .ci/test --setup-only",
        python.display()
    );
    assert!(!common::in_ci(), "{why}");
    println!("skipped: {why}");
    None
}

/// The SMTP server process and the messages it printed.
struct SmtpServer {
    child: Child,
    port: u16,
    messages: mpsc::Receiver<Json>,
}

impl SmtpServer {
    fn start(python: &Path) -> SmtpServer {
        let port = common::free_port();
        let mut child = Command::new(python)
            .args(["-c", SERVER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok);
        assert_eq!(first.as_deref(), Some("READY"), "aiosmtpd did not start");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    return;
                }
            }
        });
        SmtpServer {
            child,
            port,
            messages,
        }
    }

    fn next(&self) -> Json {
        self.messages.recv_timeout(common::DEADLINE).unwrap_or_else(|_| {
            panic!(
                "the SMTP server received no message before the deadline; the log:\n{}",
                common::log_text()
            )
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // Closing its stdin stops it.
        drop(self.child.stdin.take());
        if self.child.wait().is_err() {
            let _ = self.child.kill();
        }
    }
}

#[derive(Default)]
struct Raiser;

#[volttron::agent]
impl Raiser {
    #[rpc]
    fn raise(&mut self, ctx: &AgentContext, key: String, bad: bool) -> Result<usize, String> {
        let status = if bad {
            volttron::Status::Bad
        } else {
            volttron::Status::Good
        };
        ctx.send_alert(&key, status, Some("12 psi"))
            .map_err(|e| e.to_string())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn alerts_are_mailed_through_a_real_smtp_server_with_a_login() {
    let Some(python) = require_aiosmtpd("alerts_are_mailed_through_a_real_smtp_server_with_a_login") else {
        return;
    };
    common::captured_log();
    let smtp = SmtpServer::start(&python);
    let tp = TestPlatform::builder()
        .services(true)
        .service(AlertsService::new())
        .start()
        .await;
    for _ in 0..1000 {
        if tp.peers().iter().any(|p| p.as_str() == IDENTITY) {
            break;
        }
        tp.settle().await;
        tokio::task::yield_now().await;
    }
    tp.spawn("hvac.1", Raiser).await.unwrap();
    let rules = json!({
        "sinks": {"oncall": {
            "type": "email", "host": "127.0.0.1", "port": smtp.port, "tls": "none",
            "username": "volttron", "password": "s3cret",
            "from": "VOLTTRON <volttron@example.com>", "to": ["oncall@example.com", "ops@example.com"],
        }},
        "routes": [{"severity": "critical", "sinks": ["oncall"]}],
    });
    tp.call(
        "config.store",
        "set_config",
        (IDENTITY, "config", rules.to_string(), "json", true),
    )
    .await
    .unwrap();
    let listed = Json::from(tp.call(IDENTITY, "list", ()).await.unwrap());
    assert_eq!(listed["rules"]["error"], Json::Null, "{listed}");

    tp.call("hvac.1", "raise", ("low_pressure", true)).await.unwrap();
    tp.settle().await;
    let mail = smtp.next();
    assert_eq!(mail["from"], "volttron@example.com");
    assert_eq!(mail["to"], json!(["oncall@example.com", "ops@example.com"]));
    assert_eq!(mail["login"], "volttron", "lettre logged in");
    let data = mail["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [firing] critical hvac.1/low_pressure on test: 12 psi"),
        "{data}"
    );
    assert!(data.contains("\"status\": \"firing\""), "{data}");

    tp.call("hvac.1", "raise", ("low_pressure", false)).await.unwrap();
    tp.settle().await;
    let mail = smtp.next();
    assert!(
        mail["data"]
            .as_str()
            .unwrap()
            .contains("Subject: [resolved] critical hvac.1/low_pressure"),
        "{mail}"
    );
    tp.shutdown().await;
    let _ = std::io::stdout().flush();
}
