//! The log file can be rotated: renamed, then SIGHUP makes `volttron` reopen it by name
//! (logrotate's default `create` mode), so the next records go to a new file and none are
//! lost or cut; and `--log-max-bytes` rotates it by size, keeping `--log-keep` files.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::logs::{message_is, records, wait_for_record};
use common::{DEADLINE, Home, platform_wait};

fn hangup(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

#[test]
fn sighup_reopens_the_log_file_after_it_was_renamed() {
    let home = Home::with_config("");
    let platform = home.start_platform_with(&["--log-format", "json"]);
    let log = home.log_path();
    wait_for_record(&log, "platform running", |r| message_is(r, "platform running"));
    let old = rotated(&log, 1);
    std::fs::rename(&log, &old).unwrap();
    // Still the old file until told.
    home.ok(&["peerlist"]);
    wait_for_record(&old, "of vctl's connection, in the renamed file", |r| {
        message_is(r, "bridge: peer connected")
    });
    assert!(!log.exists(), "a new file before SIGHUP");

    hangup(platform.0.id());
    let reopened = wait_for_record(&log, "of the reopen, in a new file", |r| {
        message_is(r, "SIGHUP: log file reopened")
    });
    assert_eq!(reopened["level"], "INFO");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the new log is the platform user's only");
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());

    // The records after the reopen are in the new file only, every line whole.
    let before = records(&old);
    let after = records(&log);
    assert!(before.iter().all(|r| !message_is(r, "SIGHUP: log file reopened")));
    assert!(before.iter().any(|r| message_is(r, "platform running")));
    assert!(
        after.iter().any(|r| message_is(r, "platform stopped")),
        "{after:?}"
    );
    assert!(before.iter().all(|r| !message_is(r, "platform stopped")));
}

#[test]
fn the_log_file_rotates_by_size_keeping_n_files() {
    let home = Home::with_config("[volttron]\nlog-max-bytes = 2K\nlog-keep = 2\n");
    let platform = home.start_platform_with(&["--log-format", "json"]);
    let log = home.log_path();
    // Each vctl call logs a connect and a disconnect (about 400 bytes).
    let start = Instant::now();
    while !rotated(&log, 2).exists() {
        assert!(start.elapsed() < DEADLINE, "no second rotation");
        home.ok(&["peerlist"]);
    }
    for _ in 0..10 {
        home.ok(&["peerlist"]);
    }
    home.ok(&["shutdown", "--platform"]);
    assert!(platform_wait(platform).success());
    assert!(!rotated(&log, 3).exists(), "more than log-keep files");
    for path in [log.clone(), rotated(&log, 1), rotated(&log, 2)] {
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= 2048, "{}: {size} bytes", path.display());
        // Every line whole: records are never split across files.
        assert!(!records(&path).is_empty(), "{} is empty", path.display());
    }
    assert!(records(&log).iter().any(|r| message_is(r, "platform stopped")));
}
