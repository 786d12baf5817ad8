//! `volttron` and `vctl` as a user drives them: a platform on a temporary home, the example
//! remote agent installed with a config and started, seen in `status` with health GOOD,
//! its heartbeat received with `subscribe`, its RPC called, its config changed and the
//! callback observed, killed and restarted, crashed past the restart limit, reinstalled
//! with `--force` with its `data/` intact, removed; then bad input, and the platform shut
//! down with `vctl shutdown --platform`.
//!
//! Waits are on explicit conditions (a command's output, a process exit) polled against
//! a deadline: the platform and the agent are other processes.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{DEADLINE, Home, pid, platform_wait, remote_agent_binary};

#[test]
fn a_user_session_with_volttron_and_vctl() {
    // Two restarts within a minute, then give up.
    let home = Home::with_config(
        "[volttron]\ninstance-name = e2e\nagent-restart-limit = 2\nagent-restart-period = 60\n",
    );
    let mut platform = home.start_platform();
    // The platform's own files are its user's alone.
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
    };
    assert_eq!(mode(&home.log_path()), 0o600, "the log");
    assert_eq!(mode(&home.path().join("configuration_store")), 0o700);
    // One platform per home.
    let second = Command::new(env!("CARGO_BIN_EXE_volttron"))
        .arg("--volttron-home")
        .arg(home.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    let agent = remote_agent_binary();
    let config = home.path().join("meter.json");
    std::fs::write(&config, r#"{"interval": 1}"#).unwrap();
    let out = home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "meter.e2e",
        "--agent-config",
        config.to_str().unwrap(),
        "--tag",
        "meters",
        "--start",
    ]);
    assert!(out.contains("meter.e2e"), "{out}");
    let a = home.wait_for("meter.e2e", "running with health GOOD", |a| {
        pid(a).is_some() && a["health"] == "GOOD"
    });
    let first_pid = pid(&a).unwrap();
    // Launched through the sandbox: no capabilities at all, no-new-privs.
    let proc_status = std::fs::read_to_string(format!("/proc/{first_pid}/status")).unwrap();
    let field = |name: &str| {
        proc_status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(field("CapEff:"), "0000000000000000", "{proc_status}");
    assert_eq!(field("CapPrm:"), "0000000000000000");
    assert_eq!(field("CapAmb:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    // The bounding set can be emptied only by a platform holding CAP_SETPCAP (root here).
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    if ours
        .lines()
        .any(|l| l.starts_with("CapEff:") && l.trim_end() != "CapEff:\t0000000000000000")
    {
        assert_eq!(field("CapBnd:"), "0000000000000000");
    }
    let table = home.ok(&["status"]);
    assert!(table.contains("UUID") && table.contains("HEALTH"), "{table}");
    assert!(table.contains(&format!("running [{first_pid}]")), "{table}");

    // Its heartbeat, through `vctl subscribe` (which streams until interrupted).
    let mut sub = Command::new(env!("CARGO_BIN_EXE_vctl"))
        .arg("--volttron-home")
        .arg(home.path())
        .args(["--json", "subscribe", "heartbeat/meter.e2e"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sub.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let beat: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(beat["topic"], "heartbeat/meter.e2e");
    assert_eq!(beat["message"]["status"], "GOOD");
    sub.kill().unwrap();
    sub.wait().unwrap();

    // RPC, and a config change observed through the agent's callback.
    assert_eq!(
        home.ok(&["rpc", "call", "meter.e2e", "echo", r#""hello""#])
            .trim(),
        r#""hello""#
    );
    assert_eq!(home.ok(&["rpc", "call", "meter.e2e", "interval"]).trim(), "1");
    let new_config = home.path().join("meter2.json");
    std::fs::write(&new_config, r#"{"interval": 7}"#).unwrap();
    home.ok(&[
        "config",
        "store",
        "meter.e2e",
        "config",
        new_config.to_str().unwrap(),
    ]);
    let start = Instant::now();
    while home.ok(&["rpc", "call", "meter.e2e", "interval"]).trim() != "7" {
        assert!(start.elapsed() < DEADLINE, "the config callback did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    home.ok(&[
        "rpc",
        "call",
        "meter.e2e",
        "write_data",
        "keep.txt",
        "survives reinstall",
    ]);

    // The other commands a user reaches for.
    let listed = home.ok(&["config", "list", "meter.e2e"]);
    assert!(listed.lines().any(|l| l == "config"), "{listed}");
    assert!(
        home.ok(&["config", "get", "meter.e2e", "config", "--raw"])
            .contains("\"interval\": 7")
    );
    let editor = home.write_script("editor.sh", "#!/bin/sh\necho '{\"interval\": 3}' > \"$1\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_vctl"))
        .arg("--volttron-home")
        .arg(home.path())
        .args(["config", "edit", "meter.e2e", "config"])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let start = Instant::now();
    while home.ok(&["rpc", "call", "meter.e2e", "interval"]).trim() != "3" {
        assert!(
            start.elapsed() < DEADLINE,
            "the edited config did not reach the agent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let methods: Value = serde_json::from_str(&home.ok(&["--json", "rpc", "list", "meter.e2e"])).unwrap();
    assert!(
        methods["meter.e2e"].to_string().contains("write_data"),
        "{methods}"
    );
    let health: Value = serde_json::from_str(&home.ok(&["--json", "health", "meter.e2e"])).unwrap();
    assert_eq!(health["status"], "GOOD", "{health}");
    assert!(home.ok(&["peerlist"]).lines().any(|l| l == "meter.e2e"));
    let published = home.ok(&["--json", "publish", "devices/e2e/all", r#"{"temperature": 21.5}"#]);
    let published: Value = serde_json::from_str(&published).unwrap();
    assert!(published["reached"].is_u64(), "{published}");
    let keys: Value = serde_json::from_str(&home.ok(&["auth", "keypair"])).unwrap();
    assert_eq!(keys["public"].as_str().map(str::len), Some(43), "{keys}");
    let serverkey = home.ok(&["auth", "serverkey"]);
    let keystore: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("keystore.json")).unwrap()).unwrap();
    assert_eq!(serverkey.trim(), keystore["public"]);
    let entries = home.ok(&["--json", "auth", "list"]);
    assert!(serde_json::from_str::<Value>(&entries).is_ok(), "{entries}");
    home.ok(&["auth", "protect", "publish", "devices/actuators", "actuate"]);
    let topics: Value = serde_json::from_str(&home.ok(&["--json", "auth", "protected-topics"])).unwrap();
    assert!(topics.to_string().contains("devices/actuators"), "{topics}");

    // Killed: restarted with a new pid. Killed twice more: the limit (2) is exceeded.
    rustix_kill(first_pid);
    let a = home.wait_for("meter.e2e", "restarted", |a| {
        pid(a).is_some_and(|p| p != first_pid)
    });
    let second_pid = pid(&a).unwrap();
    rustix_kill(second_pid);
    let a = home.wait_for("meter.e2e", "restarted again", |a| {
        pid(a).is_some_and(|p| p != first_pid && p != second_pid)
    });
    rustix_kill(pid(&a).unwrap());
    let a = home.wait_for("meter.e2e", "given up", |a| a["state"] == "gave up");
    assert!(pid(&a).is_none());
    assert_eq!(a["health"], "BAD");
    assert!(home.ok(&["status"]).contains("gave up"));

    // Reinstall with --force: data/ survives; it starts again.
    assert!(
        home.fails(&["install", agent.to_str().unwrap(), "--vip-identity", "meter.e2e"])
            .contains("--force")
    );
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "meter.e2e",
        "--force",
        "--start",
    ]);
    let kept = std::fs::read_to_string(home.path().join("agents/meter.e2e/data/keep.txt")).unwrap();
    assert_eq!(kept, "survives reinstall");
    home.wait_for("meter.e2e", "running after reinstall", |a| pid(a).is_some());

    // Selection by tag; stop is clean (exit 0) and not restarted.
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "meter.two",
        "--tag",
        "meters",
    ]);
    let out = home.ok(&["stop", "--tag", "meters"]);
    assert!(out.contains("meter.e2e"), "{out}");
    let a = home.wait_for("meter.e2e", "stopped", |a| pid(a).is_none());
    assert_eq!(a["last_exit"], "exit code 0");

    // Bad input: one-line reasons, non-zero status.
    assert!(
        home.fails(&["start", "no-such-agent"])
            .contains("no agent matches")
    );
    assert!(
        home.fails(&["install", "/no/such/file"])
            .contains("/no/such/file")
    );
    assert!(
        home.fails(&[
            "install",
            agent.to_str().unwrap(),
            "--vip-identity",
            "bad identity!"
        ])
        .contains("identity")
    );
    // The control service's internal events (an agent's exit, a termination) are not
    // RPCs any peer could send.
    for method in ["agent_exited", "terminate_agent"] {
        let err = home.fails(&["rpc", "call", "control", method, r#""meter.e2e""#, "1"]);
        assert!(err.contains("is not implemented"), "{method}: {err}");
    }
    let bad_json = home.path().join("bad.json");
    std::fs::write(&bad_json, "{not json").unwrap();
    assert!(
        !home
            .fails(&[
                "config",
                "store",
                "meter.e2e",
                "config",
                bad_json.to_str().unwrap()
            ])
            .is_empty()
    );

    // Remove: directory and keys gone.
    home.ok(&["remove", "meter.e2e"]);
    assert!(!home.path().join("agents/meter.e2e").exists());
    assert!(!home.path().join("credentials_store/meter.e2e.json").exists());
    assert!(home.agent("meter.e2e").is_none());

    home.ok(&["shutdown", "--platform"]);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = platform.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < DEADLINE, "the platform did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let down = home.fails(&["status"]);
    assert!(down.contains("no platform is running"), "{down}");
}

fn rustix_kill(pid: u64) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn cargo_projects_install_and_enabled_agents_autostart() {
    let home = Home::with_config("");
    // A cargo project whose package metadata names its identity (no dependencies: it
    // builds in a second). Not an agent: it only has to keep running.
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.2.0\"\nedition = \"2021\"\n\n\
         [package.metadata.volttron]\nidentity = \"tiny.agent\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir(project.path().join("src")).unwrap();
    std::fs::write(
        project.path().join("src/main.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(600)); }\n",
    )
    .unwrap();

    let platform = home.start_platform();
    let out = home.ok(&[
        "--json",
        "install",
        project.path().to_str().unwrap(),
        "--enable",
        "--priority",
        "10",
    ]);
    let installed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(installed["identity"], "tiny.agent");
    let agent = remote_agent_binary();
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "meter.auto",
        "--enable",
        "--priority",
        "5",
    ]);
    let list: Vec<Value> = serde_json::from_str(&home.ok(&["list", "--json"])).unwrap();
    let tiny = list.iter().find(|a| a["identity"] == "tiny.agent").unwrap();
    assert_eq!(tiny["name"], "tiny-0.2.0");
    assert_eq!(tiny["priority"], 10);
    assert_eq!(tiny["autostart"], true);
    assert!(
        home.agent("tiny.agent").and_then(|a| pid(&a)).is_none(),
        "installed, not started"
    );

    // Restart the platform: both start by themselves.
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
    let platform = home.start_platform();
    home.wait_for("meter.auto", "autostarted", |a| {
        pid(a).is_some() && a["health"] == "GOOD"
    });
    home.wait_for("tiny.agent", "autostarted", |a| pid(a).is_some());
    home.ok(&["disable", "tiny.agent"]);
    let list: Vec<Value> = serde_json::from_str(&home.ok(&["list", "--json"])).unwrap();
    assert_eq!(
        list.iter().find(|a| a["identity"] == "tiny.agent").unwrap()["autostart"],
        false
    );
    home.ok(&["shutdown", "--platform"]);
    let status = platform_wait(platform);
    assert!(status.success(), "{status}");
}

#[test]
fn resource_contracts_are_admitted_and_usage_is_reported() {
    let home = Home::with_config("[volttron]\nagent-monitor-frequency = 0.2\nagent-memory-hard-cap = 2\n");
    let contract = |name: &str, json: &str| home.write(name, json);
    let greedy = contract("greedy.json", r#"{"requirements": {"cpu.bogomips": 0.9}}"#);
    let sparc = contract(
        "sparc.json",
        r#"{"requirements": {}, "hard_requirements": {"architecture": "sparc"}}"#,
    );
    let third = contract(
        "third.json",
        r#"{"requirements": {"cpu.bogomips": 0.3, "memory.soft_limit_in_bytes": 50000000}}"#,
    );
    let platform = home.start_platform();
    let agent = remote_agent_binary();
    let install = |identity: &str, exereqs: &Path| -> Output {
        home.vctl(&[
            "install",
            agent.to_str().unwrap(),
            "--vip-identity",
            identity,
            "--exereqs",
            exereqs.to_str().unwrap(),
            "--start",
        ])
    };
    // More than the budget (80 % of the machine's BogoMIPS), or the wrong machine: refused,
    // nothing installed.
    let out = install("greedy", &greedy);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cpu.bogomips") && err.contains("available"), "{err}");
    let out = install("sparc", &sparc);
    assert!(String::from_utf8_lossy(&out.stderr).contains("architecture"));
    assert!(home.agent("greedy").is_none() && home.agent("sparc").is_none());

    // Two fit (0.3 + 0.3 of 0.8); a third does not while they run.
    for id in ["meter.a", "meter.b"] {
        let out = install(id, &third);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = install("meter.c", &third);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cpu.bogomips"));
    let a = home.wait_for("meter.a", "sampled", |a| {
        a["usage"]["rss_bytes"].as_u64().unwrap_or(0) > 0
    });
    assert!(a["reservation"]["cpu_mips"].as_f64().unwrap() > 0.0, "{a}");
    assert_eq!(a["reservation"]["memory_bytes"], 50_000_000);
    let table = home.ok(&["status", "--resources"]);
    assert!(table.contains("RESERVED") && table.contains("MIPS"), "{table}");
    // Measured through its cgroup where it has one, else /proc.
    let accounting = a["usage"]["accounting"].as_str().unwrap();
    assert!(table.contains(accounting), "{table}");
    // Where cgroups v1 are writable (as on the development machine), it runs in its own
    // group; elsewhere the platform logs that it measures through /proc only.
    let name = format!(
        "volttron-{}",
        volttron::resources::cgroup::platform_group_name("volttron1", home.path())
    );
    let group = Path::new("/sys/fs/cgroup/cpu").join(&name);
    if group.exists() {
        let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", pid(&a).unwrap())).unwrap();
        assert!(cgroups.contains(&format!("{name}/meter.a")), "{cgroups}");
        let shares = std::fs::read_to_string(group.join("meter.a").join("cpu.shares")).unwrap();
        assert!(shares.trim().parse::<u64>().unwrap() >= 2, "{shares}");
        assert_eq!(accounting, "cgroup", "{a}");
        // The hard cap: twice the 50 MB soft limit (the kernel rounds to pages).
        let memory = Path::new("/sys/fs/cgroup/memory").join(&name).join("meter.a");
        let read = |file: &str| -> u64 {
            std::fs::read_to_string(memory.join(file))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert!(read("memory.limit_in_bytes").abs_diff(100_000_000) < 4096);
        assert!(read("memory.soft_limit_in_bytes").abs_diff(50_000_000) < 4096);
    } else {
        println!("no writable cgroup v1 hierarchy here: the cgroup check is skipped");
    }
    // The agent sees the same figures through its context.
    let own: Value = serde_json::from_str(&home.ok(&["rpc", "call", "meter.a", "resources"])).unwrap();
    assert_eq!(own["reservation"]["memory_bytes"], 50_000_000, "{own}");

    // Stopping one frees its reservation: the third now fits.
    home.ok(&["stop", "meter.a"]);
    let out = install("meter.c", &third);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    home.wait_for("meter.c", "running", |a| pid(a).is_some());
    // And meter.a cannot start again while b and c hold the budget.
    let err = home.fails(&["start", "meter.a"]);
    assert!(err.contains("cpu.bogomips"), "{err}");
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}

#[test]
fn under_pressure_an_agent_over_its_contract_is_terminated_and_others_keep_running() {
    // Simulated pressure: MemAvailable is always below a threshold of 1 PB.
    let home = Home::with_config(
        "[volttron]\nagent-monitor-frequency = 0.2\nmemory-pressure-below = 1000000000000000\n",
    );
    // A memory hog (a shell holding ~40 MB in a variable) with a 1 MB contract.
    let hog = home.write_script(
        "hog.sh",
        "#!/bin/sh\nx=$(head -c 40000000 /dev/zero | tr '\\0' a)\nsleep 600\n",
    );
    let small = home.write(
        "small.json",
        r#"{"requirements": {"memory.soft_limit_in_bytes": 1000000}}"#,
    );
    let roomy = home.write(
        "roomy.json",
        r#"{"requirements": {"memory.soft_limit_in_bytes": 500000000}}"#,
    );

    let platform = home.start_platform();
    let agent = remote_agent_binary();
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "polite",
        "--exereqs",
        roomy.to_str().unwrap(),
        "--start",
    ]);
    home.ok(&[
        "install",
        hog.to_str().unwrap(),
        "--vip-identity",
        "hog",
        "--exereqs",
        small.to_str().unwrap(),
        "--start",
    ]);
    let hog_state = home.wait_for("hog", "terminated", |a| a["state"] == "terminated");
    assert_eq!(hog_state["health"], "BAD");
    let reason = hog_state["reason"].as_str().unwrap();
    assert!(
        reason.contains("memory pressure") && reason.contains("'hog'"),
        "{reason}"
    );
    let table = home.ok(&["status"]);
    assert!(table.contains("terminated: memory pressure"), "{table}");
    // Not restarted; the well-behaved agent keeps running with a good heartbeat.
    let polite = home.wait_for("polite", "running and GOOD", |a| {
        pid(a).is_some() && a["health"] == "GOOD"
    });
    assert_eq!(polite["state"], "running");
    assert!(home.agent("hog").and_then(|a| pid(&a)).is_none());
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}
