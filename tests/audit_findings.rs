//! The security audit: homes with one weakness each, audited by `vctl audit --json`
//! (ids, severities, evidence, exit codes, fixes that work as written), and the
//! `platform.audit` service (its `run` RPC with the pending keys, and its cron schedule
//! on the virtual clock).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Home;
use serde_json::{Value, json};
use volttron::audit::{AUDIT_TOPIC, AuditError, AuditService};
use volttron::auth::keys::{CredentialStore, KeyPair, PlatformKey};
use volttron::home::VolttronHome;
use volttron::home::install::{InstallSpec, Program, install};

const DEADLINE: Duration = Duration::from_secs(20);

/// `vctl audit`'s exit code for findings at or above `--fail-at`.
const FINDINGS: i32 = volttron::audit::FINDINGS_EXIT_CODE;

/// `vctl audit --json [args]`: the report and the exit code.
fn audit(home: &Home, args: &[&str]) -> (Value, i32) {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = home.vctl(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().expect("exited"))
}

/// The findings of `check`.
fn findings<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("a findings list")
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

/// The one finding of `check` whose evidence contains `needle`.
fn finding<'a>(report: &'a Value, check: &str, needle: &str) -> &'a Value {
    let matching: Vec<_> = findings(report, check)
        .into_iter()
        .filter(|f| f["evidence"].as_str().unwrap().contains(needle))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one {check} finding with {needle:?} in {report:#}"
    );
    matching[0]
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs a finding's fix as written.
fn apply_fix(f: &Value) {
    let fix = f["fix"].as_str().unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(fix)
        .status()
        .unwrap();
    assert!(status.success(), "the fix {fix:?} failed");
}

const V11_DEFAULT_AUTHZ: &str = r#"{
  "roles": {
    "admin": {"rpc_capabilities": ["/.*/"], "pubsub_capabilities": {"/.*/": "pubsub"}},
    "default_rpc_capabilities": {"rpc_capabilities": ["platform.config_store.set_config"]}
  },
  "agent_groups": {
    "admin_users": {"identities": ["platform.config_store", "platform.auth", "control.connection", "platform.control"],
                    "agent_roles": ["admin"]}
  },
  "agents": {
    "listener": {"agent_roles": [{"default_rpc_capabilities": {"identity": "listener"}}]}
  }
}"#;

