//! Agent isolation mode and "only data/ writable", through `volttron` and `vctl`:
//! `agent-isolation-mode = true` and `agent-data-only-writable = true`, auth on.
//!
//! * Each agent runs as a uid of its own from `agent-uid-range` (read from its
//!   `/proc/<pid>/status`), kept across restarts, recorded in its `USER_ID`.
//! * A bridged agent still connects (socket reachable, uid allowed, key pair passed in its
//!   environment), heartbeats GOOD and answers RPC, writing into its `data/`.
//! * A probe agent (a shell script) finds it may write its `data/` and `$TMPDIR`, read its
//!   own `config`, and nothing else: not its own directory, not `/tmp` (Landlock, where
//!   the kernel has it), not the platform's key or directory listing, not its
//!   credentials file, not another agent's `data/`.
//!
//! * A home its agents' users cannot reach (under a `0700` directory, as a home in root's
//!   home directory is): the start fails with the directory named; nothing runs.
//!
//! Needs root (changing uids and owners); skipped with a printed reason otherwise.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{Home, pid, platform_wait, remote_agent_binary};
use serde_json::Value;

const RANGE: (u32, u32) = (410_000, 410_099);

/// Each line of the probe's report: what it tried, `yes` or `no`.
const PROBE: &str = r##"#!/bin/sh
report=data/report.partial
id -u > "$report"
try() {
    if sh -c "$2" >/dev/null 2>&1; then echo "$1 yes"; else echo "$1 no"; fi >> "$report"
}
try write-data 'echo x > data/mine'
try write-tmpdir 'echo x > "$TMPDIR/scratch"'
try read-own-config 'cat config'
try write-own-dir 'echo x > planted'
try change-own-program 'echo "# changed" >> probe.sh'
try write-tmp 'echo x > /tmp/volttron-isolation-probe-$$ && rm /tmp/volttron-isolation-probe-$$'
try read-platform-key 'cat "$VOLTTRON_HOME/keystore.json"'
try list-home 'ls "$VOLTTRON_HOME"'
try list-config-stores 'ls "$VOLTTRON_HOME/configuration_store"'
try read-credentials 'cat "$VOLTTRON_HOME/credentials_store/$AGENT_VIP_IDENTITY.json"'
try read-other-data 'ls "$VOLTTRON_HOME/agents/other/data"'
try write-other-data 'echo x > "$VOLTTRON_HOME/agents/other/data/planted"'
mv "$report" data/report
exec sleep 600
"##;

fn status_ids(pid: u64) -> (Vec<u32>, Vec<u32>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ids = |key: &str| -> Vec<u32> {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line[key.len()..]
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    (ids("Uid:"), ids("Gid:"))
}

fn landlock_supported() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_volttron-sandbox"))
        .arg("--read-only-except")
        .arg(dir.path())
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stderr).contains("Landlock not supported")
}

