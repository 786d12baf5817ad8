//! The e-mail sink against a real SMTP server on loopback: aiosmtpd (PyPI, pinned in
//! `.ci/python-requirements.txt`, in the venv `bash .ci/test` builds), with a login. The
//! alert is raised by an agent, routed by rules from the config store, and sent by lettre
//! on the service's delivery thread.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::{Value as Json, json};
use volttron::alerts::{AlertsService, IDENTITY};
use volttron::prelude::*;
use volttron::testing::TestPlatform;

/// An SMTP server that prints each message it accepts as a JSON line and accepts the
/// login volttron / s3cret: over plain SMTP (a relay on loopback), or, given a certificate
/// and key, only after STARTTLS (mail and logins before it are refused).
const SERVER: &str = r#"
import json, logging, ssl, sys
# Quiet: aiosmtpd logs its own use of Session.login_data, and the handshake the untrusting
# client abandons.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)
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

tls = {}
if len(sys.argv) > 3:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    tls = {"tls_context": context, "require_starttls": True}
controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]),
                        authenticator=authenticator, auth_require_tls=bool(tls), **tls)
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
    /// With `tls` (certificate and key files): STARTTLS required.
    fn start(python: &Path, tls: Option<(&Path, &Path)>) -> SmtpServer {
        let port = common::free_port();
        let mut command = Command::new(python);
        command.args(["-c", SERVER, &port.to_string()]);
        if let Some((cert, key)) = tls {
            command.arg(cert).arg(key);
        }
        let mut child = command
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

async fn alerts_platform() -> TestPlatform {
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
    tp
}

async fn set_rules(tp: &TestPlatform, rules: &Json) {
    tp.call(
        "config.store",
        "set_config",
        (IDENTITY, "config", rules.to_string(), "json", true),
    )
    .await
    .unwrap();
    let listed = Json::from(tp.call(IDENTITY, "list", ()).await.unwrap());
    assert_eq!(listed["rules"]["error"], Json::Null, "{listed}");
}

#[tokio::test(flavor = "current_thread")]
async fn alerts_are_mailed_through_a_real_smtp_server_with_a_login() {
    let Some(python) = require_aiosmtpd("alerts_are_mailed_through_a_real_smtp_server_with_a_login") else {
        return;
    };
    common::captured_log();
    let smtp = SmtpServer::start(&python, None);
    let tp = alerts_platform().await;
    let rules = json!({
        "sinks": {"oncall": {
            "type": "email", "host": "127.0.0.1", "port": smtp.port, "tls": "none",
            "username": "volttron", "password": "s3cret",
            "from": "VOLTTRON <volttron@example.com>", "to": ["oncall@example.com", "ops@example.com"],
        }},
        "routes": [{"severity": "critical", "sinks": ["oncall"]}],
    });
    set_rules(&tp, &rules).await;

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
}

#[tokio::test(flavor = "current_thread")]
async fn starttls_verifies_the_server_against_the_configured_ca() {
    let Some(python) = require_aiosmtpd("starttls_verifies_the_server_against_the_configured_ca") else {
        return;
    };
    common::captured_log();
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let smtp = SmtpServer::start(&python, Some((&cert, &key)));
    let tp = alerts_platform().await;
    let mut sink = json!({
        "type": "email", "host": "127.0.0.1", "port": smtp.port, "tls": "starttls",
        "username": "volttron", "password": "s3cret",
        "from": "volttron@example.com", "to": ["oncall@example.com"],
    });
    let rules = |sink: &Json| json!({"sinks": {"oncall": sink}, "routes": [{"sinks": ["oncall"]}]});

    // Without the CA, the self-signed server is not trusted: nothing is sent, it is logged.
    set_rules(&tp, &rules(&sink)).await;
    tp.call("hvac.1", "raise", ("untrusted", true)).await.unwrap();
    tp.settle().await;
    let start = std::time::Instant::now();
    while !common::log_text().contains("sink \"oncall\" did not take hvac.1/untrusted") {
        assert!(
            start.elapsed() < common::DEADLINE,
            "no delivery error logged:\n{}",
            common::log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        smtp.messages.try_recv().is_err(),
        "mail went to an untrusted server"
    );
    let log = common::log_text();
    let refusal = log
        .lines()
        .find(|l| l.contains("did not take hvac.1/untrusted"))
        .unwrap();
    assert!(refusal.to_lowercase().contains("certificate"), "{refusal}");

    // With it: STARTTLS (the server takes no mail without it), then the login.
    sink["ca"] = json!(cert.to_str().unwrap());
    set_rules(&tp, &rules(&sink)).await;
    tp.call("hvac.1", "raise", ("trusted", true)).await.unwrap();
    tp.settle().await;
    let mail = smtp.next();
    assert_eq!(mail["login"], "volttron");
    assert!(
        mail["data"]
            .as_str()
            .unwrap()
            .contains("Subject: [firing] critical hvac.1/trusted"),
        "{mail}"
    );
    tp.shutdown().await;
}