#[test]
fn a_clean_home_has_nothing_at_or_above_medium_and_exits_zero() {
    let home = Home::with_config("[volttron]\nvip-address = tcp://127.0.0.1:22916\n");
    let own = PlatformKey::load_or_create(home.path()).unwrap().serverkey();
    CredentialStore::new(home.path())
        .load_or_create("listener")
        .unwrap();
    // VOLTTRON 11's own authz.json grants `/.*/` to the platform's services only.
    let authz = home.write("authz.json", V11_DEFAULT_AUTHZ);
    chmod(&authz, 0o600);
    let hosts = home.write(
        "known_hosts",
        &json!({"127.0.0.1:22916": own.to_string()}).to_string(),
    );
    chmod(&hosts, 0o600);
    chmod(home.path(), 0o700);

    let (report, code) = audit(&home, &[]);
    let serious: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !["info", "low"].contains(&f["severity"].as_str().unwrap()))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
    assert_eq!(code, 0, "{report:#}");
    let skipped: Vec<_> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["check"])
        .collect();
    assert_eq!(skipped, [&json!("pending-key")], "no platform runs: {report:#}");
    // The one low finding (isolation off) fails the audit at --fail-at low.
    assert_eq!(
        finding(&report, "agent-isolation", "agent-isolation-mode is off")["severity"],
        "low"
    );
    assert_eq!(audit(&home, &["--fail-at", "low"]).1, FINDINGS);
    // A bad argument is not a finding: clap's 2, never 3.
    let bad = home.vctl(&["audit", "--fail-at", "severe"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    // The table says the same.
    let table = home.ok(&["audit"]);
    assert!(
        table.contains("LOW") && table.contains("agent-isolation"),
        "{table}"
    );
    assert!(!table.contains("MEDIUM") && !table.contains("HIGH"), "{table}");
}

#[test]
fn loose_modes_of_the_home_and_its_secrets_are_found_and_the_fixes_work() {
    let home = Home::with_config("");
    PlatformKey::load_or_create(home.path()).unwrap();
    let keystore = home.path().join("keystore.json");
    let secret = home.write("web-secret-key", "0123456789abcdef0123456789abcdef");
    let authz = home.write("authz.json", "{}");
    chmod(home.path(), 0o755);
    chmod(&keystore, 0o644);
    chmod(&secret, 0o640);
    chmod(&authz, 0o666);

    let (report, code) = audit(&home, &[]);
    let home_mode = finding(&report, "home-mode", "mode 0755");
    assert_eq!(home_mode["severity"], "medium");
    assert!(
        home_mode["evidence"]
            .as_str()
            .unwrap()
            .contains(home.path().to_str().unwrap())
    );
    let key = finding(&report, "file-mode", "keystore.json is mode 0644");
    assert_eq!(key["severity"], "high");
    assert!(
        key["evidence"].as_str().unwrap().contains("read a secret"),
        "{key}"
    );
    assert_eq!(
        finding(&report, "file-mode", "web-secret-key is mode 0640")["severity"],
        "high"
    );
    let rules = finding(&report, "file-mode", "authz.json is mode 0666");
    assert_eq!(rules["severity"], "high");
    assert!(
        rules["evidence"]
            .as_str()
            .unwrap()
            .contains("others may change it")
    );
    assert_eq!(code, FINDINGS, "high findings fail the default --fail-at high");
    assert_eq!(
        audit(&home, &["--fail-at", "critical"]).1,
        0,
        "nothing is critical"
    );

    for f in findings(&report, "file-mode")
        .into_iter()
        .chain(findings(&report, "home-mode"))
    {
        apply_fix(f);
    }
    let (after, code) = audit(&home, &[]);
    assert!(findings(&after, "file-mode").is_empty(), "{after:#}");
    assert!(findings(&after, "home-mode").is_empty(), "{after:#}");
    assert_eq!(code, 0);
}

#[test]
fn a_config_holding_the_web_secret_and_the_tls_key_are_secrets() {
    let home = Home::with_config(
        "[volttron]\nbind-web-address = https://127.0.0.1:8443\nweb-secret-key = s3cr3t\nweb-ssl-key = tls.key\n",
    );
    let key = home.write("tls.key", "-----BEGIN PRIVATE KEY-----\n");
    chmod(&home.path().join("config"), 0o644);
    chmod(&key, 0o604);
    let (report, code) = audit(&home, &[]);
    assert_eq!(
        finding(&report, "file-mode", "config is mode 0644")["severity"],
        "high"
    );
    assert_eq!(
        finding(&report, "file-mode", "tls.key is mode 0604")["severity"],
        "high"
    );
    assert!(
        findings(&report, "web-tls").is_empty(),
        "https:// is no finding: {report:#}"
    );
    assert_eq!(code, FINDINGS);
    // Without the secret inside, a readable config is fine.
    std::fs::write(home.path().join("config"), "[volttron]\n").unwrap();
    let (report, _) = audit(&home, &[]);
    assert!(findings(&report, "file-mode").is_empty(), "{report:#}");
}

#[test]
fn auth_off_with_a_network_listener_is_critical() {
    let home = Home::with_config(
        "[volttron]\nauth = false\nvip-address = tcp://0.0.0.0:22916\nbind-web-address = http://0.0.0.0:8080\n",
    );
    let (report, code) = audit(&home, &["--fail-at", "critical"]);
    let auth = finding(&report, "auth-disabled", "tcp://0.0.0.0:22916");
    assert_eq!(auth["severity"], "critical");
    assert!(
        auth["evidence"]
            .as_str()
            .unwrap()
            .contains("bind-web-address = http://0.0.0.0:8080")
    );
    let web = finding(&report, "web-tls", "plain HTTP beyond this machine");
    assert_eq!(web["severity"], "high");
    assert!(web["fix"].as_str().unwrap().contains("https://"));
    assert!(
        findings(&report, "tcp-listener").is_empty(),
        "part of the auth finding"
    );
    assert_eq!(code, FINDINGS);
}

#[test]
fn auth_off_on_loopback_is_high_and_loopback_http_is_info() {
    // VOLTTRON 11's spelling.
    let home =
        Home::with_config("[volttron]\nauth-enabled = False\nbind-web-address = http://127.0.0.1:8080\n");
    let (report, code) = audit(&home, &[]);
    assert_eq!(
        finding(&report, "auth-disabled", "any local process")["severity"],
        "high"
    );
    assert_eq!(finding(&report, "web-tls", "loopback only")["severity"], "info");
    assert_eq!(code, FINDINGS);
}

#[test]
fn encrypted_tcp_listeners_beyond_loopback_are_info() {
    let home = Home::with_config(
        "[volttron]\nvip-address = tcp://0.0.0.0:22916\nbridge-address = tcp://10.1.2.3:22917\n",
    );
    let (report, code) = audit(&home, &[]);
    assert_eq!(finding(&report, "tcp-listener", "CURVE")["severity"], "info");
    let bridge = finding(&report, "tcp-listener", "bridge-address = tcp://10.1.2.3:22917");
    assert!(bridge["evidence"].as_str().unwrap().contains("Noise XX"));
    assert!(findings(&report, "auth-disabled").is_empty());
    assert_eq!(code, 0);
}

#[test]
fn agents_without_isolation_or_a_contract_are_found() {
    let home = Home::with_config("");
    let vhome = VolttronHome::new(home.path());
    let agent = install(
        &vhome,
        &InstallSpec::new("meter.1", "meter-0.1", Program::Command(vec!["/bin/true".into()])),
    )
    .unwrap();
    let (report, _) = audit(&home, &[]);
    let isolation = finding(&report, "agent-isolation", "meter.1");
    assert_eq!(isolation["severity"], "medium");
    let contract = finding(
        &report,
        "resource-contract",
        "agent meter.1 has no resource contract",
    );
    assert_eq!(contract["severity"], "low");
    assert!(
        contract["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("{}/exereqs.json", agent.dir.display()))
    );

    // The contract the fix names, and isolation on: both findings go.
    std::fs::write(
        agent.dir.join("exereqs.json"),
        r#"{"requirements": {"cpu.bogomips": 100, "memory.soft_limit_in_bytes": 100000000}}"#,
    )
    .unwrap();
    std::fs::write(
        home.path().join("config"),
        "[volttron]\nagent-isolation-mode = True\n",
    )
    .unwrap();
    let (after, _) = audit(&home, &[]);
    assert!(findings(&after, "resource-contract").is_empty(), "{after:#}");
    assert!(findings(&after, "agent-isolation").is_empty(), "{after:#}");
}

#[test]
fn wildcard_grants_in_volttron11_authz_are_found_by_holder() {
    let home = Home::with_config("");
    let authz: Value = {
        let mut v: Value = serde_json::from_str(V11_DEFAULT_AUTHZ).unwrap();
        v["agents"]["hvac"] = json!({"rpc_capabilities": ["/.*/"]});
        v["roles"]["watcher"] = json!({"pubsub_capabilities": {"/.*/": "subscribe"}});
        v["agent_groups"]["watchers"] = json!({"identities": ["listener"], "agent_roles": ["watcher"]});
        v
    };
    chmod(&home.write("authz.json", &authz.to_string()), 0o600);
    let (report, code) = audit(&home, &[]);
    let hvac = finding(&report, "authz-wildcard", r#"$.agents["hvac"]"#);
    assert_eq!(hvac["severity"], "critical");
    assert!(
        hvac["evidence"].as_str().unwrap().contains("held by hvac"),
        "{hvac}"
    );
    let watcher = finding(&report, "authz-wildcard", r#"$.roles["watcher"]"#);
    assert_eq!(watcher["severity"], "medium");
    assert!(
        watcher["evidence"].as_str().unwrap().contains("held by listener"),
        "{watcher}"
    );
    assert!(
        !report.to_string().contains(r#"$.roles[\"admin\"]"#),
        "the platform's own admin role is no finding: {report:#}"
    );
    assert_eq!(code, FINDINGS);
}

#[test]
fn wildcard_grants_in_this_projects_authz_are_found() {
    let home = Home::with_config("");
    let authz = json!({
        "users": {
            "helper": {"capabilities": {"allow_auth_modifications": null}},
            "meter": {"capabilities": {"edit_config_store": {"identity": "*"}}}
        },
        "rpc_method_authorizations": {"platform.auth": {"approve_authorization": []}}
    });
    chmod(&home.write("authz.json", &authz.to_string()), 0o600);
    let (report, code) = audit(&home, &[]);
    assert_eq!(
        finding(
            &report,
            "authz-wildcard",
            r#""helper" holds allow_auth_modifications"#
        )["severity"],
        "medium"
    );
    assert_eq!(
        finding(&report, "authz-wildcard", "allows every value")["severity"],
        "medium"
    );
    assert_eq!(
        finding(&report, "authz-wildcard", "opens approve_authorization")["severity"],
        "high"
    );
    assert_eq!(code, FINDINGS);

    chmod(&home.write("authz.json", "{\"users\": 7}"), 0o600);
    let (report, _) = audit(&home, &[]);
    assert_eq!(
        finding(&report, "authz-wildcard", "authz.json")["severity"],
        "high"
    );
}

#[test]
fn a_known_host_entry_disagreeing_with_the_platform_key_is_found() {
    let home = Home::with_config("[volttron]\nvip-address = tcp://127.0.0.1:22916\n");
    let own = PlatformKey::load_or_create(home.path()).unwrap().serverkey();
    let other = KeyPair::generate().unwrap().public;
    let hosts = home.write(
        "known_hosts",
        &json!({"127.0.0.1:22916": other.to_string(), "10.9.9.9:22916": other.to_string()}).to_string(),
    );
    chmod(&hosts, 0o600);
    let (report, code) = audit(&home, &[]);
    let f = finding(&report, "known-hosts", "127.0.0.1:22916");
    assert_eq!(f["severity"], "high");
    let evidence = f["evidence"].as_str().unwrap();
    assert!(
        evidence.contains(&other.to_string()) && evidence.contains(&own.to_string()),
        "{evidence}"
    );
    assert_eq!(
        findings(&report, "known-hosts").len(),
        1,
        "another platform's entry is its own"
    );
    assert_eq!(code, FINDINGS);

    chmod(&home.write("known_hosts", "[1, 2]"), 0o600);
    let (report, _) = audit(&home, &[]);
    assert_eq!(
        finding(&report, "known-hosts", "known_hosts")["severity"],
        "medium"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_service_answers_run_with_the_pending_keys() {
    let home = tempfile::tempdir().unwrap();
    let platform = volttron::Platform::builder()
        .home(home.path())
        .auth(true)
        .listen("tcp://127.0.0.1:0".parse().unwrap())
        .service(AuditService::new())
        .start()
        .await
        .unwrap();
    let tcp = platform
        .addresses()
        .into_iter()
        .find(|a| matches!(a, volttron::bridge::BridgeAddress::Tcp(_)))
        .unwrap();
    let refused = volttron::remote::Remote::new(tcp)
        .identity("newcomer")
        .credentials(KeyPair::generate().unwrap())
        .serverkey(platform.serverkey().unwrap())
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    assert!(refused.is_err(), "an unknown key is refused");

    let report = platform.call("platform.audit", "run", ()).await.unwrap();
    let report: Value = serde_json::from_str(&report.to_json_string()).unwrap();
    let pending = finding(&report, "pending-key", "\"newcomer\"");
    assert_eq!(pending["severity"], "medium");
    assert!(
        pending["fix"]
            .as_str()
            .unwrap()
            .contains("vctl auth approve newcomer")
    );
    assert!(report["skipped"].as_array().unwrap().is_empty(), "{report:#}");
    assert!(findings(&report, "auth-disabled").is_empty());
    platform.shutdown().await;
}

#[tokio::test]
async fn the_scheduled_audit_publishes_on_platform_audit() {
    let service = AuditService::new().schedule("0 3 * * *").unwrap();
    let tp = volttron::testing::TestPlatform::builder()
        .service(service)
        .start()
        .await;
    let reports = tp.capture(AUDIT_TOPIC);
    chmod(tp.home_dir(), 0o755);
    // The clock starts at 2024-01-01T00:00:00Z.
    tp.advance(Duration::from_secs(2 * 3600 + 59 * 60)).await;
    tp.settle().await;
    assert!(reports.is_empty(), "nothing before 03:00");
    tp.advance(Duration::from_secs(60)).await;
    let deadline = Instant::now() + DEADLINE;
    while reports.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no report on {AUDIT_TOPIC} by the deadline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report: Value = serde_json::from_str(&reports.last().unwrap().message.to_json_string()).unwrap();
    assert_eq!(finding(&report, "home-mode", "mode 0755")["severity"], "medium");
    // The test platform runs without auth, which no config says: the service sees it.
    assert_eq!(
        finding(&report, "auth-disabled", "auth is off")["severity"],
        "high"
    );
    assert_eq!(reports.len(), 1);
    tp.shutdown().await;
}

#[test]
fn a_bad_schedule_is_a_typed_error() {
    let err = AuditService::new().schedule("61 * * * *").unwrap_err();
    assert!(matches!(&err, AuditError::Schedule { expression, .. } if expression == "61 * * * *"));
    assert!(
        err.to_string().starts_with("audit-schedule = \"61 * * * *\""),
        "{err}"
    );
}

#[test]
fn a_running_platform_answers_the_audit_and_vctl_lists_its_pending_keys() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = Home::with_config(&format!(
        "[volttron]\nbridge-address = tcp://127.0.0.1:{port}\naudit-schedule = 0 3 * * *\n"
    ));
    let mut platform = home.start_platform();
    let serverkey = PlatformKey::public_key(home.path()).unwrap().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime.block_on(
        volttron::remote::Remote::new(format!("tcp://127.0.0.1:{port}").parse().unwrap())
            .identity("newcomer")
            .credentials(KeyPair::generate().unwrap())
            .serverkey(serverkey)
            .connect_timeout(Duration::from_secs(5))
            .connect(),
    );
    assert!(refused.is_err(), "an unknown key is refused");

    let (report, _) = audit(&home, &[]);
    assert_eq!(
        finding(&report, "pending-key", "\"newcomer\"")["severity"],
        "medium"
    );
    assert!(report["skipped"].as_array().unwrap().is_empty(), "{report:#}");

    // The README's command.
    let answered: Value =
        serde_json::from_str(&home.ok(&["rpc", "call", "platform.audit", "run", "--json"])).unwrap();
    finding(&answered, "pending-key", "\"newcomer\"");
    assert!(
        !home.log_tail().contains("audit-schedule"),
        "a known key: {}",
        home.log_tail()
    );

    home.ok(&["shutdown", "--platform"]);
    let deadline = Instant::now() + DEADLINE;
    while platform.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the platform did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_platform_refuses_to_start_with_a_bad_schedule() {
    let home = Home::with_config("[volttron]\naudit-schedule = every night\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_volttron"))
        .arg("--volttron-home")
        .arg(home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the platform started with audit-schedule = every night");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("audit-schedule = \"every night\""), "{err}");
}
