//! The web service of a `volttron` process ([`Home::start_platform`] with
//! [`WEB_CONFIG`]): its users (`vctl web user add`), its address (`platform.web`'s
//! `get_bind_web_address` over `vctl rpc`), and tokens from `POST /authenticate`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{DEADLINE, Home};

/// A platform config whose web service listens on a free loopback port.
pub(crate) const WEB_CONFIG: &str = "[volttron]\nbind-web-address = http://127.0.0.1:0\n";

impl Home {
    /// `vctl web user add NAME --groups GROUPS --password-stdin`, the password on stdin.
    pub(crate) fn add_web_user(&self, name: &str, groups: &str, password: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vctl"))
            .arg("--volttron-home")
            .arg(self.path())
            .args(["web", "user", "add", name, "--groups", groups, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "vctl web user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The web service's address (`http://127.0.0.1:PORT`), from `platform.web` (which
    /// the platform spawns just after it starts: asked until the deadline).
    pub(crate) fn web_url(&self) -> String {
        let start = Instant::now();
        loop {
            let out = self.vctl(&["rpc", "call", "platform.web", "get_bind_web_address"]);
            if out.status.success() {
                let url: String = serde_json::from_slice(&out.stdout).unwrap();
                assert!(url.starts_with("http://127.0.0.1:"), "{url}");
                return url;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "platform.web did not answer: {}\nplatform log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An HTTP agent that reports every status as a response (not an error).
pub(crate) fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(DEADLINE))
        .build()
        .into()
}

/// `POST /authenticate` as `user`: the access token.
pub(crate) fn access_token(url: &str, user: &str, password: &str) -> String {
    let mut response = http()
        .post(format!("{url}/authenticate"))
        .send_json(json!({"username": user, "password": password}))
        .unwrap();
    assert_eq!(response.status(), 200, "POST /authenticate as {user}");
    let body: Value = response.body_mut().read_json().unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {body}"))
        .to_owned()
}
