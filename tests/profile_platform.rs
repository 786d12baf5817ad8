//! `vctl profile` of the platform process: a folded file whose stacks are real (rooted at
//! a thread's start, through the platform's own bridge code that the test keeps busy),
//! and no sampler installed before a profile is asked for.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::Home;

/// Bit of SIGPROF (27) in a `/proc/PID/status` signal mask line (`SigCgt:`, `SigIgn:`).
fn sigprof_in(pid: u32, field: &str) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (27 - 1)) != 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_profile_has_real_stacks_of_its_busy_code() {
    let home = Home::with_config("");
    let platform = home.start_platform();
    let pid = platform.0.id();
    // Off until asked for: no SIGPROF handler in the platform process.
    assert!(
        !sigprof_in(pid, "SigCgt:"),
        "a SIGPROF handler before any profile"
    );

    // Keep the platform's bridge busy with RPCs while it is profiled.
    let conn = home.connect_as("loader").await;
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut calls = 0u64;
            while !done.load(Ordering::Relaxed) {
                conn.call("platform.health", "get_platform_health", ())
                    .await
                    .unwrap();
                calls += 1;
            }
            conn.close().await;
            calls
        })
    };
    let out = home.temp_dir().join("platform.folded");
    let printed = {
        let home_path = home.path().to_owned();
        let out = out.clone();
        tokio::task::spawn_blocking(move || {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_vctl"))
                .arg("--volttron-home")
                .arg(&home_path)
                .args(["--json", "profile", "--seconds", "2", "-o"])
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "vctl profile: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        })
        .await
        .unwrap()
    };
    done.store(true, Ordering::Relaxed);
    let calls = load.await.unwrap();
    assert!(calls > 10, "only {calls} calls loaded the platform");

    let summary: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(summary["source"], "platform");
    assert_eq!(summary["pid"], pid);
    let folded = std::fs::read_to_string(&out).unwrap();
    assert!(!folded.is_empty());
    for line in folded.lines() {
        let (stack, count) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not folded: {line}"));
        assert!(count.parse::<u64>().unwrap() > 0, "{line}");
        assert!(!stack.is_empty(), "{line}");
    }
    assert_eq!(
        summary["samples"],
        folded
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum::<u64>()
    );
    // Real stacks: from the thread's start down into the bridge's session code.
    let bridge: Vec<&str> = folded
        .lines()
        .filter(|l| l.contains("volttron::bridge::server"))
        .collect();
    assert!(
        !bridge.is_empty(),
        "no stack through volttron::bridge::server:\n{folded}"
    );
    assert!(
        bridge
            .iter()
            .any(|l| l.contains("thread_start") && l.split(';').count() > 10),
        "the bridge's stacks are not walked from the thread's start:\n{}",
        bridge.join("\n")
    );
    // After the profile: the timer is stopped and SIGPROF is ignored, not handled.
    assert!(!sigprof_in(pid, "SigCgt:"), "a SIGPROF handler left installed");
    assert!(sigprof_in(pid, "SigIgn:"));
    home.ok(&["shutdown", "--platform"]);
    common::platform_wait(platform);
}