fn wait_for_report(data: &Path) -> HashMap<String, String> {
    let start = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(data.join("report")) {
            let mut lines = text.lines();
            let mut report: HashMap<String, String> = lines
                .by_ref()
                .skip(1)
                .filter_map(|l| l.split_once(' '))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            report.insert("uid".into(), text.lines().next().unwrap_or_default().to_owned());
            return report;
        }
        assert!(start.elapsed() < common::DEADLINE, "the probe wrote no report");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn agents_run_as_their_own_users_and_write_only_their_data() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: agent isolation mode needs root");
        return;
    }
    let home = Home::with_config(&format!(
        "[volttron]\nagent-isolation-mode = true\nagent-uid-range = {}-{}\nagent-data-only-writable = true\n",
        RANGE.0, RANGE.1
    ));
    let dir = home.path().to_owned();
    let probe = home.write_script("probe.sh", PROBE);
    let config = home.write("probe-config.json", r#"{"setpoint": 21}"#);

    let platform = home.start_platform();
    let agent = remote_agent_binary();
    home.ok(&[
        "install",
        agent.to_str().unwrap(),
        "--vip-identity",
        "other",
        "--start",
    ]);
    home.ok(&[
        "install",
        probe.to_str().unwrap(),
        "--vip-identity",
        "probe",
        "--agent-config",
        config.to_str().unwrap(),
        "--start",
    ]);

    // The bridged agent connects as its own user and works.
    let other = home.wait_for("other", "running and GOOD", |a| {
        pid(a).is_some() && a["health"] == "GOOD"
    });
    let (uids, gids) = status_ids(pid(&other).unwrap());
    let other_uid = uids[0];
    assert!((RANGE.0..=RANGE.1).contains(&other_uid), "{uids:?}");
    assert_eq!(uids, [other_uid; 4], "real, effective, saved and fs uid");
    assert_eq!(gids, [other_uid; 4], "its gid is its uid");
    let written = home.ok(&[
        "rpc",
        "call",
        "other",
        "write_data",
        r#""note.txt""#,
        r#""isolated""#,
    ]);
    let path: Value = serde_json::from_str(&written).unwrap();
    let meta = std::fs::metadata(path.as_str().unwrap()).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), other_uid, "{path}");
    assert_eq!(
        std::fs::read_to_string(dir.join("agents/other/USER_ID")).unwrap(),
        other_uid.to_string()
    );
    assert_eq!(other["user_id"], other_uid, "vctl status shows it");

    // The probe runs as another user and may touch only its data/.
    let probe_agent = home.wait_for("probe", "running", |a| pid(a).is_some());
    let report = wait_for_report(&dir.join("agents/probe/data"));
    let probe_uid: u32 = report["uid"].parse().unwrap();
    assert_ne!(probe_uid, other_uid);
    assert!((RANGE.0..=RANGE.1).contains(&probe_uid));
    assert_eq!(status_ids(pid(&probe_agent).unwrap()).0, [probe_uid; 4]);
    let mut expected = vec![
        ("write-data", "yes"),
        ("write-tmpdir", "yes"),
        ("read-own-config", "yes"),
        ("write-own-dir", "no"),
        ("change-own-program", "no"),
        ("read-platform-key", "no"),
        ("list-home", "no"),
        ("list-config-stores", "no"),
        ("read-credentials", "no"),
        ("read-other-data", "no"),
        ("write-other-data", "no"),
    ];
    if landlock_supported() {
        expected.push(("write-tmp", "no"));
    } else {
        println!("this kernel has no Landlock: writes to /tmp are not confined, not checked");
    }
    for (what, answer) in expected {
        assert_eq!(report[what], answer, "{what}: {report:?}");
    }

    // A restart keeps the uid.
    home.ok(&["restart", "other"]);
    let again = home.wait_for("other", "running again", |a| {
        pid(a).is_some_and(|p| Some(p) != pid(&other)) && a["health"] == "GOOD"
    });
    assert_eq!(status_ids(pid(&again).unwrap()).0[0], other_uid);
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}

/// In isolation mode, a home under a directory only root may traverse: an agent's start
/// fails, naming that directory, instead of a process that dies with EACCES.
#[test]
fn an_agent_its_user_cannot_reach_does_not_start() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: agent isolation mode needs root");
        return;
    }
    let home = Home::nested(
        &format!(
            "[volttron]\nagent-isolation-mode = true\nagent-uid-range = {}-{}\n",
            RANGE.0, RANGE.1
        ),
        0o700,
    );
    let probe = home.write_script("probe.sh", "#!/bin/sh\nexec sleep 600\n");
    let platform = home.start_platform();
    home.ok(&["install", probe.to_str().unwrap(), "--vip-identity", "probe"]);
    let err = home.fails(&["start", "probe"]);
    let expected = format!(
        "may not traverse {} (mode 0700, owner 0:0)",
        home.temp_dir().display()
    );
    assert!(
        err.contains("agent 'probe': cannot execute") && err.contains(&expected),
        "{err}"
    );
    let status = home.agent("probe").unwrap();
    assert!(pid(&status).is_none(), "{status}");
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
}
